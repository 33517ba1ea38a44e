use clap::Parser;
use payment_service::Settings;
use service_support::lifecycle::{self, Run};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    lifecycle::run(
        "payment-service",
        &settings.server,
        &settings.drain,
        async |log| match &settings.command {
            Some(command) => Ok(Run::Finished(
                payment_service::run_command(&settings, command, log).await,
            )),
            None => Ok(Run::Serving(
                payment_service::start(&settings, log.clone()).await?,
            )),
        },
    )
    .await
}
