//! Runs the whole system for local use: starts a throwaway PostgreSQL from
//! the machine's server binaries (as the `postgres` user when run as root),
//! creates `order_db` and `payment_db`, serves order-service on
//! 127.0.0.1:8080 and payment-service on 127.0.0.1:8081 with a generated
//! callback secret, and prints how to reach them. Ctrl-C stops everything
//! and deletes the data.

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
    cluster.create_database("payment_db", None).await?;

    let mut orders = harness::order_service::settings_for(&cluster, "order_db");
    orders.port = 8080;
    if let Ok(secret) = std::env::var("PAYMENT_CALLBACK_SECRET") {
        orders.callback_secret = secret;
    }
    let order_service = order_service::start(
        &orders,
        service_support::logging::logger("order-service", "info")?,
    )
    .await?;

    let order_url = format!("http://{}", order_service.local_addr());
    let mut payments = harness::payment_service::settings_for(
        &cluster,
        "payment_db",
        &order_url,
        &orders.callback_secret,
    );
    payments.port = 8081;
    // Production retry timings, unless the environment says otherwise.
    payments.delivery = payment_service::Settings::from_environment()?.delivery;
    let payment_service = payment_service::start(
        &payments,
        service_support::logging::logger("payment-service", "info")?,
    )
    .await?;

    println!("order-service    {order_url}");
    println!("payment-service  http://{}", payment_service.local_addr());
    println!("PostgreSQL       {}", cluster.connection_string("order_db"));
    println!(
        "                 {}",
        cluster.connection_string("payment_db")
    );
    println!("callback secret  {}", orders.callback_secret);
    println!("Ctrl-C stops everything and deletes the databases.");

    let signal = service_support::shutdown::signal_received().await?;
    println!("{signal}: stopping");
    payment_service.shutdown().await?;
    order_service
        .close()
        .await
        .map_err(|e| anyhow::anyhow!("order-service did not stop cleanly: {e}"))?;
    cluster.stop()?;
    Ok(())
}
