//! Judged as Jepsen judges a system: concurrent clients run the whole flow
//! (create an order, pay it, settle the payment) while both databases are
//! made slow as production makes them slow (rows held by another
//! connection's long transaction, a backend stopped by SIGSTOP) and while
//! order-service answers payment-service later than it waits. Every answer
//! is recorded; then each unknown outcome is retried once with its key, and
//! the final state of both databases is checked against the answers: every
//! success is there once, every refusal left nothing, every unknown outcome
//! settled on its retry, no order waits for a payment payment-service does
//! not hold, and the two services agree on every order.

use crate::System;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

const CLIENTS: usize = 6;
/// How long the clients run flows while the faults go on.
const RUN_FOR: Duration = Duration::from_secs(6);

/// What an answer says was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// 2xx: it was done.
    Done,
    /// A 4xx or a 503 that says nothing was done.
    Refused,
    /// No answer, or one that says the outcome is not known.
    Unknown,
}

/// One request and what it was answered.
#[derive(Debug, Clone)]
struct Answer {
    class: Class,
    status: Option<StatusCode>,
    error_code: String,
    data: Value,
}

/// One client's run of the flow, and every answer it got.
#[derive(Debug, Default)]
struct Flow {
    item: String,
    price: u64,
    order_key: String,
    payment_key: String,
    success: bool,
    order: Option<Answer>,
    payment: Option<Answer>,
    settlement: Option<Answer>,
}

impl Flow {
    fn order_id(&self) -> Option<Uuid> {
        done_id(&self.order)
    }

    fn payment_id(&self) -> Option<Uuid> {
        done_id(&self.payment)
    }
}

fn done_id(answer: &Option<Answer>) -> Option<Uuid> {
    let answer = answer.as_ref().filter(|a| a.class == Class::Done)?;
    answer.data["id"].as_str()?.parse().ok()
}

/// Sends one request through the service's conformance proxy and
/// classifies its answer. Every answer, error or not, is also checked
/// against the contract by the proxy.
async fn send(
    http: &reqwest::Client,
    url: String,
    method: Method,
    key: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = http.request(method, url).timeout(Duration::from_secs(10));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Answer {
                class: Class::Unknown,
                status: None,
                error_code: error.to_string(),
                data: Value::Null,
            };
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error_code = body["data"]["error_code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let class = if status.is_success() {
        Class::Done
    } else if error_code == "OUTCOME_UNKNOWN"
        || error_code == "ORDER_SERVICE_BAD_RESPONSE"
        || status == StatusCode::INTERNAL_SERVER_ERROR
    {
        Class::Unknown
    } else {
        Class::Refused
    };
    Answer {
        class,
        status: Some(status),
        error_code,
        data: body["data"].clone(),
    }
}

async fn create_order(system: &System, flow: &Flow) -> Answer {
    send(
        &system.orders.http,
        system.orders.url("/orders"),
        Method::POST,
        Some(&flow.order_key),
        Some(json!({"item_name": flow.item, "quantity": 1, "price": flow.price})),
    )
    .await
}

async fn create_payment(system: &System, flow: &Flow, order: Uuid) -> Answer {
    send(
        &system.payments.http,
        system.payments.url("/payments"),
        Method::POST,
        Some(&flow.payment_key),
        Some(json!({"order_id": order, "amount": flow.price, "provider": "stripe"})),
    )
    .await
}

async fn settle(system: &System, flow: &Flow, payment: Uuid) -> Answer {
    let outcome = if flow.success { "success" } else { "failed" };
    send(
        &system.payments.http,
        system
            .payments
            .url(&format!("/payments/{outcome}/{payment}")),
        Method::PUT,
        None,
        None,
    )
    .await
}

