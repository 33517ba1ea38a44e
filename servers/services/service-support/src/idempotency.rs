//! Idempotency keys: a create sent with an `Idempotency-Key` runs once,
//! and every retry with the same key and body is answered with the first
//! answer.
//!
//! A key is claimed before the work starts (committed at once, so a
//! concurrent retry sees it and is told `IDEMPOTENCY_KEY_IN_USE`), and its
//! answer is recorded when the work ends. A service whose work has no
//! natural key of its own (an order) records the answer in the same
//! transaction as the work, so the two cannot part. Answers worth retrying
//! (5xx) are not kept: the claim is released and a retry runs anew. A claim
//! whose process died is taken over by a retry once its lease has passed,
//! and only the attempt holding the claim can record an answer, so a
//! slow first attempt and its successor cannot both take effect.

use crate::database::{Database, DbError};
use crate::operations::{Failure, ServiceError};
use api_common::{ApiError, ErrorCode, IdempotencyKey};
use deadpool_postgres::GenericClient;
use http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

/// How long a claim protects an attempt that has not answered yet; after
/// it, a retry takes the key over. Longer than any request runs: the
/// database deadline and the call to order-service are both shorter.
pub const LEASE: Duration = Duration::from_secs(30);

/// Claims `$1` for attempt `$3` with request `$2`, or takes over a key
/// that expired ($5 seconds) or whose unanswered attempt outlived its
/// lease ($4 ms) with the same request. No row changed: the key is
/// someone else's.
const CLAIM: &str = "INSERT INTO idempotency_keys AS k (key, request, attempt, locked_until) \
     VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond') \
     ON CONFLICT (key) DO UPDATE SET request = excluded.request, attempt = excluded.attempt, \
         locked_until = excluded.locked_until, status = NULL, response = NULL, \
         created_at = clock_timestamp() \
     WHERE k.created_at < clock_timestamp() - $5 * interval '1 second' \
        OR (k.status IS NULL AND k.locked_until < clock_timestamp() \
            AND k.request = excluded.request)";

const READ: &str =
    "SELECT request = $2 AS same_request, status, response FROM idempotency_keys WHERE key = $1";

const RECORD: &str = "UPDATE idempotency_keys SET status = $3, response = $4, locked_until = NULL \
     WHERE key = $1 AND attempt = $2 AND status IS NULL";

const RELEASE: &str =
    "DELETE FROM idempotency_keys WHERE key = $1 AND attempt = $2 AND status IS NULL";

/// Deletes up to $2 keys older than $1 seconds.
const PRUNE: &str = "DELETE FROM idempotency_keys WHERE key = ANY(ARRAY( \
         SELECT key FROM idempotency_keys \
         WHERE created_at < clock_timestamp() - $1 * interval '1 second' \
         ORDER BY created_at LIMIT $2))";

/// How long idempotency keys are kept.
#[derive(Clone, Debug, clap::Args)]
pub struct IdempotencySettings {
    /// Seconds an Idempotency-Key is remembered; after that the same key is a new request.
    #[arg(
        long = "idempotency-key-ttl-secs",
        env = "IDEMPOTENCY_KEY_TTL_SECS",
        default_value_t = 24 * 3600
    )]
    pub ttl_secs: u64,
}

/// A service's idempotency keys, in its own database.
#[derive(Clone)]
pub struct IdempotencyKeys {
    db: Database,
    /// How long a key is kept; after that the same key is a new request.
    ttl: Duration,
}

/// What a claim found.
pub enum Claim<T> {
    /// The key is this attempt's: do the work, then [`IdempotencyKeys::finish`].
    Proceed(Attempt),
    /// The key was used before: the answer to give, without doing anything.
    Answered(Result<T, ApiError>),
}

/// What work done under an idempotency key came to.
pub enum Done<T> {
    /// An answer for the key's retries, to be recorded now.
    Answered(T),
    /// An answer recorded together with the work (see [`record_success`]).
    Recorded(T),
    /// A retry took the key over while this attempt ran (its lease ran
    /// out), and the work was rolled back.
    Superseded,
}

/// The attempt that holds a key.
pub struct Attempt {
    key: String,
    id: Uuid,
}

