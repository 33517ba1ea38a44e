//! Measures order-service and payment-service against PostgreSQL's own
//! ceiling, in one run on one machine:
//!
//! 1. starts a throwaway PostgreSQL that flushes every commit, as
//!    production does, and seeds the rows the measurements use (`seed`);
//! 2. measures the database's ceiling for each operation's statements with
//!    pgbench (`ceiling`);
//! 3. starts the real service binaries as processes at the production log
//!    level and loads each operation over HTTP with wrk (`http_load`);
//! 4. runs the whole flow through the generated clients, as fast as it goes
//!    and then at half that rate (`flow`);
//! 5. prints one table, with each service's memory idle and after the load;
//! 6. starts a second pair of services with authentication on (a token
//!    issuer in this process) and `plain-orders` (the yardstick of issue
//!    21: a plain axum + tokio-postgres service running order-service's
//!    insert and select, a binary of this crate) beside the first, and
//!    measures `GET /orders/{id}` and `POST /orders` on the three in turn,
//!    and the whole flow on both pairs in turn, twice, printing one table
//!    side by side with the ratios to plain and to the ceiling;
//! 7. with `--profile`, counts what one request costs (`profile`): commits,
//!    WAL flushes, exchanges with PostgreSQL, CPU time, system calls,
//!    context switches, malloc calls, on plain and on the product with
//!    authentication on; and what one whole flow costs each database.
//!
//! Steps 3 to 5 run with authentication off (`AUTH_DISABLED`), as the
//! figures of earlier rounds were taken. Bounded in time (about 6 minutes
//! with the defaults, about 2 more with `--profile`), loopback only;
//! everything it starts is stopped when it ends.

mod ceiling;
mod flow;
mod http_load;
mod profile;
mod seed;
mod services;

use anyhow::Context;
use clap::Parser;
use local_issuer::{Issuer, SigningIdentity};
use postgres_cluster::Cluster;
use services::Service;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Measures both services against PostgreSQL's ceiling and prints a table.
#[derive(Parser)]
#[command(name = "benchmark")]
struct Options {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// HTTP connections wrk keeps open.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Concurrent clients running the whole flow.
    #[arg(long, default_value_t = 64)]
    flow_clients: usize,
    /// Connections each service's pool holds, and so pgbench's clients.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Where the order-service and payment-service binaries are (default:
    /// beside this program, as `cargo build --release --bins` leaves them).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// After the tables, run the flow (authentication on) at the half rate
    /// for this many seconds more, printing every 30 s each service's memory, the outbox's rows,
    /// the settled→paid p99 and what a /metrics scrape took: growth shows
    /// here. payment-service then keeps delivered outcomes for
    /// `--soak-retention-secs` only, so the outbox levels off within the run.
    #[arg(long, default_value_t = 0)]
    soak_seconds: u64,
    /// How long payment-service keeps delivered outcomes when soaking
    /// (`CALLBACK_RETENTION_SECS`).
    #[arg(long, default_value_t = 60)]
    soak_retention_secs: u64,
    /// A quick run that only proves every step works: 1 s each, few
    /// connections. Its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// After the tables, count what one request and one flow cost (commits,
    /// WAL flushes, exchanges with PostgreSQL, CPU time, system calls,
    /// context switches, malloc calls) on plain-orders and on the product
    /// with authentication on, in short loads of their own. Needs perf.
    #[arg(long)]
    profile: bool,
}

impl Options {
    fn duration(&self) -> Duration {
        Duration::from_secs(if self.smoke { 1 } else { self.seconds })
    }

    fn connections(&self) -> usize {
        if self.smoke { 4 } else { self.connections }
    }

    fn flow_clients(&self) -> usize {
        if self.smoke { 2 } else { self.flow_clients }
    }

    /// How long each load of the profile runs: short, it counts costs.
    fn profile_duration(&self) -> Duration {
        self.duration().min(Duration::from_secs(5))
    }

