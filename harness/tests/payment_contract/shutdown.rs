//! Graceful shutdown finishes what was accepted.

use crate::{Mocked, order_envelope};
use std::time::Duration;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let mut mocked = Mocked::start(|_| {}).await;
    let order = Uuid::new_v4();
    mocked.order_reads_as(order, 500, "pending").await;
    Mock::given(method("POST"))
        .and(path(format!("/internal/orders/{order}/payment")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(order_envelope(order, 500, "pending", None))
                .set_delay(Duration::from_millis(700)),
        )
        .mount(&mocked.order_service)
        .await;
    let url = mocked.payments.url("/payments");
    let http = mocked.payments.http.clone();
    let in_flight = tokio::spawn(async move {
        http.post(url)
            .json(&serde_json::json!({"order_id": order, "amount": 500, "provider": "stripe"}))
            .send()
            .await
    });
    // In flight: order-service is answering its attachment.
    let attaching = format!("/internal/orders/{order}/payment");
    harness::wait_until(
        "the attachment to be sent",
        Duration::from_secs(5),
        async || {
            let received = mocked
                .order_service
                .received_requests()
                .await
                .unwrap_or_default();
            received
                .iter()
                .any(|request| request.url.path() == attaching)
                .then_some(())
                .ok_or(format!("{} other request(s)", received.len()))
        },
    )
    .await;

    mocked.payments.stop().await;

    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight was answered");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        mocked.payments.payment_count().await,
        1,
        "and its payment was stored"
    );
    mocked.cleanup().await;
}
