//! Idempotency-Key on `POST /payments`: a retry is answered as the first
//! request was, refusals included, without asking order-service again;
//! failures worth retrying are not kept.

use crate::{Mocked, error_envelope, order_envelope};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

async fn create(mocked: &Mocked, key: &str, order: Uuid, amount: i64) -> (StatusCode, Value) {
    let response = mocked
        .payments
        .http
        .post(mocked.payments.url("/payments"))
        .header("idempotency-key", key)
        .json(&json!({"order_id": order, "amount": amount, "provider": "stripe"}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn attach_calls(mocked: &Mocked, order: Uuid) -> usize {
    mocked
        .sent("POST", &format!("/internal/orders/{order}/payment"))
        .await
        .len()
}

#[tokio::test]
async fn a_retry_gets_the_first_payment_without_asking_order_service_again() {
    let mocked = Mocked::start(|_| {}).await;
    let order = Uuid::new_v4();
    mocked.order_is(order, 4_200, "pending").await;

    let (status, first) = create(&mocked, "pay-1", order, 4_200).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, retry) = create(&mocked, "pay-1", order, 4_200).await;
    assert_eq!((status, &retry), (StatusCode::OK, &first));
    assert_eq!(attach_calls(&mocked, order).await, 1);

    let (status, body) = create(&mocked, "pay-1", order, 4_201).await;
    assert_eq!(
        (status, body["data"]["error_code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        ),
        "{body}"
    );
    assert_eq!(mocked.payments.payment_count().await, 1);
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_refusal_is_kept_for_retries_and_an_outage_is_not() {
    let mocked = Mocked::start(|_| {}).await;
    let (unknown, busy) = (Uuid::new_v4(), Uuid::new_v4());
    Mock::given(method("GET"))
        .and(path(format!("/internal/orders/{unknown}")))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(error_envelope(404, "ORDER_NOT_FOUND")),
        )
        .mount(&mocked.order_service)
        .await;
    for _ in 0..2 {
        let (status, body) = create(&mocked, "pay-unknown", unknown, 100).await;
        assert_eq!(
            (status, body["data"]["error_code"].as_str()),
            (StatusCode::NOT_FOUND, Some("ORDER_NOT_FOUND")),
            "{body}"
        );
    }
    assert_eq!(
        mocked
            .sent("GET", &format!("/internal/orders/{unknown}"))
            .await
            .len(),
        1,
        "the refusal was replayed"
    );

    // order-service is down for the first attempt only.
    Mock::given(method("POST"))
        .and(path(format!("/internal/orders/{busy}/payment")))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(error_envelope(503, "SERVICE_UNAVAILABLE")),
        )
        .up_to_n_times(1)
        .mount(&mocked.order_service)
        .await;
    mocked.order_is(busy, 100, "pending").await;
    let (status, body) = create(&mocked, "pay-busy", busy, 100).await;
    assert_eq!(
        (status, body["data"]["error_code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("ORDER_SERVICE_UNAVAILABLE")
        ),
        "{body}"
    );
    let (status, body) = create(&mocked, "pay-busy", busy, 100).await;
    assert_eq!(status, StatusCode::OK, "the retry ran again: {body}");
    assert_eq!(mocked.payments.payment_count().await, 1);
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_retry_while_order_service_is_still_answering_the_first_is_told_to_wait() {
    let mocked = Mocked::start(|_| {}).await;
    let order = Uuid::new_v4();
    mocked.order_reads_as(order, 100, "pending").await;
    Mock::given(method("POST"))
        .and(path(format!("/internal/orders/{order}/payment")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(order_envelope(order, 100, "pending", Some(Uuid::new_v4())))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&mocked.order_service)
        .await;
    let db = mocked.payments.database().await;

    let first = create(&mocked, "pay-slow", order, 100);
    let retry = async {
        harness::wait_until(
            "the first request to claim its key",
            Duration::from_secs(5),
            async || {
                let claimed: i64 = db
                    .query_one("SELECT count(*) FROM idempotency_keys", &[])
                    .await
                    .unwrap()
                    .get(0);
                (claimed > 0)
                    .then_some(())
                    .ok_or("no key claimed".to_string())
            },
        )
        .await;
        create(&mocked, "pay-slow", order, 100).await
    };
    let ((status, first), (retry_status, retry)) = tokio::join!(first, retry);
    assert_eq!(
        (retry_status, retry["data"]["error_code"].as_str()),
        (StatusCode::CONFLICT, Some("IDEMPOTENCY_KEY_IN_USE")),
        "{retry}"
    );
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(attach_calls(&mocked, order).await, 1);
    mocked.cleanup().await;
}
