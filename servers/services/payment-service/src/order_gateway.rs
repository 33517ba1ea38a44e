//! payment-service's view of order-service, through the client generated
//! from openapi.yaml: every call has a deadline, and every failure becomes
//! one of three answers a handler can act on.

use crate::config::OrderServiceSettings;
use anyhow::Context;
use order_client::types::{
    EnvelopeForOrder, Order, OrderStatus, PaymentAttachment, PaymentRelease,
};
use std::num::NonZeroU64;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("order-service has no order {0}")]
    OrderNotFound(Uuid),
    /// order-service refused: the order cannot take this payment now.
    #[error("{message}")]
    Refused { code: String, message: String },
    /// Not reachable, or answered that it did nothing and cannot serve now.
    #[error("order-service is unavailable: {0}")]
    Unavailable(String),
    /// No answer in time, or one that does not say whether the request was
    /// carried out (a timeout, `OUTCOME_UNKNOWN`, a 5xx from a proxy).
    #[error("order-service did not say whether it was done with order {order_id}: {reason}")]
    NoAnswer { order_id: Uuid, reason: String },
    /// Answered something the contract does not allow.
    #[error("order-service answered unexpectedly: {0}")]
    BadResponse(String),
}

/// The generated order-service client, with the deadline on every call and
/// the callback secret for signing outcomes.
pub fn order_client(
    settings: &OrderServiceSettings,
    secret: &str,
) -> anyhow::Result<order_client::Client> {
    let http = reqwest::Client::builder()
        // A signed call goes to order-service or nowhere: a redirect from a
        // proxy would send it, signature and all, where the Location says.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout())
        .connect_timeout(settings.timeout())
        .build()
        .context("cannot build the HTTP client for order-service")?;
    Ok(order_client::Client::new_with_client(
        settings.url.trim_end_matches('/'),
        http,
        match &settings.token {
            Some(token) => {
                order_client::ClientContext::with_token(token).and_callback_secret(secret)
            }
            None => order_client::ClientContext::with_callback_secret(secret),
        },
    ))
}

/// Fetches an order for `customer`'s payment (not found if it is not
/// theirs; `None` with authentication disabled). A read changes nothing,
/// so no answer in time means only that order-service is unavailable.
pub async fn fetch_order(
    client: &order_client::Client,
    id: Uuid,
    customer: Option<&str>,
) -> Result<Order, GatewayError> {
    // Each call is boxed: an HTTP call's future is large, and inline it
    // would make every payment request's future as large, copied at each
    // layer of it.
    let read = Box::pin(client.get_order_for_payment(&id, customer)).await;
    answer(id, read).map_err(|error| match error {
        GatewayError::NoAnswer { reason, .. } => GatewayError::Unavailable(reason),
        other => other,
    })
}

/// Every pending order with a payment under way: (order, payment) ids,
/// read page by page.
pub async fn orders_waiting_for_payment(
    client: &order_client::Client,
) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let mut waiting = Vec::new();
    let mut page_token = None;
    loop {
        let page = client
            .list_orders(
                std::num::NonZeroU32::new(100),
                page_token.as_deref(),
                Some(OrderStatus::Pending),
            )
            .await
            .context("cannot list order-service's pending orders")?
            .into_inner();
        waiting.extend(
            page.data
                .iter()
                .filter_map(|order| Some((order.id, order.payment_id?))),
        );
        match page.next_page {
            Some(token) => page_token = Some(token),
            None => return Ok(waiting),
        }
    }
}

/// Asks order-service to attach payment `payment_id` of `amount` to
/// `customer`'s order `id`, which then cannot change until the outcome is
/// reported.
pub async fn attach_payment(
    client: &order_client::Client,
    id: Uuid,
    payment_id: Uuid,
    amount: NonZeroU64,
    customer: Option<&str>,
) -> Result<Order, GatewayError> {
    let attachment = PaymentAttachment {
        payment_id,
        amount,
        customer: customer.map(str::to_string),
    };
    answer(id, Box::pin(client.attach_payment(&id, &attachment)).await)
}

/// Tells order-service that payment `payment_id` will not be recorded for
/// order `id`: the order never takes it from then on, unless it took it
/// already (the answered order's `payment_id` names it then).
pub async fn release_payment(
    client: &order_client::Client,
    id: Uuid,
    payment_id: Uuid,
) -> Result<Order, GatewayError> {
    let release = PaymentRelease { payment_id };
    answer(id, Box::pin(client.release_payment(&id, &release)).await)
}

/// What an answer about order `id` means to payment-service.
fn answer(
    id: Uuid,
    result: Result<
        order_client::ResponseValue<EnvelopeForOrder>,
        order_client::Error<order_client::types::ApiError>,
    >,
) -> Result<Order, GatewayError> {
    use order_client::Error;
    match result {
        Ok(response) => Ok(response.into_inner().data),
        // A conflict with the order's state, or another total (400 since
        // contract 2.0.0; 409 before).
        Err(Error::ErrorResponse(response))
            if response.status() == reqwest::StatusCode::CONFLICT
                || (response.status() == reqwest::StatusCode::BAD_REQUEST
                    && response.data.error_code == "AMOUNT_MISMATCH") =>
        {
            let error = response.into_inner().data;
            Err(GatewayError::Refused {
                code: error.error_code,
                message: error.message,
            })
        }
        Err(Error::ErrorResponse(response)) => {
            let status = response.status();
            let detail = format!(
                "{} {}: {}",
                status.as_u16(),
                response.data.error_code,
                response.data.message
            );
            if status == reqwest::StatusCode::NOT_FOUND {
                Err(GatewayError::OrderNotFound(id))
            } else if (status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                && response.data.error_code == "SERVICE_UNAVAILABLE")
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                // The services' secrets disagree (a rotation half done):
                // operators fix it, and the same request then succeeds.
                || status == reqwest::StatusCode::UNAUTHORIZED
            {
                Err(GatewayError::Unavailable(detail))
            } else if status.is_server_error() {
                Err(GatewayError::NoAnswer {
                    order_id: id,
                    reason: detail,
                })
            } else {
                Err(GatewayError::BadResponse(detail))
            }
        }
        Err(Error::CommunicationError(error)) if error.is_connect() => {
            Err(GatewayError::Unavailable(error.to_string()))
        }
        Err(Error::CommunicationError(error)) => Err(GatewayError::NoAnswer {
            order_id: id,
            reason: if error.is_timeout() {
                "no answer in time".to_string()
            } else {
                error.to_string()
            },
        }),
        Err(Error::UnexpectedResponse(response)) if response.status().is_server_error() => {
            Err(GatewayError::NoAnswer {
                order_id: id,
                reason: format!("status {}", response.status()),
            })
        }
        Err(error) => Err(GatewayError::BadResponse(error.to_string())),
    }
}
