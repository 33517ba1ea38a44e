//! Standard Webhooks secrets and signatures, for tests that build their own
//! requests (tampered, stale or unsigned ones included).

use standardwebhooks::Webhook;

pub use service_support::callback_secret::generate as new_secret;

/// Where payment-service reports outcomes, the target the callback tests sign.
pub const CALLBACK: &str = "/internal/payment-callback";

/// The `webhook-signature` value for `body` sent to `POST target` as
/// message `id` at `timestamp`: the signature covers the method, the path
/// and query, and the body.
pub fn signature(secret: &str, id: &str, timestamp: i64, target: &str, body: &[u8]) -> String {
    signature_of(secret, id, timestamp, "POST", target, body)
}

/// Like [`signature`], for a request with another method.
pub fn signature_of(
    secret: &str,
    id: &str,
    timestamp: i64,
    method: &str,
    target: &str,
    body: &[u8],
) -> String {
    let mut content = format!("{method} {target}\n").into_bytes();
    content.extend_from_slice(body);
    Webhook::new(secret)
        .and_then(|w| w.sign(id, timestamp, &content))
        .expect("a valid secret and UTF-8 body")
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
