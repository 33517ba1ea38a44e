//! Throwaway PostgreSQL clusters started from the machine's server binaries.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the
//! cluster's files belong to the `postgres` user and its processes run as
//! that user (set in the forked child, no sudo needed). The postmaster
//! listens on a Unix socket inside the cluster's directory only, so clusters
//! of parallel test binaries never compete for a TCP port.
//!
//! Each postmaster is started from a thread that lives exactly as long as
//! it does, with PR_SET_PDEATHSIG: if the test process dies, the kernel
//! stops the cluster too. Directories of clusters whose test process is
//! gone are removed when the next cluster starts.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The socket "port": it only names the socket file inside the cluster's directory.
const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";

/// One PostgreSQL cluster: a data directory and, while running, its postmaster.
pub struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    owner: Option<(u32, u32)>,
    postmaster: Mutex<Option<Postmaster>>,
    /// Whether the directory outlives the cluster (see [`Cluster::open`]).
    keep: bool,
    /// Whether commits are flushed to disk, as in production.
    durable: bool,
}

struct Postmaster {
    pid: Pid,
    exited: mpsc::Receiver<()>,
}

impl Cluster {
    /// The cluster shared by every test of this test binary.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            Cluster::start().unwrap_or_else(|e| panic!("cannot start the test PostgreSQL: {e:#}"))
        })
    }

    /// A new cluster of its own, for tests that stop or restart it. Its
    /// directory is deleted when it is dropped.
    pub fn start() -> anyhow::Result<Cluster> {
        Cluster::throwaway(false)
    }

    /// A throwaway cluster that flushes every commit to disk as production
    /// does, for measurements whose figures must mean what they would there.
    pub fn start_durable() -> anyhow::Result<Cluster> {
        Cluster::throwaway(true)
    }

    fn throwaway(durable: bool) -> anyhow::Result<Cluster> {
        let cluster = Cluster::prepare(new_cluster_dir()?, false, durable)?;
        cluster.initdb()?;
        cluster.resume()?;
        Ok(cluster)
    }

    /// The cluster kept in `dir`, created there on first use and started;
    /// its data outlives this process (the launcher's).
    pub fn open(dir: &Path) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let cluster = Cluster::prepare(dir.canonicalize()?, true, true)?;
        if !cluster.dir.join("data/PG_VERSION").exists() {
            cluster.initdb()?;
        }
        cluster.resume()?;
        Ok(cluster)
    }

    /// Whether database `name` exists.
    pub async fn has_database(&self, name: &str) -> anyhow::Result<bool> {
        let admin = self.connect("postgres").await?;
        let found = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?;
        Ok(found.is_some())
    }

    fn prepare(dir: PathBuf, keep: bool, durable: bool) -> anyhow::Result<Cluster> {
        let bindir = find_bindir()?;
        let owner = unprivileged_owner()?;
        if let Some((uid, gid)) = owner {
            chown(&dir, Some(uid), Some(gid))
                .context("cannot hand the cluster directory to postgres")?;
        }
        Ok(Cluster {
            dir,
            bindir,
            owner,
            postmaster: Mutex::new(None),
            keep,
            durable,
        })
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let output = self
            .command("initdb")
            .args([
                "-D",
                "data",
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .args(["--no-instructions", "--locale=C"])
            .output()
            .context("cannot run initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    /// The directory holding the cluster's Unix socket: libpq's `-h`.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the server's client programs, such as `pgbench`.
    pub fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// A tokio-postgres connection string for database `name`.
    pub fn connection_string(&self, name: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={name}",
            self.dir.display()
        )
    }

    /// Starts the postmaster and waits until it accepts connections.
    pub fn resume(&self) -> anyhow::Result<()> {
        let mut slot = self.postmaster.lock().expect("postmaster lock");
        if slot.is_some() {
            return Ok(());
        }
        let log = std::fs::File::create(self.dir.join("postgres.log"))?;
        if let Some((uid, gid)) = self.owner {
            chown(self.dir.join("postgres.log"), Some(uid), Some(gid))?;
        }
        let mut command = self.command("postgres");
        command
            .args(["-D", "data", "-p", &PORT.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=", "-c", "max_connections=400"])
            .stdout(log.try_clone()?)
            .stderr(log);
        if !self.durable {
            // Test data need not survive a machine crash; skipping the
            // flushes makes the tests faster. Kept data stays durable.
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent. It runs after the uid change (which would clear it).
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGQUIT).map_err(std::io::Error::from)
            });
        }
        let (started, pid) = mpsc::channel();
        let (exited_tx, exited) = mpsc::channel();
        // The thread that spawns the postmaster must outlive it: the death
        // signal follows the spawning thread, not the process.
        std::thread::Builder::new()
            .name("postmaster".into())
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    let _ = started.send(Ok(child.id()));
                    let _ = child.wait();
                    let _ = exited_tx.send(());
                }
                Err(error) => {
                    let _ = started.send(Err(error));
                }
            })?;
        let pid = pid.recv()?.context("cannot start postgres")?;
        *slot = Some(Postmaster {
            pid: Pid::from_raw(pid as i32),
            exited,
        });
        drop(slot);
        self.wait_until_ready()
    }

    /// Stops the postmaster (fast shutdown: open connections are closed)
    /// and waits for it to exit. The data stays for [`Cluster::resume`].
    pub fn stop(&self) -> anyhow::Result<()> {
        let Some(postmaster) = self.postmaster.lock().expect("postmaster lock").take() else {
            return Ok(());
        };
        // A frozen cluster would never act on the shutdown signal.
        signal_tree(postmaster.pid, Signal::SIGCONT);
        kill(postmaster.pid, Signal::SIGINT).context("cannot signal postgres")?;
        postmaster
            .exited
            .recv_timeout(Duration::from_secs(30))
            .context("postgres did not stop within 30 s")
    }

    /// Freezes every process of the cluster (SIGSTOP): connections stay open
    /// but nothing answers, as with a hung server or a network black hole.
    /// The cluster thaws when the returned guard is dropped.
    pub fn freeze(&self) -> Frozen {
        let pid = self
            .postmaster
            .lock()
            .expect("postmaster lock")
            .as_ref()
            .map(|p| p.pid);
        if let Some(pid) = pid {
            signal_tree(pid, Signal::SIGSTOP);
        }
        Frozen { pid }
    }

    /// Creates an empty database, or a copy of `template`.
    pub async fn create_database(&self, name: &str, template: Option<&str>) -> anyhow::Result<()> {
        // One clone at a time: PostgreSQL refuses to copy a template that
        // another session is using, and a concurrent CREATE DATABASE is one.
        static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _turn = CREATING.lock().await;
        let admin = self.connect("postgres").await?;
        let sql = match template {
            Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        admin
            .batch_execute(&sql)
            .await
            .with_context(|| format!("cannot create database {name}"))
    }

    pub async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let admin = self.connect("postgres").await?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .with_context(|| format!("cannot drop database {name}"))
    }

    /// Service settings for database `name`: a small pool and the usual deadline.
    pub fn database_settings(&self, name: &str) -> service_support::database::DatabaseSettings {
        database_settings(&self.connection_string(name), name)
    }

    /// A new database copied from `template`, which `migrate` creates the
    /// first time it is asked for (`migrated` remembers that).
    pub async fn database_from_template<F: Future<Output = anyhow::Result<()>>>(
        &self,
        template: &str,
        migrated: &tokio::sync::OnceCell<()>,
        migrate: impl FnOnce(service_support::database::DatabaseSettings) -> F,
    ) -> anyhow::Result<String> {
        migrated
            .get_or_try_init(|| async {
                self.create_database(template, None).await?;
                migrate(self.database_settings(template)).await
            })
            .await?;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        self.create_database(&name, Some(template)).await?;
        Ok(name)
    }

    /// A connection to database `name`, for a test's own inspections.
    pub async fn connect(&self, name: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&self.connection_string(name), tokio_postgres::NoTls)
                .await
                .with_context(|| format!("cannot connect to test database {name}"))?;
        tokio::spawn(connection);
        Ok(client)
    }

    fn wait_until_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bindir.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(&self.dir)
                .args(["-p", &PORT.to_string()])
                .status()
                .context("cannot run pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
                bail!("postgres did not accept connections within 30 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bindir.join(program));
        command.current_dir(&self.dir).stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Service settings for the database at `url` (called `name`): a small
/// pool and the usual deadline.
pub fn database_settings(url: &str, name: &str) -> service_support::database::DatabaseSettings {
    service_support::database::DatabaseSettings {
        url: Some(url.to_string()),
        host: String::new(),
        port: 0,
        user: String::new(),
        password: None,
        name: name.to_string(),
        pool_size: 4,
        timeout_ms: 1500,
    }
}

/// Thaws a frozen cluster when dropped.
pub struct Frozen {
    pid: Option<Pid>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            signal_tree(pid, Signal::SIGCONT);
        }
    }
}

