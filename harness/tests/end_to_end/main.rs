//! Both services, live, on real PostgreSQL: payment-service reaches
//! order-service only through the generated client, via the conformance
//! proxy, so every response either service gives is checked against
//! openapi.yaml.

mod access;
mod contract_fuzzing;
mod docs;
mod flow;
mod hostile_input;
mod identity_provider;
mod integrity;
mod operations;
mod other_languages;
mod outages;
mod races;
mod replicas;
mod rolling_restart;
mod slow_databases;
mod unanswered_attachments;

use harness::order_service::OrderServiceTest;
use harness::payment_service::PaymentServiceTest;
use harness::prerequisites;
use order_client::types::{Order, OrderStatus};
use payment_client::types::{Payment, PaymentRequest};
use std::num::NonZeroU64;
use std::time::Duration;
use uuid::Uuid;

/// Whether every program answers its arguments (`--version` and the
/// like); see [`prerequisites`].
pub fn installed(programs: &[(&str, &[&str])]) -> bool {
    for (program, args) in programs {
        if !prerequisites::runs(program, args) {
            prerequisites::skip_without(program, ".ci/run shows how to install it");
            return false;
        }
    }
    true
}

pub struct System {
    pub orders: OrderServiceTest<'static>,
    pub payments: PaymentServiceTest<'static>,
}

impl System {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut payment_service::Settings)) -> Self {
        Self::start_adjusted(|_| {}, adjust).await
    }

    /// Both services, each with its settings adjusted.
    pub async fn start_adjusted(
        orders: impl FnOnce(&mut order_service::Settings),
        payments: impl FnOnce(&mut payment_service::Settings),
    ) -> Self {
        let orders = OrderServiceTest::start_with(orders).await;
        let payments = PaymentServiceTest::start(&orders.url(""), orders.secret(), payments).await;
        System { orders, payments }
    }

    /// A new pending order for `quantity × price`.
    pub async fn order(&self, quantity: u64, price: u64) -> Order {
        self.orders
            .client
            .create_order(None, &order_request("Espresso machine", quantity, price))
            .await
            .unwrap()
            .into_inner()
            .data
    }

    /// A new pending payment for the whole of `order`.
    pub async fn payment(&self, order: &Order) -> Payment {
        self.payments
            .client
            .create_payment(None, &payment_request(order.id, order.total_amount))
            .await
            .unwrap()
            .into_inner()
            .data
    }

    /// Marks `payment` successful and waits (up to 10 s) until `order` reads as paid.
    pub async fn succeed(&self, payment: Uuid, order: Uuid) {
        self.payments
            .client
            .mark_payment_success(&payment)
            .await
            .unwrap();
        self.wait_for_order(order, OrderStatus::Paid, Duration::from_secs(10))
            .await;
    }

    /// The order as order-service has it now.
    pub async fn current_order(&self, id: Uuid) -> Order {
        self.orders
            .client
            .get_order(&id)
            .await
            .unwrap()
            .into_inner()
            .data
    }

    /// payment-service's metrics, as Prometheus scrapes them.
    pub async fn payment_metrics(&self) -> String {
        self.payments
            .http
            .get(self.payments.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn order_status(&self, id: Uuid) -> OrderStatus {
        self.orders
            .client
            .get_order(&id)
            .await
            .unwrap()
            .into_inner()
            .data
            .status
    }

    /// Waits until the order is in `status`; returns how long that took.
    /// Fails after `bound` (see [`harness::order_service::wait_for_order`]).
    pub async fn wait_for_order(&self, id: Uuid, status: OrderStatus, bound: Duration) -> Duration {
        harness::order_service::wait_for_order(&self.orders.client, id, status, bound).await
    }

    pub async fn cleanup(self) {
        self.payments.cleanup().await;
        self.orders.cleanup().await;
    }
}

pub fn payment_request(order_id: Uuid, amount: i64) -> PaymentRequest {
    PaymentRequest {
        order_id,
        amount: NonZeroU64::new(amount as u64).unwrap(),
        provider: "stripe".parse().unwrap(),
    }
}

pub fn order_request(
    item_name: &str,
    quantity: u64,
    price: u64,
) -> order_client::types::OrderRequest {
    order_client::types::OrderRequest {
        item_name: item_name.parse().unwrap(),
        quantity: NonZeroU64::new(quantity).unwrap(),
        price: NonZeroU64::new(price).unwrap(),
    }
}

/// A payment outcome report, as payment-service sends it.
pub fn callback(
    order_id: Uuid,
    payment_id: Uuid,
    outcome: order_client::types::PaymentOutcome,
    amount: u64,
) -> order_client::types::PaymentCallback {
    order_client::types::PaymentCallback {
        order_id,
        payment_id,
        payment_status: outcome,
        amount: NonZeroU64::new(amount).unwrap(),
    }
}
