//! Money and orders never disagree: once payment-service accepts a payment,
//! its order cannot change or disappear until the outcome arrives, and a
//! payment nobody settles expires and fails its order.

use crate::{System, order_request, payment_request};
use order_client::types::{OrderStatus, PaymentAttachment};
use reqwest::StatusCode;
use std::num::NonZeroU64;
use std::time::Duration;
use uuid::Uuid;

/// The status and error code of an order-service refusal.
fn refusal<T: std::fmt::Debug>(
    result: Result<T, order_client::Error<order_client::types::ApiError>>,
) -> (StatusCode, String, String) {
    match result {
        Err(order_client::Error::ErrorResponse(response)) => {
            let status = response.status();
            let error = response.into_inner().data;
            (status, error.error_code, error.message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_order_with_a_payment_under_way_cannot_change_or_disappear() {
    let system = System::start().await;
    let order = system.order(1, 500).await;
    let payment = system.payment(&order).await;

    // The two sequences that used to leave money taken for an order that
    // says otherwise: change the total, or delete the order, then succeed.
    let changed = system
        .orders
        .client
        .update_order(&order.id, &order_request("Espresso machine", 3, 500))
        .await;
    let (status, code, message) = refusal(changed);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "ORDER_PAYMENT_IN_PROGRESS")
    );
    assert!(message.contains(&payment.id.to_string()), "{message}");
    let deleted = system.orders.client.delete_order(&order.id).await;
    let (status, code, _) = refusal(deleted);
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "ORDER_PAYMENT_IN_PROGRESS")
    );

    system.succeed(payment.id, order.id).await;
    let paid = system.current_order(order.id).await;
    assert_eq!(
        (paid.total_amount, paid.payment_id),
        (500, Some(payment.id))
    );
    system.cleanup().await;
}

/// 50 changes and deletions race each payment's creation: either a change
/// wins and the payment is refused, or the payment wins and every change is
/// refused. Never both.
#[tokio::test]
async fn changes_racing_a_payments_creation_never_both_win() {
    let system = System::start().await;
    let (mut payments_won, mut changes_won) = (0_i64, 0);
    // The changes start a little later each round, so that sometimes the
    // payment (one hop further away) gets there first.
    let head_starts = [0, 2, 5, 10, 20, 40];
    for head_start in head_starts {
        let order = system.order(1, 500).await;
        let request = payment_request(order.id, 500);
        let pay = system.payments.client.create_payment(None, &request);
        let changes = (0..50).map(|i| {
            let client = &system.orders.client;
            let id = order.id;
            async move {
                // Not a wait: the changes' head start is what each round varies.
                tokio::time::sleep(Duration::from_millis(head_start)).await;
                if i % 2 == 0 {
                    client
                        .update_order(&id, &order_request("Espresso machine", 2, 500))
                        .await
                        .map(|r| r.status())
                } else {
                    client.delete_order(&id).await.map(|r| r.status())
                }
            }
        });
        let (paid, changed) = tokio::join!(pay, futures::future::join_all(changes));
        let changes_ok = changed.iter().filter(|r| r.is_ok()).count();
        match paid {
            Ok(payment) => {
                payments_won += 1;
                let payment = payment.into_inner().data;
                assert_eq!(changes_ok, 0, "a change won beside payment {}", payment.id);
                for refused in changed {
                    let (status, code, _) = refusal(refused);
                    assert_eq!(
                        (status, code.as_str()),
                        (StatusCode::CONFLICT, "ORDER_PAYMENT_IN_PROGRESS")
                    );
                }
                let now = system.current_order(order.id).await;
                assert_eq!((now.total_amount, now.payment_id), (500, Some(payment.id)));
            }
            Err(refused) => {
                changes_won += 1;
                assert!(changes_ok > 0, "neither won: {refused:?}");
                let status = refused.status();
                assert!(
                    matches!(
                        status,
                        Some(StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND)
                    ),
                    "the payment is refused as mismatched or for a deleted order: {refused:?}"
                );
            }
        }
    }
    eprintln!(
        "payment won {payments_won}, changes won {changes_won} of {} races",
        head_starts.len()
    );
    let payments = system.payments.payment_count().await;
    assert_eq!(payments, payments_won, "no payment beside a winning change");
    system.cleanup().await;
}

