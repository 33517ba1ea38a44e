//! Structured logs: one JSON object per line (the bunyan format Dropshot's
//! own tooling reads), with Dropshot's per-request fields (`req_id`,
//! `method`, `uri`, `response_code`, `latency_us`) and the caller's
//! `x-request-id` as `hdr_x_request_id`.

use anyhow::bail;
use slog::Drain;
use std::io::Write;
use std::sync::Mutex;

/// How many log lines may wait for the writer thread; past that, logging
/// waits for room (lines are never dropped).
const QUEUED_LINES: usize = 8192;

/// The service's root logger: JSON lines on stderr at `level`, formatted
/// and written by a thread of their own, so a request's log line costs its
/// worker thread a hand-over instead of writes to stderr under a lock
/// (measured: that was a large part of a request's cost). Lines below
/// `level` are dropped before the hand-over. Keep the guard until the
/// process ends: dropping it writes out the lines still queued.
pub fn logger(name: &str, level: &str) -> anyhow::Result<(slog::Logger, LogGuard)> {
    let level = parse_level(level)?;
    // One write per line: slog-json writes a line in pieces.
    let stderr = std::io::LineWriter::new(std::io::stderr());
    let json = slog_bunyan::with_name(leak(name), stderr)
        .build()
        .ignore_res();
    let (drain, guard) = slog_async::Async::new(json)
        .chan_size(QUEUED_LINES)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name(format!("{name}-log"))
        .build_with_guard();
    let drain = drain.filter_level(level).ignore_res();
    Ok((
        slog::Logger::root(drain, slog::o!()),
        LogGuard { _writer: guard },
    ))
}

/// Writes out the queued log lines when dropped.
pub struct LogGuard {
    _writer: slog_async::AsyncGuard,
}

/// JSON lines into `writer` at `level` (trace, debug, info, warn, error or
/// critical), written at once by the thread that logs: for tests, which
/// read a service's log right after a request.
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
