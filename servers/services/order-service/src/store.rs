//! The orders table. Every state change is one conditional statement, so
//! concurrent requests cannot both win: a statement that finds no row in the
//! required state changes nothing and returns `None`.

use crate::page_token::Cursor;
use crate::signed_calls::{CallId, first_time, recorded_once, recorded_once_unflushed};
use order_api::{Order, OrderRequest, OrderStatus};
use service_support::database::{Database, DbError};
use service_support::idempotency::{self, Attempt};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// The columns an [`Order`] is read from, for `concat!` in the statements
/// below: each statement is one constant string, prepared once per connection.
macro_rules! columns {
    () => {
        "id, item_name, quantity, price, total_amount, status, payment_id, created_at, updated_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO orders (item_name, quantity, price, total_amount, owner) \
     VALUES ($1, $2, $3, $4, $5) RETURNING ",
    columns!()
);

pub(crate) const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM orders \
     WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2::uuid)) \
       AND ($3::text IS NULL OR status = $3) \
       AND ($5::text IS NULL OR owner = $5) \
     ORDER BY created_at, id LIMIT $4"
);

/// The order $1, if it is $2's ($2 NULL: anyone's). Every statement on a
/// caller's behalf has this condition: another customer's order is not
/// there for them.
pub(crate) const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM orders WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
);

pub(crate) const UPDATE_PENDING: &str = concat!(
    "UPDATE orders SET item_name = $2, quantity = $3, price = $4, total_amount = $5, \
     updated_at = clock_timestamp() \
     WHERE id = $1 AND status = 'pending' AND payment_id IS NULL \
     AND ($6::text IS NULL OR owner = $6) RETURNING ",
    columns!()
);

pub(crate) const DELETE_PENDING: &str = concat!(
    "DELETE FROM orders WHERE id = $1 AND status = 'pending' AND payment_id IS NULL \
     AND ($2::text IS NULL OR owner = $2) RETURNING ",
    columns!()
);

/// The order $1 if it is $2's (anyone's if NULL), read for signed call $3.
pub(crate) const GET_FOR_PAYMENT: &str = concat!(
    recorded_once_unflushed!("$3"),
    "SELECT ",
    columns!(),
    " FROM orders WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
    first_time!()
);

/// Attaches payment $2 of amount $3 to the pending order $1 unless another
/// is attached or $2 was released. Once one is attached no other can be, so
/// the released ids are cleared: they never outgrow the races of one
/// order's payment. Signed call $5.
pub(crate) const ATTACH_PAYMENT: &str = concat!(
    recorded_once!("$5"),
    "UPDATE orders SET payment_id = $2, released_payments = '{}', \
     updated_at = CASE WHEN payment_id IS NULL THEN clock_timestamp() ELSE updated_at END \
     WHERE id = $1 AND status = 'pending' AND total_amount = $3 \
     AND (payment_id IS NULL OR payment_id = $2) AND NOT $2 = ANY(released_payments) \
     AND ($4::text IS NULL OR owner = $4)",
    first_time!(),
    " RETURNING ",
    columns!()
);

/// The order as an attachment of payment $2 finds it, and whether that
/// payment was released.
pub(crate) const GET_FOR_ATTACH: &str = concat!(
    "SELECT ",
    columns!(),
    ", $2 = ANY(released_payments) AS released FROM orders \
     WHERE id = $1 AND ($3::text IS NULL OR owner = $3)"
);

/// Adds $2 to the payments the pending order $1 refuses, unless it is the
/// one attached or already there. Orders that are settled need nothing:
/// they never take a payment again. Signed call $3.
pub(crate) const RELEASE_PAYMENT: &str = concat!(
    recorded_once!("$3"),
    "UPDATE orders SET released_payments = array_append(released_payments, $2) \
     WHERE id = $1 AND status = 'pending' AND payment_id IS DISTINCT FROM $2 \
     AND NOT $2 = ANY(released_payments)",
    first_time!(),
    " RETURNING ",
    columns!()
);

