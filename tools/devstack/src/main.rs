//! Runs the whole system for local use: PostgreSQL from the machine's
//! server binaries (as the `postgres` user when run as root) with
//! `order_db` and `payment_db`, order-service on 127.0.0.1:8080 and
//! payment-service on 127.0.0.1:8081 sharing a callback secret, with
//! authentication on: devstack is their token issuer (discovery and JWKS on
//! 127.0.0.1:8079) and prints tokens to call them with; `devstack token`
//! prints another. Data, the secret and the issuer's key are kept in
//! `--data-dir` between runs. Ctrl-C stops everything cleanly.

use anyhow::Context;
use clap::Parser;
use local_issuer::KeptIssuer;
use postgres_cluster::{Cluster, database_settings};
use service_support::auth::AuthSettings;
use service_support::lifecycle::Service;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The audience of devstack's tokens.
const AUDIENCE: &str = "orders-and-payments";

/// How long printed tokens last.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The callers devstack prints tokens for: (subject, scopes, who).
const CALLERS: [(&str, &str, &str); 4] = [
    (
        "customer-1",
        "orders:read orders:write payments:read payments:write",
        "a customer",
    ),
    (
        "customer-2",
        "orders:read orders:write payments:read payments:write",
        "another customer",
    ),
    (
        "settlement-connector",
        "payments:settle",
        "the payment provider's connector",
    ),
    (
        "back-office",
        "admin",
        "an administrator (reads everything)",
    ),
];