/// One client: its flows one after the other, each as far as its answers
/// allow, never retrying while the faults go on.
async fn client(system: &System, client: usize, known: &Known) -> Vec<Flow> {
    let mut flows = Vec::new();
    let started = std::time::Instant::now();
    for n in 0.. {
        if started.elapsed() > RUN_FOR {
            break;
        }
        let mut flow = Flow {
            item: format!("jepsen-{client}-{n}"),
            price: 100 + (client * 1000 + n) as u64,
            order_key: format!("order-{client}-{n}"),
            payment_key: format!("payment-{client}-{n}"),
            success: n % 3 != 2,
            ..Flow::default()
        };
        flow.order = Some(create_order(system, &flow).await);
        if let Some(order) = flow.order_id() {
            known.orders.lock().unwrap().push(order);
            flow.payment = Some(create_payment(system, &flow, order).await);
        }
        if let Some(payment) = flow.payment_id() {
            known.payments.lock().unwrap().push(payment);
            flow.settlement = Some(settle(system, &flow, payment).await);
        }
        flows.push(flow);
    }
    flows
}

/// The rows clients have created, for the faults to hold.
#[derive(Default)]
struct Known {
    orders: Mutex<Vec<Uuid>>,
    payments: Mutex<Vec<Uuid>>,
}

/// A choice among `n`, at random.
fn pick(n: usize) -> usize {
    (Uuid::new_v4().as_u128() % n.max(1) as u128) as usize
}

/// What a fault did.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Nothing,
    RowLocked,
    TableLocked,
    BackendStopped,
}

/// Holds `row` of `table` locked in a transaction of `database` for `hold`.
async fn hold_row(
    mut database: tokio_postgres::Client,
    table: &'static str,
    row: Uuid,
    hold: Duration,
) -> Fault {
    // A row locked already by another fault: this one waits its turn.
    let lock = harness::locks::hold_row(&mut database, table, row).await;
    // Not a wait: holding the lock for `hold` is the fault.
    tokio::time::sleep(hold).await;
    let _ = lock.rollback().await;
    Fault::RowLocked
}

