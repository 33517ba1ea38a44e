//! Structured logs: one JSON object per line (the bunyan format Dropshot's
//! own tooling reads), with Dropshot's per-request fields (`req_id`,
//! `method`, `uri`, `response_code`, `latency_us`) and the caller's
//! `x-request-id` as `hdr_x_request_id`.

use anyhow::{Context, bail};
use slog::Drain;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait before it is written out.
const WRITE_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes of lines that wake the writer before its interval ends.
const EARLY_WRITE_BYTES: usize = 64 * 1024;

/// Bytes of lines that may wait for the writer. Past that (stderr has
/// stalled: a full pipe, a stopped reader), new lines are dropped and
/// counted rather than make the threads that log wait, the service's async
/// workers among them: a stalled stderr must not stall requests.
const MOST_WAITING_BYTES: usize = 4 * 1024 * 1024;

/// Lines dropped since the process started: stderr did not keep up, or a
/// line could not be formatted.
static DROPPED_LINES: AtomicU64 = AtomicU64::new(0);

/// How many log lines were dropped since the process started, because
/// stderr did not keep up or a line could not be formatted (for the
/// `log_lines_dropped` metric).
pub fn dropped_lines() -> u64 {
    DROPPED_LINES.load(Ordering::Relaxed)
}

/// The service's root logger: JSON lines on stderr at `level`. The thread
/// that logs formats its line into a buffer, and a thread of their own
/// writes out all the lines gathered every 20 ms in one call (measured:
/// a write and a thread wake-up per line were a large part of a request's
/// cost). Lines below `level` are dropped before formatting, and lines
/// beyond 4 MiB waiting for a stalled stderr are dropped and counted; the
/// writer reports how many in a line of its own once it writes again. Keep
/// the guard until the process ends: dropping it writes out the lines
/// still waiting.
pub fn logger(name: &str, level: &str) -> anyhow::Result<(slog::Logger, LogGuard)> {
    batched_logger(name, level, std::io::stderr())
}

fn batched_logger<W: Write + Send + 'static>(
    name: &str,
    level: &str,
    out: W,
) -> anyhow::Result<(slog::Logger, LogGuard)> {
    let level = parse_level(level)?;
    let waiting = Arc::new(WaitingLines::default());
    let torn = Arc::new(AtomicBool::new(false));
    let line = LineBuffer {
        line: Vec::new(),
        waiting: waiting.clone(),
        torn: torn.clone(),
    };
    let json = slog_bunyan::with_name(leak(name), line)
        .set_flush(true)
        .build();
    let drain = WholeLines {
        json: Mutex::new(json),
        torn,
    }
    .filter_level(level)
    .ignore_res();
    let writer = std::thread::Builder::new()
        .name(format!("{name}-log"))
        .spawn({
            let waiting = waiting.clone();
            let name = name.to_string();
            move || waiting.write_out(&name, out)
        })
        .context("cannot start the log writer thread")?;
    Ok((
        slog::Logger::root(drain, slog::o!()),
        LogGuard {
            waiting,
            writer: Some(writer),
        },
    ))
}

/// How long the end of logging waits for the last lines to be written: a
/// stalled stderr must not keep a stopping process from exiting.
const LAST_WRITE_BOUND: Duration = Duration::from_secs(2);

/// Writes out the lines still waiting when dropped, for at most
/// [`LAST_WRITE_BOUND`].
pub struct LogGuard {
    waiting: Arc<WaitingLines>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.waiting.lock().finished = true;
        self.waiting.changed.notify_all();
        if let Some(writer) = self.writer.take() {
            let deadline = std::time::Instant::now() + LAST_WRITE_BOUND;
            while !writer.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if writer.is_finished() {
                let _ = writer.join();
            }
        }
    }
}

/// Whole lines waiting for the writer thread.
#[derive(Default)]
struct WaitingLines {
    state: Mutex<Waiting>,
    /// Signalled when lines pass [`EARLY_WRITE_BYTES`], when room is made,
    /// and when logging ends.
    changed: Condvar,
}

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    finished: bool,
    /// Lines dropped since the writer last reported them.
    dropped: u64,
}