/// Runs order-service and payment-service with their databases.
#[derive(Parser)]
#[command(name = "devstack")]
struct Options {
    /// Where PostgreSQL's data and the callback secret are kept between runs.
    #[arg(
        long,
        env = "DEVSTACK_DATA_DIR",
        default_value = "/var/tmp/order-payment-devstack"
    )]
    data_dir: PathBuf,
    /// Delete the kept data first and start empty.
    #[arg(long)]
    fresh: bool,
    /// Use this database for order-service instead of starting PostgreSQL.
    #[arg(
        long,
        env = "ORDER_DATABASE_URL",
        requires = "payment_database_url",
        hide_env_values = true
    )]
    order_database_url: Option<String>,
    /// Use this database for payment-service instead of starting PostgreSQL.
    #[arg(
        long,
        env = "PAYMENT_DATABASE_URL",
        requires = "order_database_url",
        hide_env_values = true
    )]
    payment_database_url: Option<String>,
    /// order-service's port.
    #[arg(long, default_value_t = 8080)]
    order_port: u16,
    /// payment-service's port.
    #[arg(long, default_value_t = 8081)]
    payment_port: u16,
    /// The token issuer's port (discovery document and JWKS).
    #[arg(long, default_value_t = 8079)]
    issuer_port: u16,
    /// Run the original open interface: no caller is authenticated and
    /// every caller may do everything. Only on a trusted machine.
    #[arg(long)]
    auth_disabled: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print a new access token from the issuer of the devstack that keeps
    /// its data in --data-dir (it need not be running).
    Token {
        /// The caller: the token's `sub`, who owns what it creates.
        #[arg(long)]
        subject: String,
        /// Space-separated scopes: orders:read orders:write payments:read payments:write payments:settle admin.
        #[arg(long)]
        scope: String,
        /// Seconds until the token expires.
        #[arg(long, default_value_t = 3600)]
        lifetime_secs: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Options::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devstack: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    if let Some(Command::Token {
        subject,
        scope,
        lifetime_secs,
    }) = &options.command
    {
        let token = KeptIssuer::at(&options.data_dir).token(
            subject,
            scope,
            Duration::from_secs(*lifetime_secs),
        )?;
        println!("{token}");
        return Ok(());
    }
    if options.fresh && options.data_dir.exists() {
        std::fs::remove_dir_all(&options.data_dir)
            .with_context(|| format!("cannot delete {}", options.data_dir.display()))?;
    }
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create {}", options.data_dir.display()))?;
    let secret = callback_secret(&options.data_dir)?;

    let (cluster, order_db, payment_db) =
        match (&options.order_database_url, &options.payment_database_url) {
            (Some(orders), Some(payments)) => (
                None,
                database_settings(orders, "order_db"),
                database_settings(payments, "payment_db"),
            ),
            _ => {
                let cluster = Cluster::open(&options.data_dir.join("postgres"))?;
                for name in ["order_db", "payment_db"] {
                    if !cluster.has_database(name).await? {
                        cluster.create_database(name, None).await?;
                    }
                }
                let (orders, payments) = (
                    cluster.database_settings("order_db"),
                    cluster.database_settings("payment_db"),
                );
                (Some(cluster), orders, payments)
            }
        };

    let (order_log, _order_log_writer) = service_support::logging::logger("order-service", "info")?;
    let (payment_log, _payment_log_writer) =
        service_support::logging::logger("payment-service", "info")?;
    let mut orders = order_service::Settings::from_environment(&secret)?;
    let issuer = if options.auth_disabled {
        orders.auth = AuthSettings::open();
        None
    } else if orders.auth.issuer.is_some() {
        // An identity provider of the operator's, from AUTH_ISSUER.
        None
    } else {
        let issuer = KeptIssuer::at(&options.data_dir)
            .serve(([127, 0, 0, 1], options.issuer_port).into(), None, AUDIENCE)
            .await
            .context(
                "the token issuer did not start (is the port in use? --issuer-port picks another)",
            )?;
        orders.auth = AuthSettings::issuer(issuer.url(), AUDIENCE);
        Some(issuer)
    };
    orders.database = order_db;
    orders.server.port = options.order_port;
    let order_service = order_service::start(&orders, order_log)
        .await
        .context("order-service did not start (is the port in use? --order-port picks another)")?;
    let order_url = format!("http://{}", order_service.local_addr());

    let mut payments = payment_service::Settings::from_environment()?;
    payments.database = payment_db;
    payments.server.port = options.payment_port;
    payments.order_service.url = order_url.clone();
    payments.order_service.callback_secret = Some(secret.clone());
    payments.auth = orders.auth.clone();
    let payment_service = match payment_service::start(&payments, payment_log).await {
        Ok(service) => service,
        Err(error) => {
            let _ = order_service.shutdown().await;
            return Err(error.context(
                "payment-service did not start (is the port in use? --payment-port picks another)",
            ));
        }
    };

    println!("order-service    {order_url}   (docs: {order_url}/docs)");
    println!(
        "payment-service  http://{0}   (docs: http://{0}/docs)",
        payment_service.local_addr()
    );
    if let Some(cluster) = &cluster {
        println!("PostgreSQL       {}", cluster.connection_string("order_db"));
        println!(
            "                 {}",
            cluster.connection_string("payment_db")
        );
        println!(
            "data kept in     {} (--fresh starts empty)",
            options.data_dir.display()
        );
    }
    println!("callback secret  {secret}");
    if options.auth_disabled {
        println!("AUTHENTICATION DISABLED: every caller may do everything");
    }
    if let Some(issuer) = &issuer {
        println!("token issuer     {} (audience {AUDIENCE})", issuer.url());
        println!(
            "tokens (24 h; send as Authorization: Bearer <token>; more with `devstack token`):"
        );
        for (subject, scopes, who) in CALLERS {
            println!("  {subject} ({who}; {scopes}):");
            println!("    {}", issuer.token(subject, scopes, TOKEN_LIFETIME));
        }
    }
    println!("Ctrl-C stops everything.");

    let signal = service_support::shutdown::signal_received().await?;
    println!("{signal}: stopping");
    payment_service.shutdown().await?;
    order_service.shutdown().await?;
    if let Some(cluster) = cluster {
        cluster.stop()?;
    }
    println!("stopped");
    Ok(())
}

/// `PAYMENT_CALLBACK_SECRET`, else the one kept in the data directory,
/// else a new one, kept there: a secret that changed between runs would
/// make order-service refuse outcomes recorded before.
fn callback_secret(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(secret) = std::env::var("PAYMENT_CALLBACK_SECRET") {
        return Ok(secret);
    }
    let file = data_dir.join("callback-secret");
    if let Ok(secret) = std::fs::read_to_string(&file) {
        return Ok(secret.trim().to_string());
    }
    let secret = service_support::callback_secret::generate();
    std::fs::write(&file, &secret).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(secret)
}