#[tokio::test]
async fn a_create_interrupted_after_attaching_is_completed_by_the_next() {
    let system = System::start().await;
    let order = system.order(2, 250).await;
    // What payment-service does first, as if it then died before recording
    // the payment.
    let attached = Uuid::new_v4();
    let signed = order_client::Client::new(
        &system.orders.url(""),
        order_client::ClientContext::with_callback_secret(system.orders.secret()),
    );
    signed
        .attach_payment(
            &order.id,
            &PaymentAttachment {
                payment_id: attached,
                amount: NonZeroU64::new(500).unwrap(),
                customer: Some(harness::issuer::CALLER.to_string()),
            },
        )
        .await
        .unwrap();

    let payment = system.payment(&order).await;

    assert_eq!(
        payment.id, attached,
        "the next create records the attached payment"
    );
    assert_eq!(system.payments.payment_count().await, 1);
    system.succeed(payment.id, order.id).await;
    system.cleanup().await;
}

#[tokio::test]
async fn a_payment_nobody_settles_expires_and_fails_its_order() {
    let system = System::start_with(|s| s.expiry_secs = 1).await;
    let order = system.order(1, 500).await;
    let payment = system.payment(&order).await;

    system
        .wait_for_order(order.id, OrderStatus::Failed, Duration::from_secs(10))
        .await;

    let expired = system
        .payments
        .client
        .get_payment(&payment.id)
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(expired.status, payment_client::types::PaymentStatus::Failed);
    assert_eq!(expired.paid_at, None);
    let settle = system
        .payments
        .client
        .mark_payment_success(&payment.id)
        .await;
    match settle {
        Err(payment_client::Error::ErrorResponse(response)) => {
            assert_eq!(response.status(), StatusCode::CONFLICT);
            assert_eq!(response.into_inner().data.error_code, "PAYMENT_NOT_PENDING");
        }
        other => panic!("an expired payment cannot succeed: {other:?}"),
    }
    let failed = system.current_order(order.id).await;
    assert_eq!(
        (failed.status, failed.payment_id),
        (OrderStatus::Failed, Some(payment.id))
    );
    system.cleanup().await;
}

/// `payment-service reconcile`, as an operator runs it.
async fn reconcile(system: &System) -> String {
    let mut settings = system.payments.settings().clone();
    settings.order_service.token = Some(harness::issuer::token("back-office", "admin"));
    payment_service::run_command(
        &settings,
        &payment_service::Command::Reconcile,
        &harness::test_logger("reconcile"),
    )
    .await
    .expect("reconcile runs")
}

#[tokio::test]
async fn reconciliation_reports_nothing_until_the_services_are_made_to_disagree() {
    let system = System::start().await;
    let order = system.order(1, 500).await;
    let payment = system.payment(&order).await;
    system.succeed(payment.id, order.id).await;
    let report = reconcile(&system).await;
    assert!(
        report.ends_with("\n0 payment(s) whose outcome order-service has not taken"),
        "{report}"
    );

    // Behind order-service's back, an order with a payment under way goes.
    let order = system.order(1, 700).await;
    let payment = system.payment(&order).await;
    system
        .orders
        .database()
        .await
        .execute("DELETE FROM orders WHERE id = $1", &[&order.id])
        .await
        .unwrap();
    system
        .payments
        .client
        .mark_payment_success(&payment.id)
        .await
        .unwrap();
    harness::payment_service::wait_for_notification(
        &system.payments.client,
        payment.id,
        payment_client::types::OrderNotification::Rejected,
        Duration::from_secs(10),
    )
    .await;

    let report = reconcile(&system).await;
    let line = report
        .lines()
        .find(|line| line.starts_with(&payment.id.to_string()))
        .unwrap_or_else(|| panic!("payment {} not reported:\n{report}", payment.id));
    assert!(
        line.contains("\trejected\t") && line.contains("ORDER_NOT_FOUND"),
        "{line}"
    );
    assert!(report.ends_with("\n1 payment(s) whose outcome order-service has not taken"));
    let metrics = system.payment_metrics().await;
    assert!(metrics.contains("callback_disagreements 1"), "{metrics}");
    system.cleanup().await;
}
