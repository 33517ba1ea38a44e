//! payment-service: creates payments for orders on PostgreSQL and tells
//! order-service their outcome, reliably.
//!
//! - `config`: the settings, from flags or the environment.
//! - `entrypoints`: the Dropshot handlers of [`payment_api::PaymentApi`].
//! - `payments`: the rules (one payment per order, one settlement per payment).
//! - `order_gateway`: calls to order-service through the generated client.
//! - `store`: the payments' SQL.
//! - `delivery`: the outcomes' delivery to order-service, at least once:
//!   the outbox, the dispatcher, its retries and leases, the retention.
//! - `expiry`: failing payments nobody settled in time, giving up intents
//!   nobody finished.

mod config;
mod delivery;
mod entrypoints;
mod expiry;
mod order_gateway;
mod payments;
#[cfg(test)]
mod query_plans;
mod store;

pub use config::{Command, DeliverySettings, OrderServiceSettings, Settings};

use anyhow::{Context, anyhow};
use delivery::{Delivery, DispatcherHandle, Outbox};
use dropshot::HttpServer;
use expiry::Expiry;
use service_support::auth::Authenticator;
use service_support::database::{self, Database, DatabaseSettings};
use service_support::docs::Docs;
use service_support::idempotency::IdempotencyKeys;
use service_support::lifecycle::Service;
use service_support::metrics::Metrics;
use service_support::operations::{Operated, Shell};
use service_support::shutdown::Draining;
use std::net::SocketAddr;
use std::time::Duration;
use store::PaymentStore;
use tokio_util::task::AbortOnDropHandle;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Distinguishes this service's migration lock ("payments" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7061_796d_656e_7473;

/// What every handler can reach.
pub struct ServiceContext {
    store: PaymentStore,
    keys: IdempotencyKeys,
    auth: Authenticator,
    /// Prunes expired keys while the server runs.
    _pruner: AbortOnDropHandle<()>,
    orders: order_client::Client,
    delivery: Delivery,
    shell: Shell,
}

impl Operated for ServiceContext {
    fn shell(&self) -> &Shell {
        &self.shell
    }
    fn readiness(&self) -> Vec<(&'static str, Result<&'static str, String>)> {
        vec![
            ("dispatcher", self.delivery.readiness()),
            ("authentication", self.auth.readiness()),
        ]
    }
    async fn before_scrape(&self) {
        self.delivery.refresh_gauges().await;
    }
}

/// A running payment-service: the HTTP server and the outcome dispatcher.
pub struct PaymentService {
    server: HttpServer<ServiceContext>,
    dispatcher: DispatcherHandle,
}

impl Service for PaymentService {
    fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    fn begin_draining(&self) {
        self.server.begin_draining();
    }

    /// Stops accepting requests, finishes those in flight and the
    /// deliveries under way, then returns.
    async fn shutdown(self) -> anyhow::Result<()> {
        self.server.shutdown().await?;
        self.dispatcher.shutdown().await;
        Ok(())
    }
}

/// Brings the database schema up to date. [`start`] does this too.
pub async fn migrate(database: &DatabaseSettings, log: &slog::Logger) -> anyhow::Result<()> {
    database::migrate(
        database,
        embedded::migrations::runner(),
        MIGRATION_LOCK_KEY,
        &[],
        log,
    )
    .await
}

