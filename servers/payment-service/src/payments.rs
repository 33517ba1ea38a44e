//! The payment rules: one payment per order for the order's exact total,
//! and one settlement per payment, recorded together with its outcome for
//! order-service.

use crate::order_gateway::{self, GatewayError};
use crate::outbox::{Claimant, Claimed};
use crate::store::PaymentStore;
use api_common::{ApiError, ErrorCode, IdempotencyKey};
use http::StatusCode;
use order_client::types::{Order, OrderStatus};
use payment_api::{Payment, PaymentRequest, PaymentStatus, Settlement};
use service_support::database::DbError;
use service_support::idempotency::{Claim, IdempotencyKeys};
use std::num::NonZeroU64;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no payment has id {0}")]
    NotFound(Uuid),
    #[error("payment {id} is already {status}; only a pending payment can succeed or fail")]
    NotPending { id: Uuid, status: PaymentStatus },
    #[error("no order has id {0}")]
    OrderNotFound(Uuid),
    #[error("order {id} is {status}, not pending; it cannot be paid")]
    OrderNotPending { id: Uuid, status: String },
    #[error(
        "amount {amount} does not match order {id}'s total_amount {total}; pay exactly the total"
    )]
    AmountMismatch { id: Uuid, amount: i64, total: i64 },
    #[error("{0}; nothing was created, retry shortly")]
    OrderServiceUnavailable(String),
    #[error("{0}; nothing was created")]
    OrderServiceBadResponse(String),
    /// An answer whose envelope is already made: what an idempotency key answers.
    #[error("{}", .0.data.message)]
    Enveloped(ApiError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl service_support::operations::ServiceError for PaymentError {
    /// The envelope for this error. Database failures are described
    /// generically: their details are for the log, not the client.
    fn to_api_error(&self) -> ApiError {
        let (status, code) = match self {
            PaymentError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::PaymentNotFound),
            PaymentError::NotPending { .. } => (StatusCode::CONFLICT, ErrorCode::PaymentNotPending),
            PaymentError::OrderNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::OrderNotFound),
            PaymentError::OrderNotPending { .. } => {
                (StatusCode::CONFLICT, ErrorCode::OrderNotPending)
            }
            PaymentError::AmountMismatch { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::AmountMismatch)
            }
            PaymentError::OrderServiceUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::OrderServiceUnavailable,
            ),
            PaymentError::OrderServiceBadResponse(_) => {
                (StatusCode::BAD_GATEWAY, ErrorCode::OrderServiceBadResponse)
            }
            PaymentError::Enveloped(error) => return error.clone(),
            PaymentError::Database(DbError::Unavailable(_)) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::ServiceUnavailable,
                    "the payment database is unavailable; retry in a few seconds",
                );
            }
            PaymentError::Database(_) => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "internal error; it has been logged",
                );
            }
        };
        ApiError::new(status, code, self.to_string())
    }
}

impl From<GatewayError> for PaymentError {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::OrderNotFound(id) => PaymentError::OrderNotFound(id),
            GatewayError::Unavailable(_) => {
                PaymentError::OrderServiceUnavailable(error.to_string())
            }
            GatewayError::BadResponse(_) => {
                PaymentError::OrderServiceBadResponse(error.to_string())
            }
            // Explained by `why_refused` where the order is at hand; a
            // refusal that outlived its reason is worth a retry.
            GatewayError::Refused { message, .. } => {
                PaymentError::OrderServiceUnavailable(format!(
                    "order-service refused the payment ({message}) but the order allows it now"
                ))
            }
        }
    }
}

/// [`create`], once per idempotency key when one is given (see
/// [`service_support::idempotency`]). The answer is recorded after the
/// work rather than with it: an order has one payment, so an attempt that
/// died before recording is redone by a retry that finds that payment.
pub async fn create_once(
    store: &PaymentStore,
    orders: &order_client::Client,
    keys: &IdempotencyKeys,
    key: Option<&IdempotencyKey>,
    request: &PaymentRequest,
    log: &slog::Logger,
) -> Result<Payment, PaymentError> {
    let Some(key) = key else {
        return create(store, orders, request).await;
    };
    let attempt = match keys.claim(key, request).await? {
        Claim::Answered(answer) => return answer.map_err(PaymentError::Enveloped),
        Claim::Proceed(attempt) => attempt,
    };
    let result = create(store, orders, request).await;
    keys.finish(&attempt, &result, log).await;
    result
}

