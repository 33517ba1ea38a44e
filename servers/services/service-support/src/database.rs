//! PostgreSQL access with a deadline on everything, and answers that tell
//! the truth when it passes.
//!
//! A pool's own timeouts do not bound a query on a connection that is
//! already checked out (measured: with PostgreSQL stopped by SIGSTOP,
//! queries hung until the caller gave up). So each unit of database work
//! runs under the deadline, pool wait and queries together.
//!
//! Dropping a query's future does not stop the query: PostgreSQL goes on
//! with it, and commits it when the lock it waited for is released
//! (measured: three `POST /orders` answered 503, 503, 200 created three
//! orders). So when work on a connection of its own misses four fifths of
//! the deadline, PostgreSQL is asked to cancel it, and the work gets the
//! last fifth to end: its own answer then says what happened (cancelled:
//! nothing was done, [`DbError::Unavailable`]). If none comes, the work
//! may still commit and the answer is [`DbError::OutcomeUnknown`]. Either
//! way that connection is closed, never handed to another request, and
//! every session has PostgreSQL's own `statement_timeout` set to the
//! deadline in case the cancel request never arrives.
//!
//! Every statement is prepared once per connection and reused
//! (`prepare_cached`), so a request costs one round trip per statement
//! (except [`Database::query_planned_afresh`]'s).
//!
//! Reads ([`Database::read_opt`], [`Database::read`]) share a few
//! connections kept open for them, and tokio-postgres pipelines the
//! statements of concurrent requests on each: one write carries many
//! queries and the backend answers them without sleeping in between.
//! Writes get a connection of their own, so that many commits wait for the
//! disk together; on a shared connection each commit would hold up every
//! statement queued behind it.

use anyhow::Context;
use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Where the database is. `DATABASE_URL` wins; otherwise the original
/// system's `DB_*` variables are used.
#[derive(Clone, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL, e.g. postgres://user:password@host:5432/db. Overrides the DB_* settings.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// Database host, used when DATABASE_URL is not set.
    #[arg(
        id = "db_host",
        long = "db-host",
        env = "DB_HOST",
        default_value = "localhost"
    )]
    pub host: String,
    /// Database port, used when DATABASE_URL is not set.
    #[arg(
        id = "db_port",
        long = "db-port",
        env = "DB_PORT",
        default_value_t = 5432
    )]
    pub port: u16,
    /// Database user, used when DATABASE_URL is not set.
    #[arg(
        id = "db_user",
        long = "db-user",
        env = "DB_USER",
        default_value = "postgres"
    )]
    pub user: String,
    /// Database password, used when DATABASE_URL is not set.
    #[arg(
        id = "db_password",
        long = "db-password",
        env = "DB_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Database name, used when DATABASE_URL is not set.
    #[arg(id = "db_name", long = "db-name", env = "DB_NAME")]
    pub name: String,
    /// Most open connections to the database.
    #[arg(
        id = "db_pool_size",
        long = "db-pool-size",
        env = "DB_POOL_SIZE",
        default_value_t = 16
    )]
    pub pool_size: usize,
    /// Deadline in milliseconds for one request's database work, pool wait included; past it the request is answered 503.
    #[arg(
        id = "db_timeout_ms",
        long = "db-timeout-ms",
        env = "DB_TIMEOUT_MS",
        default_value_t = 1500
    )]
    pub timeout_ms: u64,
}

