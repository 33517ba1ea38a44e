//! The payments and their outbox. A payment's change of status and the
//! record of its outcome for order-service are written in one transaction,
//! so the outcome cannot be lost between the two.

use crate::outbox::{Claimant, Claimed};
use chrono::{DateTime, Utc};
use payment_api::{OrderNotification, Payment, PaymentRequest, PaymentStatus, Settlement};
use service_support::database::{Database, DbError};
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns a [`Payment`] is read from (`p`: the payment, `n`: its
/// outcome's record, if any; once a delivered record is removed, the
/// payment's `notified_at` says when it was delivered), for `concat!` in the statements below: each
/// statement is one constant string, prepared once per connection.
macro_rules! columns {
    () => {
        "p.id, p.order_id, p.amount, p.provider, p.status, p.paid_at, p.created_at, \
         p.updated_at, coalesce(n.state, CASE WHEN p.notified_at IS NOT NULL THEN 'delivered' END) \
         AS notification, coalesce(n.delivered_at, p.notified_at) AS delivered_at"
    };
}

pub(crate) const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM payments p LEFT JOIN order_notifications n ON n.payment_id = p.id \
     WHERE p.id = $1 AND p.attached AND ($2::text IS NULL OR p.owner = $2)"
);

/// The order's payment, or the intent noted for it.
pub(crate) const GET_BY_ORDER: &str = concat!(
    "SELECT ",
    columns!(),
    ", p.attached, p.owner FROM payments p LEFT JOIN order_notifications n ON n.payment_id = p.id \
     WHERE p.order_id = $1"
);

const INSERT_INTENT: &str = concat!(
    "WITH p AS (INSERT INTO payments (id, order_id, amount, provider, attached, owner) \
     VALUES ($1, $2, $3, $4, false, $5) ON CONFLICT DO NOTHING RETURNING *) \
     SELECT ",
    columns!(),
    ", p.attached, p.owner FROM p LEFT JOIN order_notifications n ON false"
);

/// Makes an intent a payment: order-service attached it.
pub(crate) const CONFIRM: &str = concat!(
    "WITH p AS (UPDATE payments SET attached = true WHERE id = $1 RETURNING *) \
     SELECT ",
    columns!(),
    " FROM p LEFT JOIN order_notifications n ON false"
);

/// Records payment $1 as attached for an order attached to it by an
/// earlier version of this service, which recorded payments only after
/// attaching them, unless the order has a payment.
const INSERT_ATTACHED: &str = concat!(
    "WITH p AS (INSERT INTO payments (id, order_id, amount, provider, attached, owner) \
     VALUES ($1, $2, $3, $4, true, $5) ON CONFLICT DO NOTHING RETURNING *) \
     SELECT ",
    columns!(),
    " FROM p LEFT JOIN order_notifications n ON false"
);

const FORGET_INTENT: &str = "DELETE FROM payments WHERE id = $1 AND NOT attached";

/// Up to $2 intents noted more than $1 seconds ago, oldest first.
pub(crate) const STALE_INTENTS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM payments p LEFT JOIN order_notifications n ON false \
     WHERE NOT p.attached AND p.created_at < clock_timestamp() - $1 * interval '1 second' \
     ORDER BY p.created_at LIMIT $2"
);

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
         SELECT id, $3, order_id, status, amount, \
             clock_timestamp() + $4 * interval '1 millisecond', $5, \
             1, $6, clock_timestamp() + $7 * interval '1 millisecond', \
             clock_timestamp() + $7 * interval '1 millisecond' FROM p \
         RETURNING payment_id, state, delivered_at, give_up_at) \
     SELECT ",
    columns!(),
    ", n.give_up_at FROM p JOIN n ON n.payment_id = p.id"
);

/// Fails up to $2 payments pending for longer than $1 seconds, recording
/// each outcome for order-service as a settlement does, in one statement.
pub(crate) const EXPIRE_STALE: &str = "WITH p AS (UPDATE payments SET status = 'failed', \
         updated_at = clock_timestamp() \
         WHERE id = ANY(ARRAY(SELECT id FROM payments WHERE status = 'pending' AND attached \
             AND created_at < now() - $1 * interval '1 second' \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
         AND status = 'pending' RETURNING *), \
     n AS (INSERT INTO order_notifications \
         (payment_id, webhook_id, order_id, outcome, amount, give_up_at) \
         SELECT id, 'msg_' || replace(id::text, '-', ''), order_id, status, amount, \
             clock_timestamp() + $3 * interval '1 millisecond' FROM p \
         RETURNING payment_id) \
     SELECT payment_id FROM n";

#[derive(Clone)]
pub struct PaymentStore {
    db: Database,
}

impl PaymentStore {
    pub fn new(db: Database) -> Self {
        PaymentStore { db }
    }

    /// The payment `id`, if it is `owner`'s (anyone's if `None`).
    pub async fn get(&self, id: Uuid, owner: Option<&str>) -> Result<Option<Payment>, DbError> {
        self.db
            .read_opt(GET, &[&id, &owner], payment_from_row)
            .await
    }

    /// The order's payment or intent.
    pub async fn get_by_order(&self, order_id: Uuid) -> Result<Option<Recorded>, DbError> {
        self.db
            .read_opt(GET_BY_ORDER, &[&order_id], recorded_from_row)
            .await
    }

