//! The payment rules: one payment per order for the order's exact total,
//! and one settlement per payment, recorded together with its outcome for
//! order-service.

use crate::order_gateway::{self, GatewayError};
use crate::store::PaymentStore;
use api_common::{ApiError, ErrorCode};
use http::StatusCode;
use order_client::types::{Order, OrderStatus};
use payment_api::{Payment, PaymentRequest, PaymentStatus, Settlement};
use service_support::database::DbError;
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
        }
    }
}

/// Creates the order's payment, or returns the one it already has.
///
/// The order is looked up first: a new payment (the usual case) then costs
/// one statement. Only when the order cannot be paid now is its existing
/// payment looked for, since a repeated create returns that payment even
/// after the order has settled or gone.
pub async fn create(
    store: &PaymentStore,
    orders: &order_client::Client,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    let refusal = match order_gateway::fetch_order(orders, request.order_id).await {
        Ok(order) => match payable(&order, request) {
            Ok(()) => return insert(store, request).await,
            Err(refusal) => refusal,
        },
        Err(error) => error.into(),
    };
    match store.get_by_order(request.order_id).await? {
        Some(existing) => Ok(existing),
        None => Err(refusal),
    }
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

async fn insert(store: &PaymentStore, request: &PaymentRequest) -> Result<Payment, PaymentError> {
    match store.insert(request).await? {
        Some(payment) => Ok(payment),
        // A concurrent create won the race; its payment is the order's.
        None => store.get_by_order(request.order_id).await?.ok_or_else(|| {
            DbError::UnexpectedValue(format!("order {}'s payment vanished", request.order_id))
                .into()
        }),
    }
}

pub async fn get(store: &PaymentStore, id: Uuid) -> Result<Payment, PaymentError> {
    store.get(id).await?.ok_or(PaymentError::NotFound(id))
}

/// Settles a pending payment; its outcome goes to order-service from the outbox.
pub async fn settle(
    store: &PaymentStore,
    id: Uuid,
    settlement: Settlement,
    retry_window: Duration,
    request_id: &str,
) -> Result<Payment, PaymentError> {
    if let Some(payment) = store
        .settle_pending(id, settlement, retry_window, request_id)
        .await?
    {
        return Ok(payment);
    }
    match store.get(id).await? {
        None => Err(PaymentError::NotFound(id)),
        Some(payment) => Err(PaymentError::NotPending {
            id,
            status: payment.status,
        }),
    }
}
