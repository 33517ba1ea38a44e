//! The outbox of outcomes for order-service, `order_notifications`: every
//! statement on it. An outcome is recorded in the same statement as the
//! payment's change (a settlement, an expiry), so it cannot be lost
//! between the two; due records are claimed under a lease, and what each
//! delivery attempt came to is recorded.

use super::DeliveryState;
use crate::store::{payment_columns, payment_from_row};
use chrono::{DateTime, Utc};
use payment_api::{Payment, Settlement};
use service_support::database::{Database, DbError};
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

/// The channel that wakes dispatchers when an outcome is recorded.
pub const WAKE_CHANNEL: &str = "order_notifications";

/// The name of payment `id`'s outcome in logs, and its deliveries'
/// `x-request-id` when the settlement carried none. Not the `webhook-id`
/// the deliveries are signed with: every attempt is signed with a new one
/// (order-client), since order-service acts on a signed request once.
macro_rules! webhook_id {
    () => {
        "'msg_' || replace(id::text, '-', '')"
    };
}

/// What a claimed record is read from, by [`claimed_from_row`].
macro_rules! claimed_columns {
    () => {
        "payment_id, webhook_id, order_id, outcome, amount, attempts, give_up_at, request_id"
    };
}

/// The settlement and its outcome's record in one statement: one round trip
/// and one implicit transaction, so the outcome is recorded exactly when
/// the payment changes. The record is claimed by the settling instance from
/// the start, next due when the claim's lease ends, so its dispatcher
/// delivers it without a claim of its own (see `Wakeup::deliver`).
pub(crate) const SETTLE_PENDING: &str = concat!(
    "WITH p AS (UPDATE payments SET status = $2, updated_at = clock_timestamp(), \
         paid_at = CASE WHEN $2 = 'success' THEN clock_timestamp() END \
         WHERE id = $1 AND status = 'pending' AND attached RETURNING *), \
     n AS (INSERT INTO order_notifications \
         (payment_id, webhook_id, order_id, outcome, amount, give_up_at, request_id, \
          attempts, locked_by, locked_until, next_attempt_at) \
         SELECT id, ",
    webhook_id!(),
    ", order_id, status, amount, \
             clock_timestamp() + $3 * interval '1 millisecond', $4, \
             1, $5, clock_timestamp() + $6 * interval '1 millisecond', \
             clock_timestamp() + $6 * interval '1 millisecond' FROM p \
         RETURNING ",
    claimed_columns!(),
    ", state, delivered_at) \
     SELECT ",
    payment_columns!(),
    ", n.payment_id, n.webhook_id, n.outcome, n.attempts, n.give_up_at, n.request_id \
     FROM p JOIN n ON n.payment_id = p.id"
);

/// Fails up to $2 payments pending for longer than $1 seconds, recording
/// each outcome for order-service as a settlement does, in one statement.
pub(crate) const EXPIRE_STALE: &str = concat!(
    "WITH p AS (UPDATE payments SET status = 'failed', \
         updated_at = clock_timestamp() \
         WHERE id = ANY(ARRAY(SELECT id FROM payments WHERE status = 'pending' AND attached \
             AND created_at < now() - $1 * interval '1 second' \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
         AND status = 'pending' RETURNING *), \
     n AS (INSERT INTO order_notifications \
         (payment_id, webhook_id, order_id, outcome, amount, give_up_at) \
         SELECT id, ",
    webhook_id!(),
    ", order_id, status, amount, \
             clock_timestamp() + $3 * interval '1 millisecond' FROM p \
         RETURNING payment_id) \
     SELECT payment_id FROM n"
);

/// Claims up to $3 due outcomes for instance $1 for $2 ms (see [`Outbox::claim`]).
pub(crate) const CLAIM: &str = concat!(
    "UPDATE order_notifications SET locked_by = $1, \
     locked_until = now() + $2 * interval '1 millisecond', \
     next_attempt_at = now() + $2 * interval '1 millisecond', \
     attempts = attempts + 1 \
     WHERE payment_id = ANY(ARRAY(SELECT payment_id FROM order_notifications \
         WHERE state = 'pending' AND next_attempt_at <= now() \
         AND (locked_until IS NULL OR locked_until < now()) \
         ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)) \
     RETURNING ",
    claimed_columns!()
);

/// Removes up to $2 outcomes delivered more than $1 seconds ago, keeping
/// on each payment when it was delivered (see [`Outbox::prune_delivered`]).
pub(crate) const PRUNE_DELIVERED: &str = "WITH gone AS (DELETE FROM order_notifications WHERE payment_id = ANY(ARRAY( \
         SELECT payment_id FROM order_notifications WHERE state = 'delivered' \
         AND delivered_at < clock_timestamp() - $1 * interval '1 second' \
         ORDER BY delivered_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
         AND state = 'delivered' \
         RETURNING payment_id, delivered_at) \
     UPDATE payments p SET notified_at = gone.delivered_at FROM gone \
     WHERE p.id = gone.payment_id";