/// Settles the pending order $1 as $2 by payment $3 of amount $4.
/// Signed call $5.
pub(crate) const SETTLE_PENDING: &str = concat!(
    recorded_once!("$5"),
    "UPDATE orders SET status = $2, payment_id = $3, updated_at = clock_timestamp() \
     WHERE id = $1 AND status = 'pending' AND (payment_id IS NULL OR payment_id = $3) \
     AND ($2 <> 'paid' OR total_amount = $4)",
    first_time!(),
    " RETURNING ",
    columns!()
);

#[derive(Clone)]
pub struct OrderStore {
    db: Database,
}

impl OrderStore {
    pub fn new(db: Database) -> Self {
        OrderStore { db }
    }

    /// Inserts an order owned by `owner` (nobody's if `None`).
    pub async fn insert(
        &self,
        request: &OrderRequest,
        total_amount: i64,
        owner: Option<&str>,
    ) -> Result<Order, DbError> {
        let params: [&(dyn ToSql + Sync); 5] = [
            &request.item_name.as_str(),
            &request.quantity.get(),
            &request.price.get(),
            &total_amount,
            &owner,
        ];
        self.query_opt(INSERT, &params)
            .await?
            .ok_or_else(|| DbError::UnexpectedValue("INSERT … RETURNING returned no row".into()))
    }

    /// Inserts an order and records it as `attempt`'s answer in one
    /// transaction, so a retry with the key finds the order exactly when it
    /// exists. `None`, inserting nothing, when the attempt no longer holds
    /// its key.
    pub async fn insert_answering(
        &self,
        request: &OrderRequest,
        total_amount: i64,
        owner: Option<&str>,
        attempt: &Attempt,
    ) -> Result<Option<Order>, DbError> {
        self.db
            .on_own(async |client| {
                let transaction = client.transaction().await?;
                let statement = transaction.prepare_cached(INSERT).await?;
                let row = transaction
                    .query_one(
                        &statement,
                        &[
                            &request.item_name.as_str(),
                            &request.quantity.get(),
                            &request.price.get(),
                            &total_amount,
                            &owner,
                        ],
                    )
                    .await?;
                let order = order_from_row(&row)?;
                if !idempotency::record_success(&transaction, attempt, &order).await? {
                    return Ok(None);
                }
                transaction.commit().await?;
                Ok(Some(order))
            })
            .await
    }

    /// Up to `limit` of `owner`'s orders (everyone's if `None`) after
    /// `after` in (created_at, id) order.
    pub async fn list(
        &self,
        after: Option<Cursor>,
        status: Option<OrderStatus>,
        limit: i64,
        owner: Option<&str>,
    ) -> Result<Vec<Order>, DbError> {
        let after_time = after.map(|c| c.created_at);
        let after_id = after.map(|c| c.id);
        let status = status.map(OrderStatus::as_str);
        self.db
            .read(
                LIST,
                &[&after_time, &after_id, &status, &limit, &owner],
                order_from_row,
            )
            .await
    }

    /// The order `id` if it is `owner`'s (anyone's if `None`).
    pub async fn get(&self, id: Uuid, owner: Option<&str>) -> Result<Option<Order>, DbError> {
        self.db.read_opt(GET, &[&id, &owner], order_from_row).await
    }

    /// Attaches `payment_id` to the pending order `id` of total `amount`,
    /// unless another payment is attached or it is not `customer`'s (when
    /// given); `None` if nothing matched. The same payment again matches
    /// and changes nothing. Acts on `call` once.
    pub async fn attach_payment(
        &self,
        id: Uuid,
        payment_id: Uuid,
        amount: i64,
        customer: Option<&str>,
        call: &CallId,
    ) -> Result<Option<Order>, DbError> {
        self.query_opt(
            ATTACH_PAYMENT,
            &[&id, &payment_id, &amount, &customer, &call.as_str()],
        )
        .await
    }

