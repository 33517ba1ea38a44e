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
