//! The payments' statements. A settlement, which changes a payment and
//! records its outcome for order-service in one statement, is the delivery
//! module's (`crate::delivery`).

use crate::delivery::DeliveryState;
use chrono::{DateTime, Utc};
use payment_api::{OrderNotification, Payment, PaymentRequest, PaymentStatus};
use service_support::database::{Database, DbError};
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns a [`Payment`] is read from (`p`: the payment, `n`: its
/// outcome's record, if any; once a delivered record is removed, the
/// payment's `notified_at` says when it was delivered), for `concat!` in the statements below: each
/// statement is one constant string, prepared once per connection.
macro_rules! payment_columns {
    () => {
        "p.id, p.order_id, p.amount, p.provider, p.status, p.paid_at, p.created_at, \
         p.updated_at, coalesce(n.state, CASE WHEN p.notified_at IS NOT NULL THEN 'delivered' END) \
         AS notification, coalesce(n.delivered_at, p.notified_at) AS delivered_at"
    };
}

pub(crate) use payment_columns;

pub(crate) const GET: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments p LEFT JOIN order_notifications n ON n.payment_id = p.id \
     WHERE p.id = $1 AND p.attached AND ($2::text IS NULL OR p.owner = $2)"
);

/// The order's payment, or the intent noted for it.
pub(crate) const GET_BY_ORDER: &str = concat!(
    "SELECT ",
    payment_columns!(),
    ", p.attached, p.owner FROM payments p LEFT JOIN order_notifications n ON n.payment_id = p.id \
     WHERE p.order_id = $1"
);

const INSERT_INTENT: &str = concat!(
    "WITH p AS (INSERT INTO payments (id, order_id, amount, provider, attached, owner) \
     VALUES ($1, $2, $3, $4, false, $5) ON CONFLICT DO NOTHING RETURNING *) \
     SELECT ",
    payment_columns!(),
    ", p.attached, p.owner FROM p LEFT JOIN order_notifications n ON false"
);

/// Makes an intent a payment: order-service attached it.
pub(crate) const CONFIRM: &str = concat!(
    "WITH p AS (UPDATE payments SET attached = true WHERE id = $1 RETURNING *) \
     SELECT ",
    payment_columns!(),
    " FROM p LEFT JOIN order_notifications n ON false"
);

/// Records payment $1 as attached for an order attached to it by an
/// earlier version of this service, which recorded payments only after
/// attaching them, unless the order has a payment.
const INSERT_ATTACHED: &str = concat!(
    "WITH p AS (INSERT INTO payments (id, order_id, amount, provider, attached, owner) \
     VALUES ($1, $2, $3, $4, true, $5) ON CONFLICT DO NOTHING RETURNING *) \
     SELECT ",
    payment_columns!(),
    " FROM p LEFT JOIN order_notifications n ON false"
);

const FORGET_INTENT: &str = "DELETE FROM payments WHERE id = $1 AND NOT attached";

/// Up to $2 intents noted more than $1 seconds ago, oldest first.
pub(crate) const STALE_INTENTS: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments p LEFT JOIN order_notifications n ON false \
     WHERE NOT p.attached AND p.created_at < clock_timestamp() - $1 * interval '1 second' \
     ORDER BY p.created_at LIMIT $2"
);

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

pub(crate) fn payment_from_row(row: &Row) -> Result<Payment, DbError> {
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
    let notification = match row
        .try_get::<_, Option<&str>>("notification")?
        .map(DeliveryState::from_column)
        .transpose()?
    {
        None => OrderNotification::None,
        Some(DeliveryState::Pending) => OrderNotification::Pending,
        Some(DeliveryState::Delivered) => OrderNotification::Delivered,
        Some(DeliveryState::Rejected) => OrderNotification::Rejected,
        Some(DeliveryState::DeadLetter) => OrderNotification::DeadLetter,
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
