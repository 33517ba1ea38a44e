//! The payment rules: one payment per order for the order's exact total,
//! and one settlement per payment, recorded together with its outcome for
//! order-service.

use crate::delivery::Delivery;
use crate::order_gateway::{self, GatewayError};
use crate::store::{PaymentStore, Recorded};
use order_client::types::{Order, OrderStatus};
use payment_api::{Payment, PaymentRequest, PaymentStatus, Settlement};
use service_support::database::DbError;
use std::num::NonZeroU64;
use uuid::Uuid;

/// Why a payment operation was refused or failed. What each means on the
/// wire is decided at the entrypoints.
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
    #[error(
        "order {order_id} already has payment {payment_id} for {amount} through {provider}; a \
         create for the order returns it only when it names the same amount and provider"
    )]
    TermsDiffer {
        order_id: Uuid,
        payment_id: Uuid,
        amount: i64,
        provider: String,
        amount_differs: bool,
    },
    #[error(
        "another payment for order {0} is being made with other terms; nothing was created: \
         if that one is never finished, it is given up within seconds and the order is free again"
    )]
    AnotherUnderWay(Uuid),
    #[error("{0}; no payment was created, retry shortly")]
    OrderServiceUnavailable(String),
    #[error(
        "{reason}, so whether order {order_id} took the payment is not known yet; send the same \
         request again (with the same Idempotency-Key, if any): it answers the payment, or why \
         there is none"
    )]
    OrderServiceNoAnswer { order_id: Uuid, reason: String },
    #[error(
        "{0}; send the same request again (with the same Idempotency-Key, if any): it answers \
         the payment, or why there is none"
    )]
    OrderServiceBadResponse(String),
    /// order-service answered, and recording what it said failed: the
    /// payment may be attached to its order and not yet recorded as made.
    #[error(
        "order-service answered about payment {payment_id} for order {order_id}, and recording \
         its answer failed ({reason}); send the same request again (with the same \
         Idempotency-Key, if any): it answers the payment, or why there is none"
    )]
    Unrecorded {
        order_id: Uuid,
        payment_id: Uuid,
        reason: DbError,
    },
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<GatewayError> for PaymentError {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::OrderNotFound(id) => PaymentError::OrderNotFound(id),
            GatewayError::Unavailable(_) => {
                PaymentError::OrderServiceUnavailable(error.to_string())
            }
            GatewayError::NoAnswer { order_id, reason } => {
                PaymentError::OrderServiceNoAnswer { order_id, reason }
            }
            // A refusal where the contract has none.
            GatewayError::Refused { .. } | GatewayError::BadResponse(_) => {
                PaymentError::OrderServiceBadResponse(error.to_string())
            }
        }
    }
}

/// Creates the order's payment, or returns the one it has when the request
/// names the same amount and provider.
///
/// An order that cannot take the payment (missing, settled, another
/// total) is refused before anything is written, so a refusal leaves no
/// trace. Otherwise the payment is first noted as an intent, which only
/// payment-service sees; then order-service attaches it to the order,
/// checking again that the order is pending and costs `amount` (from then
/// on the order cannot change or disappear until the outcome is reported,
/// so the payment is always for the order as it stands); then the intent
/// becomes the payment. Whatever stops or times out between the steps, an
/// order only ever waits for a payment payment-service has noted, and an
/// intent nobody finishes is resolved by the expiry ([`resolve`]). A
/// create that finds an intent of the same terms finishes it; one of other
/// terms is refused until that intent is finished or given up.
///
/// The order must be `customer`'s (order-service decides; `None` with
/// authentication disabled): another customer's order, and its payment,
/// are not found, exactly as a missing order.
pub async fn create(
    store: &PaymentStore,
    orders: &order_client::Client,
    customer: Option<&str>,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    if let Some(recorded) = store.get_by_order(request.order_id).await?
        && recorded.attached
    {
        if customer.is_some() && recorded.owner.as_deref() != customer {
            return Err(PaymentError::OrderNotFound(request.order_id));
        }
        return existing(recorded.payment, request);
    }
    payable(
        &order_gateway::fetch_order(orders, request.order_id, customer).await?,
        request,
    )?;
    let recorded = note_or_find(store, customer, request).await?;
    if customer.is_some() && recorded.owner.as_deref() != customer {
        return Err(PaymentError::OrderNotFound(request.order_id));
    }
    if recorded.attached {
        existing(recorded.payment, request)
    } else if same_terms(&recorded.payment, request) {
        attach(store, orders, customer, recorded.payment, request).await
    } else {
        // Another create's, under way or stopped: it is not this request's
        // to finish or give up (the expiry gives up a stopped one).
        Err(PaymentError::AnotherUnderWay(request.order_id))
    }
}

/// The order's payment, the answer to a create that names its terms.
fn existing(payment: Payment, request: &PaymentRequest) -> Result<Payment, PaymentError> {
    if same_terms(&payment, request) {
        return Ok(payment);
    }
    Err(PaymentError::TermsDiffer {
        order_id: payment.order_id,
        payment_id: payment.id,
        amount_differs: payment.amount != request.amount.get(),
        amount: payment.amount,
        provider: payment.provider,
    })
}

