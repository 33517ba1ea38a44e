//! `--profile`: what one request costs, counted while a short wrk load runs
//! on one service at a time (the others idle), and what one whole flow
//! costs the databases.
//!
//! Per request: PostgreSQL's commits (`xact_commit` of order_db), write
//! transactions (transaction ids used, cluster-wide) and WAL flushes
//! (`pg_stat_wal.wal_sync`, cluster-wide); the protocol exchanges with
//! PostgreSQL (the `sendto` calls of the service's backends: a backend
//! flushes its answer once per `Sync`) and the backends' CPU time; the
//! service process's CPU time (`/proc/PID/stat`), system calls and context
//! switches (`perf stat -p`); and, in a second window because a uprobe
//! slows every call it counts, its calls to glibc's `malloc` (the services
//! use the system allocator: no `#[global_allocator]` in the workspace).
//! A measure perf cannot take here is left out with the reason, never
//! guessed.
//!
//! PostgreSQL publishes a backend's statistics up to 10 s after its last
//! transaction (`PGSTAT_IDLE_INTERVAL`), so each statistics reading waits
//! [`STATS_SETTLE`] after the load.

use crate::flow;
use crate::http_load::{self, Load};
use crate::services::Service;
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postgres_cluster::Cluster;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a backend may hold its statistics after its last transaction
/// (PostgreSQL's `PGSTAT_IDLE_INTERVAL`, 10 s), and a margin.
const STATS_SETTLE: Duration = Duration::from_secs(11);

/// The libc uprobe counting `malloc` calls.
const MALLOC_EVENT: &str = "probe_libc:malloc";

/// Where and how long the loads run.
pub struct Setup<'a> {
    pub cluster: &'a Cluster,
    pub work_dir: &'a Path,
    pub connections: usize,
    pub duration: Duration,
}

/// One operation of one service to profile.
pub struct Target<'a> {
    /// What the row is called: the service and how it runs.
    pub service: &'static str,
    pub operation: &'static str,
    pub process: &'a Service,
    /// Which of order_db's connections are its own.
    pub backends: Backends,
    pub load: &'a Load,
    pub token: Option<&'a str>,
}