impl std::fmt::Debug for DatabaseSettings {
    // By hand, so the URL and password (both secrets) never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("pool_size", &self.pool_size)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

impl DatabaseSettings {
    pub fn pg_config(&self) -> anyhow::Result<tokio_postgres::Config> {
        let mut config = match &self.url {
            Some(url) => tokio_postgres::Config::from_str(url)
                .context("DATABASE_URL is not a valid PostgreSQL connection string")?,
            None => {
                let mut config = tokio_postgres::Config::new();
                config
                    .host(&self.host)
                    .port(self.port)
                    .user(&self.user)
                    .dbname(&self.name);
                if let Some(password) = &self.password {
                    config.password(password);
                }
                config
            }
        };
        config
            .connect_timeout(self.timeout())
            .application_name(env!("CARGO_PKG_NAME"));
        Ok(config)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Why database work did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached in time, the connection broke, or
    /// it refused the work for load or timing (too many connections, a
    /// statement cancelled, a serialization failure or deadlock, a lock not
    /// granted in time, a shutdown): nothing was done, and retrying later
    /// may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Work that may write was sent, and neither its answer nor
    /// PostgreSQL's confirmation that it was cancelled arrived in time (or
    /// the connection broke while it ran): it may or may not have taken
    /// effect. A refusal must not claim that nothing was done.
    #[error("database outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The connection ended under the work. Only inside [`Database`]: its
    /// methods answer it as [`DbError::Unavailable`] where nothing that
    /// could commit was sent, and as [`DbError::OutcomeUnknown`] otherwise.
    #[error("database connection lost: {0}")]
    Disconnected(String),
    /// The database answered with an error: a bug or a schema mismatch.
    #[error("database error: {0}")]
    Query(#[source] tokio_postgres::Error),
    /// A row holds a value the service does not know, such as an unknown
    /// status: the schema and the code disagree.
    #[error("unexpected value in the database: {0}")]
    UnexpectedValue(String),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        let connection_lost = error.is_closed()
            || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>())
            || error.code().is_some_and(ends_the_session);
        if connection_lost {
            DbError::Disconnected(error.to_string())
        } else if error.code().is_some_and(is_transient) {
            DbError::Unavailable(error.to_string())
        } else {
            DbError::Query(error)
        }
    }
}

/// Whether PostgreSQL ended the session: what was sent before may have
/// committed (a commit already written when the server was told to stop).
fn ends_the_session(code: &SqlState) -> bool {
    &code.code()[..2] == "08" || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN].contains(code)
}

/// Whether PostgreSQL refused the work for load or timing, not because of
/// the work itself: the same request may succeed when retried.
fn is_transient(code: &SqlState) -> bool {
    let class = &code.code()[..2];
    // 08: connection exception; 53: insufficient resources (too many
    // connections, out of memory or disk); 40: transaction rollback
    // (serialization failure, deadlock).
    matches!(class, "08" | "53" | "40")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code)
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Backend(error) => error.into(),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// A connection pool and the deadline for each unit of work on it.
#[derive(Clone)]
pub struct Database {
    /// Connections each held by one unit of work: writes and transactions.
    pool: Pool,
    /// None in a pool of one, which writes need; reads then use `pool`.
    readers: Option<Arc<SharedReaders>>,
    deadline: Duration,
}

/// How long a cancel request may take to reach PostgreSQL. It is sent in
/// the background: the answer to the request does not wait for it.
const CANCEL_BOUND: Duration = Duration::from_secs(5);

/// Connections for reads, each shared by every read that lands on it: one
/// in eight of the pool, rounded up, so writes keep most of it. Opened by
/// the slots themselves, outside the pool, so writes can never take them
/// and a connection let go of is closed, never handed out again.
struct SharedReaders {
    config: tokio_postgres::Config,
    slots: Box<[ReaderSlot]>,
    next: AtomicUsize,
}

#[derive(Default)]
struct ReaderSlot {
    current: Mutex<Option<Arc<ClientWrapper>>>,
    /// Held by the one read that opens the slot's connection; the others
    /// wait for it rather than each opening one.
    refill: tokio::sync::Mutex<()>,
}

impl ReaderSlot {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<Arc<ClientWrapper>>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot's connection if it is open; a closed one is let go of.
    fn open(&self) -> Option<Arc<ClientWrapper>> {
        let mut current = self.current();
        if current.as_ref().is_some_and(|client| client.is_closed()) {
            *current = None;
        }
        current.clone()
    }

    /// Lets go of `client` if the slot still holds it: the reads still on
    /// it finish or miss their deadline, then it closes.
    fn evict(&self, client: &Arc<ClientWrapper>) {
        let mut current = self.current();
        if current
            .as_ref()
            .is_some_and(|held| Arc::ptr_eq(held, client))
        {
            *current = None;
        }
    }

    fn is_filled(&self) -> bool {
        self.current().is_some()
    }
}

impl Database {
    /// Builds the pool. Connections are opened on first use, so this
    /// succeeds while the database is down.
    pub fn new(settings: &DatabaseSettings) -> anyhow::Result<Database> {
        Database::with_config(settings, settings.pg_config()?)
    }

    /// A pool whose commits do not wait for the disk
    /// (`synchronous_commit = off`), for work that is redone if a crash loses
    /// it, such as an outbox's claims and delivery records: a lost one only
    /// means an outcome is delivered again, which its receiver ignores. The
    /// commit still orders after every durable one before it.
    pub fn without_flush_wait(settings: &DatabaseSettings) -> anyhow::Result<Database> {
        let mut config = settings.pg_config()?;
        config.options("-c synchronous_commit=off");
        Database::with_config(settings, config)
    }

