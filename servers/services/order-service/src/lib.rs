//! order-service: creates and manages orders on PostgreSQL and settles them
//! when payment-service reports a payment's outcome.
//!
//! - `config`: the settings, from flags or the environment.
//! - `entrypoints`: the Dropshot handlers of [`order_api::OrderApi`].
//! - `orders`: the rules (totals, what may change when, settlement).
//! - `store`: the SQL.
//! - `signed_calls`: verification of payment-service's signed calls, and
//!   refusal of replayed ones.
//! - `page_token`: the listing's opaque cursor.

mod config;
mod entrypoints;
mod orders;
mod page_token;
#[cfg(test)]
mod query_plans;
mod signed_calls;
mod store;

pub use config::Settings;

use anyhow::{Context, anyhow};
use dropshot::HttpServer;
use service_support::auth::Authenticator;
use service_support::database::{self, ConcurrentIndex, Database, DatabaseSettings};
use service_support::docs::Docs;
use service_support::idempotency::IdempotencyKeys;
use service_support::metrics::Metrics;
use service_support::operations::{Operated, Shell};
use service_support::shutdown::Draining;
use signed_calls::{CallbackVerifier, SeenCalls};
use store::OrderStore;
use tokio_util::task::AbortOnDropHandle;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Distinguishes this service's migration lock from other users of the
/// same PostgreSQL server ("orders" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6f72_6465_7273;

/// What every handler can reach.
pub struct ServiceContext {
    store: OrderStore,
    keys: IdempotencyKeys,
    /// Prunes expired keys while the server runs.
    _pruner: AbortOnDropHandle<()>,
    auth: Authenticator,
    verifier: CallbackVerifier,
    /// Forgets old signed calls while the server runs.
    _seen_calls_pruner: AbortOnDropHandle<()>,
    shell: Shell,
}

impl Operated for ServiceContext {
    fn shell(&self) -> &Shell {
        &self.shell
    }
    fn readiness(&self) -> Vec<(&'static str, Result<&'static str, String>)> {
        vec![("authentication", self.auth.readiness())]
    }
}

/// Brings the database schema up to date. [`start`] does this too; the
/// harness calls it to prepare a template database.
pub async fn migrate(database: &DatabaseSettings, log: &slog::Logger) -> anyhow::Result<()> {
    database::migrate(
        database,
        embedded::migrations::runner(),
        MIGRATION_LOCK_KEY,
        INDEXES,
        log,
    )
    .await
}

/// Indexes built after the migrations without blocking writes (see
/// [`ConcurrentIndex`]).
const INDEXES: &[ConcurrentIndex] = &[ConcurrentIndex {
    // A customer's listing walks their own orders in (created_at, id) order.
    name: "orders_by_owner_and_creation",
    definition: "ON orders (owner, created_at, id)",
}];

/// Migrates the database and starts serving. The returned server runs
/// until closed; `local_addr()` tells where it listens.
pub async fn start(
    settings: &Settings,
    log: slog::Logger,
) -> anyhow::Result<HttpServer<ServiceContext>> {
    let verifier = CallbackVerifier::new(
        std::iter::once(settings.callback_secret.as_str())
            .chain(settings.previous_callback_secret.as_deref()),
    )
    .context("PAYMENT_CALLBACK_SECRET")?;
    let auth = Authenticator::start(&settings.auth, &log)?;
    migrate(&settings.database, &log).await?;
    let db = Database::new(&settings.database)?;
    let store = OrderStore::new(db.clone());
    let keys = IdempotencyKeys::new(db.clone(), &settings.idempotency);
    let pruner = keys.clone().spawn_pruner(log.clone());
    let seen_calls_pruner = SeenCalls::new(db.clone()).spawn_pruner(log.clone());

    let api = order_api::order_api_mod::api_description::<entrypoints::OrderApiImpl>()
        .map_err(|e| anyhow!("invalid API description: {e}"))?;
    let context = ServiceContext {
        store,
        keys,
        _pruner: pruner,
        auth,
        verifier,
        _seen_calls_pruner: seen_calls_pruner,
        shell: Shell {
            db,
            metrics: Metrics::new(),
            docs: Docs::for_service("order-service", &["orders", "internal"])?,
            draining: Draining::default(),
        },
    };
    let server = service_support::server::start(api, context, &settings.server, log)?;
    Ok(server)
}
