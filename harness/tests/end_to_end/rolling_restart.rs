//! Restarting instances under load, as Kubernetes does in a rolling update:
//! the service binaries as processes, two of each behind readiness-checking
//! fronts, whole flows running throughout. Each instance in turn gets
//! SIGTERM (readiness fails, the front stops sending, the listener closes
//! after the drain, requests and deliveries in flight finish) and is started
//! again on its port: the load sees no error and every order is paid. An
//! instance killed with SIGKILL instead loses no outcome either.

use crate::{order_request, payment_request};
use harness::process::ServiceProcess;
use harness::proxy::ConformanceProxy;
use nix::sys::signal::Signal;
use order_client::types::OrderStatus;
use postgres_cluster::Cluster;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use uuid::Uuid;

/// A binary of the workspace, built beside this test by `cargo test --workspace`.
fn binary(name: &str) -> String {
    let path = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --bins`)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

struct Instance {
    binary: String,
    environment: Vec<(&'static str, String)>,
    process: Option<ServiceProcess>,
}

impl Instance {
    async fn start(binary: &str, environment: Vec<(&'static str, String)>) -> Instance {
        let mut instance = Instance {
            binary: binary.to_string(),
            environment,
            process: None,
        };
        instance.start_again().await;
        // Restarts listen where the front expects this instance.
        let port = instance.process.as_ref().unwrap().address.port();
        instance.environment.retain(|(name, _)| *name != "PORT");
        instance.environment.push(("PORT", port.to_string()));
        instance
    }

    fn url(&self) -> String {
        format!("http://{}", self.process.as_ref().unwrap().address)
    }

    async fn start_again(&mut self) {
        let (binary, environment) = (self.binary.clone(), self.environment.clone());
        let process = tokio::task::spawn_blocking(move || {
            let environment: Vec<(&str, String)> =
                environment.iter().map(|(k, v)| (*k, v.clone())).collect();
            ServiceProcess::start(&binary, &environment)
        })
        .await
        .unwrap();
        self.process = Some(process);
    }

    /// Sends `signal` and waits for the exit; true if it exited 0.
    async fn stop(&mut self, signal: Signal) -> bool {
        let process = self.process.take().expect("running");
        tokio::task::spawn_blocking(move || process.stop(signal, Duration::from_secs(15)))
            .await
            .unwrap()
            .0
            .success()
    }
}

struct Stack {
    orders: Vec<Instance>,
    payments: Vec<Instance>,
    order_front: ConformanceProxy,
    payment_front: ConformanceProxy,
}

impl Stack {
    async fn start() -> Stack {
        let cluster = Cluster::shared();
        let (order_db, payment_db) = (
            format!("rolling_orders_{}", Uuid::new_v4().simple()),
            format!("rolling_payments_{}", Uuid::new_v4().simple()),
        );
        for name in [&order_db, &payment_db] {
            cluster.create_database(name, None).await.unwrap();
        }
        let secret = harness::webhook::new_secret();
        let common = |database: &str| {
            vec![
                ("DATABASE_URL", cluster.connection_string(database)),
                ("PORT", "0".to_string()),
                ("PAYMENT_CALLBACK_SECRET", secret.clone()),
                ("AUTH_ISSUER", harness::issuer::issuer().url().to_string()),
                ("AUTH_AUDIENCE", harness::issuer::AUDIENCE.to_string()),
                // Longer than the front's 50 ms readiness checks.
                ("SHUTDOWN_DRAIN_MS", "300".to_string()),
            ]
        };
        let order_binary = binary("order-service");
        let mut orders = Vec::new();
        for _ in 0..2 {
            orders.push(Instance::start(&order_binary, common(&order_db)).await);
        }
        let order_front = ConformanceProxy::balancing(orders.iter().map(Instance::url).collect())
            .await
            .unwrap();
        let payment_binary = binary("payment-service");
        let mut payments = Vec::new();
        for _ in 0..2 {
            let mut environment = common(&payment_db);
            environment.push(("ORDER_SERVICE_URL", order_front.url()));
            environment.push(("CALLBACK_LEASE_MS", "2000".to_string()));
            payments.push(Instance::start(&payment_binary, environment).await);
        }
        let payment_front =
            ConformanceProxy::balancing(payments.iter().map(Instance::url).collect())
                .await
                .unwrap();
        Stack {
            orders,
            payments,
            order_front,
            payment_front,
        }
    }

    fn instance(&mut self, index: usize) -> &mut Instance {
        match index {
            0 | 1 => &mut self.orders[index],
            _ => &mut self.payments[index - 2],
        }
    }

    /// Waits until instance `index` passes its readiness check again, and
    /// its front has seen it pass.
    async fn ready_again(&self, index: usize) {
        let (instance, front, upstream) = match index {
            0 | 1 => (&self.orders[index], &self.order_front, index),
            _ => (&self.payments[index - 2], &self.payment_front, index - 2),
        };
        let url = instance.url();
        harness::wait_until(
            &format!("{url} to be ready again, as its front sees it"),
            Duration::from_secs(30),
            async || {
                match reqwest::get(format!("{url}/readyz")).await {
                    Ok(answer) if answer.status().is_success() => {}
                    Ok(answer) => return Err(format!("readiness: {}", answer.status())),
                    Err(error) => return Err(format!("readiness: {error}")),
                }
                // The front's next readiness check sees it too.
                match front.upstreams_ready()[upstream] {
                    true => Ok(()),
                    false => Err("ready, but not yet to its front".to_string()),
                }
            },
        )
        .await;
    }
}

/// Whole flows from `workers` clients until `stop`; returns the orders
/// whose payment succeeded and every error seen.
async fn load(
    order_url: String,
    payment_url: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<Uuid>, Vec<String>) {
    let paid = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let token = harness::issuer::caller_token();
            let orders = order_client::Client::new(
                &order_url,
                order_client::ClientContext::with_token(token.clone()),
            );
            let payments = payment_client::Client::new(
                &payment_url,
                payment_client::ClientContext::with_token(token),
            );
            let (stop, paid, errors) = (stop.clone(), paid.clone(), errors.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let flow = async {
                        let order = orders
                            .create_order(None, &order_request("Rolling", 1, 250))
                            .await
                            .map_err(|e| format!("create order: {e}"))?
                            .into_inner()
                            .data;
                        let payment = payments
                            .create_payment(None, &payment_request(order.id, order.total_amount))
                            .await
                            .map_err(|e| format!("create payment: {e}"))?
                            .into_inner()
                            .data;
                        payments
                            .mark_payment_success(&payment.id)
                            .await
                            .map_err(|e| format!("success: {e}"))?;
                        Ok::<Uuid, String>(order.id)
                    };
                    match flow.await {
                        Ok(order) => paid.lock().await.push(order),
                        Err(error) => errors.lock().await.push(error),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let paid = paid.lock().await.clone();
    let errors = errors.lock().await.clone();
    (paid, errors)
}

/// Six clients running whole flows through the fronts.
struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<Uuid>, Vec<String>)>,
}

impl Load {
    /// Starts the load and lets it run for half a second.
    async fn start(stack: &Stack) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(load(
            stack.order_front.url(),
            stack.payment_front.url(),
            6,
            stop.clone(),
        ));
        // Not a wait: the load runs a while before anything is restarted.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Load { stop, task }
    }

    /// Lets it run a moment longer, stops it, and returns the orders paid
    /// and the errors seen.
    async fn finish(self) -> (Vec<Uuid>, Vec<String>) {
        // Not a wait: the load runs on a while after the last restart.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Every one of `orders` reads `paid` within 20 s.
async fn all_paid(front: &ConformanceProxy, orders: &[Uuid]) {
    let client = order_client::Client::new(
        &front.url(),
        order_client::ClientContext::with_token(harness::issuer::caller_token()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in orders {
        let left = deadline.saturating_duration_since(Instant::now());
        harness::order_service::wait_for_order(&client, *id, OrderStatus::Paid, left).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_instance_fails_no_request_and_loses_no_outcome() {
    let mut stack = Stack::start().await;
    let load = Load::start(&stack).await;
    for index in 0..4 {
        let instance = stack.instance(index);
        assert!(
            instance.stop(Signal::SIGTERM).await,
            "instance {index} exited 0"
        );
        instance.start_again().await;
        stack.ready_again(index).await;
    }
    let (paid, errors) = load.finish().await;

    assert!(errors.is_empty(), "{} errors: {errors:?}", errors.len());
    assert!(paid.len() >= 20, "the load ran: {} flows", paid.len());
    all_paid(&stack.order_front, &paid).await;
    for front in [&stack.order_front, &stack.payment_front] {
        assert!(front.violations().is_empty(), "{:?}", front.violations());
    }
    eprintln!("rolling restart: {} flows, 0 errors", paid.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_outright_loses_no_outcome() {
    let mut stack = Stack::start().await;
    let load = Load::start(&stack).await;
    let killed = stack.instance(2);
    killed.stop(Signal::SIGKILL).await;
    // Not a wait: the instance stays down a while, under load.
    tokio::time::sleep(Duration::from_millis(500)).await;
    killed.start_again().await;
    stack.ready_again(2).await;
    let (paid, errors) = load.finish().await;

    // Requests in flight to the killed instance fail as their connection
    // drops; every settled payment's outcome still reaches its order,
    // those it had claimed after their lease (2 s here).
    assert!(paid.len() >= 20, "the load ran: {} flows", paid.len());
    all_paid(&stack.order_front, &paid).await;
    eprintln!(
        "SIGKILL: {} flows settled and paid; {} requests failed in flight: {errors:?}",
        paid.len(),
        errors.len()
    );
}