/// A backend stopped by SIGSTOP until this is dropped.
struct Stopped(Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

/// Holds every write to `table` of `database` waiting for `hold`, as a
/// long transaction or a migration would.
async fn hold_table(mut database: tokio_postgres::Client, table: &str, hold: Duration) -> Fault {
    let lock = database.transaction().await.unwrap();
    if lock
        .batch_execute(&format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        .await
        .is_err()
    {
        return Fault::Nothing;
    }
    // Not a wait: holding the lock for `hold` is the fault.
    tokio::time::sleep(hold).await;
    let _ = lock.rollback().await;
    Fault::TableLocked
}

/// Stops one of the service's backends in `database` for `hold`.
async fn stop_a_backend(database: tokio_postgres::Client, hold: Duration) -> Fault {
    let backends: Vec<i32> = database
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    if backends.is_empty() {
        return Fault::Nothing;
    }
    let pid = Pid::from_raw(backends[pick(backends.len())]);
    if kill(pid, Signal::SIGSTOP).is_err() {
        return Fault::Nothing;
    }
    let _stopped = Stopped(pid);
    // Not a wait: the backend stopped for `hold` is the fault.
    tokio::time::sleep(hold).await;
    Fault::BackendStopped
}

/// Starts a fault every 120 ms until `running` is false, then waits for
/// every fault to end and counts them: at either service, a row a client
/// works on right now locked for 0.3 to 0.9 s (the services' deadlines are
/// 0.5 s, and payment-service waits 0.3 s for order-service), now and then
/// the whole table held for as long, or a backend stopped for 0.4 s.
async fn faults(system: &System, known: &Known, running: &AtomicBool) -> BTreeMap<Fault, usize> {
    let mut faults = JoinSet::new();
    while running.load(Ordering::Relaxed) {
        let at_orders = pick(2) == 0;
        let (database, rows, table) = if at_orders {
            (system.orders.database().await, &known.orders, "orders")
        } else {
            (
                system.payments.database().await,
                &known.payments,
                "payments",
            )
        };
        let hold = Duration::from_millis(300 + pick(600) as u64);
        match pick(10) {
            0..5 => {
                // One of the rows created last: the clients work on those.
                let row = {
                    let rows = rows.lock().unwrap();
                    let recent = &rows[rows.len().saturating_sub(CLIENTS)..];
                    (!recent.is_empty()).then(|| recent[pick(recent.len())])
                };
                if let Some(row) = row {
                    faults.spawn(hold_row(database, table, row, hold));
                }
            }
            5 => {
                faults.spawn(hold_table(database, table, hold));
            }
            _ => {
                faults.spawn(stop_a_backend(database, Duration::from_millis(400)));
            }
        }
        // Not a wait: the faults' pace.
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let mut counts = BTreeMap::new();
    while let Some(fault) = faults.join_next().await {
        *counts.entry(fault.expect("a fault ends")).or_default() += 1;
    }
    counts
}

/// Retries an unknown outcome once, with its key: its answer must be
/// definite. A settlement retried finds the payment settled (409
/// `PAYMENT_NOT_PENDING`) if the first one took effect: that is its
/// answer then.
async fn settle_unknowns(system: &System, flow: &mut Flow, violations: &mut Vec<String>) -> usize {
    let mut retried = 0;
    let unknown =
        |answer: &Option<Answer>| answer.as_ref().is_some_and(|a| a.class == Class::Unknown);
    if unknown(&flow.order) {
        retried += 1;
        flow.order = Some(create_order(system, flow).await);
    }
    if unknown(&flow.payment) {
        retried += 1;
        let order = flow.order_id().expect("a payment follows its order");
        flow.payment = Some(create_payment(system, flow, order).await);
    }
    if unknown(&flow.settlement) {
        retried += 1;
        let payment = flow.payment_id().expect("a settlement follows its payment");
        let mut answer = settle(system, flow, payment).await;
        if answer.error_code == "PAYMENT_NOT_PENDING" {
            answer.class = Class::Done;
        }
        flow.settlement = Some(answer);
    }
    for (what, answer) in [
        ("order", &flow.order),
        ("payment", &flow.payment),
        ("settlement", &flow.settlement),
    ] {
        if let Some(answer) = answer.as_ref().filter(|a| a.class == Class::Unknown) {
            violations.push(format!(
                "{}: the {what}'s outcome is still unknown after a retry: {answer:?}",
                flow.item
            ));
        }
    }
    retried
}

/// The final state of both databases, read directly.
struct FinalState {
    /// item name → (order id, status, payment id)
    orders: BTreeMap<String, Vec<(Uuid, String, Option<Uuid>)>>,
    /// payment id → (order id, status, attached)
    payments: BTreeMap<Uuid, (Uuid, String, bool)>,
}

async fn final_state(system: &System) -> FinalState {
    let mut orders: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for row in system
        .orders
        .database()
        .await
        .query("SELECT item_name, id, status, payment_id FROM orders", &[])
        .await
        .unwrap()
    {
        orders
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2), row.get(3)));
    }
    let payments = system
        .payments
        .database()
        .await
        .query("SELECT id, order_id, status, attached FROM payments", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
        .collect();
    FinalState { orders, payments }
}

/// Every answer a flow got against the final state.
fn check_flow(flow: &Flow, state: &FinalState, violations: &mut Vec<String>) {
    let mut violated = |what: String| violations.push(format!("{}: {what}", flow.item));
    let orders = state.orders.get(&flow.item).cloned().unwrap_or_default();
    let class = |answer: &Option<Answer>| answer.as_ref().map(|a| a.class);
    match (class(&flow.order), flow.order_id()) {
        (Some(Class::Done), Some(id)) if orders.len() == 1 && orders[0].0 == id => {}
        (Some(Class::Done), _) => violated(format!("created once, yet {orders:?}")),
        (_, _) if !orders.is_empty() => violated(format!("refused, yet {orders:?}")),
        _ => return,
    }
    let Some((order, order_status, attached)) = orders.first().cloned() else {
        return;
    };
    let held: Vec<_> = state
        .payments
        .iter()
        .filter(|(_, (of, _, _))| *of == order)
        .collect();
    match (class(&flow.payment), flow.payment_id()) {
        (Some(Class::Done), Some(id)) => {
            if held.len() != 1 || *held[0].0 != id || !held[0].1.2 || attached != Some(id) {
                violated(format!(
                    "payment {id} made, yet payment-service holds {held:?} and the order {attached:?}"
                ));
            }
        }
        (Some(Class::Done), None) => violated("a payment answered without an id".into()),
        (Some(_), _) | (None, _) => {
            if !held.is_empty() || attached.is_some() {
                violated(format!(
                    "no payment made, yet payment-service holds {held:?} and the order {attached:?}"
                ));
            }
            return;
        }
    }
    let payment_status = &held[0].1.1;
    let settled = match (class(&flow.settlement), flow.success) {
        (Some(Class::Done), true) => ("success", "paid"),
        (Some(Class::Done), false) => ("failed", "failed"),
        _ => ("pending", "pending"),
    };
    if (payment_status.as_str(), order_status.as_str()) != settled {
        violated(format!(
            "answered {:?}, yet the payment is {payment_status} and the order {order_status}",
            flow.settlement
                .as_ref()
                .map(|a| (a.status, a.error_code.clone()))
        ));
    }
}

/// The two services agree on every order and payment, whoever made them.
fn check_agreement(state: &FinalState, violations: &mut Vec<String>) {
    for (payment, (order, status, attached)) in &state.payments {
        if !attached {
            violations.push(format!("payment {payment} is still unfinished"));
            continue;
        }
        let expected = match status.as_str() {
            "success" => "paid",
            "failed" => "failed",
            _ => "pending",
        };
        let found = state
            .orders
            .values()
            .flatten()
            .find(|(id, _, _)| id == order);
        match found {
            Some((_, order_status, Some(by))) if by == payment && order_status == expected => {}
            other => violations.push(format!(
                "payment {payment} is {status}, yet its order {order} is {other:?}"
            )),
        }
    }
    for (order, status, attached) in state.orders.values().flatten() {
        if let Some(payment) = attached
            && !state.payments.get(payment).is_some_and(|(_, _, a)| *a)
        {
            violations.push(format!(
                "order {order} ({status}) waits for payment {payment}, which payment-service does not hold"
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_true_while_the_databases_are_slow() {
    let system = System::start_adjusted(
        |orders| orders.database.timeout_ms = 500,
        |payments| {
            payments.order_service.timeout_ms = 300;
            payments.database.timeout_ms = 500;
        },
    )
    .await;
    let known = Known::default();
    let running = AtomicBool::new(true);

    let clients = async {
        let runs =
            futures::future::join_all((0..CLIENTS).map(|c| client(&system, c, &known))).await;
        running.store(false, Ordering::Relaxed);
        runs.into_iter().flatten().collect::<Vec<_>>()
    };
    let (mut flows, faults) = tokio::join!(clients, faults(&system, &known, &running));

    let mut answers: BTreeMap<Class, usize> = BTreeMap::new();
    let mut requests = 0;
    for answer in flows
        .iter()
        .flat_map(|f| [&f.order, &f.payment, &f.settlement])
        .flatten()
    {
        requests += 1;
        *answers.entry(answer.class).or_default() += 1;
    }
    let mut violations = Vec::new();
    for answer in flows
        .iter()
        .flat_map(|f| [&f.order, &f.payment, &f.settlement])
        .flatten()
        .filter(|a| a.status == Some(StatusCode::INTERNAL_SERVER_ERROR))
    {
        violations.push(format!("a 500: {answer:?}"));
    }
    let mut retried = 0;
    for flow in &mut flows {
        retried += settle_unknowns(&system, flow, &mut violations).await;
    }

    // Quiescence: every unfinished payment resolved, every outcome delivered.
    let payments_db = system.payments.database().await;
    harness::wait_until(
        "both services to settle down",
        Duration::from_secs(30),
        async || {
            let row = payments_db
                .query_one(
                    "SELECT (SELECT count(*) FROM payments WHERE NOT attached), \
                 (SELECT count(*) FROM order_notifications WHERE state = 'pending')",
                    &[],
                )
                .await
                .unwrap();
            let (unfinished, undelivered): (i64, i64) = (row.get(0), row.get(1));
            (unfinished == 0 && undelivered == 0)
                .then_some(())
                .ok_or(format!(
                    "{unfinished} unfinished payment(s), {undelivered} undelivered outcome(s)"
                ))
        },
    )
    .await;

    let state = final_state(&system).await;
    for flow in &flows {
        check_flow(flow, &state, &mut violations);
    }
    check_agreement(&state, &mut violations);
    eprintln!(
        "slow databases: {requests} requests; answers {answers:?}; {retried} unknown outcome(s) \
         retried once; faults {faults:?}; violations: {}",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{} violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(
        answers.len() > 1 && faults.len() > 2,
        "the faults changed no answer: {answers:?}, {faults:?}"
    );
    system.cleanup().await;
}