    fn with_config(
        settings: &DatabaseSettings,
        mut config: tokio_postgres::Config,
    ) -> anyhow::Result<Database> {
        let deadline = settings.timeout();
        // PostgreSQL itself ends a statement that outlives a request's
        // deadline, should the cancel request sent at the deadline be lost.
        let options = format!(
            "{} -c statement_timeout={}",
            config.get_options().unwrap_or_default(),
            deadline.as_millis()
        );
        config.options(options.trim_start());
        let for_reads = match settings.pool_size {
            0 | 1 => 0,
            size => size.div_ceil(8),
        };
        let readers = if for_reads == 0 {
            None
        } else {
            Some(Arc::new(SharedReaders {
                config: config.clone(),
                slots: (0..for_reads).map(|_| ReaderSlot::default()).collect(),
                next: AtomicUsize::new(0),
            }))
        };
        Ok(Database {
            pool: pool(config, settings.pool_size - for_reads, deadline)?,
            readers,
            deadline,
        })
    }

    /// The pool's connections and waiters, and the connections for reads
    /// (never idle in the pool's sense, as reads share them).
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        let mut status = self.pool.status();
        if let Some(readers) = &self.readers {
            status.max_size += readers.slots.len();
            status.size += readers.slots.iter().filter(|slot| slot.is_filled()).count();
        }
        status
    }

    /// Readiness: the database answers a query within the deadline.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.on_own(async |client| {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    /// The slot a read goes to, and its connection, shared with other
    /// reads; opened if the slot has none or its connection closed (a
    /// database restart closes them all).
    async fn reader(
        &self,
        readers: &SharedReaders,
    ) -> Result<(usize, Arc<ClientWrapper>), DbError> {
        let index = readers.next.fetch_add(1, Ordering::Relaxed) % readers.slots.len();
        let slot = &readers.slots[index];
        if let Some(client) = slot.open() {
            return Ok((index, client));
        }
        let _refilling = slot.refill.lock().await;
        if let Some(client) = slot.open() {
            return Ok((index, client));
        }
        // Boxed: a connection's opening is a large future, and held inline
        // it would make every read's future as large, copied at each layer.
        let (client, connection) = Box::pin(readers.config.connect(NoTls)).await?;
        let connection = tokio::spawn(async move {
            // Its errors surface on the client, as the reads' errors.
            let _ = connection.await;
        });
        let fresh = Arc::new(ClientWrapper::new(client, connection));
        *slot.current() = Some(fresh.clone());
        Ok((index, fresh))
    }

    /// Runs `work` under the deadline on a connection shared with other
    /// reads, or on one of its own if there are none for reads. A shared
    /// connection on which the deadline passes is let go of: one that has
    /// stopped answering would otherwise hold up every read sent to it.
    async fn on_reader<T>(
        &self,
        work: impl AsyncFnOnce(&ClientWrapper) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let Some(readers) = &self.readers else {
            return self.on_own(async |client| work(client).await).await;
        };
        let mut used = None;
        let result = self
            .within_deadline(async {
                let (slot, client) = self.reader(readers).await?;
                used = Some((slot, client.clone()));
                // Boxed, like the checkout below, for the same reason.
                Box::pin(work(&client)).await
            })
            .await;
        if let (Err(DbError::Unavailable(_)), Some((slot, client))) = (&result, used) {
            readers.slots[slot].evict(&client);
        }
        result
    }

    /// Runs one read-only statement under the deadline on a shared
    /// connection and maps the row it returns, if any. Never for a
    /// statement that writes or locks: it would hold up every read queued
    /// behind it.
    pub async fn read_opt<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        self.on_reader(async |client| row_opt(client, sql, params, map).await)
            .await
    }

    /// Runs one read-only statement under the deadline on a shared
    /// connection and maps every row it returns (see [`Database::read_opt`]).
    pub async fn read<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        self.on_reader(async |client| rows(client, sql, params, map).await)
            .await
    }

    /// Runs `work` under the deadline on a connection of its own, for work
    /// that needs more than one statement (a transaction). See the module's
    /// comment for what a missed deadline answers.
    pub async fn on_own<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let started = Instant::now();
        // Until a connection is had nothing was sent: a miss is Unavailable.
        // Boxed: the checkout may open a connection, a large future; held
        // inline it would make every request's future as large, copied at
        // each layer of it (measured: 5.8 KB, and 5 % of the service's
        // CPU in `memcpy` under POST /orders).
        let mut client = self
            .within_deadline(async { Ok(Box::pin(self.pool.get()).await?) })
            .await?;
        let cancel = client.cancel_token();
        let to_cancel = (self.deadline * 4 / 5).saturating_sub(started.elapsed());
        let (in_time, late) = {
            // Boxed: statements' futures are large too.
            let mut running = Box::pin(work(&mut client));
            match tokio::time::timeout(to_cancel, &mut running).await {
                Ok(result) => (Some(result), None),
                Err(_) => {
                    tokio::spawn(async move {
                        let _ =
                            tokio::time::timeout(CANCEL_BOUND, cancel.cancel_query(NoTls)).await;
                    });
                    let grace = self.deadline.saturating_sub(started.elapsed());
                    (None, Some(tokio::time::timeout(grace, running).await))
                }
            }
        };
        match (in_time, late) {
            (Some(result), _) => sent(result),
            (None, late) => {
                // A cancel request may still arrive on this connection and
                // stop whatever it runs next: no other request gets it.
                drop(deadpool_postgres::Object::take(client));
                match late {
                    // Cancelled, or finished after all: its own answer is
                    // the truth.
                    Some(Ok(result)) => sent(result),
                    _ => Err(DbError::OutcomeUnknown(format!(
                        "no answer within {} ms, and no confirmation that the work was cancelled",
                        self.deadline.as_millis()
                    ))),
                }
            }
        }
    }

    /// Runs one statement under the deadline on a connection of its own and
    /// maps the row it returns, if any.
    pub async fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        self.on_own(async |client| row_opt(client, sql, params, map).await)
            .await
    }

    /// Runs one statement under the deadline on a connection of its own and
    /// maps every row it returns.
    pub async fn query<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        self.on_own(async |client| rows(client, sql, params, map).await)
            .await
    }

    /// Runs one statement under the deadline, planned for this execution
    /// with the tables as they are, and maps every row it returns. For a
    /// statement on a table that swings between empty and large, such as a
    /// queue's: a plan cached while it was nearly empty scans all of it
    /// later (measured: an outbox claim took 12 ms instead of 0.08 ms until
    /// the table was analysed again). Costs a second round trip.
    pub async fn query_planned_afresh<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        self.on_own(async |client| {
            // Prepared for this execution only: its first execution is
            // planned with these parameters and today's statistics.
            let statement = client.prepare(sql).await?;
            mapped(client.query(&statement, params).await?, map)
        })
        .await
    }

    /// Runs one statement under the deadline; returns how many rows it changed.
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, DbError> {
        self.on_own(async |client| {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        })
        .await
    }

    /// Runs `work` under the deadline; a miss is [`DbError::Unavailable`],
    /// so only for work that sends nothing that could commit.
    async fn within_deadline<T>(
        &self,
        work: impl Future<Output = Result<T, DbError>>,
    ) -> Result<T, DbError> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(Err(DbError::Disconnected(reason))) => Err(DbError::Unavailable(reason)),
            Ok(result) => result,
            Err(_) => Err(DbError::Unavailable(format!(
                "no answer within {} ms",
                self.deadline.as_millis()
            ))),
        }
    }
}

