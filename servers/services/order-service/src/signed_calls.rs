//! Verifies payment-service's signed calls per Standard Webhooks: the
//! signature covers the method, the path and query (so the order acted on)
//! and the body, and each signed request is accepted once.

use anyhow::{Context, bail};
use api_common::SignedRequest;
use base64::Engine;
use http::HeaderMap;
use service_support::database::{Database, DbError};
use standardwebhooks::{Webhook, WebhookError};
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

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

    /// Checks the `webhook-*` headers against `request` and the exact body
    /// bytes received. The error says what to fix, for the 401's message.
    pub fn verify(&self, request: &SignedRequest, body: &[u8]) -> Result<(), String> {
        let headers = &request.headers;
        timely(headers)?;
        let content = signed_content(&request.method, &request.target, body);
        let mut first_error = None;
        for webhook in &self.webhooks {
            match webhook.verify(&content, headers) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(explain(first_error.expect("at least one secret")))
    }
}

/// What is signed: `{METHOD} {path and query}\n{body}`, so a signature
/// made for one order or operation is worth nothing on another.
pub fn signed_content(method: &http::Method, target: &str, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{method} {target}\n").into_bytes();
    content.extend_from_slice(body);
    content
}

/// Records the signed call's id (parameter `$n`) in the statement that
/// acts on the call, so the two commit together: one commit, and an id is
/// recorded exactly when what the call did is (a call whose statement
/// failed or was cancelled is not used up; its copy is acted on at most
/// once, like the call itself). The statement's `WHERE` must end with
/// [`first_time`]: the id is then inserted before any row is looked at,
/// and a replay fails on the primary key (see [`replayed`]) before it
/// locks or rewrites a row. A statement that finds nothing to change
/// still records the id: a refused call is not tried again either.
macro_rules! recorded_once {
    ($n:literal) => {
        concat!(
            "WITH seen AS (INSERT INTO signed_calls_seen (webhook_id) VALUES (",
            $n,
            ") RETURNING webhook_id) "
        )
    };
}
pub(crate) use recorded_once;

/// Like [`recorded_once`], for a call that only reads: the record's commit
/// does not wait for the disk (`set_config(…, true)` is `SET LOCAL`, and a
/// transaction commits as the setting is when it commits; the statement is
/// a transaction of its own, so the setting ends with it). A crash of the
/// database, or a failover to a standby, can forget the record, and the
/// read could then be replayed once more inside the signature's five
/// minutes: it changes nothing and shows the order as it is then.
macro_rules! recorded_once_unflushed {
    ($n:literal) => {
        concat!(
            "WITH seen AS (INSERT INTO signed_calls_seen (webhook_id) SELECT ",
            $n,
            "::text WHERE set_config('synchronous_commit', 'off', true) = 'off' \
             RETURNING webhook_id) "
        )
    };
}
pub(crate) use recorded_once_unflushed;

/// The last condition of a statement that starts with [`recorded_once`]:
/// PostgreSQL evaluates it once, before the first row, which records the
/// id first (an unreferenced `WITH` would run after the statement's own
/// work).
macro_rules! first_time {
    () => {
        " AND EXISTS (SELECT FROM seen)"
    };
}
pub(crate) use first_time;

/// The primary key a replayed call's id violates.
const SEEN_KEY: &str = "signed_calls_seen_pkey";

/// Whether `error` is a statement refused because its call's id was
/// recorded before: a replay.
pub fn replayed(error: &DbError) -> bool {
    matches!(error, DbError::Query(error)
        if error.as_db_error().and_then(|e| e.constraint()) == Some(SEEN_KEY))
}

/// Forgets up to $2 of the ids recorded more than $1 seconds ago, oldest
/// first. `now()`, not `clock_timestamp()`: a volatile bound cannot use the
/// index, and the whole table was read every minute.
pub(crate) const PRUNE: &str = "DELETE FROM signed_calls_seen WHERE webhook_id = ANY(ARRAY( \
     SELECT webhook_id FROM signed_calls_seen WHERE seen_at < now() - $1 * interval '1 second' \
     ORDER BY seen_at LIMIT $2))";

/// Ids forgotten per statement, so no prune holds many row locks for long.
const PRUNE_BATCH: i64 = 5_000;

/// The longest `webhook-id` accepted.
const MAX_ID_BYTES: usize = 256;

