//! The `Idempotency-Key` request header (IETF HTTPAPI draft
//! "The Idempotency-Key HTTP Header Field"), which makes a create safe to
//! retry: a retry with the same key is answered with the first result
//! instead of creating again.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExtractorMetadata, Header, HttpError, RequestContext,
    ServerContext, SharedExtractor,
};
use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, Metadata, Schema, SchemaObject, StringValidation};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most characters a key may have, as Stripe allows.
pub const MAX_KEY_CHARS: usize = 255;

/// Where a malformed key's message starts; [`ApiError`](crate::ApiError)
/// maps it to 400 `INVALID_IDEMPOTENCY_KEY`.
pub(crate) const INVALID_KEY_PREFIX: &str = "invalid Idempotency-Key header";

/// A client's idempotency key: 1 to 255 visible ASCII characters other
/// than `"` and `\`, sent bare (`Idempotency-Key: 8e03978e-…`) or as the
/// draft's quoted string (`Idempotency-Key: "8e03978e-…"`); both spell the
/// same key, which is held without the quotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let key = match value.strip_prefix('"') {
            Some(rest) => rest
                .strip_suffix('"')
                .ok_or_else(|| "a quoted key must end with a double quote (`\"…\"`)".to_string())?,
            None => value.as_str(),
        };
        if key.is_empty() {
            return Err("the key is empty; send 1 to 255 characters".to_string());
        }
        if key.len() > MAX_KEY_CHARS {
            return Err(format!(
                "the key has {} characters; send at most {MAX_KEY_CHARS}",
                key.len()
            ));
        }
        if let Some(bad) = key.chars().find(|&c| !is_key_char(c)) {
            return Err(format!(
                "the key contains {bad:?}; use visible ASCII characters other than `\"` and `\\` \
                 (a UUID is a good key)"
            ));
        }
        Ok(IdempotencyKey(key.to_string()))
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_graphic() && c != '"' && c != '\\'
}

impl From<IdempotencyKey> for String {
    fn from(value: IdempotencyKey) -> String {
        value.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl JsonSchema for IdempotencyKey {
    fn schema_name() -> String {
        "IdempotencyKey".to_string()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            metadata: Some(Box::new(Metadata {
                description: Some(
                    "A client's idempotency key: 1 to 255 visible ASCII characters other than \
                     `\"` and `\\`, bare or double-quoted (both spell the same key)."
                        .to_string(),
                ),
                ..Default::default()
            })),
            instance_type: Some(InstanceType::String.into()),
            string: Some(Box::new(StringValidation {
                min_length: Some(1),
                max_length: Some(MAX_KEY_CHARS as u32 + 2),
                pattern: Some(r#"^([!#-\[\]-~]{1,255}|"[!#-\[\]-~]{1,255}")$"#.to_string()),
            })),
            ..Default::default()
        }
        .into()
    }
}

/// The optional `Idempotency-Key` header of a create. Unlike Dropshot's
/// `Header` extractor it reads only this header, so an unrelated header
/// that is not valid text does not fail the request.
#[derive(Debug)]
pub struct IdempotencyKeyHeader(Option<IdempotencyKey>);

impl IdempotencyKeyHeader {
    pub fn into_inner(self) -> Option<IdempotencyKey> {
        self.0
    }
}

/// The header as the spec documents it.
#[derive(Deserialize, JsonSchema)]
#[expect(
    dead_code,
    reason = "documentation only: the header is read by IdempotencyKeyHeader"
)]
struct IdempotencyHeaders {
    /// Makes this create safe to retry. A retry with the same key and the
    /// same body (compared as JSON values) within 24 hours (the service's
    /// `IDEMPOTENCY_KEY_TTL_SECS`) is answered with the first request's
    /// status and body and does nothing; the same key with another body is
    /// `IDEMPOTENCY_KEY_REUSED` (422); the same key while the first
    /// request is still being processed is `IDEMPOTENCY_KEY_IN_USE` (409,
    /// retry after a moment). Outcomes worth retrying (5xx) are not kept,
    /// so a retry after one runs the request again. Keys are this service's
    /// own: 1 to 255 visible ASCII characters other than `"` and `\`, bare
    /// or double-quoted; a UUID v4 is recommended. A malformed key is
    /// `INVALID_IDEMPOTENCY_KEY` (400).
    #[serde(rename = "Idempotency-Key")]
    idempotency_key: Option<IdempotencyKey>,
}

#[async_trait]
impl SharedExtractor for IdempotencyKeyHeader {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        let mut values = rqctx.request.headers().get_all("idempotency-key").iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyKeyHeader(None));
        };
        let invalid =
            |why: &str| HttpError::for_bad_request(None, format!("{INVALID_KEY_PREFIX}: {why}"));
        if values.next().is_some() {
            return Err(invalid("send the header once"));
        }
        let text = value
            .to_str()
            .map_err(|_| invalid("use visible ASCII characters other than `\"` and `\\`"))?;
        IdempotencyKey::try_from(text.to_string())
            .map(|key| IdempotencyKeyHeader(Some(key)))
            .map_err(|why| invalid(&why))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Header<IdempotencyHeaders> as SharedExtractor>::metadata(content_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Result<IdempotencyKey, String> {
        IdempotencyKey::try_from(text.to_string())
    }

    #[test]
    fn a_bare_and_a_quoted_key_are_the_same_key() {
        let bare = key("8e03978e-40d5-43e8-bc93-6894a57f9324").unwrap();
        let quoted = key("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"").unwrap();
        assert_eq!(bare, quoted);
        assert_eq!(bare.as_str(), "8e03978e-40d5-43e8-bc93-6894a57f9324");
    }

    #[test]
    fn malformed_keys_are_refused_saying_why() {
        for (text, why) in [
            ("", "empty"),
            ("\"\"", "empty"),
            ("\"abc", "must end with a double quote"),
            ("a b", "contains ' '"),
            ("a\\b", "contains '\\\\'"),
            ("ключ", "contains 'к'"),
        ] {
            let error = key(text).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
        assert!(key(&"k".repeat(MAX_KEY_CHARS)).is_ok());
        let error = key(&"k".repeat(MAX_KEY_CHARS + 1)).unwrap_err();
        assert!(error.contains("at most 255"), "{error}");
    }

    #[test]
    fn the_schema_pattern_admits_exactly_the_keys_that_parse() {
        let pattern = match IdempotencyKey::json_schema(&mut SchemaGenerator::default()) {
            Schema::Object(object) => object.string.unwrap().pattern.unwrap(),
            Schema::Bool(_) => unreachable!("the key's schema is an object"),
        };
        let pattern = regex::Regex::new(&pattern).unwrap();
        for text in [
            "k",
            "\"k\"",
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            "",
            "\"\"",
            "\"k",
            "a b",
            "a\\b",
            "é",
            "!#[]~",
        ] {
            assert_eq!(pattern.is_match(text), key(text).is_ok(), "{text:?}");
        }
    }
}