/// Migrates the database, starts the dispatcher, and starts serving.
pub async fn start(settings: &Settings, log: slog::Logger) -> anyhow::Result<PaymentService> {
    let secret = settings
        .order_service
        .callback_secret
        .as_deref()
        .context("PAYMENT_CALLBACK_SECRET is required: the secret shared with order-service")?;
    let auth = Authenticator::start(&settings.auth, &log)?;
    migrate(&settings.database, &log).await?;
    let db = Database::new(&settings.database)?;
    let orders = order_gateway::order_client(&settings.order_service, secret)?;
    let metrics = Metrics::new();
    let (delivery, mut dispatcher) = Delivery::start(
        &settings.delivery,
        &settings.database,
        &db,
        orders.clone(),
        &metrics,
        &log,
    )?;
    let expiry = Expiry {
        store: PaymentStore::new(db.clone()),
        after: Duration::from_secs(settings.expiry_secs),
        delivery: delivery.clone(),
        orders: orders.clone(),
        // Longer than a create runs: its two statements and two calls.
        intents_after: 2 * (settings.order_service.timeout() + settings.database.timeout()),
        log: log.new(slog::o!("component" => "expiry")),
    }
    .spawn(dispatcher.stopped());
    dispatcher.add_task(expiry);
    let api = payment_api::payment_api_mod::api_description::<entrypoints::PaymentApiImpl>()
        .map_err(|e| anyhow!("invalid API description: {e}"))?;
    let keys = IdempotencyKeys::new(db.clone(), &settings.idempotency);
    let context = ServiceContext {
        store: PaymentStore::new(db.clone()),
        _pruner: keys
            .clone()
            .spawn_pruner(log.new(slog::o!("component" => "idempotency"))),
        keys,
        auth,
        orders,
        delivery,
        shell: Shell {
            db,
            metrics,
            docs: Docs::for_service("payment-service", &["payments"])?,
            draining: Draining::default(),
        },
    };
    let server = match service_support::server::start(api, context, &settings.server, log) {
        Ok(server) => server,
        Err(error) => {
            dispatcher.shutdown().await;
            return Err(error);
        }
    };
    Ok(PaymentService { server, dispatcher })
}

/// How long an outcome may wait for order-service's acknowledgement before
/// reconciliation lists it (its retries go on).
const UNACKNOWLEDGED_AFTER: Duration = Duration::from_secs(300);

/// The first part of the reconciliation report: order-service's pending
/// orders waiting for a payment this service does not hold as a payment,
/// one line each, then their count. A payment still unfinished (an intent)
/// is resolved by the expiry; one not held at all would keep its order
/// waiting for good, which the protocol rules out.
async fn orders_waiting_in_vain(settings: &Settings) -> anyhow::Result<String> {
    let orders = order_gateway::order_client(
        &settings.order_service,
        settings
            .order_service
            .callback_secret
            .as_deref()
            .unwrap_or_default(),
    )?;
    let waiting = order_gateway::orders_waiting_for_payment(&orders).await?;
    let ids: Vec<_> = waiting.iter().map(|(_, payment)| *payment).collect();
    let held: std::collections::HashMap<_, _> =
        PaymentStore::new(Database::new(&settings.database)?)
            .held(&ids)
            .await?
            .into_iter()
            .collect();
    let mut report = String::from("order_id\tpayment_id\treason\n");
    let mut count = 0;
    for (order, payment) in waiting {
        let reason = match held.get(&payment) {
            Some(true) => continue,
            Some(false) => "unfinished: the expiry resolves it",
            None => "payment-service holds no such payment",
        };
        count += 1;
        report.push_str(&format!("{order}\t{payment}\t{reason}\n"));
    }
    report.push_str(&format!(
        "{count} order(s) waiting for a payment payment-service does not hold\n"
    ));
    Ok(report)
}

/// Runs an operator command against the database.
pub async fn run_command(
    settings: &Settings,
    command: &Command,
    log: &slog::Logger,
) -> anyhow::Result<String> {
    migrate(&settings.database, log).await?;
    let outbox = Outbox::new(Database::new(&settings.database)?);
    match command {
        Command::Notifications => {
            let counts = outbox.counts().await?;
            Ok(counts
                .iter()
                .map(|(state, count)| format!("{state}\t{count}"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        Command::Reconcile => {
            let mut report = orders_waiting_in_vain(settings).await?;
            let found = outbox.disagreements(UNACKNOWLEDGED_AFTER).await?;
            report
                .push_str("payment_id\torder_id\toutcome\tstate\tattempts\trecorded_at\treason\n");
            for disagreement in &found {
                report.push_str(&format!("{disagreement}\n"));
            }
            report.push_str(&format!(
                "{} payment(s) whose outcome order-service has not taken",
                found.len()
            ));
            Ok(report)
        }
        Command::Replay { payment_ids } => {
            let window = Duration::from_secs(settings.delivery.retry_window_secs);
            let count = outbox.replay(payment_ids, window).await?;
            Ok(format!("{count} outcome(s) will be delivered again"))
        }
    }
}
