//! A request's deadline ends its work in PostgreSQL too: a write that
//! misses it is cancelled, and answered 503 `SERVICE_UNAVAILABLE` only once
//! PostgreSQL has confirmed that, so the refusal is true; its connection
//! never serves another request.

use crate::{create_order, error_body, order_request};
use harness::order_service::OrderServiceTest;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// The service's database deadline in these tests.
const DEADLINE_MS: u64 = 600;

/// Waits until no statement runs in the test's database but the caller's:
/// whatever order-service abandoned has ended, one way or the other.
async fn until_nothing_runs(inspector: &tokio_postgres::Client) {
    harness::wait_until(
        "order-service's statements to end",
        Duration::from_secs(10),
        async || {
            let running: i64 = inspector
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND state = 'active' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (running == 0)
                .then_some(())
                .ok_or(format!("{running} statement(s) running"))
        },
    )
    .await
}

async fn orders_named(inspector: &tokio_postgres::Client, item_name: &str) -> i64 {
    inspector
        .query_one(
            "SELECT count(*) FROM orders WHERE item_name = $1",
            &[&item_name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn writes_that_miss_their_deadline_are_cancelled_and_change_nothing() {
    let test = OrderServiceTest::start_with(|s| s.database.timeout_ms = DEADLINE_MS).await;
    let order = create_order(&test, "Lamp", 1, 100).await;
    let inspector = test.database().await;
    let mut holder = test.database().await;
    // A long transaction elsewhere keeps every write to orders waiting.
    let lock = holder.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE orders IN SHARE MODE")
        .await
        .unwrap();

    // A client retrying on 503, as the README says to.
    for attempt in 1..=3 {
        let started = Instant::now();
        let refused = test
            .client
            .create_order(None, &order_request("Chair", 1, 50))
            .await;
        let elapsed = started.elapsed();
        let (status, error) = error_body(refused);
        assert_eq!(
            (status, error.data.error_code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            "create {attempt}: {error:?}"
        );
        assert!(
            elapsed < Duration::from_millis(DEADLINE_MS + 500),
            "create {attempt} answered after {elapsed:?}"
        );
    }
    let (status, error) = error_body(
        test.client
            .update_order(&order.id, &order_request("Lamp", 3, 100))
            .await,
    );
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
    );

    lock.commit().await.unwrap();
    until_nothing_runs(&inspector).await;
    assert_eq!(
        orders_named(&inspector, "Chair").await,
        0,
        "every refused create left nothing"
    );
    let unchanged = test.client.get_order(&order.id).await.unwrap().into_inner();
    assert_eq!(
        unchanged.data.total_amount, 100,
        "the refused change left nothing"
    );

    // No connection a cancelled statement was on serves the next request.
    let started = Instant::now();
    create_order(&test, "Chair", 1, 50).await;
    assert!(
        started.elapsed() < Duration::from_millis(DEADLINE_MS),
        "the next create waited {:?}",
        started.elapsed()
    );
    assert_eq!(orders_named(&inspector, "Chair").await, 1);
    test.cleanup().await;
}
