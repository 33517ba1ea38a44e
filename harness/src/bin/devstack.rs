//! Runs order-service for local use: starts a throwaway PostgreSQL from
//! the machine's server binaries (as the `postgres` user when run as root),
//! creates `order_db`, serves on 127.0.0.1:8080 (or `PORT`), and prints how
//! to call it. Ctrl-C stops the service and PostgreSQL and deletes the data.

use harness::order_service::settings_for;
use harness::postgres::Cluster;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devstack: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cluster = Cluster::start()?;
    cluster.create_database("order_db", None).await?;
    let mut settings = settings_for(&cluster, "order_db");
    settings.port = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| anyhow::anyhow!("PORT={port:?} is not a port number"))?,
        Err(_) => 8080,
    };
    if let Ok(secret) = std::env::var("PAYMENT_CALLBACK_SECRET") {
        settings.callback_secret = secret;
    }
    let log = service_support::logging::logger("order-service", "info")?;
    let server = order_service::start(&settings, log).await?;

    println!("order-service  http://{}", server.local_addr());
    println!("PostgreSQL     {}", cluster.connection_string("order_db"));
    println!(
        "callback secret (PAYMENT_CALLBACK_SECRET): {}",
        settings.callback_secret
    );
    println!("Ctrl-C stops both and deletes the database.");

    let signal = service_support::shutdown::signal_received().await?;
    println!("{signal}: stopping");
    server
        .close()
        .await
        .map_err(|e| anyhow::anyhow!("order-service did not stop cleanly: {e}"))?;
    cluster.stop()?;
    Ok(())
}
