//! The success response of an operation that authenticates its caller.

use crate::ApiError;
use dropshot::{HttpCodedResponse, HttpError, HttpResponseOk};
use http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;

/// A 200 with `T`, or an error that has to carry a response header: the
/// `WWW-Authenticate` challenge of a refused credential (RFC 6750).
///
/// Dropshot renders a handler's error type with no way to add headers, so
/// an error with a challenge travels on this side of the `Result`; the
/// spec still shows `T` as the 200 body and [`ApiError`] for every error.
pub enum Answer<T> {
    Ok(T),
    Challenged(ApiError),
}

impl<T> HttpCodedResponse for Answer<T>
where
    T: JsonSchema + Serialize + Send + Sync + 'static,
{
    type Body = T;
    const STATUS_CODE: StatusCode = StatusCode::OK;
    const DESCRIPTION: &'static str = "successful operation";
}

impl<T> From<Answer<T>> for Result<http::Response<dropshot::Body>, HttpError>
where
    T: JsonSchema + Serialize + Send + Sync + 'static,
{
    fn from(answer: Answer<T>) -> Self {
        match answer {
            Answer::Ok(body) => HttpResponseOk(body).into(),
            Answer::Challenged(error) => {
                let body = serde_json::to_string(&error)
                    .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
                let mut response = http::Response::builder()
                    .status(error.code)
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(challenge) = &error.challenge {
                    response = response.header(http::header::WWW_AUTHENTICATE, challenge);
                }
                response
                    .body(body.into())
                    .map_err(|e| HttpError::for_internal_error(e.to_string()))
            }
        }
    }
}
