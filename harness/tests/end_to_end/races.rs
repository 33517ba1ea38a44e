//! Racing requests: the database, not a check before the write, decides.

use crate::{System, payment_request};
use order_client::types::OrderStatus;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn fifty_racing_creates_make_one_payment() {
    let system = System::start().await;
    let order = system.order(1, 2_500).await;
    let request = payment_request(order.id, 2_500);

    let results = futures::future::join_all(
        (0..50).map(|_| system.payments.client.create_payment(None, &request)),
    )
    .await;

    let ids: HashSet<_> = results
        .into_iter()
        .map(|r| r.unwrap().into_inner().data.id)
        .collect();
    assert_eq!(ids.len(), 1, "all 50 creates answer with the one payment");
    let count = system.payments.payment_count().await;
    assert_eq!(count, 1);
    system.cleanup().await;
}

#[tokio::test]
async fn fifty_racing_successes_give_one_200_and_a_paid_order() {
    let system = System::start().await;
    let order = system.order(1, 2_500).await;
    let payment = system.payment(&order).await;

    let results = futures::future::join_all(
        (0..50).map(|_| system.payments.client.mark_payment_success(&payment.id)),
    )
    .await;

    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(payment_client::Error::ErrorResponse(e)) if e.status() == reqwest::StatusCode::CONFLICT))
        .count();
    assert_eq!((ok, conflicts), (1, 49));
    system
        .wait_for_order(order.id, OrderStatus::Paid, Duration::from_secs(5))
        .await;
    let outbox: i64 = system
        .payments
        .database()
        .await
        .query_one("SELECT count(*) FROM order_notifications", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(outbox, 1, "one outcome recorded");
    system.cleanup().await;
}
