use clap::Parser;
use payment_service::Settings;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    // `_log_writer` lives to the end of main: dropping it writes out the queued lines.
    let (log, _log_writer) =
        match service_support::logging::logger("payment-service", &settings.log_level) {
            Ok(logger) => logger,
            Err(error) => {
                eprintln!("payment-service: {error:#}");
                return ExitCode::FAILURE;
            }
        };
    if let Some(command) = &settings.command {
        return match payment_service::run_command(&settings, command, &log).await {
            Ok(output) => {
                println!("{output}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("payment-service: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let service = match payment_service::start(&settings, log.clone()).await {
        Ok(service) => service,
        Err(error) => {
            slog::crit!(log, "cannot start"; "error" => format!("{error:#}"));
            return ExitCode::FAILURE;
        }
    };
    slog::info!(log, "listening"; "address" => %service.local_addr());
    match service_support::shutdown::signal_received().await {
        Ok(signal) => {
            slog::info!(log, "shutting down: finishing requests and deliveries in flight"; "signal" => signal)
        }
        Err(error) => {
            slog::error!(log, "cannot wait for signals; shutting down"; "error" => %error)
        }
    }
    service.begin_draining();
    tokio::time::sleep(settings.drain.drain()).await;
    match service.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            slog::error!(log, "shutdown failed"; "error" => format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}
