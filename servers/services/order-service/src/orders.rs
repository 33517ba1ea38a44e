//! The order rules: totals, what may change when, and how a payment
//! outcome settles an order.

use crate::page_token::Cursor;
use crate::signed_calls::{self, CallId};
use crate::store::OrderStore;
use order_api::{
    Order, OrderRequest, OrderStatus, PageLimit, PaymentAttachment, PaymentCallback,
    PaymentOutcome, PaymentRelease,
};
use service_support::database::DbError;
use service_support::idempotency::{Attempt, Done};
use uuid::Uuid;

/// Why an order operation was refused or failed. What each means on the
/// wire is decided at the entrypoints.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("no order has id {0}")]
    NotFound(Uuid),
    #[error("order {id} is {status}; only a pending order can be changed or deleted")]
    NotPending { id: Uuid, status: OrderStatus },
    #[error(
        "order {id} has payment {payment_id} under way; it cannot change until that payment \
         succeeds or fails"
    )]
    PaymentInProgress { id: Uuid, payment_id: Uuid },
    #[error(
        "total_amount = price × quantity = {price} × {quantity} does not fit in a 64-bit integer; \
         lower the price or the quantity"
    )]
    TotalOverflow { price: i64, quantity: i64 },
    #[error(
        "payment of {amount} does not match order {id}'s total_amount of {total}; the order stays pending"
    )]
    AmountMismatch { id: Uuid, total: i64, amount: i64 },
    #[error(
        "order {id} is already {status}; this report of payment {reported_payment} as {reported} \
         contradicts it"
    )]
    AlreadySettled {
        id: Uuid,
        status: OrderStatus,
        reported_payment: Uuid,
        reported: PaymentOutcome,
    },
    #[error(
        "payment {payment_id} was released for order {id}: payment-service gave it up, and the \
         order never takes it"
    )]
    PaymentReleased { id: Uuid, payment_id: Uuid },
    #[error("page_token is not one this service issued; list again from the first page without it")]
    InvalidPageToken,
    /// A signed internal call not accepted: its signature is missing,
    /// stale or wrong, or it was acted on before (a replay).
    #[error("payment callback rejected: {0}")]
    CallRefused(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// `price × quantity`, refusing a total that does not fit.
pub fn total_amount(request: &OrderRequest) -> Result<i64, OrderError> {
    let (price, quantity) = (request.price.get(), request.quantity.get());
    price
        .checked_mul(quantity)
        .ok_or(OrderError::TotalOverflow { price, quantity })
}

/// Creates an order of `total` (see [`total_amount`]) owned by `owner`
/// (nobody, with authentication disabled). Under an idempotency key's
/// `attempt`, the answer is recorded in the same transaction as the order,
/// so the two cannot part.
pub async fn create(
    store: &OrderStore,
    owner: Option<&str>,
    request: &OrderRequest,
    total: i64,
    attempt: Option<&Attempt>,
) -> Result<Done<Order>, OrderError> {
    let Some(attempt) = attempt else {
        return Ok(Done::Answered(store.insert(request, total, owner).await?));
    };
    Ok(
        match store
            .insert_answering(request, total, owner, attempt)
            .await?
        {
            Some(order) => Done::Recorded(order),
            None => Done::Superseded,
        },
    )
}

/// The order `id`, if it is `owner`'s (anyone's if `None`): another
/// customer's order is not found, exactly as a missing one.
pub async fn get(store: &OrderStore, id: Uuid, owner: Option<&str>) -> Result<Order, OrderError> {
    store.get(id, owner).await?.ok_or(OrderError::NotFound(id))
}

/// One page of `owner`'s orders (everyone's if `None`) and the token for
/// the next, if there is one.
pub async fn list(
    store: &OrderStore,
    owner: Option<&str>,
    page_token: Option<&str>,
    status: Option<OrderStatus>,
    limit: PageLimit,
) -> Result<(Vec<Order>, Option<String>), OrderError> {
    let after = page_token
        .map(|token| Cursor::decode(token).ok_or(OrderError::InvalidPageToken))
        .transpose()?;
    let limit = usize::try_from(limit.get()).unwrap_or(usize::MAX);
    // One more than asked tells whether a next page exists, so the last
    // page says so with `next_page: null` instead of an empty extra page.
    let mut orders = store.list(after, status, limit as i64 + 1, owner).await?;
    let next_page = if orders.len() > limit {
        orders.truncate(limit);
        orders.last().map(|last| {
            Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok((orders, next_page))
}

/// Replaces `owner`'s (anyone's if `None`) pending order.
pub async fn update(
    store: &OrderStore,
    id: Uuid,
    owner: Option<&str>,
    request: &OrderRequest,
) -> Result<Order, OrderError> {
    let total = total_amount(request)?;
    match store.update_pending(id, request, total, owner).await? {
        Some(order) => Ok(order),
        None => Err(why_not_pending(store, id, owner).await),
    }
}

/// Deletes `owner`'s (anyone's if `None`) pending order.
pub async fn delete(
    store: &OrderStore,
    id: Uuid,
    owner: Option<&str>,
) -> Result<Order, OrderError> {
    match store.delete_pending(id, owner).await? {
        Some(order) => Ok(order),
        None => Err(why_not_pending(store, id, owner).await),
    }
}

/// After a conditional change found no pending order of `owner`'s free to
/// change: it is missing (or another's), settled, or has a payment under way.
async fn why_not_pending(store: &OrderStore, id: Uuid, owner: Option<&str>) -> OrderError {
    match store.get(id, owner).await {
        Ok(None) => OrderError::NotFound(id),
        Ok(Some(Order {
            status: OrderStatus::Pending,
            payment_id: Some(payment_id),
            ..
        })) => OrderError::PaymentInProgress { id, payment_id },
        Ok(Some(order)) => OrderError::NotPending {
            id,
            status: order.status,
        },
        Err(error) => error.into(),
    }
}

/// The order `id` for a payment by `customer` (anyone if `None`), read
/// for signed call `call`, which is refused if it was acted on before.
pub async fn get_for_payment(
    store: &OrderStore,
    id: Uuid,
    customer: Option<&str>,
    call: &CallId,
) -> Result<Order, OrderError> {
    once(store.get_for_payment(id, customer, call).await, call)?.ok_or(OrderError::NotFound(id))
}

/// Attaches a payment payment-service is about to record to its order,
/// which from then on cannot change until the outcome arrives. Idempotent
/// for the same payment; a released payment is never attached. Signed
/// call `call` is acted on once.
pub async fn attach_payment(
    store: &OrderStore,
    id: Uuid,
    attachment: &PaymentAttachment,
    call: &CallId,
) -> Result<Order, OrderError> {
    let amount = attachment.amount.get();
    let payment_id = attachment.payment_id;
    let customer = attachment.customer.as_deref();
    let attached = store
        .attach_payment(id, payment_id, amount, customer, call)
        .await;
    if let Some(order) = once(attached, call)? {
        return Ok(order);
    }
    let (order, released) = store
        .get_for_attach(id, payment_id, customer)
        .await?
        .ok_or(OrderError::NotFound(id))?;
    match (order.status, order.payment_id) {
        (OrderStatus::Pending, Some(payment_id)) => {
            Err(OrderError::PaymentInProgress { id, payment_id })
        }
        (OrderStatus::Pending, None) if released => {
            Err(OrderError::PaymentReleased { id, payment_id })
        }
        (OrderStatus::Pending, None) => Err(OrderError::AmountMismatch {
            id,
            total: order.total_amount,
            amount,
        }),
        (status, _) => Err(OrderError::NotPending { id, status }),
    }
}

/// Makes the order refuse a payment payment-service gives up, unless it is
/// attached already; answers the order, whose `payment_id` tells which.
/// Signed call `call` is acted on once.
pub async fn release_payment(
    store: &OrderStore,
    id: Uuid,
    release: &PaymentRelease,
    call: &CallId,
) -> Result<Order, OrderError> {
    match once(
        store.release_payment(id, release.payment_id, call).await,
        call,
    )? {
        Some(order) => Ok(order),
        // Attached, settled, or released already: each is final for it.
        None => get(store, id, None).await,
    }
}

/// Applies a payment outcome. Idempotent: the report that settled the order,
/// delivered again (a new call), returns the order unchanged. Signed call
/// `call` is acted on once.
pub async fn settle(
    store: &OrderStore,
    report: &PaymentCallback,
    call: &CallId,
) -> Result<Order, OrderError> {
    let target = match report.payment_status {
        PaymentOutcome::Success => OrderStatus::Paid,
        PaymentOutcome::Failed => OrderStatus::Failed,
    };
    let amount = report.amount.get();
    let settled = store
        .settle_pending(report.order_id, target, report.payment_id, amount, call)
        .await;
    if let Some(order) = once(settled, call)? {
        return Ok(order);
    }
    // Nothing changed: find out why. Settled orders never change again, so
    // what this read sees is final unless the order is still pending.
    let order = get(store, report.order_id, None).await?;
    match order.status {
        OrderStatus::Pending => match order.payment_id {
            Some(payment_id) if payment_id != report.payment_id => {
                Err(OrderError::PaymentInProgress {
                    id: order.id,
                    payment_id,
                })
            }
            _ => Err(OrderError::AmountMismatch {
                id: order.id,
                total: order.total_amount,
                amount,
            }),
        },
        status if status == target && order.payment_id == Some(report.payment_id) => Ok(order),
        status => Err(OrderError::AlreadySettled {
            id: order.id,
            status,
            reported_payment: report.payment_id,
            reported: report.payment_status,
        }),
    }
}

/// What the store answered for signed call `call`, refused as a replay if
/// the call was acted on before.
fn once<T>(answer: Result<T, DbError>, call: &CallId) -> Result<T, OrderError> {
    answer.map_err(|error| {
        if signed_calls::replayed(&error) {
            OrderError::CallRefused(call.replay_refused())
        } else {
            OrderError::Database(error)
        }
    })
}
