use clap::{Parser, Subcommand};
use service_support::auth::AuthSettings;
use service_support::database::DatabaseSettings;
use service_support::idempotency::IdempotencySettings;
use service_support::server::ServerSettings;
use service_support::shutdown::DrainSettings;
use std::time::Duration;
use uuid::Uuid;

/// payment-service: creates payments for orders and reliably tells
/// order-service their outcome.
///
/// Every setting can be given as a flag or as the environment variable
/// shown beside it. Without a subcommand, the service runs.
#[derive(Clone, Parser)]
#[command(
    name = "payment-service",
    version,
    mut_arg("db_name", |a| a.default_value("payment_db").required(false)),
    mut_arg("port", |a| a.default_value("8081").required(false))
)]
pub struct Settings {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub server: ServerSettings,
    /// Seconds after which a payment nobody settled expires: it becomes `failed`, and so does its order, which is free no longer.
    #[arg(long, env = "PAYMENT_EXPIRY_SECS", default_value_t = 24 * 3600)]
    pub expiry_secs: u64,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub idempotency: IdempotencySettings,
    #[command(flatten)]
    pub drain: DrainSettings,
    #[command(flatten)]
    pub order_service: OrderServiceSettings,
    #[command(flatten)]
    pub delivery: DeliverySettings,
}

/// How to reach order-service.
#[derive(Clone, clap::Args)]
pub struct OrderServiceSettings {
    /// Base URL of order-service.
    #[arg(
        long = "order-service-url",
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Deadline in milliseconds for one call to order-service (connecting included).
    #[arg(
        long = "order-service-timeout-ms",
        env = "ORDER_SERVICE_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub timeout_ms: u64,
    /// The Standard Webhooks secret callbacks are signed with: whsec_ followed by the base64 of at least 24 random bytes. Required to serve.
    #[arg(
        long = "callback-secret",
        env = "PAYMENT_CALLBACK_SECRET",
        hide_env_values = true
    )]
    pub callback_secret: Option<String>,
    /// An access token with scope admin, for `reconcile` to list order-service's pending orders when order-service authenticates its callers.
    #[arg(
        long = "order-service-token",
        env = "ORDER_SERVICE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl OrderServiceSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// How payment outcomes are delivered to order-service.
#[derive(Clone, Debug, clap::Args)]
pub struct DeliverySettings {
    /// First retry delay bound in milliseconds; the bound doubles per attempt (full jitter).
    #[arg(
        long = "callback-retry-base-ms",
        env = "CALLBACK_RETRY_BASE_MS",
        default_value_t = 1000
    )]
    pub retry_base_ms: u64,
    /// Largest retry delay in milliseconds.
    #[arg(
        long = "callback-retry-cap-ms",
        env = "CALLBACK_RETRY_CAP_MS",
        default_value_t = 300_000
    )]
    pub retry_cap_ms: u64,
    /// How long failures are retried, in seconds, before the outcome becomes a dead letter (default 72 hours).
    #[arg(long = "callback-retry-window-secs", env = "CALLBACK_RETRY_WINDOW_SECS", default_value_t = 72 * 3600)]
    pub retry_window_secs: u64,
    /// How long an instance holds a claimed outcome, in milliseconds, before another may take it over.
    #[arg(
        long = "callback-lease-ms",
        env = "CALLBACK_LEASE_MS",
        default_value_t = 30_000
    )]
    pub lease_ms: u64,
    /// How often to look for due outcomes without a notification, in milliseconds.
    #[arg(
        long = "callback-poll-ms",
        env = "CALLBACK_POLL_MS",
        default_value_t = 1000
    )]
    pub poll_ms: u64,
    /// How long a delivered outcome's record is kept, in seconds, before it is removed (default 7 days); the payment still shows when it was delivered.
    #[arg(
        long = "callback-retention-secs",
        env = "CALLBACK_RETENTION_SECS",
        default_value_t = 7 * 24 * 3600
    )]
    pub retention_secs: u64,
}

/// Operator commands on the delivery of outcomes to order-service.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Print how many outcomes are in each delivery state.
    Notifications,
    /// List every outcome order-service refused (`rejected`), never
    /// acknowledged within its retry window (`dead_letter`), or has not
    /// acknowledged for five minutes (`pending`), with the last reason: the
    /// payments on which the two services may disagree.
    Reconcile,
    /// Deliver dead-lettered or rejected outcomes again, from now on with a fresh retry window.
    Replay {
        /// The payments whose outcome to replay; all dead letters and rejections if none are given.
        payment_ids: Vec<Uuid>,
    },
}

impl Settings {
    /// What a bare `payment-service` command line gives: the defaults,
    /// overridden by the environment.
    pub fn from_environment() -> anyhow::Result<Settings> {
        Ok(Settings::try_parse_from(["payment-service"])?)
    }
}

impl std::fmt::Debug for Settings {
    // By hand, so the callback secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database", &self.database)
            .field("server", &self.server)
            .field("expiry_secs", &self.expiry_secs)
            .field("auth", &self.auth)
            .field("idempotency", &self.idempotency)
            .field("drain", &self.drain)
            .field("order_service_url", &self.order_service.url)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn settings_are_a_valid_command_line() {
        Settings::command().debug_assert();
    }

    #[test]
    fn defaults_suit_production() {
        let settings = Settings::try_parse_from(["payment-service"]).unwrap();
        assert_eq!(settings.database.name, "payment_db");
        assert_eq!(settings.server.port, 8081);
        assert_eq!(settings.delivery.retry_window_secs, 259_200);
        assert_eq!(settings.expiry_secs, 86_400);
        assert!(settings.command.is_none());
    }
}
