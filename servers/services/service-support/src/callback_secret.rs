//! The secret both services share for signed internal calls, in the
//! Standard Webhooks form `whsec_` + base64 of the key.

use base64::Engine;

/// A fresh random secret: 32 bytes from the operating system's generator,
/// more than the 24 the services require.
pub fn generate() -> String {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}