/// A signed call's `webhook-id`, new for every attempt: what makes each
/// signed call acted on once.
pub struct CallId(String);

impl CallId {
    /// The id in `headers`, of a call whose signature is verified (the id
    /// is part of what is signed). The error says what to fix.
    pub fn of(headers: &HeaderMap) -> Result<CallId, String> {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(format!(
                "webhook-id must be 1 to {MAX_ID_BYTES} characters, new for every attempt"
            ));
        }
        Ok(CallId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why a replay of this call is refused.
    pub fn replay_refused(&self) -> String {
        format!(
            "a request with webhook-id {:?} was accepted before; a replayed signed request is \
             refused, and every attempt must be signed with a new id",
            self.0
        )
    }
}

/// Forgets the ids of signed calls once their signatures are stale.
pub struct SeenCalls {
    db: Database,
}

impl SeenCalls {
    pub fn new(db: Database) -> Self {
        SeenCalls { db }
    }

    /// Forgets ids older than twice the tolerance, every minute, a batch
    /// at a time.
    pub fn spawn_pruner(self, log: slog::Logger) -> AbortOnDropHandle<()> {
        AbortOnDropHandle::new(tokio::spawn(async move {
            let keep_secs = (2 * TOLERANCE_SECS) as f64;
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                loop {
                    match self.db.execute(PRUNE, &[&keep_secs, &PRUNE_BATCH]).await {
                        Ok(pruned) if pruned as i64 == PRUNE_BATCH => continue,
                        Ok(_) => break,
                        Err(error) => {
                            slog::warn!(log, "cannot prune the signed calls seen";
                                "error" => %error);
                            break;
                        }
                    }
                }
            }
        }))
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
            "no webhook-signature matches: the method, path, body, id or timestamp changed after signing, or the secret differs"
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

    const TARGET: &str = "/internal/orders/5d6c1c3e-39d1-4f36-9d6b-3f1c1b0f7a10/payment";

    fn signed(secret: &str, body: &[u8]) -> SignedRequest {
        signed_at(secret, body, chrono::Utc::now().timestamp())
    }

    fn signed_at(secret: &str, body: &[u8], timestamp: i64) -> SignedRequest {
        let content = signed_content(&http::Method::POST, TARGET, body);
        let signature = Webhook::new(secret)
            .unwrap()
            .sign("msg_1", timestamp, &content)
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        SignedRequest {
            method: http::Method::POST,
            target: TARGET.to_string(),
            headers,
        }
    }

    #[test]
    fn a_signature_is_worth_nothing_on_another_path_or_method() {
        let verifier = CallbackVerifier::new([CURRENT]).unwrap();
        let body = br#"{"amount":1}"#;
        let request = signed(CURRENT, body);
        assert_eq!(verifier.verify(&request, body), Ok(()));
        let elsewhere = SignedRequest {
            target: "/internal/orders/0b9d6a3e-0c0e-4a4e-8f3e-2d8f7c6b5a41/payment".to_string(),
            ..signed(CURRENT, body)
        };
        let error = verifier.verify(&elsewhere, body).unwrap_err();
        assert!(error.contains("no webhook-signature matches"), "{error}");
        let other_method = SignedRequest {
            method: http::Method::PUT,
            ..signed(CURRENT, body)
        };
        assert!(verifier.verify(&other_method, body).is_err());
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
                .verify(&signed_at(CURRENT, body, timestamp), body)
                .unwrap_err();
            assert!(
                error.contains("more than 5 minutes"),
                "{timestamp}: {error}"
            );
        }
        assert_eq!(
            verifier.verify(&signed_at(CURRENT, body, now - 299), body),
            Ok(())
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_verify_and_others_do_not() {
        let verifier = CallbackVerifier::new([CURRENT, PREVIOUS]).unwrap();
        let body = br#"{"amount":1}"#;
        assert_eq!(verifier.verify(&signed(CURRENT, body), body), Ok(()));
        assert_eq!(verifier.verify(&signed(PREVIOUS, body), body), Ok(()));
        let foreign = "whsec_Zm9yZWlnbiBzZWNyZXQgb2YgdHdlbnR5LWZvdXI=";
        let error = verifier.verify(&signed(foreign, body), body).unwrap_err();
        assert!(error.contains("no webhook-signature matches"), "{error}");
    }
}