    /// Notes payment `id` for the request's order as an intent, not yet
    /// attached, unless the order has a payment or intent; `None` then.
    /// One statement, so racing creates cannot both note one.
    pub async fn insert_intent(
        &self,
        id: Uuid,
        request: &PaymentRequest,
        owner: Option<&str>,
    ) -> Result<Option<Recorded>, DbError> {
        self.db
            .query_opt(
                INSERT_INTENT,
                &[
                    &id,
                    &request.order_id,
                    &request.amount.get(),
                    &request.provider.as_str(),
                    &owner,
                ],
                recorded_from_row,
            )
            .await
    }

    /// Records payment `id`, which an earlier version attached to the
    /// request's order without noting it first; `None` if the order has a
    /// payment or intent.
    pub async fn insert_attached(
        &self,
        id: Uuid,
        request: &PaymentRequest,
        owner: Option<&str>,
    ) -> Result<Option<Payment>, DbError> {
        self.db
            .query_opt(
                INSERT_ATTACHED,
                &[
                    &id,
                    &request.order_id,
                    &request.amount.get(),
                    &request.provider.as_str(),
                    &owner,
                ],
                payment_from_row,
            )
            .await
    }

    /// Makes intent `id` a payment (it is attached); `None` if it is gone.
    pub async fn confirm(&self, id: Uuid) -> Result<Option<Payment>, DbError> {
        self.db.query_opt(CONFIRM, &[&id], payment_from_row).await
    }

    /// Deletes intent `id`, which order-service has released.
    pub async fn forget_intent(&self, id: Uuid) -> Result<(), DbError> {
        self.db.execute(FORGET_INTENT, &[&id]).await.map(drop)
    }

    /// Which of `ids` this service holds, and whether each is attached (a
    /// payment) or not yet (an intent).
    pub async fn held(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, bool)>, DbError> {
        self.db
            .query(
                "SELECT id, attached FROM payments WHERE id = ANY($1)",
                &[&ids],
                |row| Ok((row.try_get("id")?, row.try_get("attached")?)),
            )
            .await
    }

    /// Up to `limit` intents noted longer than `after` ago, oldest first.
    pub async fn stale_intents(
        &self,
        after: Duration,
        limit: i64,
    ) -> Result<Vec<Payment>, DbError> {
        self.db
            .query(
                STALE_INTENTS,
                &[&after.as_secs_f64(), &limit],
                payment_from_row,
            )
            .await
    }

    /// Settles a pending payment and records its outcome for order-service,
    /// atomically, claimed by `claimant`. `None` if no pending payment has
    /// this id.
    pub async fn settle_pending(
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
        let webhook_id = format!("msg_{}", id.simple());
        self.db
            .query_opt(
                SETTLE_PENDING,
                &[
                    &id,
                    &status,
                    &webhook_id,
                    &window_ms,
                    &request_id,
                    &claimant.instance,
                    &lease_ms,
                ],
                |row| {
                    let payment = payment_from_row(row)?;
                    let claimed = Claimed {
                        payment_id: payment.id,
                        webhook_id: webhook_id.clone(),
                        order_id: payment.order_id,
                        success: payment.status == PaymentStatus::Success,
                        amount: payment.amount,
                        attempts: 1,
                        give_up_at: row.try_get("give_up_at")?,
                        request_id: Some(request_id.to_string()),
                    };
                    Ok((payment, claimed))
                },
            )
            .await
    }

    /// Fails up to `limit` payments pending for longer than `after` and
    /// records their outcomes; returns their ids.
    pub async fn expire_stale(
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
}

/// A payment as payment-service holds it: attached to its order, or an
/// intent order-service has not confirmed yet.
#[derive(Debug)]
pub struct Recorded {
    pub payment: Payment,
    pub attached: bool,
    /// The customer paying; `None` with authentication disabled.
    pub owner: Option<String>,
}

fn recorded_from_row(row: &Row) -> Result<Recorded, DbError> {
    Ok(Recorded {
        payment: payment_from_row(row)?,
        attached: row.try_get("attached")?,
        owner: row.try_get("owner")?,
    })
}

fn payment_from_row(row: &Row) -> Result<Payment, DbError> {
    let status = match row.try_get::<_, &str>("status")? {
        "pending" => PaymentStatus::Pending,
        "success" => PaymentStatus::Success,
        "failed" => PaymentStatus::Failed,
        other => {
            return Err(DbError::UnexpectedValue(format!(
                "payment status {other:?}"
            )));
        }
    };
    let notification = match row.try_get::<_, Option<&str>>("notification")? {
        None => OrderNotification::None,
        Some("pending") => OrderNotification::Pending,
        Some("delivered") => OrderNotification::Delivered,
        Some("rejected") => OrderNotification::Rejected,
        Some("dead_letter") => OrderNotification::DeadLetter,
        Some(other) => {
            return Err(DbError::UnexpectedValue(format!(
                "notification state {other:?}"
            )));
        }
    };
    Ok(Payment {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        amount: row.try_get("amount")?,
        status,
        provider: row.try_get("provider")?,
        paid_at: row.try_get::<_, Option<DateTime<Utc>>>("paid_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        order_notification: notification,
        order_notified_at: row.try_get("delivered_at")?,
    })
}