/// The outcomes waiting for delivery, for each scrape.
pub(crate) const BACKLOG: &str = "SELECT count(*) FROM order_notifications WHERE state = 'pending'";

/// The outcomes order-service refused or never acknowledged, for each scrape.
pub(crate) const DISAGREEMENT_COUNT: &str =
    "SELECT count(*) FROM order_notifications WHERE state IN ('rejected', 'dead_letter')";

/// An outcome claimed for delivery by this instance.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub payment_id: Uuid,
    pub webhook_id: String,
    pub order_id: Uuid,
    pub success: bool,
    pub amount: i64,
    /// Including this one.
    pub attempts: i32,
    pub give_up_at: DateTime<Utc>,
    /// The x-request-id of the request that settled the payment.
    pub request_id: Option<String>,
}

/// Who claims records, and for how long: one instance's dispatcher.
#[derive(Debug, Clone)]
pub(super) struct Claimant {
    pub instance: String,
    pub lease: Duration,
}

/// A payment's outcome order-service has not taken: where the two services
/// may disagree.
#[derive(Debug)]
pub struct Disagreement {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub outcome: String,
    pub state: DeliveryState,
    pub attempts: i32,
    /// The last attempt's error, or order-service's refusal.
    pub reason: String,
    pub recorded_at: DateTime<Utc>,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.payment_id,
            self.order_id,
            self.outcome,
            self.state,
            self.attempts,
            self.recorded_at.to_rfc3339(),
            self.reason
        )
    }
}

/// What an attempt came to.
#[derive(Debug)]
pub(super) enum Attempt {
    Delivered,
    /// order-service refused it for good.
    Rejected(String),
    /// Try again after `delay`, unless the retry window is over.
    Failed {
        error: String,
        delay: Duration,
    },
}

#[derive(Clone)]
pub struct Outbox {
    db: Database,
}

impl Outbox {
    pub fn new(db: Database) -> Self {
        Outbox { db }
    }

    /// Claims up to `limit` due records for `claimant` until its lease ends.
    /// `SKIP LOCKED` lets instances claim side by side without waiting for
    /// or taking each other's records; the lease hands a record to another
    /// instance only if its claimant did not finish in time. A claimed
    /// record is next due when its lease ends, so the records under way sit
    /// past the due ones in the index and a claim never steps over them
    /// (measured: claims that had to skip the deliveries in flight, one by
    /// one, held delivery to about 670 a second). The due test
    /// compares with `now()`, a constant for the statement, so the partial
    /// index on `next_attempt_at` bounds the scan; `= ANY(ARRAY(…))` makes
    /// the update look the claimed rows up by key (measured: with `IN (…)`
    /// PostgreSQL chose a hash join over the whole table, 3 ms a claim once
    /// the delivered outcomes numbered some thousands). It is planned at
    /// each claim, with the table as it is then (see
    /// [`Database::query_planned_afresh`]).
    pub(super) async fn claim(
        &self,
        claimant: &Claimant,
        limit: i64,
    ) -> Result<Vec<Claimed>, DbError> {
        let lease_ms = claimant.lease.as_millis() as f64;
        self.db
            .query_planned_afresh(
                CLAIM,
                &[&claimant.instance, &lease_ms, &limit],
                claimed_from_row,
            )
            .await
    }

    /// Settles pending payment `id` and records its outcome, due to be
    /// given up after `retry_window`, claimed by `claimant` (see
    /// [`SETTLE_PENDING`]). `None` if no pending payment has this id.
    pub(super) async fn settle_pending(
        &self,
        id: Uuid,
        settlement: Settlement,
        retry_window: Duration,
        request_id: &str,
        claimant: &Claimant,
    ) -> Result<Option<(Payment, Claimed)>, DbError> {
        let status = match settlement {
            Settlement::Success => "success",
            Settlement::Failed => "failed",
        };
        let window_ms = retry_window.as_millis() as f64;
        let lease_ms = claimant.lease.as_millis() as f64;
        self.db
            .query_opt(
                SETTLE_PENDING,
                &[
                    &id,
                    &status,
                    &window_ms,
                    &request_id,
                    &claimant.instance,
                    &lease_ms,
                ],
                |row| Ok((payment_from_row(row)?, claimed_from_row(row)?)),
            )
            .await
    }

