use anyhow::Context;

/// The service's root logger: human-readable lines on stderr at `level`
/// (trace, debug, info, warn, error or critical).
pub fn logger(name: &str, level: &str) -> anyhow::Result<slog::Logger> {
    let level = parse_level(level)?;
    dropshot::ConfigLogging::StderrTerminal { level }
        .to_logger(name)
        .context("cannot set up logging")
}

fn parse_level(level: &str) -> anyhow::Result<dropshot::ConfigLoggingLevel> {
    use dropshot::ConfigLoggingLevel::*;
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => Trace,
        "debug" => Debug,
        "info" => Info,
        "warn" => Warn,
        "error" => Error,
        "critical" => Critical,
        other => anyhow::bail!(
            "LOG_LEVEL {other:?} is not one of trace, debug, info, warn, error, critical"
        ),
    })
}
