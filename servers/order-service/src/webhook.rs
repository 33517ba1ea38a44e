//! Verifies payment-service's callbacks per Standard Webhooks.

use anyhow::{Context, bail};
use base64::Engine;
use http::HeaderMap;
use standardwebhooks::{Webhook, WebhookError};

/// The shortest secret accepted: Standard Webhooks asks for 24 to 64 random bytes.
const MIN_SECRET_BYTES: usize = 24;

/// Accepts a callback signed with any of its secrets: the current one, and
/// during a rotation the one being retired.
pub struct CallbackVerifier {
    webhooks: Vec<Webhook>,
}

impl CallbackVerifier {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> anyhow::Result<Self> {
        let webhooks = secrets
            .into_iter()
            .map(|secret| {
                check_secret(secret)?;
                Webhook::new(secret).context("not a valid Standard Webhooks secret")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if webhooks.is_empty() {
            bail!("no callback secret configured");
        }
        Ok(CallbackVerifier { webhooks })
    }

    /// Checks the `webhook-*` headers against the exact body bytes received.
    /// The error says what to fix, for the 401's message.
    pub fn verify(&self, body: &[u8], headers: &HeaderMap) -> Result<(), String> {
        timely(headers)?;
        let mut first_error = None;
        for webhook in &self.webhooks {
            match webhook.verify(body, headers) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(explain(first_error.expect("at least one secret")))
    }
}

/// How far from this server's clock a signature's timestamp may be, as
/// Standard Webhooks says.
const TOLERANCE_SECS: u64 = 5 * 60;

/// Refuses a `webhook-timestamp` further than the tolerance from now before
/// the library's own check sees it: that check subtracts without checking,
/// so `i64::MIN` wrapped around to a signature that never expires. A
/// missing or unreadable timestamp is left to the library to report.
fn timely(headers: &HeaderMap) -> Result<(), String> {
    let Some(timestamp) = headers
        .get("webhook-timestamp")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok())
    else {
        return Ok(());
    };
    match chrono::Utc::now().timestamp().checked_sub(timestamp) {
        Some(age) if age.unsigned_abs() <= TOLERANCE_SECS => Ok(()),
        _ => Err(explain(WebhookError::TimestampTooOldError)),
    }
}

fn check_secret(secret: &str) -> anyhow::Result<()> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .context(
            "a callback secret must be whsec_ followed by standard base64 (generate one with: \
         echo whsec_$(head -c 32 /dev/urandom | base64))",
        )?;
    if key.len() < MIN_SECRET_BYTES {
        bail!(
            "a callback secret must hold at least {MIN_SECRET_BYTES} bytes, this one holds {}",
            key.len()
        );
    }
    Ok(())
}

fn explain(error: WebhookError) -> String {
    match error {
        WebhookError::MissingHeader(name) => {
            format!("the webhook-{name} header is missing; callbacks must be signed per Standard Webhooks")
        }
        WebhookError::InvalidHeader(name) => format!("the webhook-{name} header is not valid text"),
        WebhookError::InvalidTimestamp => {
            "webhook-timestamp must be the signing time in Unix seconds".to_string()
        }
        WebhookError::TimestampTooOldError | WebhookError::FutureTimestampError => {
            "webhook-timestamp is more than 5 minutes from this server's clock; sign each attempt anew"
                .to_string()
        }
        WebhookError::InvalidSignature => {
            "no webhook-signature matches: the body, id or timestamp changed after signing, or the secret differs"
                .to_string()
        }
        WebhookError::InvalidPayload => "the signed body is not UTF-8 text".to_string(),
        WebhookError::InvalidSecret(_) => "the verifier's secret is invalid".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const PREVIOUS: &str = "whsec_dGhpcyBpcyB0aGUgcHJldmlvdXMgc2VjcmV0IQ==";

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        signed_at(secret, body, chrono::Utc::now().timestamp())
    }

    fn signed_at(secret: &str, body: &[u8], timestamp: i64) -> HeaderMap {
        let signature = Webhook::new(secret)
            .unwrap()
            .sign("msg_1", timestamp, body)
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn secrets_that_are_short_or_not_base64_are_refused() {
        let short = CallbackVerifier::new(["whsec_c2hvcnQ="]).err().unwrap();
        assert!(
            format!("{short:#}").contains("at least 24 bytes"),
            "{short:#}"
        );
        let garbage = CallbackVerifier::new(["whsec_not base64!"]).err().unwrap();
        assert!(format!("{garbage:#}").contains("base64"), "{garbage:#}");
        assert!(CallbackVerifier::new([]).is_err());
    }

    #[test]
    fn a_signature_at_any_time_outside_five_minutes_of_now_is_refused() {
        let verifier = CallbackVerifier::new([CURRENT]).unwrap();
        let body = br#"{"amount":1}"#;
        let now = chrono::Utc::now().timestamp();
        for timestamp in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            now - 301,
            now + 301,
            i64::MAX,
        ] {
            let error = verifier
                .verify(body, &signed_at(CURRENT, body, timestamp))
                .unwrap_err();
            assert!(
                error.contains("more than 5 minutes"),
                "{timestamp}: {error}"
            );
        }
        assert_eq!(
            verifier.verify(body, &signed_at(CURRENT, body, now - 299)),
            Ok(())
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_verify_and_others_do_not() {
        let verifier = CallbackVerifier::new([CURRENT, PREVIOUS]).unwrap();
        let body = br#"{"amount":1}"#;
        assert_eq!(verifier.verify(body, &signed(CURRENT, body)), Ok(()));
        assert_eq!(verifier.verify(body, &signed(PREVIOUS, body)), Ok(()));
        let foreign = "whsec_Zm9yZWlnbiBzZWNyZXQgb2YgdHdlbnR5LWZvdXI=";
        let error = verifier.verify(body, &signed(foreign, body)).unwrap_err();
        assert!(error.contains("no webhook-signature matches"), "{error}");
    }
}
