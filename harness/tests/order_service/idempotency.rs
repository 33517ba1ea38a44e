//! Idempotency-Key on `POST /orders`: a retry with the same key gets the
//! first answer and creates nothing; the key cannot be reused for another
//! order, nor raced; a malformed key is refused; a key lasts its lifetime.

use crate::{assert_error, order_request, send};
use harness::order_service::OrderServiceTest;
use order_client::types::IdempotencyKey;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

const CHAIR: &str = r#"{"item_name":"Chair","quantity":2,"price":3000}"#;

async fn create(test: &OrderServiceTest<'_>, key: &str, body: &str) -> (StatusCode, Value) {
    send(
        test,
        Method::POST,
        "/orders",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Some(body),
    )
    .await
}

/// How many keys the service holds, answered or not.
async fn key_count(test: &OrderServiceTest<'_>) -> i64 {
    test.database()
        .await
        .query_one("SELECT count(*) FROM idempotency_keys", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_retry_with_the_same_key_is_answered_with_the_first_order_and_creates_nothing() {
    let test = OrderServiceTest::start().await;
    let key = uuid::Uuid::new_v4().to_string();

    let (status, first) = create(&test, &key, CHAIR).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // The same body spelt differently, and the key in the draft's quoted form.
    let respelt = r#"{ "price": 3000, "quantity": 2, "item_name": "Chair" }"#;
    let (status, retry) = create(&test, &format!("\"{key}\""), respelt).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(
        retry, first,
        "the retry gets the first answer, byte for byte"
    );
    assert_eq!(test.order_count().await, 1);

    // Through the generated client, as an SDK user would.
    let key: IdempotencyKey = key.parse().unwrap();
    let order = test
        .client
        .create_order(Some(&key), &order_request("Chair", 2, 3_000))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(order.id.to_string(), first["data"]["id"].as_str().unwrap());
    assert_eq!(test.order_count().await, 1);

    // Without a key every create is a new order.
    for _ in 0..2 {
        test.client
            .create_order(None, &order_request("Chair", 2, 3_000))
            .await
            .unwrap();
    }
    assert_eq!(test.order_count().await, 3);
    test.cleanup().await;
}

#[tokio::test]
async fn the_same_key_for_another_order_is_refused_and_creates_nothing() {
    let test = OrderServiceTest::start().await;
    let (status, first) = create(&test, "checkout-41", CHAIR).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    let (status, body) = create(
        &test,
        "checkout-41",
        r#"{"item_name":"Chair","quantity":3,"price":3000}"#,
    )
    .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert!(message.contains("checkout-41"), "{message}");
    assert_eq!(test.order_count().await, 1);
    test.cleanup().await;
}

#[tokio::test]
async fn a_retry_while_the_first_request_is_under_way_is_told_to_wait_then_gets_its_answer() {
    // A generous database deadline: the first request waits on a lock below.
    let test = OrderServiceTest::start_with(|s| s.database.timeout_ms = 20_000).await;
    let lock = test.database().await;
    lock.batch_execute("BEGIN; LOCK TABLE orders IN EXCLUSIVE MODE")
        .await
        .unwrap();

    let first = create(&test, "slow-1", CHAIR);
    let meanwhile = async {
        harness::wait_until(
            "the first request to claim its key",
            Duration::from_secs(10),
            async || match key_count(&test).await {
                0 => Err("no key claimed".to_string()),
                _ => Ok(()),
            },
        )
        .await;
        let retry = create(&test, "slow-1", CHAIR).await;
        lock.batch_execute("COMMIT").await.unwrap();
        retry
    };
    let ((status, first), (retry_status, retry)) = tokio::join!(first, meanwhile);

    assert_error(
        retry_status,
        &retry,
        StatusCode::CONFLICT,
        "IDEMPOTENCY_KEY_IN_USE",
    );
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, later) = create(&test, "slow-1", CHAIR).await;
    assert_eq!((status, &later), (StatusCode::OK, &first));
    assert_eq!(test.order_count().await, 1);
    test.cleanup().await;
}

#[tokio::test]
async fn a_failure_worth_retrying_is_not_kept_so_the_retry_creates_the_order() {
    let test = OrderServiceTest::start_with(|s| s.database.timeout_ms = 300).await;
    let lock = test.database().await;
    lock.batch_execute("BEGIN; LOCK TABLE orders IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let (status, body) = create(&test, "retry-me", CHAIR).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    );
    lock.batch_execute("COMMIT").await.unwrap();

    let (status, body) = create(&test, "retry-me", CHAIR).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(test.order_count().await, 1);
    test.cleanup().await;
}

#[tokio::test]
async fn a_key_abandoned_by_a_dead_attempt_is_taken_over_after_its_lease() {
    let test = OrderServiceTest::start().await;
    let db = test.database().await;
    // What a process that died after claiming its key leaves behind; keys
    // are stored under their caller.
    let abandon = |key: &'static str, lease_left: &'static str| {
        let db = &db;
        async move {
            let key = format!("{}\n{key}", harness::issuer::CALLER);
            db.execute(
                "INSERT INTO idempotency_keys (key, request, attempt, locked_until) \
                 VALUES ($1, $2::text::jsonb, gen_random_uuid(), now() + $3::text::interval)",
                &[&key, &CHAIR, &lease_left],
            )
            .await
            .unwrap();
        }
    };
    abandon("alive", "1 minute").await;
    abandon("dead", "-1 second").await;

    let (status, body) = create(&test, "alive", CHAIR).await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "IDEMPOTENCY_KEY_IN_USE",
    );
    let (status, body) = create(&test, "dead", CHAIR).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(test.order_count().await, 1);
    test.cleanup().await;
}

#[tokio::test]
async fn keys_expire_and_are_pruned_after_their_lifetime_then_name_a_new_request() {
    let test = OrderServiceTest::start_with(|s| s.idempotency.ttl_secs = 1).await;
    let (_, first) = create(&test, "short-lived", CHAIR).await;

    harness::wait_until(
        "the expired key to be pruned",
        Duration::from_secs(15),
        async || match key_count(&test).await {
            0 => Ok(()),
            left => Err(format!("{left} key(s) left")),
        },
    )
    .await;
    let (status, second) = create(&test, "short-lived", CHAIR).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["data"]["id"], first["data"]["id"]);
    assert_eq!(test.order_count().await, 2);
    test.cleanup().await;
}

#[tokio::test]
async fn a_malformed_key_is_refused_before_anything_happens() {
    let test = OrderServiceTest::start().await;
    let too_long = "k".repeat(256);
    for key in [
        "",
        "\"\"",
        "\"unclosed",
        "has space",
        "back\\slash",
        &too_long,
    ] {
        let (status, body) = create(&test, key, CHAIR).await;
        let message = assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "INVALID_IDEMPOTENCY_KEY",
        );
        assert!(message.contains("Idempotency-Key"), "{key:?}: {message}");
    }
    let (status, body) = send(
        &test,
        Method::POST,
        "/orders",
        &[
            ("content-type", "application/json"),
            ("idempotency-key", "one"),
            ("idempotency-key", "two"),
        ],
        Some(CHAIR),
    )
    .await;
    let message = assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "INVALID_IDEMPOTENCY_KEY",
    );
    assert!(message.contains("once"), "{message}");
    assert_eq!((test.order_count().await, key_count(&test).await), (0, 0));
    test.cleanup().await;
}