    /// Rows to seed for a service's operation that uses each row once: more
    /// than it can use in one measurement.
    fn rows_per_measurement(&self) -> u64 {
        if self.smoke {
            2_000
        } else {
            12_000 * self.duration().as_secs()
        }
    }

    /// The same for pgbench, which goes faster: a client that ran out of
    /// rows would go on with statements that change nothing, and cheaper.
    fn ceiling_rows_per_measurement(&self) -> u64 {
        if self.smoke {
            2_000
        } else {
            50_000 * self.duration().as_secs()
        }
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The audience of the benchmark's tokens.
const AUDIENCE: &str = "orders-and-payments-benchmark";

/// How the two service binaries are run: production log level, the
/// database's pool size, a shared callback secret.
struct Services<'a> {
    bin_dir: &'a std::path::Path,
    log_dir: &'a std::path::Path,
    cluster: &'a Cluster,
    secret: String,
    pool_size: usize,
    /// payment-service's `CALLBACK_RETENTION_SECS`, if not its default.
    retention_secs: Option<u64>,
}

impl Services<'_> {
    /// Starts order-service, then payment-service pointing at it; both
    /// trust `issuer`'s tokens, or authenticate nobody without one.
    fn start(&self, issuer: Option<&Issuer>) -> anyhow::Result<(Service, Service)> {
        let environment = |database: &str| {
            let mut environment = vec![
                ("DATABASE_URL", self.cluster.connection_string(database)),
                ("PORT", "0".to_string()),
                ("LOG_LEVEL", "info".to_string()),
                ("DB_POOL_SIZE", self.pool_size.to_string()),
                ("PAYMENT_CALLBACK_SECRET", self.secret.clone()),
            ];
            match issuer {
                Some(issuer) => {
                    environment.push(("AUTH_ISSUER", issuer.url().to_string()));
                    environment.push(("AUTH_AUDIENCE", issuer.audience().to_string()));
                }
                None => environment.push(("AUTH_DISABLED", "true".to_string())),
            }
            environment
        };
        let orders = Service::start(
            "order-service",
            self.bin_dir,
            self.log_dir,
            &environment("order_db"),
        )?;
        let mut payments = environment("payment_db");
        payments.push(("ORDER_SERVICE_URL", orders.url()));
        if let Some(retention) = self.retention_secs {
            payments.push(("CALLBACK_RETENTION_SECS", retention.to_string()));
        }
        let payments = Service::start("payment-service", self.bin_dir, self.log_dir, &payments)?;
        Ok((orders, payments))
    }

    /// Starts plain-orders on order_db, with the services' pool size.
    fn start_plain(&self) -> anyhow::Result<Service> {
        Service::start(
            PLAIN,
            self.bin_dir,
            self.log_dir,
            &[
                ("DATABASE_URL", self.cluster.connection_string("order_db")),
                ("PORT", "0".to_string()),
                ("DB_POOL_SIZE", self.pool_size.to_string()),
            ],
        )
    }
}

/// The yardstick's binary, and its connections' `application_name`.
const PLAIN: &str = "plain-orders";

/// One row of the table.
struct Row {
    operation: &'static str,
    ceiling: f64,
    figures: http_load::Figures,
    /// Outcomes the load left to deliver.
    backlog: Backlog,
}

/// How long the outcomes a load left behind may take to be delivered.
const DRAIN_BOUND: Duration = Duration::from_secs(300);