/// A service's connections to order_db, told apart by `application_name`.
#[derive(Clone, Copy)]
pub enum Backends {
    /// The connections that carry this name.
    Named(&'static str),
    /// Every connection but those that carry this name (the product's
    /// carry the name of the library that opens them: the other product
    /// services on order_db are idle meanwhile).
    AllBut(&'static str),
}

/// Per-request figures of one target; `None` where the measure failed.
#[derive(Default)]
struct Row {
    requests: u64,
    requests_per_second: f64,
    errors: u64,
    commits: Option<f64>,
    write_xids: Option<f64>,
    wal_syncs: Option<f64>,
    pg_exchanges: Option<f64>,
    pg_cpu_us: Option<f64>,
    cpu_us: Option<f64>,
    syscalls: Option<f64>,
    context_switches: Option<f64>,
    mallocs: Option<f64>,
}

/// PostgreSQL's counters at one moment.
#[derive(Clone, Copy)]
struct Stats {
    order_commits: i64,
    payment_commits: i64,
    wal_syncs: i64,
    next_xid: i64,
}

impl Stats {
    async fn read(db: &tokio_postgres::Client) -> anyhow::Result<Stats> {
        let row = db
            .query_one(
                "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = 'order_db'), \
                        (SELECT xact_commit FROM pg_stat_database WHERE datname = 'payment_db'), \
                        (SELECT wal_sync FROM pg_stat_wal), \
                        pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
                &[],
            )
            .await?;
        Ok(Stats {
            order_commits: row.get(0),
            payment_commits: row.get(1),
            wal_syncs: row.get(2),
            next_xid: row.get(3),
        })
    }

    /// After the load has settled: waits for the backends to publish.
    async fn settled(db: &tokio_postgres::Client) -> anyhow::Result<Stats> {
        tokio::time::sleep(STATS_SETTLE).await;
        Stats::read(db).await
    }
}

/// Profiles each target in turn and prints a table; then the whole flow
/// (authentication on) on `orders` and `payments`.
pub async fn run(
    setup: &Setup<'_>,
    targets: &[Target<'_>],
    flow: Flow<'_>,
    payments_db: &tokio_postgres::Client,
) -> anyhow::Result<()> {
    let stats_db = setup.cluster.connect("postgres").await?;
    let ticks_per_second = clock_ticks_per_second();
    let mut notes = Notes::default();
    let mut rows = Vec::new();
    eprintln!("profile: waiting {STATS_SETTLE:?} for PostgreSQL's statistics to settle");
    let mut before = Stats::settled(&stats_db).await?;
    for (index, target) in targets.iter().enumerate() {
        eprintln!(
            "profile: {} on {}, counting, {:?}",
            target.operation, target.service, setup.duration
        );
        let backends = backend_pids(&stats_db, target.backends).await?;
        let pg_cpu_before = cpu_ticks_of(&backends);
        let cpu_before = cpu_ticks(target.process.pid());
        let service_perf = Perf::start(
            &["raw_syscalls:sys_enter", "context-switches"],
            &[target.process.pid()],
            &setup.work_dir.join(format!("profile{index}.service.perf")),
        );
        let backend_perf = if backends.is_empty() {
            Err(anyhow::anyhow!(
                "no connection of {} to order_db was open",
                target.service
            ))
        } else {
            Perf::start(
                &["syscalls:sys_enter_sendto"],
                &backends,
                &setup.work_dir.join(format!("profile{index}.backends.perf")),
            )
        };
        let figures = load(setup, target, &format!("profile{index}"))?;
        let service_counts = service_perf.and_then(Perf::stop);
        let backend_counts = backend_perf.and_then(Perf::stop);
        let cpu_after = cpu_ticks(target.process.pid());
        let pg_cpu_after = cpu_ticks_of(&backends);
        let after = Stats::settled(&stats_db).await?;
        let requests = figures.requests.max(1) as f64;
        let per_request = |count: f64| count / requests;
        let micros = |ticks: u64| ticks as f64 * 1e6 / ticks_per_second as f64;
        let mut row = Row {
            requests: figures.requests,
            requests_per_second: figures.requests_per_second,
            errors: figures.errors,
            commits: Some(per_request(
                (after.order_commits - before.order_commits) as f64,
            )),
            write_xids: Some(per_request((after.next_xid - before.next_xid) as f64)),
            wal_syncs: Some(per_request((after.wal_syncs - before.wal_syncs) as f64)),
            pg_cpu_us: Some(per_request(micros(
                pg_cpu_after.saturating_sub(pg_cpu_before),
            ))),
            ..Row::default()
        };
        match (cpu_before, cpu_after) {
            (Ok(start), Ok(end)) => row.cpu_us = Some(per_request(micros(end - start))),
            (Err(error), _) | (_, Err(error)) => notes.failed("service CPU time", &error),
        }
        match service_counts {
            Ok(counts) => {
                row.syscalls = counts
                    .get("raw_syscalls:sys_enter")
                    .map(|c| per_request(*c));
                row.context_switches = counts.get("context-switches").map(|c| per_request(*c));
            }
            Err(error) => notes.failed("the service's system calls", &error),
        }
        match backend_counts {
            Ok(counts) => {
                row.pg_exchanges = counts
                    .get("syscalls:sys_enter_sendto")
                    .map(|c| per_request(*c))
            }
            Err(error) => notes.failed("the backends' sendto calls", &error),
        }
        rows.push(row);
        before = after;
    }

    // Each call to malloc traps into the kernel while the uprobe is in
    // place: counted in windows of their own, which no other figure uses.
    match MallocProbe::install(targets.first().map(|t| t.process.pid())) {
        Ok(probe) => {
            for (index, target) in targets.iter().enumerate() {
                eprintln!(
                    "profile: {} on {}, counting malloc calls, {:?}",
                    target.operation, target.service, setup.duration
                );
                let perf = Perf::start(
                    &[MALLOC_EVENT],
                    &[target.process.pid()],
                    &setup.work_dir.join(format!("profile{index}.malloc.perf")),
                );
                let figures = load(setup, target, &format!("profile{index}"))?;
                match perf.and_then(Perf::stop) {
                    Ok(counts) => {
                        rows[index].mallocs = counts
                            .get(MALLOC_EVENT)
                            .map(|c| c / figures.requests.max(1) as f64)
                    }
                    Err(error) => notes.failed("malloc calls", &error),
                }
            }
            drop(probe);
        }
        Err(error) => notes.failed("malloc calls (a uprobe on libc's malloc)", &error),
    }

    print_rows(targets, &rows, &notes);
    profile_flow(setup, &stats_db, flow, payments_db).await
}

/// The whole flow's services, with authentication on.
pub struct Flow<'a> {
    pub orders: &'a Service,
    pub payments: &'a Service,
    pub tokens: &'a flow::Tokens,
    pub clients: usize,
}

async fn profile_flow(
    setup: &Setup<'_>,
    stats_db: &tokio_postgres::Client,
    target: Flow<'_>,
    payments_db: &tokio_postgres::Client,
) -> anyhow::Result<()> {
    eprintln!(
        "profile: the whole flow, authentication on, {} clients, {:?}",
        target.clients, setup.duration
    );
    let http = reqwest::Client::new();
    let before = Stats::settled(stats_db).await?;
    let requests_before = (
        requests_served(&http, target.orders).await?,
        requests_served(&http, target.payments).await?,
    );
    let figures = flow::run(
        &target.orders.url(),
        &target.payments.url(),
        Some(target.tokens),
        target.clients,
        flow::Pace::AsFastAsPossible,
        setup.duration,
    )
    .await;
    crate::wait_for_deliveries(payments_db, crate::DRAIN_BOUND).await?;
    let after = Stats::settled(stats_db).await?;
    let requests_after = (
        requests_served(&http, target.orders).await?,
        requests_served(&http, target.payments).await?,
    );
    let flows = figures.flows.max(1) as f64;
    let per_flow = |count: i64| format!("{:.2}", count as f64 / flows);
    let total = |served: &BTreeMap<String, f64>| served.values().sum::<f64>();
    println!();
    println!(
        "| whole flow profile (auth on, per flow) | flows | order_db commits | payment_db commits | write xids | WAL fsyncs | order-service HTTP requests | payment-service HTTP requests | errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {} clients, {} s | {} | {} | {} | {} | {} | {:.2} | {:.2} | {} |",
        target.clients,
        setup.duration.as_secs(),
        figures.flows,
        per_flow(after.order_commits - before.order_commits),
        per_flow(after.payment_commits - before.payment_commits),
        per_flow(after.next_xid - before.next_xid),
        per_flow(after.wal_syncs - before.wal_syncs),
        (total(&requests_after.0) - total(&requests_before.0)) / flows,
        (total(&requests_after.1) - total(&requests_before.1)) / flows,
        figures.errors
    );
    let breakdown = |after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>| {
        after
            .iter()
            .map(|(operation, count)| {
                let count = count - before.get(operation).copied().unwrap_or(0.0);
                format!("{operation} {:.2}", count / flows)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\nHTTP requests per flow by operation (each service's `http_requests_total`): \
         order-service: {}; payment-service: {}. Commits are `xact_commit` of each \
         database: read-only transactions count, and payment-service's outbox records \
         commit without waiting for the disk (`synchronous_commit = off`). Write xids and \
         WAL fsyncs are cluster-wide.",
        breakdown(&requests_after.0, &requests_before.0),
        breakdown(&requests_after.1, &requests_before.1),
    );
    Ok(())
}

/// One wrk load of `target` for the setup's duration.
fn load(setup: &Setup<'_>, target: &Target<'_>, name: &str) -> anyhow::Result<http_load::Figures> {
    // perf attaches to every thread before the load starts.
    std::thread::sleep(Duration::from_millis(300));
    http_load::measure(
        &target.process.url(),
        setup.work_dir,
        name,
        target.load,
        target.token,
        2,
        setup.connections,
        setup.duration,
    )
}

fn print_rows(targets: &[Target<'_>], rows: &[Row], notes: &Notes) {
    let cell = |figure: Option<f64>, decimals: usize| match figure {
        Some(figure) => format!("{figure:.decimals$}"),
        None => "—".to_string(),
    };
    println!();
    println!(
        "| profile, per request | req/s while counted | requests | PG commits | write xids | WAL fsyncs | PG exchanges | PG backends CPU µs | service CPU µs | syscalls | context switches | malloc calls | errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (target, row) in targets.iter().zip(rows) {
        println!(
            "| {} `{}` | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            target.service,
            target.operation,
            row.requests_per_second,
            row.requests,
            cell(row.commits, 2),
            cell(row.write_xids, 2),
            cell(row.wal_syncs, 2),
            cell(row.pg_exchanges, 2),
            cell(row.pg_cpu_us, 0),
            cell(row.cpu_us, 0),
            cell(row.syscalls, 1),
            cell(row.context_switches, 1),
            cell(row.mallocs, 0),
            row.errors
        );
    }
    println!(
        "\nPG commits: `xact_commit` of order_db (a read is a transaction that commits too). \
         Write xids: transaction ids used, cluster-wide (the transactions that write). WAL \
         fsyncs: `pg_stat_wal.wal_sync`, cluster-wide (one flush can carry many commits). PG \
         exchanges: `sendto` calls of the service's PostgreSQL backends (told apart \
         by `application_name`), one per `Sync` answered: a round trip unless the client \
         pipelines. Statements per request are not counted: pg_stat_statements needs \
         `shared_preload_libraries`, which the benchmark's cluster does not set. CPU: \
         utime + stime from `/proc/PID/stat`. Syscalls and context switches: `perf stat -p` \
         on the service process. malloc calls: a uprobe on glibc's `malloc` (the system \
         allocator; calloc and realloc not counted), in a load of its own since the probe \
         slows each call. One service loaded at a time, the others idle."
    );
    for note in &notes.0 {
        println!("\nNot measured: {note}");
    }
}

/// What could not be measured, and why.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn failed(&mut self, what: &str, error: &anyhow::Error) {
        let note = format!("{what}: {error:#}");
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }
}

/// The pids of a service's connections to order_db.
async fn backend_pids(
    stats_db: &tokio_postgres::Client,
    backends: Backends,
) -> anyhow::Result<Vec<u32>> {
    let (name, equal) = match backends {
        Backends::Named(name) => (name, true),
        Backends::AllBut(name) => (name, false),
    };
    let rows = stats_db
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'order_db' \
             AND backend_type = 'client backend' AND (application_name = $1) = $2",
            &[&name, &equal],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get::<_, i32>(0) as u32).collect())
}

/// `getconf CLK_TCK`: the unit of /proc's CPU times (100 on Linux).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command's name in parentheses: state is field 3, utime 14,
    // stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no ')' in /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(n - 3)
            .context("a short /proc/PID/stat")?
            .parse()?)
    };
    Ok(field(14)? + field(15)?)
}