impl WaitingLines {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a whole line, or drops and counts it while the buffer is full.
    fn push(&self, line: &[u8]) {
        let mut waiting = self.lock();
        if waiting.bytes.len() >= MOST_WAITING_BYTES {
            waiting.dropped += 1;
            DROPPED_LINES.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = waiting.bytes.len();
        waiting.bytes.extend_from_slice(line);
        // Only the first line of a batch and the one that makes it large
        // wake the writer: a wake-up per line is what this buffer avoids.
        if before == 0 || (before < EARLY_WRITE_BYTES && waiting.bytes.len() >= EARLY_WRITE_BYTES) {
            self.changed.notify_all();
        }
    }

    /// The writer thread: once a line waits, lets more gather for the
    /// interval (less when many have), writes them all out, and sleeps
    /// again until the next line; until logging ends.
    fn write_out(&self, name: &str, mut out: impl Write) {
        let mut batch = Vec::new();
        loop {
            let (finished, dropped) = {
                let mut waiting = self.lock();
                while waiting.bytes.is_empty() && !waiting.finished {
                    waiting = self
                        .changed
                        .wait(waiting)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                if !waiting.finished && waiting.bytes.len() < EARLY_WRITE_BYTES {
                    waiting = self
                        .changed
                        .wait_timeout(waiting, WRITE_INTERVAL)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                std::mem::swap(&mut batch, &mut waiting.bytes);
                (waiting.finished, std::mem::take(&mut waiting.dropped))
            };
            if dropped > 0 {
                batch.extend_from_slice(&dropped_report(name, dropped));
            }
            if out.write_all(&batch).is_err() {
                // The lines are lost: counted, and reported with the next
                // write that succeeds (a stderr closed for good has none).
                let lines = batch.iter().filter(|b| **b == b'\n').count() as u64;
                let lost = lines - u64::from(dropped > 0);
                DROPPED_LINES.fetch_add(lost, Ordering::Relaxed);
                self.lock().dropped += lost + dropped;
            }
            batch.clear();
            if finished {
                return;
            }
        }
    }
}

/// The line saying that `dropped` lines were lost, in the same bunyan
/// format as the others.
fn dropped_report(name: &str, dropped: u64) -> Vec<u8> {
    let line = serde_json::json!({
        "v": 0,
        "name": name,
        "level": 40,
        "msg": "log lines dropped: stderr did not keep up",
        "dropped_lines": dropped,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "pid": std::process::id(),
        "hostname": std::env::var("HOSTNAME").unwrap_or_default(),
    });
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// slog-json's writer: gathers a line's pieces, and hands the whole line
/// over when slog-json flushes at its end.
struct LineBuffer {
    line: Vec<u8>,
    waiting: Arc<WaitingLines>,
    /// Set when a line was abandoned half written: its pieces are dropped
    /// before the next line's.
    torn: Arc<AtomicBool>,
}

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.torn.swap(false, Ordering::Relaxed) {
            self.line.clear();
        }
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.waiting.push(&self.line);
        self.line.clear();
        Ok(())
    }
}

/// The JSON drain behind a lock, one line at a time. A line whose
/// formatting fails or panics (a value's `Display` that panics) is dropped
/// and counted, and the lines after it are written as usual: behind
/// slog's own `Mutex` drain, that panic poisoned the lock and every later
/// line was dropped without a trace.
struct WholeLines<D> {
    json: Mutex<D>,
    torn: Arc<AtomicBool>,
}

impl<D: Drain> Drain for WholeLines<D> {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let json = self.json.lock().unwrap_or_else(PoisonError::into_inner);
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            json.log(record, values).is_ok()
        }));
        if !matches!(written, Ok(true)) {
            self.torn.store(true, Ordering::Relaxed);
            DROPPED_LINES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each write it is given.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_whole_in_order_and_many_per_write() {
        let writes = Writes::default();
        // From several threads at once.
        let (threads, per_thread) = (4, 4_000);
        {
            let (log, _guard) = batched_logger("test-service", "info", writes.clone()).unwrap();
            std::thread::scope(|scope| {
                for thread in 0..threads {
                    let log = log.clone();
                    scope.spawn(move || {
                        for n in 0..per_thread {
                            slog::info!(log, "request completed"; "thread" => thread, "n" => n);
                        }
                    });
                }
            });
            slog::debug!(log, "below the level");
        }
        let writes = writes.0.lock().unwrap();
        assert!(
            writes.iter().all(|write| write.ends_with(b"\n")),
            "a line was split across writes"
        );
        let mut next = vec![0; threads];
        let mut lines = 0;
        for line in writes.iter().flat_map(|write| write.split(|b| *b == b'\n')) {
            if line.is_empty() {
                continue;
            }
            let line: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(line["msg"], "request completed");
            assert_eq!(line["name"], "test-service");
            let thread = line["thread"].as_u64().unwrap() as usize;
            assert_eq!(
                line["n"], next[thread],
                "thread {thread}'s lines out of order"
            );
            next[thread] += 1;
            lines += 1;
        }
        assert_eq!(
            lines,
            threads * per_thread,
            "every line written, none below the level"
        );
        assert!(
            writes.len() * 10 < lines,
            "{} writes for {lines} lines: not batched",
            writes.len()
        );
    }

    /// A writer stalled until `release` is dropped, as stderr is when
    /// nobody reads the pipe.
    struct Stalled(std::sync::mpsc::Receiver<()>, Writes);

    impl Write for Stalled {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            self.1.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_and_counts_lines_and_never_holds_up_the_logger() {
        let writes = Writes::default();
        let (release, stalled) = std::sync::mpsc::channel::<()>();
        let dropped_before = dropped_lines();
        let (log, guard) =
            batched_logger("test-service", "info", Stalled(stalled, writes.clone())).unwrap();
        // Ten times what the buffer holds, while nothing is written out.
        let started = std::time::Instant::now();
        for n in 0..300_000 {
            slog::info!(log, "request completed"; "n" => n);
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "logging waited: {took:?}");
        let dropped = dropped_lines() - dropped_before;
        assert!(dropped > 200_000, "only {dropped} lines dropped");

        drop(release);
        drop(guard);
        let written: Vec<u8> = writes.0.lock().unwrap().concat();
        let report = written
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice::<serde_json::Value>(line).unwrap())
            .find(|line| line["msg"] == "log lines dropped: stderr did not keep up")
            .expect("the writer reports the dropped lines");
        // The global count also has what other tests dropped meanwhile.
        let reported = report["dropped_lines"].as_u64().unwrap();
        assert!(
            reported > 200_000 && reported <= dropped,
            "{reported} of {dropped}"
        );
        assert_eq!(report["name"], "test-service");
    }

    /// An output that refuses writes while `failures` is above zero,
    /// counting it down, as a stderr whose reader went away for a while.
    struct Failing(Arc<std::sync::atomic::AtomicUsize>, Writes);

    impl Write for Failing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let failures = self.0.load(Ordering::SeqCst);
            if failures > 0 {
                self.0.store(failures - 1, Ordering::SeqCst);
                return Err(std::io::Error::other("no reader"));
            }
            self.1.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_a_failed_write_lost_are_counted_and_reported_when_writes_work_again() {
        let writes = Writes::default();
        let failures = Arc::new(std::sync::atomic::AtomicUsize::new(1));
        let dropped_before = dropped_lines();
        {
            let output = Failing(failures.clone(), writes.clone());
            let (log, _guard) = batched_logger("test-service", "info", output).unwrap();
            slog::info!(log, "lost"; "n" => 1);
            // The writer takes the first line alone and fails it.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while failures.load(Ordering::SeqCst) > 0 {
                assert!(std::time::Instant::now() < deadline, "nothing was written");
                std::thread::sleep(Duration::from_millis(5));
            }
            slog::info!(log, "written"; "n" => 2);
        }
        assert!(dropped_lines() > dropped_before, "the lost line is counted");
        let written: Vec<u8> = writes.0.lock().unwrap().concat();
        let lines: Vec<serde_json::Value> = written
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).unwrap())
            .collect();
        let messages: Vec<&str> = lines.iter().map(|l| l["msg"].as_str().unwrap()).collect();
        assert_eq!(
            messages,
            ["written", "log lines dropped: stderr did not keep up"]
        );
        assert_eq!(lines[1]["dropped_lines"], 1);
    }

    #[test]
    fn the_end_of_logging_waits_a_bounded_time_for_a_stalled_output() {
        let (_release, stalled) = std::sync::mpsc::channel::<()>();
        let (log, guard) =
            batched_logger("test-service", "info", Stalled(stalled, Writes::default())).unwrap();
        slog::info!(log, "never written");
        let started = std::time::Instant::now();
        drop(guard);
        let took = started.elapsed();
        assert!(
            took >= LAST_WRITE_BOUND && took < LAST_WRITE_BOUND * 3,
            "the guard waited {took:?}"
        );
    }

    /// A value whose text cannot be made.
    struct Unprintable;

    impl std::fmt::Display for Unprintable {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("this value cannot be shown")
        }
    }

    #[test]
    fn a_line_that_cannot_be_formatted_is_dropped_counted_and_the_next_ones_written() {
        let writes = Writes::default();
        let dropped_before = dropped_lines();
        {
            let (log, _guard) = batched_logger("test-service", "info", writes.clone()).unwrap();
            slog::info!(log, "before");
            slog::info!(log, "the broken one"; "value" => %Unprintable);
            slog::info!(log, "after"; "n" => 1);
            slog::info!(log, "after"; "n" => 2);
        }
        assert!(
            dropped_lines() > dropped_before,
            "the broken line is counted"
        );
        let written: Vec<u8> = writes.0.lock().unwrap().concat();
        let messages: Vec<String> = written
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let line: serde_json::Value = serde_json::from_slice(line).unwrap();
                line["msg"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(messages, ["before", "after", "after"]);
    }
}
