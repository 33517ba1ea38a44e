//! How long after `PUT /payments/success/{id}` returns does the order read
//! as paid? Both services live on a throwaway PostgreSQL, production retry
//! settings, sequential payments on an otherwise idle machine. Prints the
//! distribution; asserts nothing.
//!
//! Run: cargo bench -p harness --bench callback_latency

use harness::order_service::OrderServiceTest;
use harness::payment_service::PaymentServiceTest;
use order_client::types::{OrderRequest, OrderStatus};
use payment_client::types::PaymentRequest;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

const PAYMENTS: usize = 200;

#[tokio::main]
async fn main() {
    let orders = OrderServiceTest::start().await;
    let payments = PaymentServiceTest::start(&orders.url(""), orders.secret(), |s| {
        s.delivery = payment_service::Settings::from_environment()
            .expect("settings")
            .delivery;
    })
    .await;

    let mut latencies = Vec::with_capacity(PAYMENTS);
    for i in 0..PAYMENTS {
        let request = OrderRequest {
            item_name: format!("item {i}").parse().unwrap(),
            quantity: NonZeroU64::new(1).unwrap(),
            price: NonZeroU64::new(1_000).unwrap(),
        };
        let order = orders
            .client
            .create_order(None, &request)
            .await
            .unwrap()
            .into_inner()
            .data;
        let payment = PaymentRequest {
            order_id: order.id,
            amount: NonZeroU64::new(1_000).unwrap(),
            provider: "bench".parse().unwrap(),
        };
        let payment = payments
            .client
            .create_payment(None, &payment)
            .await
            .unwrap()
            .into_inner()
            .data;
        payments
            .client
            .mark_payment_success(&payment.id)
            .await
            .unwrap();
        let returned = Instant::now();
        while orders
            .client
            .get_order(&order.id)
            .await
            .unwrap()
            .into_inner()
            .data
            .status
            != OrderStatus::Paid
        {
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "order {} never paid",
                order.id
            );
        }
        latencies.push(returned.elapsed());
    }

    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "PUT success returned -> order paid, {PAYMENTS} sequential payments (through the test proxies):"
    );
    println!(
        "  min {:?}  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        at(0.0),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    payments.cleanup().await;
    orders.cleanup().await;
}
