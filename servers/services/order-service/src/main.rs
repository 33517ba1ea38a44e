use clap::Parser;
use order_service::Settings;
use service_support::lifecycle::{self, Run};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    lifecycle::run(
        "order-service",
        &settings.server,
        &settings.drain,
        async |log| {
            Ok(Run::Serving(
                order_service::start(&settings, log.clone()).await?,
            ))
        },
    )
    .await
}
