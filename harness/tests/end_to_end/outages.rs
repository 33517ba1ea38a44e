//! Nothing is lost: an outcome reaches order-service though it was down,
//! though payment-service crashed right after recording it, and with two
//! payment-service instances sharing the work.

use crate::System;
use order_client::types::OrderStatus;
use payment_client::types::OrderNotification;
use std::time::Duration;

#[tokio::test]
async fn an_outcome_reaches_order_service_after_it_comes_back() {
    let mut system = System::start().await;
    let order = system.order(1, 3_000).await;
    let payment = system.payment(&order).await;

    system.orders.stop().await;
    system
        .payments
        .client
        .mark_payment_success(&payment.id)
        .await
        .unwrap();
    // Not a wait: the outage lasts 2 s, long enough for the retries to back
    // off to their cap; what they did meanwhile is read below.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = system
        .payments
        .client
        .get_payment(&payment.id)
        .await
        .unwrap()
        .into_inner()
        .data;
    let attempts: i32 = system
        .payments
        .database()
        .await
        .query_one("SELECT attempts FROM order_notifications", &[])
        .await
        .unwrap()
        .get(0);
    system.orders.start_again().await;
    let recovery = system
        .wait_for_order(order.id, OrderStatus::Paid, Duration::from_secs(5))
        .await;

    assert_eq!(waiting.order_notification, OrderNotification::Pending);
    assert!(
        attempts >= 2,
        "retried while order-service was down ({attempts} attempts)"
    );
    // Retries wait at most the cap (500 ms in tests) plus one poll (200 ms);
    // the rest is margin for a loaded machine.
    assert!(
        recovery < Duration::from_secs(3),
        "paid {recovery:?} after order-service came back"
    );
    eprintln!(
        "order-service down 2 s: {attempts} attempts meanwhile; order paid {recovery:?} after it came back"
    );
    system.cleanup().await;
}

#[tokio::test]
async fn an_outcome_survives_a_payment_service_crash_right_after_the_commit() {
    let mut system = System::start().await;
    let order = system.order(1, 4_000).await;
    let payment = system.payment(&order).await;

    // order-service is down so the outcome cannot leave before the crash.
    system.orders.stop().await;
    system
        .payments
        .client
        .mark_payment_success(&payment.id)
        .await
        .unwrap();
    system.payments.crash();
    system.orders.start_again().await;
    // Not a wait: a window in which a delivery would reach order-service if
    // anything of the crashed instance were still running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        system.order_status(order.id).await,
        OrderStatus::Pending,
        "nothing delivers while crashed"
    );
    system.payments.start_again(|_| {}).await;

    let delivered = system
        .wait_for_order(order.id, OrderStatus::Paid, Duration::from_secs(10))
        .await;
    eprintln!("payment-service restarted after a crash: order paid {delivered:?} later");
    system.cleanup().await;
}

#[tokio::test]
async fn two_instances_deliver_every_outcome_without_sharing_a_record() {
    let system = System::start().await;
    let second = system.payments.another_instance(|_| {}).await;
    let instances = [&system.payments, &second];
    let mut orders = Vec::new();
    for i in 0..20 {
        let order = system.order(1, 100 + i).await;
        let instance = instances[i as usize % 2];
        let request = crate::payment_request(order.id, order.total_amount);
        let payment = instance
            .client
            .create_payment(None, &request)
            .await
            .unwrap()
            .into_inner()
            .data;
        orders.push((order.id, payment.id));
    }

    let settling = orders.iter().enumerate().map(|(i, (_, payment))| {
        let instance = instances[(i + 1) % 2];
        async move { instance.client.mark_payment_success(payment).await.unwrap() }
    });
    futures::future::join_all(settling).await;
    for (order, _) in &orders {
        system
            .wait_for_order(*order, OrderStatus::Paid, Duration::from_secs(10))
            .await;
    }

    let outcomes = harness::deliveries::outcomes(
        &system.payments.database().await,
        system.orders.proxy().exchanges(),
    )
    .await;
    assert_eq!(outcomes.len(), 20, "one outcome per payment");
    for outcome in &outcomes {
        outcome.assert_each_delivery_claimed();
        assert!(
            outcome.statuses().contains(&200),
            "payment {} never delivered: {:?}",
            outcome.payment_id,
            outcome.statuses()
        );
    }
    let total: usize = outcomes.iter().map(|o| o.deliveries.len()).sum();
    eprintln!("two instances: 20 outcomes, {total} deliveries, none in flight twice");
    second.cleanup().await;
    system.cleanup().await;
}

