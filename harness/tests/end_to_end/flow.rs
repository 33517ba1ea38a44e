//! The business flow of the original system, end to end.

use crate::{System, payment_request};
use order_client::types::OrderStatus;
use payment_client::types::{OrderNotification, PaymentStatus};
use reqwest::StatusCode;
use std::time::Duration;

fn payment_error<T: std::fmt::Debug>(
    result: Result<T, payment_client::Error<payment_client::types::ApiError>>,
) -> (StatusCode, String, String) {
    match result {
        Err(payment_client::Error::ErrorResponse(response)) => {
            let status = response.status();
            let data = response.into_inner().data;
            (status, data.error_code, data.message)
        }
        other => panic!("expected an error envelope, got {other:?}"),
    }
}

#[tokio::test]
async fn a_successful_payment_makes_the_order_paid() {
    let system = System::start().await;
    let order = system.order(2, 4_999).await;

    let payment = system.payment(&order).await;
    assert_eq!(
        (payment.status, payment.amount, payment.paid_at),
        (PaymentStatus::Pending, 9_998, None)
    );
    assert_eq!(payment.order_notification, OrderNotification::None);
    let settled = system
        .payments
        .client
        .mark_payment_success(&payment.id)
        .await
        .unwrap()
        .into_inner()
        .data;
    let latency = system
        .wait_for_order(order.id, OrderStatus::Paid, Duration::from_secs(5))
        .await;

    assert_eq!(settled.status, PaymentStatus::Success);
    assert!(settled.paid_at.is_some());
    let paid = system.current_order(order.id).await;
    assert_eq!(paid.payment_id, Some(payment.id));
    eprintln!("PUT success returned → order paid: {latency:?}");
    let notified = harness::payment_service::wait_for_notification(
        &system.payments.client,
        payment.id,
        OrderNotification::Delivered,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(notified.order_notification, OrderNotification::Delivered);
    assert!(notified.order_notified_at.is_some());
    system.cleanup().await;
}

#[tokio::test]
async fn a_failed_payment_makes_the_order_failed() {
    let system = System::start().await;
    let order = system.order(1, 1_200).await;
    let payment = system.payment(&order).await;

    let settled = system
        .payments
        .client
        .mark_payment_failed(&payment.id)
        .await
        .unwrap()
        .into_inner()
        .data;

    assert_eq!(
        (settled.status, settled.paid_at),
        (PaymentStatus::Failed, None)
    );
    system
        .wait_for_order(order.id, OrderStatus::Failed, Duration::from_secs(5))
        .await;
    system.cleanup().await;
}

#[tokio::test]
async fn a_payment_for_another_amount_is_a_400_stating_both_figures() {
    let system = System::start().await;
    let order = system.order(3, 1_000).await;

    let (status, code, message) = payment_error(
        system
            .payments
            .client
            .create_payment(None, &payment_request(order.id, 2_999))
            .await,
    );

    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AMOUNT_MISMATCH")
    );
    assert!(
        message.contains("2999") && message.contains("3000"),
        "{message}"
    );
    let count = system.payments.payment_count().await;
    assert_eq!(count, 0);
    system.cleanup().await;
}

#[tokio::test]
async fn a_payment_for_an_unknown_order_is_a_404() {
    let system = System::start().await;
    let (status, code, _) = payment_error(
        system
            .payments
            .client
            .create_payment(None, &payment_request(uuid::Uuid::new_v4(), 100))
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND")
    );
    system.cleanup().await;
}

#[tokio::test]
async fn creating_again_returns_the_existing_payment() {
    let system = System::start().await;
    let order = system.order(1, 500).await;
    let first = system.payment(&order).await;

    let again = system.payment(&order).await;

    assert_eq!(again.id, first.id);
    system.cleanup().await;
}

#[tokio::test]
async fn paying_an_order_that_is_not_pending_is_a_409() {
    let system = System::start().await;
    let order = system.order(1, 500).await;
    system
        .orders
        .client
        .update_order(&order.id, &crate::order_request("x", 1, 500))
        .await
        .unwrap();
    let callback = crate::callback(
        order.id,
        uuid::Uuid::new_v4(),
        order_client::types::PaymentOutcome::Failed,
        500,
    );
    system
        .orders
        .client
        .payment_callback(&callback)
        .await
        .unwrap();

    let (status, code, message) = payment_error(
        system
            .payments
            .client
            .create_payment(None, &payment_request(order.id, 500))
            .await,
    );

    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "ORDER_NOT_PENDING")
    );
    assert!(message.contains("failed"), "{message}");
    system.cleanup().await;
}

