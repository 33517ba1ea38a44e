use clap::Parser;
use order_service::Settings;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    // `_log_writer` lives to the end of main: dropping it writes out the queued lines.
    let (log, _log_writer) =
        match service_support::logging::logger("order-service", &settings.log_level) {
            Ok(logger) => logger,
            Err(error) => {
                eprintln!("order-service: {error:#}");
                return ExitCode::FAILURE;
            }
        };
    let server = match order_service::start(&settings, log.clone()).await {
        Ok(server) => server,
        Err(error) => {
            slog::crit!(log, "cannot start"; "error" => format!("{error:#}"));
            return ExitCode::FAILURE;
        }
    };
    slog::info!(log, "listening"; "address" => %server.local_addr());
    match service_support::shutdown::signal_received().await {
        Ok(signal) => {
            slog::info!(log, "shutting down: finishing requests in flight"; "signal" => signal)
        }
        Err(error) => {
            slog::error!(log, "cannot wait for signals; shutting down"; "error" => %error)
        }
    }
    server.app_private().begin_draining();
    tokio::time::sleep(settings.drain.drain()).await;
    match server.close().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            slog::error!(log, "shutdown failed"; "error" => error);
            ExitCode::FAILURE
        }
    }
}
