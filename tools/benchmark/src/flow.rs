//! The whole flow through the generated clients, as a user's program runs
//! it: create an order, pay it, mark the payment successful, then read the
//! order until it is `paid`. The time from the settlement's 200 to the
//! order's change to `paid` (its `updated_at`, as the read shows it) is how
//! long the outcome took to reach order-service.

use order_client::types::{OrderRequest, OrderStatus};
use payment_client::types::PaymentRequest;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What a run of flows measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Flows completed.
    pub flows: u64,
    pub flows_per_second: f64,
    pub errors: u64,
    /// Settlement's 200 → the order reads `paid`.
    pub settled_to_paid_p50: Duration,
    pub settled_to_paid_p99: Duration,
    pub settled_to_paid_max: Duration,
}

/// How flows are started.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Each client starts its next flow as soon as the last one ends.
    AsFastAsPossible,
    /// Flows start at this many per second in all, spread over the clients.
    PerSecond(f64),
}

/// How long to wait before reading again an order not yet `paid`: 1 ms,
/// doubling up to this, so clients waiting long under load do not flood
/// order-service with reads (measured: 4.6 reads per flow with a 4 ms
/// bound).
const READ_AGAIN_AT_MOST_AFTER: Duration = Duration::from_millis(16);

/// The tokens flows run with when the services authenticate: a customer's,
/// who orders and pays, and the settlement connector's.
pub struct Tokens {
    pub customer: String,
    pub connector: String,
}

pub async fn run(
    order_url: &str,
    payment_url: &str,
    tokens: Option<&Tokens>,
    clients: usize,
    pace: Pace,
    duration: Duration,
) -> Figures {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let (customer, connector) = match tokens {
        Some(tokens) => (
            payment_client::ClientContext::with_token(&tokens.customer),
            payment_client::ClientContext::with_token(&tokens.connector),
        ),
        None => Default::default(),
    };
    let orders = order_client::Client::new_with_client(
        order_url,
        http.clone(),
        tokens.map_or_else(Default::default, |t| {
            order_client::ClientContext::with_token(&t.customer)
        }),
    );
    let payments = payment_client::Client::new_with_client(payment_url, http.clone(), customer);
    let settlement = payment_client::Client::new_with_client(payment_url, http, connector);
    let started = Instant::now();
    let deadline = started + duration;
    let next_start = Arc::new(Mutex::new(started));
    let errors = Arc::new(AtomicU64::new(0));
    let workers = (0..clients).map(|_| {
        let (orders, payments, settlement) = (orders.clone(), payments.clone(), settlement.clone());
        let (next_start, errors) = (next_start.clone(), errors.clone());
        tokio::spawn(async move {
            let mut delays = Vec::new();
            loop {
                if let Pace::PerSecond(rate) = pace {
                    let start = {
                        let mut next = next_start.lock().await;
                        let start = *next;
                        *next += Duration::from_secs_f64(1.0 / rate);
                        start
                    };
                    tokio::time::sleep_until(start.into()).await;
                }
                if Instant::now() >= deadline {
                    return delays;
                }
                match one_flow(&orders, &payments, &settlement).await {
                    Ok(delay) => delays.push(delay),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    });
    let mut delays: Vec<Duration> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flat_map(|worker| worker.unwrap_or_default())
        .collect();
    let elapsed = started.elapsed();
    delays.sort();
    let percentile = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        flows: delays.len() as u64,
        flows_per_second: delays.len() as f64 / elapsed.as_secs_f64(),
        errors: errors.load(Ordering::Relaxed),
        settled_to_paid_p50: percentile(0.50),
        settled_to_paid_p99: percentile(0.99),
        settled_to_paid_max: delays.last().copied().unwrap_or_default(),
    }
}

/// One flow; returns the settlement-to-paid time.
async fn one_flow(
    orders: &order_client::Client,
    payments: &payment_client::Client,
    settlement: &payment_client::Client,
) -> Result<Duration, String> {
    let order = orders
        .create_order(
            None,
            &OrderRequest {
                item_name: "bench item".parse().map_err(|e| format!("{e}"))?,
                quantity: NonZeroU64::new(2).expect("not zero"),
                price: NonZeroU64::new(250).expect("not zero"),
            },
        )
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .data;
    let payment = payments
        .create_payment(
            None,
            &PaymentRequest {
                order_id: order.id,
                amount: NonZeroU64::new(order.total_amount as u64).ok_or("zero total")?,
                provider: "bench".parse().map_err(|e| format!("{e}"))?,
            },
        )
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .data;
    settlement
        .mark_payment_success(&payment.id)
        .await
        .map_err(|e| e.to_string())?;
    let settled = chrono::Utc::now();
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(1);
    loop {
        let order = orders
            .get_order(&order.id)
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .data;
        match order.status {
            // When the order became paid is its `updated_at` (order-service
            // and this program share the machine's clock): reads only
            // confirm it, so their spacing does not blur the figure.
            OrderStatus::Paid => {
                return Ok((order.updated_at - settled).to_std().unwrap_or_default());
            }
            OrderStatus::Pending if Instant::now() < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(READ_AGAIN_AT_MOST_AFTER);
            }
            status => return Err(format!("order {} is {status}", order.id)),
        }
    }
}