/// Notes a new intent for the request's order, or finds the payment or
/// intent the order has.
async fn note_or_find(
    store: &PaymentStore,
    customer: Option<&str>,
    request: &PaymentRequest,
) -> Result<Recorded, PaymentError> {
    if let Some(noted) = store
        .insert_intent(Uuid::new_v4(), request, customer)
        .await?
    {
        return Ok(noted);
    }
    store.get_by_order(request.order_id).await?.ok_or_else(|| {
        PaymentError::OrderServiceUnavailable(format!(
            "another payment for order {} was given up just now",
            request.order_id
        ))
    })
}

fn same_terms(payment: &Payment, request: &PaymentRequest) -> bool {
    payment.amount == request.amount.get() && payment.provider == request.provider.as_str()
}

/// Asks order-service to attach `intent` to its order; the intent becomes
/// the payment if it does. A refusal is made final before it is answered:
/// order-service releases the intent, so no attachment still on its way
/// can take effect later.
async fn attach(
    store: &PaymentStore,
    orders: &order_client::Client,
    customer: Option<&str>,
    intent: Payment,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    let amount = NonZeroU64::new(intent.amount as u64)
        .ok_or_else(|| DbError::UnexpectedValue("a payment amount below 1".into()))?;
    let attached =
        order_gateway::attach_payment(orders, intent.order_id, intent.id, amount, customer).await;
    match attached {
        Ok(_) => confirmed(store, &intent).await,
        Err(GatewayError::Refused { .. } | GatewayError::OrderNotFound(_)) => {
            match resolve(store, orders, &intent).await? {
                Resolution::Attached(payment) => Ok(payment),
                Resolution::Released(order) => why_refused(store, order, customer, request).await,
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// What became of an intent once order-service was asked to release it.
pub enum Resolution {
    /// order-service had attached it: it is the order's payment now.
    Attached(Payment),
    /// order-service will never attach it, and it is forgotten; the order
    /// as order-service answered it, `None` if there is no such order.
    Released(Option<Order>),
}

/// Settles what becomes of `intent`: order-service either holds it (it
/// becomes the payment) or releases it for good (it is forgotten). Until
/// order-service answers, the intent stays, for a later resolution.
pub async fn resolve(
    store: &PaymentStore,
    orders: &order_client::Client,
    intent: &Payment,
) -> Result<Resolution, PaymentError> {
    let order = match order_gateway::release_payment(orders, intent.order_id, intent.id).await {
        Ok(order) => Some(order),
        Err(GatewayError::OrderNotFound(_)) => None,
        Err(error) => return Err(error.into()),
    };
    if order
        .as_ref()
        .is_some_and(|order| order.payment_id == Some(intent.id))
    {
        return confirmed(store, intent).await.map(Resolution::Attached);
    }
    store
        .forget_intent(intent.id)
        .await
        .map_err(|reason| unrecorded(intent, reason))?;
    Ok(Resolution::Released(order))
}

/// The intent, which order-service has attached, recorded as the payment.
/// Until that succeeds the answer cannot say that nothing was made.
async fn confirmed(store: &PaymentStore, intent: &Payment) -> Result<Payment, PaymentError> {
    match store.confirm(intent.id).await {
        Ok(Some(payment)) => Ok(payment),
        Ok(None) => Err(DbError::UnexpectedValue(format!(
            "payment {} vanished while being confirmed",
            intent.id
        ))
        .into()),
        Err(reason) => Err(unrecorded(intent, reason)),
    }
}

fn unrecorded(intent: &Payment, reason: DbError) -> PaymentError {
    PaymentError::Unrecorded {
        order_id: intent.order_id,
        payment_id: intent.id,
        reason,
    }
}

/// Why order-service refused the payment, stated with the order's figures
/// (its intent released and forgotten): the order is gone, settled, or
/// costs another amount. An order attached to a payment this service never
/// noted was attached by an earlier version, which recorded payments only
/// after attaching them: that payment is recorded now.
async fn why_refused(
    store: &PaymentStore,
    order: Option<Order>,
    customer: Option<&str>,
    request: &PaymentRequest,
) -> Result<Payment, PaymentError> {
    let Some(order) = order else {
        return Err(PaymentError::OrderNotFound(request.order_id));
    };
    payable(&order, request)?;
    let Some(attached) = order.payment_id else {
        // Payable now: the order changed in between; retrying may succeed.
        return Err(PaymentError::OrderServiceUnavailable(format!(
            "order {} changed while its payment was being made",
            order.id
        )));
    };
    match store.insert_attached(attached, request, customer).await? {
        Some(payment) => Ok(payment),
        None => Err(PaymentError::OrderServiceUnavailable(format!(
            "another payment for order {} is being made",
            order.id
        ))),
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

/// The payment `id`, if it is `owner`'s (anyone's if `None`): another
/// customer's payment is not found, exactly as a missing one.
pub async fn get(
    store: &PaymentStore,
    id: Uuid,
    owner: Option<&str>,
) -> Result<Payment, PaymentError> {
    store
        .get(id, owner)
        .await?
        .ok_or(PaymentError::NotFound(id))
}

/// Settles a pending payment; its outcome is recorded with it, for
/// delivery to order-service.
pub async fn settle(
    store: &PaymentStore,
    delivery: &Delivery,
    id: Uuid,
    settlement: Settlement,
    request_id: &str,
) -> Result<Payment, PaymentError> {
    if let Some(payment) = delivery.settle(id, settlement, request_id).await? {
        return Ok(payment);
    }
    match store.get(id, None).await? {
        None => Err(PaymentError::NotFound(id)),
        Some(payment) => Err(PaymentError::NotPending {
            id,
            status: payment.status,
        }),
    }
}