/// The sum of `pids`' CPU ticks (a process that ended counts nothing).
fn cpu_ticks_of(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|pid| cpu_ticks(*pid).ok()).sum()
}

/// `perf stat` counting `events` of processes `pids` until stopped.
struct Perf {
    child: Child,
    output: PathBuf,
}

impl Perf {
    fn start(events: &[&str], pids: &[u32], output: &Path) -> anyhow::Result<Perf> {
        let pids = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut command = Command::new("perf");
        command
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                &events.join(","),
                "-p",
                &pids,
                "-o",
            ])
            .arg(output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent. perf outlives no benchmark.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
            });
        }
        let mut child = command
            .spawn()
            .context("cannot run perf (apt-get install linux-perf)")?;
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = child.try_wait()? {
            let output = child.wait_with_output()?;
            bail!(
                "perf stat -e {} exited ({status}): {}",
                events.join(","),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Perf {
            child,
            output: output.to_path_buf(),
        })
    }

    /// Stops counting (SIGINT) and returns each event's count.
    fn stop(self) -> anyhow::Result<BTreeMap<String, f64>> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let output = self.child.wait_with_output()?;
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let counts: BTreeMap<String, f64> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut fields = line.split(',');
                let count = fields.next()?.parse().ok()?;
                let _unit = fields.next()?;
                Some((fields.next()?.to_string(), count))
            })
            .collect();
        if counts.is_empty() {
            bail!(
                "perf stat counted nothing: {}{}",
                String::from_utf8_lossy(&output.stderr).trim(),
                text.trim()
            );
        }
        Ok(counts)
    }
}

