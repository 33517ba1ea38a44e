//! Two instances of each service, each pair on its one database, behind
//! round-robin fronts: clients reach either instance, payment-service's
//! calls reach either order-service instance, and still every order is
//! paid once, by one payment, its outcome delivered by one instance at a
//! time, each delivery under a claim of its own.

use crate::{order_request, payment_request};
use futures::future::join_all;
use harness::order_service::OrderServiceTest;
use harness::payment_service::PaymentServiceTest;
use harness::proxy::ConformanceProxy;
use order_client::types::{Order, OrderStatus};
use std::time::Duration;
use uuid::Uuid;

struct Replicated {
    orders: Vec<OrderServiceTest<'static>>,
    payments: Vec<PaymentServiceTest<'static>>,
    order_front: ConformanceProxy,
    payment_front: ConformanceProxy,
    order_client: order_client::Client,
    payment_client: payment_client::Client,
}

impl Replicated {
    async fn start() -> Self {
        let first_orders = OrderServiceTest::start().await;
        let second_orders = first_orders.another_instance().await;
        let order_front =
            ConformanceProxy::balancing(vec![first_orders.url(""), second_orders.url("")])
                .await
                .unwrap();
        let first_payments =
            PaymentServiceTest::start(&order_front.url(), first_orders.secret(), |_| {}).await;
        let second_payments = first_payments.another_instance(|_| {}).await;
        let payment_front =
            ConformanceProxy::balancing(vec![first_payments.url(""), second_payments.url("")])
                .await
                .unwrap();
        Replicated {
            order_client: order_client::Client::new(
                &order_front.url(),
                order_client::ClientContext::with_token(harness::issuer::caller_token()),
            ),
            payment_client: payment_client::Client::new(
                &payment_front.url(),
                payment_client::ClientContext::with_token(harness::issuer::caller_token()),
            ),
            orders: vec![first_orders, second_orders],
            payments: vec![first_payments, second_payments],
            order_front,
            payment_front,
        }
    }

    async fn order(&self, price: u64) -> Order {
        self.order_client
            .create_order(None, &order_request("Replicated", 1, price))
            .await
            .unwrap()
            .into_inner()
            .data
    }

    async fn wait_until_paid(&self, id: Uuid) {
        harness::order_service::wait_for_order(
            &self.order_client,
            id,
            OrderStatus::Paid,
            Duration::from_secs(20),
        )
        .await;
    }

    async fn cleanup(mut self) {
        for front in [&self.order_front, &self.payment_front] {
            assert!(front.violations().is_empty(), "{:?}", front.violations());
            let failures: Vec<_> = front
                .exchanges()
                .into_iter()
                .filter(|e| e.status >= 500)
                .collect();
            assert!(failures.is_empty(), "5xx through a front: {failures:?}");
        }
        // Instances that do not own their database go first.
        while let Some(payments) = self.payments.pop() {
            payments.cleanup().await;
        }
        while let Some(orders) = self.orders.pop() {
            orders.cleanup().await;
        }
    }
}

#[tokio::test]
async fn two_of_each_settle_every_order_once_under_concurrent_flows_and_races() {
    let replicated = Replicated::start().await;
    let system = &replicated;

    // Forty whole flows at once.
    let flows = (0..40).map(|i| async move {
        let order = system.order(100 + i).await;
        let payment = system
            .payment_client
            .create_payment(None, &payment_request(order.id, order.total_amount))
            .await
            .unwrap()
            .into_inner()
            .data;
        system
            .payment_client
            .mark_payment_success(&payment.id)
            .await
            .unwrap();
        system.wait_until_paid(order.id).await;
        order.id
    });
    let mut paid: Vec<Uuid> = join_all(flows).await;

    // Ten orders, each paid by eight racing creates and four racing successes.
    for _ in 0..10 {
        let order = system.order(700).await;
        let request = payment_request(order.id, 700);
        let creates =
            join_all((0..8).map(|_| system.payment_client.create_payment(None, &request))).await;
        let ids: Vec<Uuid> = creates
            .into_iter()
            .map(|r| r.unwrap().into_inner().data.id)
            .collect();
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "one payment per order: {ids:?}"
        );
        let successes =
            join_all((0..4).map(|_| system.payment_client.mark_payment_success(&ids[0]))).await;
        let won = successes.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "one success wins: {successes:?}");
        system.wait_until_paid(order.id).await;
        paid.push(order.id);
    }

    // One payment and one outcome per order, each delivered: one whose
    // delivery an instance could not record is claimed and delivered again
    // once the lease ends. Each delivery was answered 200 and made under a
    // claim of its own; callbacks reached both order-service instances.
    let db = system.payments[0].database().await;
    let outcomes = harness::wait_until(
        "one outcome per order, each delivered",
        Duration::from_secs(20),
        async || {
            let outcomes = harness::deliveries::outcomes(&db, system.order_front.exchanges()).await;
            let delivered = outcomes.iter().filter(|o| o.state == "delivered").count();
            if outcomes.len() == paid.len() && delivered == paid.len() {
                Ok(outcomes)
            } else {
                Err(format!(
                    "{} outcomes, {delivered} delivered",
                    outcomes.len()
                ))
            }
        },
    )
    .await;
    for outcome in &outcomes {
        outcome.assert_each_delivery_claimed();
        assert!(
            outcome.statuses().iter().all(|&status| status == 200),
            "payment {}'s deliveries were answered {:?}",
            outcome.payment_id,
            outcome.statuses()
        );
    }
    let mut by_instance = [0usize; 2];
    for delivery in outcomes.iter().flat_map(|o| &o.deliveries) {
        by_instance[delivery.upstream] += 1;
    }
    eprintln!(
        "replicas: {} outcomes, {} deliveries, {by_instance:?} by order-service instance",
        outcomes.len(),
        by_instance.iter().sum::<usize>()
    );
    assert!(
        by_instance.iter().all(|&n| n > 0),
        "callbacks by instance: {by_instance:?}"
    );
    replicated.cleanup().await;
}