impl IdempotencyKeys {
    pub fn new(db: Database, settings: &IdempotencySettings) -> Self {
        IdempotencyKeys {
            db,
            ttl: Duration::from_secs(settings.ttl_secs),
        }
    }

    /// Claims `caller`'s `key` for `request`, or finds the answer a retry
    /// gets: the first answer, `IDEMPOTENCY_KEY_REUSED` for another
    /// request, or `IDEMPOTENCY_KEY_IN_USE` while the first is still being
    /// processed. Keys are per caller: another caller's same key is another
    /// key, so nobody can replay or block someone else's request by
    /// guessing it. `caller` is `None` with authentication disabled.
    async fn claim<T: DeserializeOwned>(
        &self,
        caller: Option<&str>,
        key: &IdempotencyKey,
        request: &impl Serialize,
    ) -> Result<Claim<T>, DbError> {
        // A key never holds a newline (it is visible ASCII), so the last
        // one separates caller and key: no two pairs share a stored key.
        let stored = match caller {
            Some(caller) => format!("{caller}\n{}", key.as_str()),
            None => key.as_str().to_string(),
        };
        let request = serde_json::to_value(request)
            .map_err(|e| DbError::UnexpectedValue(format!("request not serialisable: {e}")))?;
        let attempt = Uuid::new_v4();
        let lease_ms = LEASE.as_millis() as f64;
        let ttl_secs = self.ttl.as_secs_f64();
        let claimed = self
            .db
            .execute(CLAIM, &[&stored, &request, &attempt, &lease_ms, &ttl_secs])
            .await?;
        if claimed == 1 {
            return Ok(Claim::Proceed(Attempt {
                key: stored,
                id: attempt,
            }));
        }
        let found = self
            .db
            .query_opt(READ, &[&stored, &request], |row| {
                Ok((
                    row.try_get::<_, bool>("same_request")?,
                    row.try_get::<_, Option<i16>>("status")?,
                    row.try_get::<_, Option<serde_json::Value>>("response")?,
                ))
            })
            .await?;
        let answer = match found {
            Some((false, _, _)) => Err(reused(key)),
            Some((true, Some(status), Some(body))) => replay(status, body)?,
            // Unanswered, or pruned between the two statements: either way
            // another attempt was there a moment ago.
            _ => Err(in_use(Some(key))),
        };
        Ok(Claim::Answered(answer))
    }

    /// Runs `work` once per `caller`'s `key` (every time without a key):
    /// the first time, and again only after a failure worth retrying;
    /// otherwise the answer is the one recorded. This is applied at a
    /// service's entrypoints; `work` sees the attempt only to record its
    /// answer in its own transaction.
    pub async fn once<T, E>(
        &self,
        caller: Option<&str>,
        key: Option<&IdempotencyKey>,
        request: &impl Serialize,
        log: &slog::Logger,
        work: impl AsyncFnOnce(Option<&Attempt>) -> Result<Done<T>, E>,
    ) -> Result<T, Failure<E>>
    where
        T: Serialize + DeserializeOwned,
        E: ServiceError + From<DbError>,
    {
        let Some(key) = key else {
            return match work(None).await? {
                Done::Answered(value) | Done::Recorded(value) => Ok(value),
                Done::Superseded => Err(Failure::Answer(in_use(None))),
            };
        };
        // Boxed, as is `finish`: a request without a key need not carry
        // their futures' room in its own.
        let attempt = match Box::pin(self.claim(caller, key, request))
            .await
            .map_err(E::from)?
        {
            Claim::Answered(answer) => return answer.map_err(Failure::Answer),
            Claim::Proceed(attempt) => attempt,
        };
        let result = match work(Some(&attempt)).await {
            Ok(Done::Recorded(value)) => return Ok(value),
            Ok(Done::Answered(value)) => Ok(value),
            Ok(Done::Superseded) => Err(Failure::Answer(in_use(Some(key)))),
            Err(error) => Err(Failure::Rules(error)),
        };
        Box::pin(self.finish(&attempt, &result, log)).await;
        result
    }