async fn run(options: &Options) -> anyhow::Result<()> {
    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this program's directory")?
            .to_path_buf(),
    };
    let duration = options.duration();
    let work_dir = tempdir()?;
    eprintln!("PostgreSQL: starting a throwaway cluster (durable commits)");
    let cluster = Cluster::start_durable()?;
    for database in ["order_db", "payment_db"] {
        cluster.create_database(database, None).await?;
    }
    let services = Services {
        bin_dir: &bin_dir,
        log_dir: &work_dir,
        cluster: &cluster,
        secret: service_support::callback_secret::generate(),
        pool_size: options.pool_size,
        retention_secs: (options.soak_seconds > 0).then_some(options.soak_retention_secs),
    };

    // Migrated by the services themselves; started once to create the
    // schema, stopped while the database is measured alone.
    let (order_service, payment_service) = services.start(None)?;
    payment_service.stop();
    order_service.stop();

    let rows = options.rows_per_measurement();
    let clients = options.pool_size;
    let stride = options.ceiling_rows_per_measurement() / clients as u64 + 1;
    eprintln!(
        "seeding: {} read orders, {rows} payable orders, {rows} settleable payments",
        seed::READ_ORDERS
    );
    let orders_db = cluster.connect("order_db").await?;
    let payments_db = cluster.connect("payment_db").await?;
    orders_db
        .batch_execute(&seed::orders(1, seed::READ_ORDERS))
        .await?;
    orders_db
        .batch_execute(&seed::orders(seed::PAYABLE_FROM, rows))
        .await?;
    orders_db
        .batch_execute(&seed::orders(seed::SETTLEABLE_FROM, rows))
        .await?;
    payments_db
        .batch_execute(&seed::payments(seed::SETTLEABLE_FROM, rows))
        .await?;
    payments_db
        .batch_execute(&seed::payments(
            seed::CEILING_SETTLEABLE_FROM,
            stride * clients as u64 + clients as u64,
        ))
        .await?;
    orders_db
        .batch_execute(&seed::orders(
            seed::CEILING_PAYABLE_FROM,
            stride * clients as u64 + clients as u64,
        ))
        .await?;
    for db in [&orders_db, &payments_db] {
        db.batch_execute("VACUUM ANALYZE").await?;
    }

    // POST /payments runs two statements, each in its own database: the
    // attachment in order_db, then the insert. Both are measured alone;
    // sharing the cores and the disk, the pair cannot go faster than
    // 1 / (1/attach + 1/insert).
    eprintln!(
        "ceiling: POST /payments' attachment with pgbench, {clients} connections, {duration:?}"
    );
    let attach_tps = ceiling::measure(
        &cluster,
        &work_dir,
        "attach",
        &ceiling::attach_payment(stride),
        clients,
        duration,
    )?;
    let ceilings = [
        ("GET /orders/{id}", ceiling::get_order()),
        ("POST /orders", ceiling::create_order()),
        ("GET /orders (100)", ceiling::list_orders()),
        ("POST /payments", ceiling::create_payment()),
        (
            "PUT /payments/success/{id}",
            ceiling::settle_payment(stride),
        ),
    ];
    let mut measured = Vec::new();
    for (index, (operation, script)) in ceilings.iter().enumerate() {
        eprintln!("ceiling: {operation} with pgbench, {clients} connections, {duration:?}");
        let tps = ceiling::measure(
            &cluster,
            &work_dir,
            &format!("op{index}"),
            script,
            clients,
            duration,
        )?;
        let tps = if *operation == "POST /payments" {
            1.0 / (1.0 / attach_tps + 1.0 / tps)
        } else {
            tps
        };
        measured.push((*operation, tps));
    }
    // The outcomes pgbench recorded are not the services' to deliver.
    payments_db
        .batch_execute("DELETE FROM order_notifications")
        .await?;
    payments_db.batch_execute("VACUUM ANALYZE").await?;

    let (order_service, payment_service) = services.start(None)?;
    let idle = (order_service.rss()?, payment_service.rss()?);

    let loads = [
        (order_service.url(), http_load::get_order()),
        (order_service.url(), http_load::create_order()),
        (order_service.url(), http_load::list_orders()),
        (
            payment_service.url(),
            http_load::create_payment(seed::PAYABLE_FROM, rows / 2),
        ),
        (
            payment_service.url(),
            http_load::settle_payment(seed::SETTLEABLE_FROM, rows / 2),
        ),
    ];
    let mut table = Vec::new();
    for (index, ((url, load), (operation, ceiling))) in loads.iter().zip(&measured).enumerate() {
        eprintln!(
            "service: {operation} with wrk, {} connections, {duration:?}",
            options.connections()
        );
        let figures = http_load::measure(
            url,
            &work_dir,
            &format!("op{index}"),
            load,
            None,
            2,
            options.connections(),
            duration,
        )?;
        // Outcomes of the settlements are still being delivered; let them
        // land before the next measurement.
        let backlog = wait_for_deliveries(&payments_db, DRAIN_BOUND).await?;
        table.push(Row {
            operation,
            ceiling: *ceiling,
            figures,
            backlog,
        });
    }

    // The loads above left dead rows and tables whose statistics are stale
    // (the outbox grew from empty): measured without this, the flow ran
    // at 0.6 of what it ran at minutes later, with PostgreSQL spending
    // twice the CPU per flow. pgbench vacuums before it measures for the
    // same reason.
    for db in [&orders_db, &payments_db] {
        db.batch_execute("VACUUM ANALYZE").await?;
    }
    eprintln!(
        "flow: {} clients as fast as they go, {duration:?}",
        options.flow_clients()
    );
    let fastest = flow::run(
        &order_service.url(),
        &payment_service.url(),
        None,
        options.flow_clients(),
        flow::Pace::AsFastAsPossible,
        duration,
    )
    .await;
    wait_for_deliveries(&payments_db, DRAIN_BOUND).await?;
    let half_rate = (fastest.flows_per_second / 2.0).max(1.0);
    eprintln!("flow: {half_rate:.0} flows/s (half the fastest), {duration:?}");
    let paced = flow::run(
        &order_service.url(),
        &payment_service.url(),
        None,
        options.flow_clients(),
        flow::Pace::PerSecond(half_rate),
        duration,
    )
    .await;
    let loaded = (order_service.rss()?, payment_service.rss()?);

    let insert_ceiling = measured[1].1;
    print_table(
        &table,
        &fastest,
        &paced,
        insert_ceiling,
        idle,
        loaded,
        options,
    );

    // Side by side: plain-orders, the product without authentication and
    // a second pair of services that authenticates, on the same databases,
    // each measurement taken in turn on all of them, twice, so the
    // machine's drift weighs on all alike.
    let issuer = Issuer::serve(
        ([127, 0, 0, 1], 0).into(),
        None,
        SigningIdentity::generate()?,
        AUDIENCE,
    )
    .await?;
    let lifetime = Duration::from_secs(3600);
    let customer_scopes = "orders:read orders:write payments:read payments:write";
    let tokens = flow::Tokens {
        customer: issuer.token(seed::CUSTOMER, customer_scopes, lifetime),
        connector: issuer.token("bench-connector", "payments:settle", lifetime),
    };
    let (secured_orders, secured_payments) = services.start(Some(&issuer))?;
    let plain = services.start_plain()?;
    let mut compared: Vec<Comparison> = Vec::new();
    for (index, row) in table.iter().enumerate().take(2) {
        let mut comparison = Comparison::named(row.operation, row.ceiling);
        for round in 0..COMPARISON_ROUNDS {
            for (contender, url, token) in [
                (Contender::Plain, plain.url(), None),
                (Contender::Off, order_service.url(), None),
                (
                    Contender::On,
                    secured_orders.url(),
                    Some(tokens.customer.as_str()),
                ),
            ] {
                eprintln!(
                    "compare: {} with wrk, {}, round {}, {duration:?}",
                    row.operation,
                    contender.name(),
                    round + 1
                );
                let figures = http_load::measure(
                    &url,
                    &work_dir,
                    &format!("compare{index}"),
                    &loads[index].1,
                    token,
                    2,
                    options.connections(),
                    duration,
                )?;
                comparison.add(contender, figures.requests_per_second, figures.errors);
            }
        }
        compared.push(comparison);
    }
    let flow_ceiling = insert_ceiling / COMMITS_PER_FLOW;
    let mut comparison = Comparison::named("whole flow (flows/s)", flow_ceiling);
    for round in 0..COMPARISON_ROUNDS {
        for (contender, orders, payments, tokens) in [
            (Contender::Off, &order_service, &payment_service, None),
            (
                Contender::On,
                &secured_orders,
                &secured_payments,
                Some(&tokens),
            ),
        ] {
            eprintln!(
                "compare: the whole flow, {}, round {}, {duration:?}",
                contender.name(),
                round + 1
            );
            let figures = flow::run(
                &orders.url(),
                &payments.url(),
                tokens,
                options.flow_clients(),
                flow::Pace::AsFastAsPossible,
                duration,
            )
            .await;
            wait_for_deliveries(&payments_db, DRAIN_BOUND).await?;
            comparison.add(contender, figures.flows_per_second, figures.errors);
        }
    }
    compared.push(comparison);
    print_comparison(&compared);

    if options.profile {
        let setup = profile::Setup {
            cluster: &cluster,
            work_dir: &work_dir,
            connections: options.connections(),
            duration: options.profile_duration(),
        };
        let customer = Some(tokens.customer.as_str());
        let target = |service, index: usize, process, backends, token| profile::Target {
            service,
            operation: table[index].operation,
            process,
            backends,
            load: &loads[index].1,
            token,
        };
        let product = "order-service (auth on)";
        let (plain_db, product_db) = (
            profile::Backends::Named(PLAIN),
            profile::Backends::AllBut(PLAIN),
        );
        let targets = [
            target(PLAIN, 1, &plain, plain_db, None),
            target(product, 1, &secured_orders, product_db, customer),
            target(PLAIN, 0, &plain, plain_db, None),
            target(product, 0, &secured_orders, product_db, customer),
        ];
        let flow = profile::Flow {
            orders: &secured_orders,
            payments: &secured_payments,
            tokens: &tokens,
            clients: options.flow_clients(),
        };
        profile::run(&setup, &targets, flow, &payments_db).await?;
    }
    plain.stop();
    payment_service.stop();
    order_service.stop();
    let (order_service, payment_service) = (secured_orders, secured_payments);
    soak(
        &order_service,
        &payment_service,
        &tokens,
        &payments_db,
        half_rate,
        options,
    )
    .await?;
    payment_service.stop();
    order_service.stop();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&work_dir);
    Ok(())
}