    /// Fails up to `limit` payments pending for longer than `after` and
    /// records their outcomes, due to be given up after `retry_window`;
    /// returns their ids.
    pub(super) async fn expire_stale(
        &self,
        after: Duration,
        limit: i64,
        retry_window: Duration,
    ) -> Result<Vec<Uuid>, DbError> {
        let after_secs = after.as_secs_f64();
        let window_ms = retry_window.as_millis() as f64;
        self.db
            .query(EXPIRE_STALE, &[&after_secs, &limit, &window_ms], |row| {
                Ok(row.try_get(0)?)
            })
            .await
    }

    /// Records the attempt's result and releases the claim, if the claim is
    /// still `claimant`'s: an attempt that outlived its lease, whose record
    /// another instance has claimed since, changes nothing (that instance's
    /// attempt decides). Returns the state the attempt leads to.
    pub(super) async fn record(
        &self,
        claimant: &Claimant,
        claimed: &Claimed,
        attempt: &Attempt,
    ) -> Result<DeliveryState, DbError> {
        let (state, error, delay_ms) = match attempt {
            Attempt::Delivered => (DeliveryState::Delivered, None, 0.0),
            Attempt::Rejected(reason) => (DeliveryState::Rejected, Some(reason.as_str()), 0.0),
            Attempt::Failed { error, delay } => {
                let next = chrono::TimeDelta::from_std(*delay)
                    .ok()
                    .and_then(|delay| Utc::now().checked_add_signed(delay));
                // A delay past what the calendar holds is past any window.
                let state = match next {
                    Some(next) if next <= claimed.give_up_at => DeliveryState::Pending,
                    _ => DeliveryState::DeadLetter,
                };
                (state, Some(error.as_str()), delay.as_millis() as f64)
            }
        };
        self.db
            .execute(
                "UPDATE order_notifications SET state = $2, last_error = $3, \
                 locked_by = NULL, locked_until = NULL, \
                 next_attempt_at = clock_timestamp() + $4 * interval '1 millisecond', \
                 delivered_at = CASE WHEN $2 = 'delivered' THEN clock_timestamp() END \
                 WHERE payment_id = $1 AND state = 'pending' AND locked_by = $5",
                &[
                    &claimed.payment_id,
                    &state.column(),
                    &error,
                    &delay_ms,
                    &claimant.instance,
                ],
            )
            .await?;
        Ok(state)
    }

    /// Wakes every instance's dispatcher (see the dispatcher on why this is
    /// not part of the settlement's transaction).
    pub async fn announce(&self) -> Result<(), DbError> {
        self.db
            .execute("SELECT pg_notify($1, '')", &[&WAKE_CHANNEL])
            .await?;
        Ok(())
    }

    /// Removes up to `batch` records delivered more than `retention` ago,
    /// oldest first, keeping on each payment when its outcome was
    /// delivered; returns how many went. One short statement per batch, so
    /// no lock is held for long, and instances pruning at once each take
    /// rows the others have not locked.
    pub async fn prune_delivered(&self, retention: Duration, batch: i64) -> Result<u64, DbError> {
        self.db
            .execute(PRUNE_DELIVERED, &[&retention.as_secs_f64(), &batch])
            .await
    }

    /// How many outcomes wait for delivery.
    pub async fn backlog(&self) -> Result<i64, DbError> {
        self.db
            .query_opt(BACKLOG, &[], |row| Ok(row.try_get(0)?))
            .await
            .map(Option::unwrap_or_default)
    }

    /// Outcomes order-service refused or has not acknowledged: rejected,
    /// dead letters, and those still pending after `unacknowledged_after`,
    /// oldest first.
    pub async fn disagreements(
        &self,
        unacknowledged_after: Duration,
    ) -> Result<Vec<Disagreement>, DbError> {
        let after_secs = unacknowledged_after.as_secs_f64();
        self.db
            .query(
                "SELECT payment_id, order_id, outcome, state, attempts, \
                 coalesce(last_error, '') AS reason, created_at FROM order_notifications \
                 WHERE state IN ('rejected', 'dead_letter') \
                    OR (state = 'pending' AND created_at < now() - $1 * interval '1 second') \
                 ORDER BY created_at",
                &[&after_secs],
                |row| {
                    Ok(Disagreement {
                        payment_id: row.try_get("payment_id")?,
                        order_id: row.try_get("order_id")?,
                        outcome: row.try_get("outcome")?,
                        state: DeliveryState::from_column(row.try_get("state")?)?,
                        attempts: row.try_get("attempts")?,
                        reason: row.try_get("reason")?,
                        recorded_at: row.try_get("created_at")?,
                    })
                },
            )
            .await
    }

    /// How many outcomes order-service refused or never acknowledged in
    /// their retry window.
    pub async fn disagreement_count(&self) -> Result<i64, DbError> {
        self.db
            .query_opt(DISAGREEMENT_COUNT, &[], |row| Ok(row.try_get(0)?))
            .await
            .map(Option::unwrap_or_default)
    }

