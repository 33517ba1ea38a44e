use clap::Parser;
use service_support::auth::AuthSettings;
use service_support::database::DatabaseSettings;
use service_support::idempotency::IdempotencySettings;
use service_support::server::ServerSettings;
use service_support::shutdown::DrainSettings;

/// order-service: creates and manages orders, and settles them when
/// payment-service reports a payment's outcome.
///
/// Every setting can be given as a flag or as the environment variable
/// shown beside it.
#[derive(Clone, Parser)]
#[command(
    name = "order-service",
    version,
    mut_arg("db_name", |a| a.default_value("order_db").required(false)),
    mut_arg("port", |a| a.default_value("8080").required(false))
)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub server: ServerSettings,
    /// The Standard Webhooks secret payment-service signs callbacks with: whsec_ followed by the base64 of at least 24 random bytes. Required.
    #[arg(long, env = "PAYMENT_CALLBACK_SECRET", hide_env_values = true)]
    pub callback_secret: String,
    /// During a secret rotation, the secret being retired; callbacks signed with either secret are accepted.
    #[arg(long, env = "PAYMENT_CALLBACK_SECRET_PREVIOUS", hide_env_values = true)]
    pub previous_callback_secret: Option<String>,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub idempotency: IdempotencySettings,
    #[command(flatten)]
    pub drain: DrainSettings,
}

impl Settings {
    /// The settings from the environment alone, with `callback_secret`, for
    /// a launcher that runs the service in its own process.
    pub fn from_environment(callback_secret: &str) -> anyhow::Result<Settings> {
        Ok(Settings::try_parse_from([
            "order-service",
            "--callback-secret",
            callback_secret,
        ])?)
    }
}

impl std::fmt::Debug for Settings {
    // By hand, so the callback secrets never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database", &self.database)
            .field("server", &self.server)
            .field("auth", &self.auth)
            .field("idempotency", &self.idempotency)
            .field("drain", &self.drain)
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
    fn the_database_name_defaults_to_order_db() {
        let settings =
            Settings::try_parse_from(["order-service", "--callback-secret", "x"]).unwrap();
        assert_eq!(settings.database.name, "order_db");
        assert_eq!(settings.server.port, 8080);
    }
}
