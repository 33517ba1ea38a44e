use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The success envelope of every operation: `{"code":200,"status":"OK","data":...}`.
///
/// This is the original system's response shape, kept so its clients keep
/// working.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Envelope<T> {
    /// The HTTP status code of the response, repeated in the body (always 200 on success).
    pub code: u16,
    /// The upper-case reason phrase of `code` (always `OK` on success).
    pub status: String,
    /// The operation's result.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps a successful result.
    pub fn ok(data: T) -> Self {
        Envelope {
            code: 200,
            status: "OK".to_string(),
            data,
        }
    }
}

/// The success envelope of a paginated list: the page's items in `data`, and
/// the token for the next page beside them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    /// The HTTP status code of the response, repeated in the body (always 200 on success).
    pub code: u16,
    /// The upper-case reason phrase of `code` (always `OK` on success).
    pub status: String,
    /// The items of this page, in the listing's stable order.
    pub data: Vec<T>,
    /// Pass this value as `page_token` to fetch the next page; `null` on the last page.
    pub next_page: Option<String>,
}

impl<T> Page<T> {
    /// Wraps one page of a listing.
    pub fn ok(data: Vec<T>, next_page: Option<String>) -> Self {
        Page {
            code: 200,
            status: "OK".to_string(),
            data,
            next_page,
        }
    }
}
