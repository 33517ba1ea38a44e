//! The opaque `page_token` of `GET /orders`: the sort key of the last order
//! on the previous page, so the next page starts strictly after it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

/// Where a page ends in the listing's (created_at, id) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    /// `None` for anything this service did not issue, including a time
    /// outside the years orders are made in: PostgreSQL refuses times
    /// before 4713 BC, which chrono holds, and a crafted token must be a
    /// 400, not a database error.
    pub fn decode(token: &str) -> Option<Cursor> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let (micros, id) = text.split_once(':')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        if !(1970..=9999).contains(&created_at.year()) {
            return None;
        }
        Some(Cursor {
            created_at,
            id: id.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_token() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for token in ["", "abc", "!!!", &URL_SAFE_NO_PAD.encode("12:not-a-uuid")] {
            assert_eq!(Cursor::decode(token), None, "{token}");
        }
    }

    #[test]
    fn tokens_for_times_no_order_was_made_at_are_refused() {
        let id = Uuid::new_v4();
        for micros in [
            i64::MIN,
            -210_000_000_000_000_000,
            -1,
            253_402_300_800_000_000,
        ] {
            let token = URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
            assert_eq!(Cursor::decode(&token), None, "{micros}");
        }
    }
}