/// Creates the order's payment, or returns the one it already has.
///
/// order-service first attaches the new payment's id to the order, checking
/// that it is pending and costs `amount`; from then on the order cannot
/// change or disappear until the outcome is reported, so the payment is
/// always for the order as it stands. Then the payment is recorded under
/// that id. A create that finds another payment attached adopts it: either
/// it is recorded already (a repeated create returns it), or an earlier
/// create stopped between the two steps and this one records it.
pub async fn create(
    store: &PaymentStore,
    orders: &order_client::Client,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    let amount = NonZeroU64::new(request.amount.get() as u64)
        .ok_or_else(|| DbError::UnexpectedValue("a payment amount below 1".into()))?;
    let payment_id = Uuid::new_v4();
    let refusal: PaymentError =
        match order_gateway::attach_payment(orders, request.order_id, payment_id, amount).await {
            Ok(_) => return insert(store, payment_id, request).await,
            Err(GatewayError::Refused { code, .. }) if code == "ORDER_PAYMENT_IN_PROGRESS" => {
                return adopt(store, orders, request).await;
            }
            Err(GatewayError::Refused { .. }) => why_refused(orders, request).await,
            Err(error) => error.into(),
        };
    // The order cannot take a payment now; if it has one, that is the answer.
    match store.get_by_order(request.order_id).await? {
        Some(existing) => Ok(existing),
        None => Err(refusal),
    }
}

/// Why order-service refused to attach the payment, stated with the
/// order's figures: it is settled, or costs another amount.
async fn why_refused(orders: &order_client::Client, request: &PaymentRequest) -> PaymentError {
    let order = match order_gateway::fetch_order(orders, request.order_id).await {
        Ok(order) => order,
        Err(error) => return error.into(),
    };
    if let Err(refusal) = payable(&order, request) {
        return refusal;
    }
    // Refused, yet payable now: the order changed in between; retrying may succeed.
    PaymentError::OrderServiceUnavailable(format!(
        "order-service refused the payment but order {} allows it now",
        order.id
    ))
}

/// Whether `order` can be paid by `request`: pending, for its exact total.
fn payable(order: &Order, request: &PaymentRequest) -> Result<(), PaymentError> {
    if order.status != OrderStatus::Pending {
        return Err(PaymentError::OrderNotPending {
            id: order.id,
            status: order.status.to_string(),
        });
    }
    let amount = request.amount.get();
    if amount != order.total_amount {
        return Err(PaymentError::AmountMismatch {
            id: order.id,
            amount,
            total: order.total_amount,
        });
    }
    Ok(())
}

/// Another payment is under way for the order: the one recorded, or the one
/// an interrupted create attached and never recorded, which is recorded now.
async fn adopt(
    store: &PaymentStore,
    orders: &order_client::Client,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    if let Some(existing) = store.get_by_order(request.order_id).await? {
        return Ok(existing);
    }
    let order = order_gateway::fetch_order(orders, request.order_id).await?;
    let Some(attached) = order.payment_id else {
        return Err(PaymentError::OrderServiceBadResponse(format!(
            "order {} has a payment under way but names none",
            order.id
        )));
    };
    payable(&order, request)?;
    insert(store, attached, request).await
}

async fn insert(
    store: &PaymentStore,
    id: Uuid,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    match store.insert(id, request).await? {
        Some(payment) => Ok(payment),
        // A concurrent create recorded the order's payment first.
        None => store.get_by_order(request.order_id).await?.ok_or_else(|| {
            DbError::UnexpectedValue(format!("order {}'s payment vanished", request.order_id))
                .into()
        }),
    }
}

pub async fn get(store: &PaymentStore, id: Uuid) -> Result<Payment, PaymentError> {
    store.get(id).await?.ok_or(PaymentError::NotFound(id))
}

/// Settles a pending payment and records its outcome for order-service,
/// claimed by `claimant` for delivery.
pub async fn settle(
    store: &PaymentStore,
    id: Uuid,
    settlement: Settlement,
    retry_window: Duration,
    request_id: &str,
    claimant: &Claimant,
) -> Result<(Payment, Claimed), PaymentError> {
    if let Some(settled) = store
        .settle_pending(id, settlement, retry_window, request_id, claimant)
        .await?
    {
        return Ok(settled);
    }
    match store.get(id).await? {
        None => Err(PaymentError::NotFound(id)),
        Some(payment) => Err(PaymentError::NotPending {
            id,
            status: payment.status,
        }),
    }
}