/// The answer of work that sent statements on its connection: one that
/// ended under it may have committed them.
fn sent<T>(result: Result<T, DbError>) -> Result<T, DbError> {
    match result {
        Err(DbError::Disconnected(reason)) => Err(DbError::OutcomeUnknown(reason)),
        other => other,
    }
}

/// A pool of `size` connections configured by `config`.
fn pool(config: tokio_postgres::Config, size: usize, deadline: Duration) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        // Fast: a checkout costs no round trip. A connection whose session
        // ended (a database restart closes them all) is already marked
        // closed and is replaced; one that hangs is cut off by the deadline
        // like any other query.
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(deadline))
        .create_timeout(Some(deadline))
        .recycle_timeout(Some(deadline))
        .build()
        .context("cannot build the database pool")
}

async fn row_opt<T>(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    map: impl Fn(&Row) -> Result<T, DbError>,
) -> Result<Option<T>, DbError> {
    let statement = client.prepare_cached(sql).await?;
    client
        .query_opt(&statement, params)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

async fn rows<T>(
    client: &ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    map: impl Fn(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let statement = client.prepare_cached(sql).await?;
    mapped(client.query(&statement, params).await?, map)
}

fn mapped<T>(rows: Vec<Row>, map: impl Fn(&Row) -> Result<T, DbError>) -> Result<Vec<T>, DbError> {
    rows.iter().map(map).collect()
}

/// Applies `migrations`, holding a PostgreSQL advisory lock for the whole
/// run so that instances starting together take turns: refinery takes no
/// lock of its own (measured: 3 of 4 simultaneous runners failed). The
/// lock lives on a dedicated connection, so it is released when that
/// connection closes, even if this process dies mid-run.
pub async fn migrate(
    settings: &DatabaseSettings,
    migrations: refinery::Runner,
    lock_key: i64,
    indexes: &[ConcurrentIndex],
    log: &slog::Logger,
) -> anyhow::Result<()> {
    let config = settings.pg_config()?;
    let (mut client, connection) = connect_with_retry(&config, log).await?;
    let connection = tokio::spawn(connection);
    // Tried, not waited for in the server: a session blocked in
    // pg_advisory_lock holds a transaction open, and CREATE INDEX
    // CONCURRENTLY, run by the holder, waits for every open transaction:
    // two replicas starting together would wait for each other for ever.
    while !client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key])
        .await
        .context("cannot take the migration lock")?
        .get::<_, bool>(0)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = migrations
        .run_async(&mut client)
        .await
        .context("migrations failed")?;
    for migration in report.applied_migrations() {
        slog::info!(log, "applied migration"; "migration" => migration.to_string());
    }
    for index in indexes {
        index.build(&client, log).await?;
    }
    drop(client);
    // The connection task ends once the client is gone; that closes the
    // session and releases the lock.
    let _ = connection.await;
    Ok(())
}

