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
