//! The payments and their outbox. A payment's change of status and the
//! record of its outcome for order-service are written in one transaction,
//! so the outcome cannot be lost between the two.

use chrono::{DateTime, Utc};
use payment_api::{OrderNotification, Payment, PaymentRequest, PaymentStatus, Settlement};
use service_support::database::{Database, DbError};
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

/// The channel that wakes dispatchers when an outcome is recorded.
pub const WAKE_CHANNEL: &str = "order_notifications";

const COLUMNS: &str = "p.id, p.order_id, p.amount, p.provider, p.status, p.paid_at, p.created_at, \
     p.updated_at, n.state AS notification, n.delivered_at";

#[derive(Clone)]
pub struct PaymentStore {
    db: Database,
}

impl PaymentStore {
    pub fn new(db: Database) -> Self {
        PaymentStore { db }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Payment>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments p LEFT JOIN order_notifications n ON n.payment_id = p.id \
             WHERE p.id = $1"
        );
        self.query_opt(&sql, &[&id]).await
    }

    pub async fn get_by_order(&self, order_id: Uuid) -> Result<Option<Payment>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments p LEFT JOIN order_notifications n ON n.payment_id = p.id \
             WHERE p.order_id = $1"
        );
        self.query_opt(&sql, &[&order_id]).await
    }

    /// Inserts a pending payment unless the order already has one; `None`
    /// then. One statement, so racing creates cannot both insert.
    pub async fn insert(&self, request: &PaymentRequest) -> Result<Option<Payment>, DbError> {
        let sql = format!(
            "WITH p AS (INSERT INTO payments (order_id, amount, provider) VALUES ($1, $2, $3) \
             ON CONFLICT (order_id) DO NOTHING RETURNING *) \
             SELECT {COLUMNS} FROM p LEFT JOIN order_notifications n ON false"
        );
        self.query_opt(
            &sql,
            &[
                &request.order_id,
                &request.amount.get(),
                &request.provider.as_str(),
            ],
        )
        .await
    }

    /// Settles a pending payment and records its outcome for order-service,
    /// in one transaction, then wakes the dispatchers. `None` if no pending
    /// payment has this id.
    pub async fn settle_pending(
        &self,
        id: Uuid,
        settlement: Settlement,
        retry_window: Duration,
        request_id: &str,
    ) -> Result<Option<Payment>, DbError> {
        let status = match settlement {
            Settlement::Success => "success",
            Settlement::Failed => "failed",
        };
        let window_ms = i64::try_from(retry_window.as_millis()).unwrap_or(i64::MAX);
        let settled = self
            .db
            .within_deadline(async {
                let mut client = self.db.client().await?;
                let tx = client.transaction().await?;
                let settled = tx
                    .query_opt(
                        "UPDATE payments SET status = $2, updated_at = clock_timestamp(), \
                         paid_at = CASE WHEN $2 = 'success' THEN clock_timestamp() END \
                         WHERE id = $1 AND status = 'pending' RETURNING order_id, amount",
                        &[&id, &status],
                    )
                    .await?;
                let Some(settled) = settled else { return Ok(None) };
                let order_id: Uuid = settled.try_get("order_id")?;
                let amount: i64 = settled.try_get("amount")?;
                tx.execute(
                    "INSERT INTO order_notifications \
                     (payment_id, webhook_id, order_id, outcome, amount, give_up_at, request_id) \
                     VALUES ($1, $2, $3, $4, $5, clock_timestamp() + $6 * interval '1 millisecond', $7)",
                    &[&id, &format!("msg_{}", id.simple()), &order_id, &status, &amount, &(window_ms as f64), &request_id],
                )
                .await?;
                tx.execute("SELECT pg_notify($1, '')", &[&WAKE_CHANNEL]).await?;
                tx.commit().await?;
                Ok(Some(()))
            })
            .await?;
        if settled.is_none() {
            return Ok(None);
        }
        // Read back with the notification's state; outside the transaction,
        // so a dispatcher may already have delivered it.
        self.get(id).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Payment>, DbError> {
        self.db.query_opt(sql, params, payment_from_row).await
    }
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
