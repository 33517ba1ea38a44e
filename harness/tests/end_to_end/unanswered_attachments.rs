//! A payment's attachment that goes unanswered never leaves an order
//! waiting for a payment payment-service does not hold: payment-service
//! notes the payment before it asks, answers `OUTCOME_UNKNOWN` when the
//! answer does not come, and its expiry has order-service either confirm
//! the attachment (the payment is recorded) or release it (the order is
//! free). A create that names other terms than the order's payment is
//! refused.

use crate::{System, order_request, payment_request};
use payment_client::types::PaymentRequest;
use reqwest::StatusCode;
use std::time::Duration;

/// payment-service waits this long for order-service: shorter than the
/// lock the tests hold on the order, so it gives up while order-service's
/// attachment is still waiting for the lock.
const ORDER_SERVICE_TIMEOUT_MS: u64 = 300;

async fn system() -> System {
    system_with_order_deadline(1_500).await
}

/// The system, order-service's database deadline `order_deadline_ms`.
async fn system_with_order_deadline(order_deadline_ms: u64) -> System {
    System::start_adjusted(
        |orders| orders.database.timeout_ms = order_deadline_ms,
        |payments| {
            payments.order_service.timeout_ms = ORDER_SERVICE_TIMEOUT_MS;
            payments.database.timeout_ms = 500;
        },
    )
    .await
}

/// The status and error code of a payment-service refusal.
fn refusal<T: std::fmt::Debug>(
    result: Result<T, payment_client::Error<payment_client::types::ApiError>>,
) -> (StatusCode, String) {
    match result {
        Err(payment_client::Error::ErrorResponse(response)) => {
            (response.status(), response.into_inner().data.error_code)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Creates a payment for `order` while its row is held at order-service
/// by `holder`: payment-service gives up waiting for the attachment, which
/// is still waiting for the lock. Returns the lock.
async fn create_while_the_order_is_held<'a>(
    system: &System,
    holder: &'a mut tokio_postgres::Client,
    order: &order_client::types::Order,
) -> tokio_postgres::Transaction<'a> {
    let lock = harness::locks::hold_row(holder, "orders", order.id).await;
    let unanswered = system
        .payments
        .client
        .create_payment(None, &payment_request(order.id, order.total_amount))
        .await;
    assert_eq!(
        refusal(unanswered),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "OUTCOME_UNKNOWN".to_string()
        )
    );
    lock
}

#[tokio::test]
async fn an_attachment_that_commits_after_payment_service_gave_up_is_recorded() {
    // order-service waits long enough for the lock to go, however slow the
    // machine is to release it after payment-service's answer.
    let system = system_with_order_deadline(10_000).await;
    let order = system.order(1, 500).await;
    let mut holder = system.orders.database().await;
    let lock = create_while_the_order_is_held(&system, &mut holder, &order).await;
    // order-service's attachment was still waiting; now it commits.
    lock.commit().await.unwrap();
    let attached = harness::wait_until(
        "the order to take the payment",
        Duration::from_secs(5),
        async || {
            let order = system.current_order(order.id).await;
            order.payment_id.ok_or(format!("{order:?}"))
        },
    )
    .await;

    // Without any retry, the expiry finds it attached and records it.
    let payment = harness::wait_until(
        "payment-service to record the attached payment",
        Duration::from_secs(15),
        async || match system.payments.client.get_payment(&attached).await {
            Ok(payment) => Ok(payment.into_inner().data),
            Err(error) => Err(error.to_string()),
        },
    )
    .await;
    assert_eq!((payment.order_id, payment.amount), (order.id, 500));
    let retried = system.payment(&order).await;
    assert_eq!(retried.id, attached, "the retry answers that payment");
    system.succeed(attached, order.id).await;
    system.cleanup().await;
}