    /// How many records are in each state.
    pub async fn counts(&self) -> Result<Vec<(DeliveryState, i64)>, DbError> {
        self.db
            .query(
                "SELECT state, count(*) FROM order_notifications GROUP BY state ORDER BY state",
                &[],
                |row| {
                    Ok((
                        DeliveryState::from_column(row.try_get(0)?)?,
                        row.try_get(1)?,
                    ))
                },
            )
            .await
    }

    /// Makes dead letters and rejections due again with a fresh retry
    /// window: those of `payment_ids`, or all if empty. Returns how many.
    pub async fn replay(
        &self,
        payment_ids: &[Uuid],
        retry_window: Duration,
    ) -> Result<u64, DbError> {
        let window_ms = retry_window.as_millis() as f64;
        self.db
            .on_own(async |client| {
                let tx = client.transaction().await?;
                let count = tx
                    .execute(
                        "UPDATE order_notifications SET state = 'pending', attempts = 0, \
                         next_attempt_at = clock_timestamp(), \
                         give_up_at = clock_timestamp() + $2 * interval '1 millisecond' \
                         WHERE state IN ('dead_letter', 'rejected') \
                         AND (cardinality($1::uuid[]) = 0 OR payment_id = ANY($1))",
                        &[&payment_ids, &window_ms],
                    )
                    .await?;
                tx.execute("SELECT pg_notify($1, '')", &[&WAKE_CHANNEL])
                    .await?;
                tx.commit().await?;
                Ok(count)
            })
            .await
    }
}

/// A claimed record, from the columns [`claimed_columns`] names.
fn claimed_from_row(row: &Row) -> Result<Claimed, DbError> {
    Ok(Claimed {
        payment_id: row.try_get("payment_id")?,
        webhook_id: row.try_get("webhook_id")?,
        order_id: row.try_get("order_id")?,
        success: row.try_get::<_, &str>("outcome")? == "success",
        amount: row.try_get("amount")?,
        attempts: row.try_get("attempts")?,
        give_up_at: row.try_get("give_up_at")?,
        request_id: row.try_get("request_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_cluster::Cluster;

    fn claimant(instance: &str, lease_ms: u64) -> Claimant {
        Claimant {
            instance: instance.to_string(),
            lease: Duration::from_millis(lease_ms),
        }
    }

    /// An attempt that outlived its lease, whose outcome another instance
    /// claimed since, records nothing: the other instance's attempt decides.
    #[tokio::test]
    async fn a_late_attempt_of_a_former_claimant_changes_nothing() {
        let cluster = Cluster::shared();
        let name = format!("outbox_{}", Uuid::new_v4().simple());
        cluster.create_database(&name, None).await.unwrap();
        let settings = cluster.database_settings(&name);
        crate::migrate(&settings, &slog::Logger::root(slog::Discard, slog::o!()))
            .await
            .unwrap();
        let db = cluster.connect(&name).await.unwrap();
        db.batch_execute(
            "INSERT INTO payments (id, order_id, amount, provider, status) \
             VALUES (gen_random_uuid(), gen_random_uuid(), 100, 'p', 'failed'); \
             INSERT INTO order_notifications (payment_id, webhook_id, order_id, outcome, \
                 amount, give_up_at) \
             SELECT id, 'msg_1', order_id, 'failed', 100, now() + interval '1 hour' \
             FROM payments",
        )
        .await
        .unwrap();
        let outbox = Outbox::new(Database::new(&settings).unwrap());
        let (first, second) = (claimant("first", 1), claimant("second", 60_000));

        let claimed = outbox.claim(&first, 10).await.unwrap().pop().unwrap();
        harness::wait_until(
            "the first claim's lease to end",
            Duration::from_secs(5),
            async || match outbox.claim(&second, 10).await.unwrap().pop() {
                Some(taken) => Ok(taken),
                None => Err("not claimable yet".to_string()),
            },
        )
        .await;
        let failed = Attempt::Failed {
            error: "the first instance's attempt, too late".into(),
            delay: Duration::from_millis(1),
        };
        outbox.record(&first, &claimed, &failed).await.unwrap();
        let row = db
            .query_one(
                "SELECT state, locked_by, last_error FROM order_notifications",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, &str>("state"), DeliveryState::Pending.column());
        assert_eq!(row.get::<_, Option<&str>>("locked_by"), Some("second"));
        assert_eq!(row.get::<_, Option<&str>>("last_error"), None);

        outbox
            .record(&second, &claimed, &Attempt::Delivered)
            .await
            .unwrap();
        let state: String = db
            .query_one("SELECT state FROM order_notifications", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(state, DeliveryState::Delivered.column());
        drop(db);
        cluster.drop_database(&name).await.unwrap();
    }
}
