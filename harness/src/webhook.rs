//! Standard Webhooks secrets and signatures, for tests that build their own
//! requests (tampered, stale or unsigned ones included).

use standardwebhooks::Webhook;

pub use service_support::callback_secret::generate as new_secret;

/// The `webhook-signature` value for `body` sent as message `id` at `timestamp`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    Webhook::new(secret)
        .and_then(|w| w.sign(id, timestamp, body))
        .expect("a valid secret and UTF-8 body")
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