/// How many times each comparison is taken on every contender.
const COMPARISON_ROUNDS: usize = 2;

/// Who is measured side by side.
#[derive(Clone, Copy)]
enum Contender {
    /// plain-orders, the yardstick.
    Plain,
    /// The product, authentication off.
    Off,
    /// The product, authentication on.
    On,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Plain => "plain-orders",
            Contender::Off => "authentication off",
            Contender::On => "authentication on",
        }
    }
}

/// One measurement taken on each contender, round by round.
struct Comparison {
    operation: &'static str,
    /// PostgreSQL's ceiling for the same work, from this run.
    ceiling: f64,
    /// Each contender's figures, by [`Contender`].
    figures: [Vec<f64>; 3],
    errors: u64,
}

impl Comparison {
    fn named(operation: &'static str, ceiling: f64) -> Comparison {
        Comparison {
            operation,
            ceiling,
            figures: Default::default(),
            errors: 0,
        }
    }

    fn add(&mut self, contender: Contender, figure: f64, errors: u64) {
        self.figures[contender as usize].push(figure);
        self.errors += errors;
    }

    /// The mean of a contender's rounds, if it was measured.
    fn mean(&self, contender: Contender) -> Option<f64> {
        let figures = &self.figures[contender as usize];
        (!figures.is_empty()).then(|| figures.iter().sum::<f64>() / figures.len() as f64)
    }
}

