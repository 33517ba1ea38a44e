//! Requests signed per Standard Webhooks, kept as received (method, path
//! and query, headers, the exact body bytes) so the signature can be
//! checked before anything is parsed.

use crate::json_body::{check_json_content_type, parse_json};
use crate::{ApiError, ErrorCode};
use async_trait::async_trait;
use bytes::Bytes;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, Header, HttpError,
    RequestContext, ServerContext, SharedExtractor, TypedBody, UntypedBody,
};
use http::{HeaderMap, StatusCode};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A JSON body of type `T` together with the request headers, unparsed.
///
/// `TypedBody` would parse and discard the bytes, but a signature is only
/// valid over the bytes that were sent: re-serialising parsed JSON changes
/// them. So this extractor keeps the raw body (under the server's body-size
/// limit) and the handler verifies the signature first, then calls
/// [`SignedBody::parse`]. In the spec it documents the same typed body as
/// `TypedBody<T>` plus the three `webhook-*` headers.
#[derive(Debug)]
pub struct SignedBody<T> {
    request: SignedRequest,
    body: Bytes,
    _type: PhantomData<fn() -> T>,
}

/// What a signature covers besides the body: the method, the request
/// target (path and query, so the ids acted on) and the headers that carry
/// the signature. Alone, the extractor of a signed request without a body.
#[derive(Debug)]
pub struct SignedRequest {
    pub method: http::Method,
    /// The path and query as received.
    pub target: String,
    pub headers: HeaderMap,
}

impl SignedRequest {
    fn of(method: &http::Method, uri: &http::Uri, headers: &HeaderMap) -> SignedRequest {
        SignedRequest {
            method: method.clone(),
            target: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string()),
            headers: headers.clone(),
        }
    }
}

impl<T: DeserializeOwned> SignedBody<T> {
    pub fn request(&self) -> &SignedRequest {
        &self.request
    }

    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// Parses the body as [`JsonBody`](crate::JsonBody) does: one JSON
    /// value and nothing after it.
    pub fn parse(&self) -> Result<T, ApiError> {
        parse_json(&self.body).map_err(|message| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidBody, message)
        })
    }
}

/// The Standard Webhooks headers, declared only so the spec documents them;
/// the handler verifies them from the raw header map.
#[derive(Deserialize, JsonSchema)]
#[expect(
    dead_code,
    reason = "documentation only: the signature is checked from the raw headers"
)]
struct WebhookHeaders {
    /// A unique id of this attempt: a request whose id was accepted
    /// before is refused as a replay, so every attempt, retries included,
    /// is signed with a new one.
    #[serde(rename = "webhook-id")]
    webhook_id: String,
    /// When this attempt was signed, in Unix seconds. Attempts more than 5
    /// minutes away from the receiver's clock are rejected.
    #[serde(rename = "webhook-timestamp")]
    webhook_timestamp: String,
    /// Space-separated signatures `v1,<base64>`: HMAC-SHA256 with the shared
    /// secret over `{webhook-id}.{webhook-timestamp}.{METHOD} {path and
    /// query}\n{body}`, the body being the exact bytes sent, so the
    /// signature binds the operation and the ids in the path too. Several signatures may be given during a secret
    /// rotation; one valid signature is enough.
    #[serde(rename = "webhook-signature")]
    webhook_signature: String,
}

#[async_trait]
impl<T> ExclusiveExtractor for SignedBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        let signed = SignedRequest::of(request.method(), request.uri(), request.headers());
        check_json_content_type(&signed.headers)?;
        let body = UntypedBody::from_request(rqctx, request).await?;
        Ok(SignedBody {
            request: signed,
            body: Bytes::copy_from_slice(body.as_bytes()),
            _type: PhantomData,
        })
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        let mut metadata = <TypedBody<T> as ExclusiveExtractor>::metadata(content_type.clone());
        metadata
            .parameters
            .extend(<Header<WebhookHeaders> as SharedExtractor>::metadata(content_type).parameters);
        metadata
    }
}

#[async_trait]
impl SharedExtractor for SignedRequest {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let request = &rqctx.request;
        Ok(SignedRequest::of(
            request.method(),
            request.uri(),
            request.headers(),
        ))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Header<WebhookHeaders> as SharedExtractor>::metadata(content_type)
    }
}
