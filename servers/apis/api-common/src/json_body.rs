//! A JSON request body that must be exactly one JSON value.
//!
//! Dropshot's `TypedBody` parses the first JSON value and ignores whatever
//! follows it, so `{"quantity":1,…}}` or `{…} xyz` was accepted as if the
//! tail were not there. A client that sent such a body did not mean what
//! was parsed; this extractor refuses it with 400 INVALID_BODY, and is
//! otherwise `TypedBody`: the same content-type rule, size limit, error
//! messages and the same request body in the spec.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, TypedBody, UntypedBody,
};
use http::HeaderMap;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// A request body of type `T`, parsed from a body that holds one JSON value
/// and nothing after it (whitespace aside).
#[derive(Debug)]
pub struct JsonBody<T>(T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

#[async_trait]
impl<T> ExclusiveExtractor for JsonBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        check_json_content_type(request.headers())?;
        let body = UntypedBody::from_request(rqctx, request).await?;
        parse_json(body.as_bytes())
            .map(JsonBody)
            .map_err(|message| HttpError::for_bad_request(None, message))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(content_type)
    }
}

/// Parses `bytes` as exactly one JSON value of type `T`. The error reads
/// like Dropshot's (`unable to parse JSON body: …`), which
/// [`ApiError`](crate::ApiError) maps to 400 INVALID_BODY, and names the field at fault.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| format!("unable to parse JSON body: {e}"))?;
    deserializer.end().map_err(|e| {
        format!(
            "unable to parse JSON body: {e}; the body must hold one JSON value and nothing after it"
        )
    })?;
    Ok(value)
}

/// The same content-type rule `TypedBody` applies: JSON, or no header at all.
pub(crate) fn check_json_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let value = value
        .to_str()
        .map_err(|e| HttpError::for_bad_request(None, format!("invalid content type: {e}")))?;
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(HttpError::for_bad_request(
            None,
            format!("expected content type \"application/json\", got \"{mime}\""),
        ))
    }
}
