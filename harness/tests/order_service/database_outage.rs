//! With the database stopped or hung, every request is answered promptly
//! with a 503 in the envelope, and the service recovers by itself.
//!
//! These tests stop their own PostgreSQL cluster, not the shared one.

use crate::{create_order, error_body, lock_order, order_request};
use harness::order_service::OrderServiceTest;
use order_client::types::{ApiError, PaymentCallback, PaymentOutcome};
use postgres_cluster::Cluster;
use reqwest::StatusCode;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Each request must be answered within this bound; the service's own
/// database deadline in tests is 1.5 s.
const ANSWER_BOUND: Duration = Duration::from_secs(3);

/// Calls every operation once; each must answer 503 within the bound: a
/// read `SERVICE_UNAVAILABLE`, a write the same when it was never sent, or
/// `OUTCOME_UNKNOWN` when it was sent and PostgreSQL could not confirm
/// that it was cancelled. Returns the slowest answer's time.
async fn every_operation_is_unavailable(test: &OrderServiceTest<'_>, order: Uuid) -> Duration {
    let request = order_request("Desk", 1, 100);
    let callback = PaymentCallback {
        order_id: order,
        payment_id: Uuid::new_v4(),
        payment_status: PaymentOutcome::Success,
        amount: NonZeroU64::new(100).unwrap(),
    };
    let mut slowest = Duration::ZERO;
    for operation in ["create", "list", "get", "update", "delete", "callback"] {
        let started = Instant::now();
        let result: Result<(), order_client::Error<ApiError>> = match operation {
            "create" => test.client.create_order(None, &request).await.map(drop),
            "list" => test.client.list_orders(None, None, None).await.map(drop),
            "get" => test.client.get_order(&order).await.map(drop),
            "update" => test.client.update_order(&order, &request).await.map(drop),
            "delete" => test.client.delete_order(&order).await.map(drop),
            _ => test.client.payment_callback(&callback).await.map(drop),
        };
        let elapsed = started.elapsed();
        let (status, error) = error_body(result);
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{operation}: {error:?}"
        );
        let truthful: &[&str] = match operation {
            "list" | "get" => &["SERVICE_UNAVAILABLE"],
            _ => &["SERVICE_UNAVAILABLE", "OUTCOME_UNKNOWN"],
        };
        assert!(
            truthful.contains(&error.data.error_code.as_str()),
            "{operation}: {error:?}"
        );
        assert!(elapsed < ANSWER_BOUND, "{operation} took {elapsed:?}");
        slowest = slowest.max(elapsed);
    }
    slowest
}

/// Waits until the order can be read again; returns how long that took.
async fn recovers(test: &OrderServiceTest<'_>, order: Uuid) -> Duration {
    let started = Instant::now();
    harness::wait_until(
        "the order to be readable again",
        Duration::from_secs(10),
        async || match test.client.get_order(&order).await {
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        },
    )
    .await;
    started.elapsed()
}

#[tokio::test]
async fn with_the_database_stopped_requests_get_a_503_and_the_service_recovers() {
    let cluster = Cluster::start().expect("a private cluster");
    let test = OrderServiceTest::start_on(&cluster).await;
    let order = create_order(&test, "Desk", 1, 100).await;

    cluster.stop().unwrap();
    let slowest = every_operation_is_unavailable(&test, order.id).await;
    cluster.resume().unwrap();
    let recovery = recovers(&test, order.id).await;

    eprintln!("database stopped: slowest 503 {slowest:?}; recovered {recovery:?} after restart");
    assert_eq!(test.order(&order.id).await.id, order.id);
    test.cleanup().await;
}

#[tokio::test]
async fn with_the_database_hung_requests_get_a_503_and_the_service_recovers() {
    let cluster = Cluster::start().expect("a private cluster");
    let test = OrderServiceTest::start_on(&cluster).await;
    let order = create_order(&test, "Desk", 1, 100).await;

    let frozen = cluster.freeze();
    let slowest = every_operation_is_unavailable(&test, order.id).await;
    drop(frozen);
    let recovery = recovers(&test, order.id).await;

    eprintln!("database hung: slowest 503 {slowest:?}; recovered {recovery:?} after thawing");
    test.cleanup().await;
}

#[tokio::test]
async fn work_the_database_refuses_for_timing_is_a_503_the_caller_may_retry() {
    let test = OrderServiceTest::start().await;
    let database = test.database().await;
    // Sessions the service opens from now on give up on a lock after 200 ms
    // (its pool opens connections on first use, below).
    database
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = %L', \
             current_database(), '200ms'); END $$",
        )
        .await
        .unwrap();
    let order = create_order(&test, "Lamp", 1, 100).await;
    let mut holder = test.database().await;
    let lock = lock_order(&mut holder, order.id).await;

    // PostgreSQL refuses with lock_not_available (55P03): the request did
    // nothing wrong, so it is a 503 to retry, not a 500.
    let refused = test
        .client
        .update_order(&order.id, &order_request("Lamp", 2, 100))
        .await;
    let (status, error) = error_body(refused);
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
        "{error:?}"
    );

    lock.rollback().await.unwrap();
    let retried = test
        .client
        .update_order(&order.id, &order_request("Lamp", 2, 100))
        .await
        .expect("the same request succeeds once the lock is released")
        .into_inner()
        .data;
    assert_eq!(retried.total_amount, 200);
    test.cleanup().await;
}
