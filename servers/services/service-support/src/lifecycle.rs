//! A service process from start to exit, the same for both services: its
//! logger, its start, serving until a stop signal, draining, and closing.

use crate::operations::Operated;
use crate::server::ServerSettings;
use crate::shutdown::DrainSettings;
use dropshot::HttpServer;
use std::net::SocketAddr;
use std::process::ExitCode;

/// A started service, as its process sees it.
pub trait Service {
    fn local_addr(&self) -> SocketAddr;
    /// Starts stopping: readiness fails from now on; requests are still served.
    fn begin_draining(&self);
    /// Stops accepting requests and finishes the work in flight.
    fn shutdown(self) -> impl Future<Output = anyhow::Result<()>>;
}

impl<C: Operated> Service for HttpServer<C> {
    fn local_addr(&self) -> SocketAddr {
        HttpServer::local_addr(self)
    }

    fn begin_draining(&self) {
        self.app_private().shell().draining.begin();
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.close()
            .await
            .map_err(|e| anyhow::anyhow!("HTTP server did not close cleanly: {e}"))
    }
}

/// What a process was started to do.
pub enum Run<S> {
    /// Serve until a stop signal.
    Serving(S),
    /// An operator command ran: its output to print, or why it failed.
    Finished(anyhow::Result<String>),
}

/// The whole life of the process `name`: its logger, then `start`, then,
/// if it serves, the wait for a stop signal, `drain`'s wait with readiness
/// failing, and the shutdown. Every failure is reported (in the log; a
/// command's on stderr) and ends it with a failure status.
pub async fn run<S: Service>(
    name: &str,
    server: &ServerSettings,
    drain: &DrainSettings,
    start: impl AsyncFnOnce(&slog::Logger) -> anyhow::Result<Run<S>>,
) -> ExitCode {
    // `_log_writer` lives to the end: dropping it writes out the queued lines.
    let (log, _log_writer) = match crate::logging::logger(name, &server.log_level) {
        Ok(logger) => logger,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let service = match start(&log).await {
        Ok(Run::Serving(service)) => service,
        Ok(Run::Finished(Ok(output))) => {
            println!("{output}");
            return ExitCode::SUCCESS;
        }
        Ok(Run::Finished(Err(error))) => {
            eprintln!("{name}: {error:#}");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            slog::crit!(log, "cannot start"; "error" => format!("{error:#}"));
            return ExitCode::FAILURE;
        }
    };
    slog::info!(log, "listening"; "address" => %service.local_addr());
    match crate::shutdown::signal_received().await {
        Ok(signal) => {
            slog::info!(log, "shutting down: finishing the work in flight"; "signal" => signal)
        }
        Err(error) => {
            slog::error!(log, "cannot wait for signals; shutting down"; "error" => %error)
        }
    }
    service.begin_draining();
    tokio::time::sleep(drain.drain()).await;
    match service.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            slog::error!(log, "shutdown failed"; "error" => format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}