/// Each measurement on plain-orders, the product without authentication
/// and with it (the mean of the rounds, and each round), and the ratios.
fn print_comparison(compared: &[Comparison]) {
    let figure = |f: Option<f64>| f.map_or_else(|| "—".to_string(), |f| format!("{f:.0}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("**{:.2}**", a / b),
        _ => "—".to_string(),
    };
    let rounds = |figures: &[f64]| {
        if figures.is_empty() {
            return "—".to_string();
        }
        figures
            .iter()
            .map(|f| format!("{f:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!();
    println!(
        "| side by side | plain (req/s) | auth off (req/s) | auth on (req/s) | on ÷ plain | off ÷ plain | on ÷ ceiling | rounds plain | rounds off | rounds on | errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for c in compared {
        let (plain, off, on) = (
            c.mean(Contender::Plain),
            c.mean(Contender::Off),
            c.mean(Contender::On),
        );
        println!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.operation,
            figure(plain),
            figure(off),
            figure(on),
            ratio(on, plain),
            ratio(off, plain),
            ratio(on, Some(c.ceiling)),
            rounds(&c.figures[Contender::Plain as usize]),
            rounds(&c.figures[Contender::Off as usize]),
            rounds(&c.figures[Contender::On as usize]),
            c.errors
        );
    }
    println!(
        "\nPlain: plain-orders, a plain axum + tokio-postgres service of this crate running \
         order-service's INSERT and SELECT (owner NULL) on the same database, one statement \
         per request, no authentication and no per-request log (the yardstick of issue 21). \
         Auth off and on: order-service (and payment-service for the flow) without and with \
         authentication: every request carries a bearer token (EdDSA, from a token issuer in \
         the benchmark's process, found by OpenID discovery), verified once per token and \
         then served from the verified-token cache; reads see the caller's own orders (the \
         seeded ones are the token subject's). Ceiling: pgbench's, from this run (the whole \
         flow's: {COMMITS_PER_FLOW} durable commits per flow). Measured in turns, \
         {COMPARISON_ROUNDS} rounds."
    );
}

/// Commits of one flow that wait for the disk: the order; the payment's
/// intent, its attachment to the order (with the signed call's record) and
/// its confirmation; its settlement (with its outcome's record, claimed for
/// delivery); the order's settlement (with the signed call's record). The
/// signed read of the order and the delivery's record commit too, but do
/// not wait for the disk. `--profile` counts them (WAL fsyncs and commits
/// per flow).
const COMMITS_PER_FLOW: f64 = 6.0;

fn print_table(
    rows: &[Row],
    fastest: &flow::Figures,
    paced: &flow::Figures,
    insert_ceiling: f64,
    idle: (u64, u64),
    loaded: (u64, u64),
    options: &Options,
) {
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    println!();
    println!(
        "| operation | PostgreSQL ceiling (tps) | service (req/s) | ratio | p50 ms | p99 ms | max ms | errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| `{}` | {:.0} | {:.0} | **{:.2}** | {} | {} | {} | {} |",
            row.operation,
            row.ceiling,
            row.figures.requests_per_second,
            row.figures.requests_per_second / row.ceiling,
            ms(row.figures.p50),
            ms(row.figures.p99),
            ms(row.figures.max),
            row.figures.errors
        );
    }
    println!(
        "\n`POST /payments` needs two statements, each in its own database (the payment's \
         attachment to the order, then the payment): its ceiling is 1 / (1/attach + 1/insert) \
         of the two, each measured alone by pgbench."
    );
    for row in rows.iter().filter(|row| row.backlog.outcomes > 0) {
        println!(
            "\nAfter `{}`: {} outcomes were still to be delivered when the load ended; \
             delivered in {:.1} s ({:.0}/s).",
            row.operation,
            row.backlog.outcomes,
            row.backlog.took.as_secs_f64(),
            row.backlog.outcomes as f64 / row.backlog.took.as_secs_f64()
        );
    }
    let flow_ceiling = insert_ceiling / COMMITS_PER_FLOW;
    println!();
    println!(
        "| whole flow | commit ceiling (flows/s) | flows/s | ratio | settled→paid p50 ms | p99 ms | max ms | errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for (name, figures) in [
        ("as fast as it goes", fastest),
        ("at half that rate", paced),
    ] {
        println!(
            "| {name} ({} clients) | {:.0} | {:.0} | **{:.2}** | {} | {} | {} | {} |",
            options.flow_clients(),
            flow_ceiling,
            figures.flows_per_second,
            figures.flows_per_second / flow_ceiling,
            ms(figures.settled_to_paid_p50),
            ms(figures.settled_to_paid_p99),
            ms(figures.settled_to_paid_max),
            figures.errors
        );
    }
    println!(
        "\nThe flow's ceiling: {COMMITS_PER_FLOW} durable commits per flow (the order; the \
         payment's intent, attachment and confirmation; the settlement with its outcome; the \
         order settled; the signed read's and the delivery's records do not wait for the disk) \
         at the {insert_ceiling:.0} commits/s pgbench reached for POST /orders' INSERT."
    );
    let mb = |bytes: u64| format!("{:.1}", bytes as f64 / (1024.0 * 1024.0));
    println!();
    println!("| memory (RSS, MiB) | idle | after the load |");
    println!("|---|--:|--:|");
    println!("| order-service | {} | {} |", mb(idle.0), mb(loaded.0));
    println!("| payment-service | {} | {} |", mb(idle.1), mb(loaded.1));
    println!(
        "\n{} s per measurement; wrk: 2 threads, {} connections; pgbench: {} connections \
         (the services' pool size), prepared statements; durable commits.",
        options.duration().as_secs(),
        options.connections(),
        options.pool_size
    );
}

/// The flow at `rate` for `--soak-seconds`, printing every 30 s each
/// service's memory, the outbox's rows, the settled→paid p99 and how long
/// one `/metrics` scrape of payment-service took.
async fn soak(
    orders: &Service,
    payments: &Service,
    tokens: &flow::Tokens,
    payments_db: &tokio_postgres::Client,
    rate: f64,
    options: &Options,
) -> anyhow::Result<()> {
    if options.soak_seconds == 0 {
        return Ok(());
    }
    println!(
        "\n| soak at {rate:.0} flows/s, outcomes kept {} s | order-service RSS MiB | payment-service RSS MiB | flows/s | errors | outbox rows | settled→paid p99 ms | /metrics ms |",
        options.soak_retention_secs
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    let http = reqwest::Client::new();
    let rounds = options.soak_seconds.div_ceil(30);
    for round in 1..=rounds {
        let figures = flow::run(
            &orders.url(),
            &payments.url(),
            Some(tokens),
            options.flow_clients(),
            flow::Pace::PerSecond(rate),
            Duration::from_secs(30),
        )
        .await;
        let outbox: i64 = payments_db
            .query_one("SELECT count(*) FROM order_notifications", &[])
            .await?
            .get(0);
        let scrape = std::time::Instant::now();
        http.get(format!("{}/metrics", payments.url()))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let scrape = scrape.elapsed();
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        println!(
            "| after {} s | {:.1} | {:.1} | {:.0} | {} | {outbox} | {:.2} | {:.2} |",
            round * 30,
            mib(orders.rss()?),
            mib(payments.rss()?),
            figures.flows_per_second,
            figures.errors,
            figures.settled_to_paid_p99.as_secs_f64() * 1000.0,
            scrape.as_secs_f64() * 1000.0,
        );
    }
    Ok(())
}

/// Waits until no outcome waits for delivery; returns how many waited
/// when it began and how long they took.
async fn wait_for_deliveries(
    payments_db: &tokio_postgres::Client,
    bound: Duration,
) -> anyhow::Result<Backlog> {
    let started = std::time::Instant::now();
    let mut outcomes = None;
    loop {
        let row = payments_db
            .query_one(
                "SELECT count(*) FROM order_notifications WHERE state = 'pending'",
                &[],
            )
            .await?;
        let pending: i64 = row.get(0);
        let outcomes = *outcomes.get_or_insert(pending);
        if pending == 0 {
            return Ok(Backlog {
                outcomes,
                took: started.elapsed(),
            });
        }
        if started.elapsed() > bound {
            anyhow::bail!("{pending} outcomes still undelivered after {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Outcomes left to deliver when a load ended, and how long that took.
struct Backlog {
    outcomes: i64,
    took: Duration,
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("order-payment-benchmark-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