/// With the poll slowed to a minute, only the database's notification can
/// wake the dispatcher in time; after the payment database restarts, the
/// dispatcher must have subscribed again for that to keep working.
#[tokio::test]
async fn the_dispatcher_wakes_on_commit_and_subscribes_again_after_a_database_restart() {
    let cluster = postgres_cluster::Cluster::start().expect("a private cluster");
    let orders = harness::order_service::OrderServiceTest::start().await;
    let payments = harness::payment_service::PaymentServiceTest::start_on(
        &cluster,
        &orders.url(""),
        orders.secret(),
        |s| s.delivery.poll_ms = 60_000,
    )
    .await;
    let system = SystemOn { orders, payments };

    let first = system.paid_within_a_poll().await;
    cluster.stop().unwrap();
    cluster.resume().unwrap();
    // The listener reconnects within a second or two; until then a payment
    // cannot even be settled, so wait for the database to serve again and
    // the listener to be subscribed again.
    system.serving_and_listening_again().await;
    let second = system.paid_within_a_poll().await;

    eprintln!(
        "woken by notification: paid {first:?} after the PUT; after a database restart {second:?}"
    );
    system.payments.cleanup().await;
    system.orders.cleanup().await;
}

struct SystemOn<'c> {
    orders: harness::order_service::OrderServiceTest<'static>,
    payments: harness::payment_service::PaymentServiceTest<'c>,
}

impl SystemOn<'_> {
    /// Pays a new order; returns how long after the PUT the order was paid,
    /// which must be far less than the one-minute poll.
    async fn paid_within_a_poll(&self) -> Duration {
        let request = crate::order_request("Grinder", 1, 800);
        let order = self
            .orders
            .client
            .create_order(None, &request)
            .await
            .unwrap()
            .into_inner()
            .data;
        let payment = self
            .payments
            .client
            .create_payment(None, &crate::payment_request(order.id, 800))
            .await
            .unwrap()
            .into_inner()
            .data;
        self.payments
            .client
            .mark_payment_success(&payment.id)
            .await
            .unwrap();
        harness::order_service::wait_for_order(
            &self.orders.client,
            order.id,
            OrderStatus::Paid,
            Duration::from_secs(10),
        )
        .await
    }

    /// Waits (up to 10 s) until payment-service is ready again after its
    /// database restarted, and its dispatcher's listener is subscribed again
    /// (a connection of it, new since the restart, has run `LISTEN`).
    async fn serving_and_listening_again(&self) {
        let ready = self.payments.url("/readyz");
        harness::wait_until(
            "payment-service to be ready and listening again",
            Duration::from_secs(10),
            async || {
                let status = match self.payments.http.get(&ready).send().await {
                    Ok(answer) => answer.status(),
                    Err(error) => return Err(format!("readiness: {error}")),
                };
                if !status.is_success() {
                    return Err(format!("readiness: {status}"));
                }
                let database = self.payments.database().await;
                let listening: i64 = database
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
                        &[],
                    )
                    .await
                    .map_err(|error| error.to_string())?
                    .get(0);
                (listening > 0)
                    .then_some(())
                    .ok_or("ready, but no connection listening yet".to_string())
            },
        )
        .await;
    }
}
