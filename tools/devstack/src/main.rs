//! Runs the whole system for local use: PostgreSQL from the machine's
//! server binaries (as the `postgres` user when run as root) with
//! `order_db` and `payment_db`, order-service on 127.0.0.1:8080 and
//! payment-service on 127.0.0.1:8081 sharing a callback secret. Data and
//! the secret are kept in `--data-dir` between runs. Ctrl-C stops
//! everything cleanly.

use anyhow::Context;
use clap::Parser;
use postgres_cluster::{Cluster, database_settings};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    orders.database = order_db;
    orders.port = options.order_port;
    let order_service = order_service::start(&orders, order_log)
        .await
        .context("order-service did not start (is the port in use? --order-port picks another)")?;
    let order_url = format!("http://{}", order_service.local_addr());

    let mut payments = payment_service::Settings::from_environment()?;
    payments.database = payment_db;
    payments.port = options.payment_port;
    payments.order_service.url = order_url.clone();
    payments.order_service.callback_secret = Some(secret.clone());
    let payment_service = match payment_service::start(&payments, payment_log).await {
        Ok(service) => service,
        Err(error) => {
            let _ = order_service.close().await;
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
    println!("Ctrl-C stops everything.");

    let signal = service_support::shutdown::signal_received().await?;
    println!("{signal}: stopping");
    payment_service.shutdown().await?;
    order_service
        .close()
        .await
        .map_err(|e| anyhow::anyhow!("order-service did not stop cleanly: {e}"))?;
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