    /// Ends `attempt` with `result`: a success or a refusal (4xx) is kept
    /// for retries, unless the work recorded it already; a failure worth
    /// retrying (5xx) releases the key. A failure to record is logged: the
    /// claim then lapses after its lease and a retry runs anew.
    async fn finish<T: Serialize, E: ServiceError>(
        &self,
        attempt: &Attempt,
        result: &Result<T, E>,
        log: &slog::Logger,
    ) {
        let outcome = match result {
            Ok(value) => self.record(attempt, 200, value).await.map(drop),
            Err(error) => {
                let api_error = error.to_api_error();
                if api_error.code >= 500 {
                    self.release(attempt).await
                } else {
                    self.record(attempt, api_error.code, &api_error)
                        .await
                        .map(drop)
                }
            }
        };
        if let Err(error) = outcome {
            slog::warn!(log, "cannot record the answer to an idempotency key; \
                a retry after the lease will run the request again";
                "key" => &attempt.key, "error" => %error);
        }
    }

    async fn record(
        &self,
        attempt: &Attempt,
        status: u16,
        body: &impl Serialize,
    ) -> Result<bool, DbError> {
        self.db
            .on_own(async |client| record_with(&*client, attempt, status, body).await)
            .await
    }

    async fn release(&self, attempt: &Attempt) -> Result<(), DbError> {
        self.db
            .execute(RELEASE, &[&attempt.key, &attempt.id])
            .await
            .map(drop)
    }

    /// Deletes expired keys, `batch` at a time; how many went.
    pub async fn prune(&self, batch: i64) -> Result<u64, DbError> {
        let ttl_secs = self.ttl.as_secs_f64();
        self.db.execute(PRUNE, &[&ttl_secs, &batch]).await
    }

    /// Prunes expired keys every tenth of their lifetime (at most hourly)
    /// until the returned handle is dropped.
    pub fn spawn_pruner(self, log: slog::Logger) -> AbortOnDropHandle<()> {
        const BATCH: i64 = 1000;
        let every = (self.ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        AbortOnDropHandle::new(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                loop {
                    match self.prune(BATCH).await {
                        Ok(pruned) if pruned > 0 => {
                            slog::info!(log, "expired idempotency keys pruned"; "count" => pruned);
                            if pruned < BATCH as u64 {
                                break;
                            }
                        }
                        Ok(_) => break,
                        Err(error) => {
                            slog::warn!(log, "cannot prune idempotency keys"; "error" => %error);
                            break;
                        }
                    }
                }
            }
        }))
    }
}

/// Records a success (200) for `attempt` on `client`, inside the
/// transaction of the work it answers, so the two commit together. False
/// when the attempt no longer holds its key: roll the work back.
pub async fn record_success(
    client: &impl GenericClient,
    attempt: &Attempt,
    value: &impl Serialize,
) -> Result<bool, DbError> {
    record_with(client, attempt, 200, value).await
}

async fn record_with(
    client: &impl GenericClient,
    attempt: &Attempt,
    status: u16,
    body: &impl Serialize,
) -> Result<bool, DbError> {
    let body = serde_json::to_value(body)
        .map_err(|e| DbError::UnexpectedValue(format!("answer not serialisable: {e}")))?;
    let statement = client.prepare_cached(RECORD).await?;
    let changed = client
        .execute(
            &statement,
            &[&attempt.key, &attempt.id, &(status as i16), &body],
        )
        .await?;
    Ok(changed == 1)
}

fn replay<T: DeserializeOwned>(
    status: i16,
    body: serde_json::Value,
) -> Result<Result<T, ApiError>, DbError> {
    let unreadable =
        |e: serde_json::Error| DbError::UnexpectedValue(format!("stored answer unreadable: {e}"));
    if status == 200 {
        Ok(Ok(serde_json::from_value(body).map_err(unreadable)?))
    } else {
        Ok(Err(serde_json::from_value(body).map_err(unreadable)?))
    }
}

/// The answer while another attempt holds `key`.
fn in_use(key: Option<&IdempotencyKey>) -> ApiError {
    let key = key.map_or(String::new(), |key| format!(" {key}"));
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::IdempotencyKeyInUse,
        format!(
            "a request with Idempotency-Key{key} is still being processed; retry in a moment \
             to get its answer"
        ),
    )
}

fn reused(key: &IdempotencyKey) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::IdempotencyKeyReused,
        format!(
            "Idempotency-Key {key} was used for a request with another body; use a new key \
             for a new request"
        ),
    )
}