/// An index built without blocking writes to its table (CREATE INDEX
/// CONCURRENTLY), after the migrations: a migration runs in a transaction,
/// where building an index holds a lock that stops every write to a
/// growing table for as long as the build takes.
pub struct ConcurrentIndex {
    pub name: &'static str,
    /// What follows the name: `ON table (columns)`.
    pub definition: &'static str,
}

impl ConcurrentIndex {
    /// Builds the index unless it is there and valid; a build that was
    /// interrupted left it invalid, and it is dropped and built again.
    async fn build(
        &self,
        client: &tokio_postgres::Client,
        log: &slog::Logger,
    ) -> anyhow::Result<()> {
        let valid: Option<bool> = client
            .query_opt(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace",
                &[&self.name],
            )
            .await?
            .map(|row| row.get(0));
        match valid {
            Some(true) => return Ok(()),
            Some(false) => {
                client
                    .batch_execute(&format!("DROP INDEX CONCURRENTLY {}", self.name))
                    .await
                    .with_context(|| format!("cannot drop the invalid index {}", self.name))?;
            }
            None => {}
        }
        client
            .batch_execute(&format!(
                "CREATE INDEX CONCURRENTLY {} {}",
                self.name, self.definition
            ))
            .await
            .with_context(|| format!("cannot build the index {}", self.name))?;
        slog::info!(log, "built index"; "index" => self.name);
        Ok(())
    }
}

/// How long start-up waits for the database to accept connections.
const STARTUP_ATTEMPTS: u32 = 30;

async fn connect_with_retry(
    config: &tokio_postgres::Config,
    log: &slog::Logger,
) -> anyhow::Result<(
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
)> {
    let mut attempt = 1;
    loop {
        match config.connect(NoTls).await {
            Ok(pair) => return Ok(pair),
            Err(error) if attempt < STARTUP_ATTEMPTS => {
                slog::warn!(log, "database not reachable yet; retrying in 1 s";
                    "attempt" => attempt, "error" => error.to_string());
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => {
                return Err(error).context(format!(
                    "cannot connect to the database after {STARTUP_ATTEMPTS} attempts"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ended_by_the_server_may_have_committed_and_a_cancel_did_not() {
        for code in [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CONNECTION_FAILURE,
        ] {
            assert!(ends_the_session(&code), "{code:?} ends the session");
        }
        for code in [
            SqlState::QUERY_CANCELED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::T_R_SERIALIZATION_FAILURE,
        ] {
            assert!(!ends_the_session(&code), "{code:?} only ends the statement");
        }
        assert!(matches!(
            sent::<()>(Err(DbError::Disconnected("gone".into()))),
            Err(DbError::OutcomeUnknown(_))
        ));
    }

    #[test]
    fn refusals_for_load_or_timing_are_transient_and_mistakes_are_not() {
        for code in [
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::QUERY_CANCELED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::OUT_OF_MEMORY,
            SqlState::CONNECTION_FAILURE,
        ] {
            assert!(is_transient(&code), "{code:?} should be transient");
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::CHECK_VIOLATION,
            SqlState::CHARACTER_NOT_IN_REPERTOIRE,
            SqlState::UNDEFINED_COLUMN,
            SqlState::SYNTAX_ERROR,
        ] {
            assert!(!is_transient(&code), "{code:?} is a bug, not load");
        }
    }
}