#[tokio::test]
async fn a_settled_payment_cannot_be_settled_again() {
    let system = System::start().await;
    let order = system.order(1, 700).await;
    let payment = system.payment(&order).await;
    let settled = system
        .payments
        .client
        .mark_payment_success(&payment.id)
        .await
        .unwrap()
        .into_inner()
        .data;

    for result in [
        system
            .payments
            .client
            .mark_payment_success(&payment.id)
            .await,
        system
            .payments
            .client
            .mark_payment_failed(&payment.id)
            .await,
    ] {
        let (status, code, _) = payment_error(result);
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::CONFLICT, "PAYMENT_NOT_PENDING")
        );
    }
    let after = system
        .payments
        .client
        .get_payment(&payment.id)
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(
        (after.status, after.paid_at),
        (PaymentStatus::Success, settled.paid_at)
    );
    system
        .wait_for_order(order.id, OrderStatus::Paid, Duration::from_secs(5))
        .await;
    system.cleanup().await;
}

#[tokio::test]
async fn unknown_payments_and_bad_paths_get_the_envelope() {
    let system = System::start().await;
    let id = uuid::Uuid::new_v4();
    for result in [
        system.payments.client.get_payment(&id).await,
        system.payments.client.mark_payment_success(&id).await,
        system.payments.client.mark_payment_failed(&id).await,
    ] {
        let (status, code, _) = payment_error(result);
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND")
        );
    }
    for (method, path) in [
        (reqwest::Method::GET, "/payments/not-a-uuid".to_string()),
        (reqwest::Method::PUT, format!("/payments/refunded/{id}")),
        (
            reqwest::Method::PUT,
            "/payments/success/not-a-uuid".to_string(),
        ),
    ] {
        let response = system
            .payments
            .http
            .request(method, system.payments.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body["data"]["error_code"], "INVALID_PATH_PARAMETER",
            "{path}"
        );
    }
    let response = system
        .payments
        .http
        .post(system.payments.url("/payments"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"order_id":"{id}","amount":0,"provider":" "}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    system.cleanup().await;
}

#[tokio::test]
async fn the_same_callback_delivered_again_changes_the_order_once() {
    let system = System::start().await;
    let order = system.order(1, 900).await;
    let payment = system.payment(&order).await;
    system.succeed(payment.id, order.id).await;
    let paid = system.current_order(order.id).await;
    let callback = crate::callback(
        order.id,
        payment.id,
        order_client::types::PaymentOutcome::Success,
        900,
    );

    for _ in 0..5 {
        system
            .orders
            .client
            .payment_callback(&callback)
            .await
            .unwrap();
    }
    let concurrent = (0..5).map(|_| system.orders.client.payment_callback(&callback));
    for result in futures::future::join_all(concurrent).await {
        assert_eq!(
            result.unwrap().into_inner().data.updated_at,
            paid.updated_at
        );
    }

    let after = system.current_order(order.id).await;
    assert_eq!(
        (after.status, after.updated_at),
        (OrderStatus::Paid, paid.updated_at)
    );
    system.cleanup().await;
}

#[tokio::test]
async fn a_payment_body_with_a_nul_character_or_trailing_data_is_a_400_and_pays_nothing() {
    let system = System::start().await;
    let order = system.order(1, 500).await;
    let id = order.id;
    for (body, expected) in [
        (
            format!(r#"{{"order_id":"{id}","amount":500,"provider":"str\u0000ipe"}}"#),
            "provider: must not contain the NUL character",
        ),
        (
            format!(r#"{{"order_id":"{id}","amount":500,"provider":"stripe"}}}}"#),
            "trailing characters",
        ),
        (
            format!(r#"{{"order_id":"{id}","amount":500,"provider":"stripe"}} xyz"#),
            "trailing characters",
        ),
    ] {
        let response = system
            .payments
            .http
            .post(system.payments.url("/payments"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let reply: serde_json::Value = response.json().await.unwrap();
        assert_eq!(reply["data"]["error_code"], "INVALID_BODY", "{body}");
        let message = reply["data"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(system.payments.payment_count().await, 0);
    assert_eq!(system.order_status(id).await, OrderStatus::Pending);
    system.cleanup().await;
}
