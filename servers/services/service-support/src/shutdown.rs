//! Stopping: the signals that start it, and the drain before the listener
//! closes, during which readiness fails so a load balancer stops sending
//! while the instance still answers whatever it is sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd).
pub async fn signal_received() -> std::io::Result<&'static str> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    })
}

/// How long a stopping instance keeps serving while it reports not ready.
#[derive(Clone, Debug, clap::Args)]
pub struct DrainSettings {
    /// Milliseconds between a stop signal and closing the listener, while /readyz answers 503 and requests are still served: longer than your load balancer's readiness check interval. 0 (Kubernetes: the preStop hook does this) closes at once.
    #[arg(
        id = "shutdown_drain_ms",
        long = "shutdown-drain-ms",
        env = "SHUTDOWN_DRAIN_MS",
        default_value_t = 0
    )]
    pub drain_ms: u64,
}

impl DrainSettings {
    pub fn drain(&self) -> Duration {
        Duration::from_millis(self.drain_ms)
    }
}

/// Whether the instance is stopping; shared by the readiness check and the
/// code that stops it.
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// The readiness check: fails once stopping has begun.
    pub fn check(&self) -> Result<&'static str, String> {
        if self.0.load(Ordering::SeqCst) {
            Err("shutting down".to_string())
        } else {
            Ok("ok")
        }
    }
}
