//! Structured logs: one JSON object per line (the bunyan format Dropshot's
//! own tooling reads), with Dropshot's per-request fields (`req_id`,
//! `method`, `uri`, `response_code`, `latency_us`) and the caller's
//! `x-request-id` as `hdr_x_request_id`.

use anyhow::bail;
use slog::Drain;
use std::io::Write;
use std::sync::Mutex;

/// The service's root logger: JSON lines on stderr at `level`.
pub fn logger(name: &str, level: &str) -> anyhow::Result<slog::Logger> {
    json_logger(name, level, std::io::stderr())
}

/// JSON lines into `writer` at `level` (trace, debug, info, warn, error or critical).
pub fn json_logger<W: Write + Send + 'static>(
    name: &str,
    level: &str,
    writer: W,
) -> anyhow::Result<slog::Logger> {
    let level = parse_level(level)?;
    let drain = slog_bunyan::with_name(leak(name), writer).build();
    let drain = Mutex::new(drain).filter_level(level).fuse();
    Ok(slog::Logger::root(drain, slog::o!()))
}

/// slog-bunyan wants a `'static` name; services create a handful of loggers at most.
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

fn parse_level(level: &str) -> anyhow::Result<slog::Level> {
    use slog::Level::*;
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => Trace,
        "debug" => Debug,
        "info" => Info,
        "warn" => Warning,
        "error" => Error,
        "critical" => Critical,
        other => {
            bail!("LOG_LEVEL {other:?} is not one of trace, debug, info, warn, error, critical")
        }
    })
}