/// The uprobe on libc's malloc, added for the profile unless it was there.
struct MallocProbe {
    added: bool,
}

impl MallocProbe {
    /// Puts the probe on the libc that process `pid` maps.
    fn install(pid: Option<u32>) -> anyhow::Result<MallocProbe> {
        let pid = pid.context("no process to profile")?;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
        let libc = maps
            .lines()
            .filter_map(|line| line.split_whitespace().nth(5))
            .find(|path| path.ends_with("/libc.so.6"))
            .context("the service maps no glibc (a static or musl build?)")?
            .to_string();
        let listed = Command::new("perf")
            .args(["probe", "-l"])
            .output()
            .context("cannot run perf")?;
        if String::from_utf8_lossy(&listed.stdout).contains(MALLOC_EVENT) {
            return Ok(MallocProbe { added: false });
        }
        let added = Command::new("perf")
            .args(["probe", "-x", &libc, "malloc"])
            .output()
            .context("cannot run perf")?;
        if !added.status.success() {
            bail!(
                "perf probe -x {libc} malloc failed: {}",
                String::from_utf8_lossy(&added.stderr).trim()
            );
        }
        Ok(MallocProbe { added: true })
    }
}

impl Drop for MallocProbe {
    /// Removes the probe if the profile added it, however the profile ends.
    fn drop(&mut self) {
        if self.added {
            let _ = Command::new("perf")
                .args(["probe", "-d", MALLOC_EVENT])
                .output();
        }
    }
}

/// Requests a service has answered, by operation, from its `/metrics`
/// (`http_requests_total`; the operational endpoints are not counted).
async fn requests_served(
    http: &reqwest::Client,
    service: &Service,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = http
        .get(format!("{}/metrics", service.url()))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut served = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("http_requests_total{") else {
            continue;
        };
        let Some((labels, count)) = rest.split_once("} ") else {
            continue;
        };
        let operation = labels
            .split(',')
            .find_map(|label| label.strip_prefix("operation=\""))
            .map(|value| value.trim_end_matches('"').to_string())
            .unwrap_or_default();
        *served.entry(operation).or_insert(0.0) += count.trim().parse::<f64>().unwrap_or(0.0);
    }
    Ok(served)
}