/// Signals the postmaster and its backends (its children, found in /proc).
fn signal_tree(postmaster: Pid, signal: Signal) {
    let _ = kill(postmaster, signal);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent pid is the second field after the parenthesised name.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        let pid = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok());
        if let (Some(pid), Some(parent)) = (pid, parent)
            && parent == postmaster.as_raw()
        {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// `PG_BINDIR` if set, else the newest `/usr/lib/postgresql/<version>/bin`.
fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if !dir.join("postgres").exists() {
            bail!(
                "PG_BINDIR={} holds no `postgres` server binary",
                dir.display()
            );
        }
        return Ok(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin).context(
        "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; install them \
         (apt-get install postgresql) or set PG_BINDIR",
    )
}

/// As root, the `postgres` user's ids; otherwise none (run as ourselves).
fn unprivileged_owner() -> anyhow::Result<Option<(u32, u32)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = User::from_name(SUPERUSER)?.context(
        "running as root, PostgreSQL must run as the `postgres` user, which does not exist \
         (apt-get install postgresql creates it)",
    )?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

/// `$TMPDIR/order-payment-harness/pg-<pid>-<n>`, after removing the
/// directories of test processes that have exited.
fn new_cluster_dir() -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir().join("order-payment-harness");
    std::fs::create_dir_all(&base)?;
    if COUNTER.load(Ordering::SeqCst) == 0 {
        remove_abandoned(&base);
    }
    let dir = base.join(format!(
        "pg-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

fn remove_abandoned(base: &Path) {
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| {
            n.strip_prefix("pg-")?
                .split('-')
                .next()?
                .parse::<u32>()
                .ok()
        });
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