#[tokio::test]
async fn an_attachment_that_never_commits_leaves_the_order_free() {
    let system = system().await;
    let order = system.order(1, 500).await;
    let inspector = system.orders.database().await;
    let mut holder = system.orders.database().await;
    let lock = create_while_the_order_is_held(&system, &mut holder, &order).await;
    // order-service's own deadline cancels its attachment while it waits.
    harness::wait_until(
        "order-service to give up its attachment",
        Duration::from_secs(10),
        async || match harness::locks::waiting_on_locks(&inspector).await {
            0 => Ok(()),
            waiting => Err(format!("{waiting} waiting")),
        },
    )
    .await;
    lock.commit().await.unwrap();

    // The expiry has order-service release the noted payment, then forgets it.
    harness::wait_until(
        "the noted payment to be given up",
        Duration::from_secs(15),
        async || match system.payments.intent_count().await {
            0 => Ok(()),
            left => Err(format!("{left} noted")),
        },
    )
    .await;
    assert_eq!(system.current_order(order.id).await.payment_id, None);
    let changed = system
        .orders
        .client
        .update_order(&order.id, &order_request("Espresso machine", 1, 600))
        .await
        .expect("the order is free to change")
        .into_inner()
        .data;
    assert_eq!(changed.total_amount, 600);
    let payment = system.payment(&changed).await;
    assert_eq!(payment.amount, 600);
    system.cleanup().await;
}

#[tokio::test]
async fn a_create_naming_other_terms_than_the_orders_payment_is_refused() {
    let system = system().await;
    let order = system.order(1, 500).await;
    let payment = system.payment(&order).await;
    let with = |amount: u64, provider: &str| PaymentRequest {
        order_id: order.id,
        amount: std::num::NonZeroU64::new(amount).unwrap(),
        provider: provider.parse().unwrap(),
    };
    let key: payment_client::types::IdempotencyKey = "other-terms-1".parse().unwrap();

    let other_amount = system
        .payments
        .client
        .create_payment(None, &with(499, "stripe"))
        .await;
    assert_eq!(
        refusal(other_amount),
        (StatusCode::BAD_REQUEST, "AMOUNT_MISMATCH".to_string())
    );
    for _ in 0..2 {
        let other_provider = system
            .payments
            .client
            .create_payment(Some(&key), &with(500, "adyen"))
            .await;
        assert_eq!(
            refusal(other_provider),
            (StatusCode::CONFLICT, "PAYMENT_EXISTS".to_string()),
            "the refusal, not the payment, is what the key keeps"
        );
    }
    let same = system
        .payments
        .client
        .create_payment(None, &with(500, "stripe"))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(same.id, payment.id);
    assert_eq!(system.payments.payment_count().await, 1);
    system.cleanup().await;
}

#[tokio::test]
async fn racing_creates_of_other_terms_never_get_each_others_payment() {
    let system = system().await;
    for round in 0..10 {
        let order = system.order(1, 500).await;
        let creates = (0..8).map(|n| {
            let provider = format!("provider-{n}");
            let client = system.payments.client.clone();
            async move {
                let request = PaymentRequest {
                    order_id: order.id,
                    amount: std::num::NonZeroU64::new(500).unwrap(),
                    provider: provider.parse().unwrap(),
                };
                (provider, client.create_payment(None, &request).await)
            }
        });
        let mut made = Vec::new();
        for (provider, answer) in futures::future::join_all(creates).await {
            match answer {
                Ok(payment) => {
                    let payment = payment.into_inner().data;
                    assert_eq!(
                        payment.provider, provider,
                        "round {round}: a create got another's payment"
                    );
                    made.push(payment.id);
                }
                Err(refused) => {
                    let (status, code) = refusal(Err::<(), _>(refused));
                    assert!(
                        matches!(
                            code.as_str(),
                            "PAYMENT_EXISTS" | "ORDER_PAYMENT_IN_PROGRESS"
                        ),
                        "round {round}: {status} {code}"
                    );
                }
            }
        }
        made.dedup();
        assert!(made.len() <= 1, "round {round}: {made:?}");
    }
    system.cleanup().await;
}
