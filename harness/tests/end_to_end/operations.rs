//! Following one flow across both services, and payment-service's own
//! operational endpoints.

use crate::System;
use order_client::types::OrderStatus;
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn one_flows_request_ids_appear_in_both_services_logs() {
    let system = System::start().await;
    let order = system.order(1, 650).await;

    let created = system
        .payments
        .http
        .post(system.payments.url("/payments"))
        .json(&serde_json::json!({"order_id": order.id, "amount": 650, "provider": "stripe"}))
        .send()
        .await
        .unwrap();
    let create_request = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let payment: serde_json::Value = created.json().await.unwrap();
    let settled = system
        .payments
        .http
        .put(system.payments.url(&format!(
            "/payments/success/{}",
            payment["data"]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    let settle_request = settled.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    system
        .wait_for_order(order.id, OrderStatus::Paid, Duration::from_secs(5))
        .await;

    let order_logs = system.orders.logs();
    let payment_logs = system.payments.logs();
    for (what, id) in [
        ("the order lookup", &create_request),
        ("the callback", &settle_request),
    ] {
        assert!(
            payment_logs.contains(&format!(r#""req_id":"{id}""#)),
            "payment-service did not log {id}"
        );
        assert!(
            order_logs.contains(&format!(r#""hdr_x_request_id":"{id}""#)),
            "order-service's log of {what} does not name payment-service's request {id}"
        );
    }
    system.cleanup().await;
}

#[tokio::test]
async fn payment_service_reports_readiness_and_delivery_metrics() {
    let system = System::start().await;
    let ready = system
        .payments
        .http
        .get(system.payments.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["data"]["checks"]["dispatcher"], "ok");

    let order = system.order(1, 300).await;
    let payment = system.payment(&order).await;
    system.succeed(payment.id, order.id).await;

    // The order reads paid once order-service has taken the outcome, a
    // moment before payment-service has recorded the delivery.
    harness::wait_until(
        "the delivery in payment-service's metrics",
        Duration::from_secs(5),
        async || {
            let metrics = system.payment_metrics().await;
            for series in [
                "callback_delivery_attempts_total 1",
                "callback_delivered_total 1",
                "callback_backlog 0",
                "callback_dead_letters_total 0",
                r#"http_requests_total{operation="settle_payment",status="200"} 1"#,
            ] {
                if !metrics.lines().any(|line| line == series) {
                    return Err(format!("{series} missing from:\n{metrics}"));
                }
            }
            Ok(())
        },
    )
    .await;
    system.cleanup().await;
}