    /// The order `id` if it is `customer`'s (anyone's if `None`), read for
    /// `call` once.
    pub async fn get_for_payment(
        &self,
        id: Uuid,
        customer: Option<&str>,
        call: &CallId,
    ) -> Result<Option<Order>, DbError> {
        self.query_opt(GET_FOR_PAYMENT, &[&id, &customer, &call.as_str()])
            .await
    }

    /// The order `id`, if it is `customer`'s (when given), and whether it
    /// refuses `payment_id` as released.
    pub async fn get_for_attach(
        &self,
        id: Uuid,
        payment_id: Uuid,
        customer: Option<&str>,
    ) -> Result<Option<(Order, bool)>, DbError> {
        self.db
            .read_opt(GET_FOR_ATTACH, &[&id, &payment_id, &customer], |row| {
                Ok((order_from_row(row)?, row.try_get("released")?))
            })
            .await
    }

    /// Makes the pending order `id` refuse `payment_id` from now on, unless
    /// that payment is attached; `None` if nothing needed to change. Acts
    /// on `call` once.
    pub async fn release_payment(
        &self,
        id: Uuid,
        payment_id: Uuid,
        call: &CallId,
    ) -> Result<Option<Order>, DbError> {
        self.query_opt(RELEASE_PAYMENT, &[&id, &payment_id, &call.as_str()])
            .await
    }

    /// Replaces the fields of `owner`'s (anyone's if `None`) pending order
    /// with no payment under way; `None` if there is no such order.
    pub async fn update_pending(
        &self,
        id: Uuid,
        request: &OrderRequest,
        total_amount: i64,
        owner: Option<&str>,
    ) -> Result<Option<Order>, DbError> {
        self.query_opt(
            UPDATE_PENDING,
            &[
                &id,
                &request.item_name.as_str(),
                &request.quantity.get(),
                &request.price.get(),
                &total_amount,
                &owner,
            ],
        )
        .await
    }

    /// Deletes `owner`'s (anyone's if `None`) pending order with no payment
    /// under way; `None` if there is no such order.
    pub async fn delete_pending(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> Result<Option<Order>, DbError> {
        self.query_opt(DELETE_PENDING, &[&id, &owner]).await
    }

    /// Settles a pending order as `outcome` by `payment_id`, which must be
    /// the payment under way if one is attached. A `paid` outcome also
    /// requires the total to equal `amount`. `None` if no pending order
    /// matched. Acts on `call` once.
    pub async fn settle_pending(
        &self,
        id: Uuid,
        outcome: OrderStatus,
        payment_id: Uuid,
        amount: i64,
        call: &CallId,
    ) -> Result<Option<Order>, DbError> {
        self.query_opt(
            SETTLE_PENDING,
            &[&id, &outcome.as_str(), &payment_id, &amount, &call.as_str()],
        )
        .await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Order>, DbError> {
        self.db.query_opt(sql, params, order_from_row).await
    }
}

fn order_from_row(row: &Row) -> Result<Order, DbError> {
    let status: &str = row.try_get("status")?;
    let status = match status {
        "pending" => OrderStatus::Pending,
        "paid" => OrderStatus::Paid,
        "failed" => OrderStatus::Failed,
        other => return Err(DbError::UnexpectedValue(format!("order status {other:?}"))),
    };
    Ok(Order {
        id: row.try_get("id")?,
        item_name: row.try_get("item_name")?,
        quantity: row.try_get("quantity")?,
        price: row.try_get("price")?,
        total_amount: row.try_get("total_amount")?,
        status,
        payment_id: row.try_get("payment_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed_calls::first_time;

    /// A statement that records its call's id without [`first_time`] would
    /// do its work before a replay is refused (a replayed attachment
    /// rewrote the order's row so).
    #[test]
    fn every_statement_of_a_signed_call_records_its_id_before_any_row() {
        for statement in [
            ATTACH_PAYMENT,
            RELEASE_PAYMENT,
            SETTLE_PENDING,
            GET_FOR_PAYMENT,
        ] {
            assert!(statement.starts_with("WITH seen AS ("), "{statement}");
            assert!(statement.contains(first_time!()), "{statement}");
        }
    }
}
