//! Creating a payment first attaches it to its order at order-service.

use crate::{Mocked, create_payment, error_envelope, order_envelope, signed_with};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn the_payment_is_attached_to_the_order_as_the_contract_says() {
    let mocked = Mocked::start(|_| {}).await;
    let order = Uuid::new_v4();
    mocked.order_is(order, 2_500, "pending").await;

    let (status, body) = create_payment(&mocked, order, 2_500).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "pending");
    let sent = mocked
        .sent("POST", &format!("/internal/orders/{order}/payment"))
        .await;
    assert_eq!(
        sent.len(),
        1,
        "one attachment, checked against the contract"
    );
    assert!(
        signed_with(&mocked.secret, &sent[0]),
        "signed like outcomes"
    );
    let attachment: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(attachment["payment_id"], body["data"]["id"]);
    assert_eq!(attachment["amount"], 2_500);
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_create_interrupted_after_attaching_is_completed_with_the_attached_payment() {
    // An earlier version attached `attached` to the order, then stopped
    // before recording it (it recorded payments only after attaching them):
    // order-service says a payment is under way, and does not release it.
    let mocked = Mocked::start(|_| {}).await;
    let (order, attached) = (Uuid::new_v4(), Uuid::new_v4());
    mocked.order_reads_as(order, 2_500, "pending").await;
    Mock::given(method("POST"))
        .and(path(format!("/internal/orders/{order}/payment")))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(error_envelope(409, "ORDER_PAYMENT_IN_PROGRESS")),
        )
        .mount(&mocked.order_service)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/internal/orders/{order}/released-payments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_envelope(
            order,
            2_500,
            "pending",
            Some(attached),
        )))
        .mount(&mocked.order_service)
        .await;

    let (status, body) = create_payment(&mocked, order, 2_500).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["id"],
        attached.to_string(),
        "the attached payment is recorded"
    );
    let (status, again) = create_payment(&mocked, order, 2_500).await;
    assert_eq!(
        (status, &again["data"]["id"]),
        (StatusCode::OK, &body["data"]["id"])
    );
    assert_eq!(mocked.payments.payment_count().await, 1);
    mocked.cleanup().await;
}

/// Each way order-service can answer (or not), and what the client of
/// payment-service then gets. No payment is created in any of these cases;
/// where order-service may have attached it after all, the answer says so
/// (`OUTCOME_UNKNOWN`), and the payment noted before the call stays until
/// the expiry has order-service release it.
#[tokio::test]
async fn every_answer_from_order_service_leads_to_a_clear_error() {
    let mocked = Mocked::start(|_| {}).await;
    let garbage = ResponseTemplate::new(200).set_body_string("<html>oops</html>");
    let cases: Vec<(&str, ResponseTemplate, StatusCode, &str)> = vec![
        (
            "404",
            ResponseTemplate::new(404).set_body_json(error_envelope(404, "ORDER_NOT_FOUND")),
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_json(error_envelope(500, "INTERNAL_ERROR")),
            StatusCode::SERVICE_UNAVAILABLE,
            "OUTCOME_UNKNOWN",
        ),
        (
            "503 outcome unknown",
            ResponseTemplate::new(503).set_body_json(error_envelope(503, "OUTCOME_UNKNOWN")),
            StatusCode::SERVICE_UNAVAILABLE,
            "OUTCOME_UNKNOWN",
        ),
        (
            "503",
            ResponseTemplate::new(503).set_body_json(error_envelope(503, "SERVICE_UNAVAILABLE")),
            StatusCode::SERVICE_UNAVAILABLE,
            "ORDER_SERVICE_UNAVAILABLE",
        ),
        (
            "malformed JSON",
            garbage,
            StatusCode::BAD_GATEWAY,
            "ORDER_SERVICE_BAD_RESPONSE",
        ),
        (
            "JSON of another shape",
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": 1})),
            StatusCode::BAD_GATEWAY,
            "ORDER_SERVICE_BAD_RESPONSE",
        ),
        (
            "no answer in time",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(10)),
            StatusCode::SERVICE_UNAVAILABLE,
            "OUTCOME_UNKNOWN",
        ),
    ];
    for (case, answer, expected, code) in cases {
        let order = Uuid::new_v4();
        mocked.order_reads_as(order, 100, "pending").await;
        // Asked to release the payment, order-service no longer has the order.
        Mock::given(method("POST"))
            .and(path(format!("/internal/orders/{order}/released-payments")))
            .respond_with(
                ResponseTemplate::new(404).set_body_json(error_envelope(404, "ORDER_NOT_FOUND")),
            )
            .mount(&mocked.order_service)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/internal/orders/{order}/payment")))
            .respond_with(answer)
            .mount(&mocked.order_service)
            .await;
        let started = Instant::now();
        let (status, body) = create_payment(&mocked, order, 100).await;
        let elapsed = started.elapsed();
        assert_eq!(
            (status, body["data"]["error_code"].as_str()),
            (expected, Some(code)),
            "{case}: {body}"
        );
        assert!(
            elapsed < Duration::from_secs(3),
            "{case}: answered after {elapsed:?}"
        );
    }
    assert_eq!(mocked.payments.payment_count().await, 0);
    // The expiry asks order-service to release what it noted; order-service
    // no longer has the orders (404), so none can be attached.
    harness::wait_until(
        "every noted payment is given up",
        Duration::from_secs(20),
        async || {
            let left = mocked.payments.intent_count().await;
            (left == 0)
                .then_some(())
                .ok_or(format!("{left} noted payment(s) left"))
        },
    )
    .await;
    mocked.cleanup().await;
}

#[tokio::test]
async fn an_order_that_is_not_pending_or_costs_another_amount_is_refused() {
    let mocked = Mocked::start(|_| {}).await;
    let (paid, pending) = (Uuid::new_v4(), Uuid::new_v4());
    mocked.order_is(paid, 1_000, "paid").await;
    mocked.order_is(pending, 1_000, "pending").await;

    let (status, body) = create_payment(&mocked, paid, 1_000).await;
    assert_eq!(
        (status, body["data"]["error_code"].as_str()),
        (StatusCode::CONFLICT, Some("ORDER_NOT_PENDING"))
    );
    let (status, body) = create_payment(&mocked, pending, 999).await;
    assert_eq!(
        (status, body["data"]["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("AMOUNT_MISMATCH"))
    );
    let message = body["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("999") && message.contains("1000"),
        "{message}"
    );
    mocked.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_order_service_is_a_503() {
    // Port 9 (discard) on loopback: nothing listens there.
    let mocked = Mocked::start(|s| s.order_service.url = "http://127.0.0.1:9".to_string()).await;
    let (status, body): (StatusCode, Value) = create_payment(&mocked, Uuid::new_v4(), 100).await;
    assert_eq!(
        (status, body["data"]["error_code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("ORDER_SERVICE_UNAVAILABLE")
        )
    );
    mocked.cleanup().await;
}
