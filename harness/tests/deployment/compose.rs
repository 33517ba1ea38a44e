//! docker-compose.yml on a real Docker Engine, as a user runs it: the
//! images built by the repository's Dockerfile (the release build inside
//! its builder stage), the repository's own compose file brought up with an
//! `.env` made from `.env.example`, and then what a user relies on: every
//! container healthy, the `conformance` checks passing against it, a whole
//! flow with tokens from the compose file's token issuer, payment-service's
//! process killed with SIGKILL in the middle of traffic and brought back by
//! its restart policy with every acknowledged settlement reaching its
//! order, `down` then `up` keeping every order, and `down -v` leaving
//! nothing of the project behind.
//!
//! Base images come from a registry or, where none answers,
//! `deploy/base-images.sh` makes them. Outside CI, without a Docker engine
//! the test is skipped, saying so; in CI (`.ci/run` installs the engine and
//! starts it) it fails. The compose file publishes 8080 and 8081, so those
//! ports must be free; nothing else in this binary listens on them (the
//! other tests take ports from the kernel's ephemeral range).

use crate::repository;
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ORDERS: &str = "http://127.0.0.1:8080";
const PAYMENTS: &str = "http://127.0.0.1:8081";
const CUSTOMER_SCOPES: &str = "orders:read orders:write payments:read payments:write";

/// How often a wait asks Docker (each question a process).
const DOCKER_POLL: Duration = Duration::from_millis(250);

/// Outside CI, says why the test does not run; in CI, where `.ci/run`
/// provides the engine, fails.
fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "the compose test cannot run: {why}"
    );
    eprintln!("SKIPPED: the compose test: {why}");
}

/// Debian's client builds with BuildKit; a newer one earlier in PATH may
/// have no buildx (see deploy/base-images.sh).
fn docker_program() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

fn path_with_usr_bin() -> String {
    format!(
        "/usr/bin:{}",
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/bin".into())
    )
}

fn docker() -> Command {
    let mut command = Command::new(docker_program());
    command.env("PATH", path_with_usr_bin());
    command
}

/// A child process, killed and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command`, its output into `log`, failing the test once `bound`
/// has passed (the command is ended) or when it fails, with the end of its
/// output. Returns its standard output and how long it took.
fn run_logged(mut command: Command, what: &str, log: &Path, bound: Duration) -> (String, Duration) {
    let started = Instant::now();
    let stderr = std::fs::File::create(log).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    // Ended if the wait gives up, so nothing outlives the test.
    let mut child = KillOnDrop(child);
    let status = harness::wait_until_blocking(what, bound, || match child.0.try_wait() {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(format!(
            "still running; the end of its output:\n{}",
            tail(log, 40)
        )),
        Err(error) => Err(format!("cannot tell whether it ended: {error}")),
    });
    let stdout = reader.join().unwrap().unwrap_or_default();
    assert!(
        status.success(),
        "{what} failed ({status}); the end of its output:\n{stdout}{}",
        tail(log, 40)
    );
    (stdout, started.elapsed())
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The compose program: docker-compose (what .ci/run installs), else the
/// `docker compose` plugin.
fn compose_program() -> Option<Vec<String>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .env("PATH", path_with_usr_bin())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker-compose", &["version"]) {
        Some(vec!["docker-compose".into()])
    } else if works(docker_program(), &["compose", "version"]) {
        Some(vec![docker_program().into(), "compose".into()])
    } else {
        None
    }
}

/// One compose project: the repository's compose file under a project name
/// of its own, with the `.env` made for it. Dropped, it is taken down with
/// its volumes and the images it built (after printing the containers'
/// logs if the test is failing).
struct Project {
    program: Vec<String>,
    name: String,
    env_file: PathBuf,
    dir: PathBuf,
    /// The variables the compose file interpolates: taken out of the
    /// environment so that only the `.env` sets them.
    interpolated: Vec<String>,
}

impl Project {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program[0]);
        command
            .args(&self.program[1..])
            .arg("--project-name")
            .arg(&self.name)
            .arg("--file")
            .arg(repository().join("docker-compose.yml"))
            .arg("--env-file")
            .arg(&self.env_file)
            .args(args)
            .current_dir(repository())
            .env("PATH", path_with_usr_bin())
            .env("COMPOSE_DOCKER_CLI_BUILD", "1")
            .env("DOCKER_BUILDKIT", "1");
        for name in &self.interpolated {
            command.env_remove(name);
        }
        command
    }

    fn run(&self, args: &[&str], bound: Duration) -> (String, Duration) {
        let what = format!("docker-compose {}", args.join(" "));
        let mut file: String = args
            .join("-")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        file.push_str(".log");
        let log = self.dir.join(file);
        run_logged(self.command(args), &what, &log, bound)
    }

    /// The ids of the project's containers, stopped ones included.
    fn containers(&self) -> Vec<String> {
        listed(
            docker()
                .args(["ps", "--all", "--quiet", "--filter"])
                .arg(format!("label=com.docker.compose.project={}", self.name)),
        )
    }

    /// The container of one service.
    fn container(&self, service: &str) -> String {
        let ids = listed(
            docker()
                .args(["ps", "--all", "--quiet", "--filter"])
                .arg(format!("label=com.docker.compose.project={}", self.name))
                .arg("--filter")
                .arg(format!("label=com.docker.compose.service={service}")),
        );
        assert_eq!(ids.len(), 1, "one container of {service}: {ids:?}");
        ids[0].clone()
    }

    /// Waits until every container of the project runs and is healthy;
    /// returns how long that took.
    async fn wait_healthy(&self, bound: Duration) -> Duration {
        let started = Instant::now();
        harness::wait_until_every("every container healthy", bound, DOCKER_POLL, async || {
            let ids = self.containers();
            if ids.len() < 5 {
                return Err(format!("{} containers of 5", ids.len()));
            }
            let states = inspect(
                &ids,
                "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}",
            );
            if states.iter().all(|s| s.ends_with(" running healthy")) {
                Ok(())
            } else {
                Err(states.join(", "))
            }
        })
        .await;
        started.elapsed()
    }

    /// A token from the compose file's token issuer, as the README says.
    fn token(&self, subject: &str, scope: &str) -> String {
        let (token, _) = self.run(
            &[
                "exec",
                "-T",
                "token-issuer",
                "token-issuer",
                "token",
                "--subject",
                subject,
                "--scope",
                scope,
            ],
            Duration::from_secs(60),
        );
        let token = token.trim().to_string();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token:?}");
        token
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(output) = self
                .command(&["logs", "--no-color", "--tail", "40"])
                .output()
        {
            eprintln!(
                "the containers' last log lines:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        let _ = self
            .command(&[
                "down",
                "--volumes",
                "--rmi",
                "local",
                "--remove-orphans",
                "--timeout",
                "5",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn listed(command: &mut Command) -> Vec<String> {
    let output = command.output().expect("docker runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `docker inspect --format` of each of `ids`, one line each.
fn inspect(ids: &[String], format: &str) -> Vec<String> {
    let output = docker()
        .args(["inspect", "--format", format])
        .args(ids)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim_start_matches('/').to_string())
        .collect()
}

/// `.env.example` with every secret and password replaced, as its first
/// line asks; returns the file's text and the callback secret.
fn env_from_example() -> (String, String) {
    let example = std::fs::read_to_string(repository().join(".env.example")).unwrap();
    let random = || {
        let mut bytes = Vec::new();
        for _ in 0..2 {
            bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        bytes
    };
    use base64::Engine;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(random())
    );
    let mut replaced = 0;
    let text: String = example
        .lines()
        .map(|line| match line.split_once('=') {
            Some(("PAYMENT_CALLBACK_SECRET", _)) => {
                replaced += 1;
                format!("PAYMENT_CALLBACK_SECRET={secret}\n")
            }
            Some((name, _)) if name.ends_with("_PASSWORD") && !name.starts_with('#') => {
                replaced += 1;
                format!("{name}={}\n", uuid::Uuid::new_v4().simple())
            }
            _ => format!("{line}\n"),
        })
        .collect();
    assert_eq!(replaced, 3, "the secret and two passwords in .env.example");
    (text, secret)
}

/// The names `.env.example` documents, set or commented out.
fn documented_variables() -> Vec<String> {
    std::fs::read_to_string(repository().join(".env.example"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_start_matches('#').trim().to_string())
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .collect()
}

fn image_size(image: &str) -> String {
    let size = inspect(&[image.to_string()], "{{.Size}}");
    match size.first().and_then(|s| s.parse::<u64>().ok()) {
        Some(bytes) => format!("{:.0} MB", bytes as f64 / 1e6),
        None => "not present".to_string(),
    }
}

/// The composed services through the Rust SDK: the customer's clients and
/// the settlement connector's, each with its token.
#[derive(Clone)]
struct Api {
    orders: order_client::Client,
    payments: payment_client::Client,
    settlement: payment_client::Client,
}

impl Api {
    fn new(customer: &str, connector: &str) -> Api {
        let http = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
        };
        let with_token = payment_client::ClientContext::with_token;
        Api {
            orders: order_client::Client::new_with_client(
                ORDERS,
                http(),
                order_client::ClientContext::with_token(customer),
            ),
            payments: payment_client::Client::new_with_client(
                PAYMENTS,
                http(),
                with_token(customer),
            ),
            settlement: payment_client::Client::new_with_client(
                PAYMENTS,
                http(),
                with_token(connector),
            ),
        }
    }

    /// A new order of two at `price`: its id and total.
    async fn create_order(&self, price: u64) -> Result<(String, i64), String> {
        let request = order_client::types::OrderRequest {
            item_name: "Compose keyboard".parse().unwrap(),
            quantity: NonZeroU64::new(2).unwrap(),
            price: NonZeroU64::new(price).unwrap(),
        };
        let order = self
            .orders
            .create_order(None, &request)
            .await
            .map_err(|e| format!("create_order: {e}"))?
            .into_inner()
            .data;
        Ok((order.id.to_string(), order.total_amount))
    }

    /// The order's payment of `amount`: its id.
    async fn pay(&self, order: &str, amount: i64) -> Result<String, String> {
        let request = payment_client::types::PaymentRequest {
            order_id: order.parse().unwrap(),
            amount: NonZeroU64::new(amount as u64).unwrap(),
            provider: "stripe".parse().unwrap(),
        };
        let payment = self
            .payments
            .create_payment(None, &request)
            .await
            .map_err(|e| format!("create_payment: {e}"))?;
        Ok(payment.into_inner().data.id.to_string())
    }

    /// The payment settled as a success, by the connector.
    async fn settle(&self, payment: &str) -> Result<(), String> {
        let settled = self
            .settlement
            .mark_payment_success(&payment.parse().unwrap())
            .await
            .map_err(|e| format!("settle: {e}"))?
            .into_inner()
            .data;
        match settled.status.to_string().as_str() {
            "success" => Ok(()),
            other => Err(format!("settle: the payment is {other}")),
        }
    }

    async fn order_status(&self, order: &str) -> Result<String, String> {
        let order = self
            .orders
            .get_order(&order.parse().unwrap())
            .await
            .map_err(|e| format!("get_order {order}: {e}"))?;
        Ok(order.into_inner().data.status.to_string())
    }

    /// Every order's status, or what was wrong with the first that failed.
    async fn statuses(&self, orders: &[String]) -> Result<BTreeMap<String, String>, String> {
        let mut statuses = BTreeMap::new();
        for order in orders {
            statuses.insert(order.clone(), self.order_status(order).await?);
        }
        Ok(statuses)
    }
}

/// What the traffic during the crash did.
#[derive(Default)]
struct Traffic {
    /// Orders created (200).
    orders: Vec<String>,
    /// Orders whose payment's settlement was acknowledged (200).
    settled: Vec<String>,
    /// When each settlement was acknowledged.
    settled_at: Vec<Instant>,
    /// Requests that failed (refused connections while payment-service is
    /// down, and the like), with the last one's reason.
    failures: usize,
    last_failure: String,
}

/// One client's flows, over and over until `stop` (bounded in count).
async fn flows(api: Api, stop: Arc<AtomicBool>, traffic: Arc<std::sync::Mutex<Traffic>>) {
    for round in 0..2_000 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let outcome = async {
            let (order, total) = api.create_order(100 + round).await?;
            traffic.lock().unwrap().orders.push(order.clone());
            let payment = api.pay(&order, total).await?;
            api.settle(&payment).await?;
            let mut traffic = traffic.lock().unwrap();
            traffic.settled.push(order);
            traffic.settled_at.push(Instant::now());
            Ok::<_, String>(())
        }
        .await;
        if let Err(reason) = outcome {
            {
                let mut traffic = traffic.lock().unwrap();
                traffic.failures += 1;
                traffic.last_failure = reason;
            }
            // Not a wait: it paces the traffic; a refused connection
            // answers at once, and the client must not spin on it.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_file_runs_on_a_real_engine_and_survives_a_crash() {
    let engine = Command::new(docker_program())
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let program = compose_program();
    let Some(program) = program.filter(|_| engine) else {
        let missing = match (engine, compose_program().is_some()) {
            (false, false) => {
                "no Docker engine answers `docker info` and there is no docker-compose"
            }
            (false, true) => "no Docker engine answers `docker info`",
            _ => "there is no docker-compose (nor `docker compose`)",
        };
        skip(&format!(
            "{missing}; .ci/run installs Debian's docker.io, docker-compose and mmdebstrap and starts dockerd"
        ));
        return;
    };
    for port in [8080, 8081] {
        if let Err(error) = std::net::TcpListener::bind(("0.0.0.0", port)) {
            // Another program (a devstack, a compose project of the user's)
            // holds a port the compose file publishes.
            skip(&format!(
                "port {port} is taken (binding it: {error}); docker-compose.yml publishes 8080 \
                 and 8081, stop what listens there"
            ));
            return;
        }
    }

    let name = format!(
        "composetest{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let (env, secret) = env_from_example();
    let env_file = dir.join(".env");
    std::fs::write(&env_file, env).unwrap();
    let mut interpolated = documented_variables();
    interpolated.extend(["COMPOSE_FILE", "COMPOSE_PROJECT_NAME"].map(String::from));
    let project = Project {
        program,
        name,
        env_file,
        dir: dir.clone(),
        interpolated,
    };
    let started = Instant::now();

    // Base images: present, pulled, or made here from Debian's packages.
    let mut script = Command::new(repository().join("deploy/base-images.sh"));
    script.env("PATH", path_with_usr_bin());
    let (_, took) = run_logged(
        script,
        "deploy/base-images.sh",
        &dir.join("base-images.log"),
        Duration::from_secs(20 * 60),
    );
    eprintln!(
        "compose: base images ready in {:.1} s:\n{}",
        took.as_secs_f64(),
        tail(&dir.join("base-images.log"), 10)
    );

    // The images, by the Dockerfile: the release build runs in its builder stage.
    let (_, took) = project.run(&["build"], Duration::from_secs(40 * 60));
    eprintln!(
        "compose: images built in {:.1} s (log: {})",
        took.as_secs_f64(),
        dir.join("build.log").display()
    );

    let up = Instant::now();
    project.run(&["up", "--detach"], Duration::from_secs(5 * 60));
    project.wait_healthy(Duration::from_secs(180)).await;
    eprintln!(
        "compose: from `up` to every container healthy: {:.1} s",
        up.elapsed().as_secs_f64()
    );
    let ids = project.containers();
    let images: BTreeMap<String, String> = inspect(&ids, "{{.Name}} {{.Config.Image}}")
        .into_iter()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(n, i)| (n.to_string(), i.to_string()))
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (container, image) in &images {
        if seen.insert(image.clone()) {
            eprintln!(
                "compose: image {image} ({container}): {}",
                image_size(image)
            );
        }
    }
    eprintln!(
        "compose: the builder image rust:1.95-bookworm: {}",
        image_size("rust:1.95-bookworm")
    );

    // Tokens as the README says, then the conformance checks.
    let customer = project.token("customer-1", CUSTOMER_SCOPES);
    let connector = project.token("settlement-connector", "payments:settle");
    let target = conformance::remote::Target {
        order_url: ORDERS.into(),
        payment_url: PAYMENTS.into(),
        secret: Some(secret),
        token: Some(customer.clone()),
        settle_token: Some(connector.clone()),
    };
    let mut report = Vec::new();
    let summary = conformance::remote::run(&target, &mut report).await;
    let report = String::from_utf8(report).unwrap();
    eprintln!("compose: conformance against the composed system:\n{report}");
    assert_eq!(summary.failed, 0, "conformance failed:\n{report}");
    assert!(summary.passed >= 8, "{report}");

    // A whole flow: create, pay, settle, the order paid.
    let api = Api::new(&customer, &connector);
    let (order, total) = api.create_order(4999).await.unwrap();
    assert_eq!(total, 9998);
    let payment = api.pay(&order, total).await.unwrap();
    api.settle(&payment).await.unwrap();
    harness::wait_until(
        "the order paid",
        Duration::from_secs(30),
        async || match api.order_status(&order).await? {
            paid if paid == "paid" => Ok(()),
            other => Err(other),
        },
    )
    .await;
    let mut orders = vec![order];

    // payment-service's process killed with SIGKILL in the middle of traffic.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = Arc::new(std::sync::Mutex::new(Traffic::default()));
    let clients: Vec<_> = (0..3)
        .map(|_| tokio::spawn(flows(api.clone(), stop.clone(), traffic.clone())))
        .collect();
    let settled = || traffic.lock().unwrap().settled.len();
    harness::wait_until(
        "traffic: 10 settlements acknowledged",
        Duration::from_secs(60),
        async || match settled() {
            n if n >= 10 => Ok(()),
            n => Err(format!("{n} ({})", traffic.lock().unwrap().last_failure)),
        },
    )
    .await;
    let payment_service = project.container("payment-service");
    let pid: i32 = inspect(std::slice::from_ref(&payment_service), "{{.State.Pid}}")[0]
        .parse()
        .unwrap();
    assert!(pid > 0, "payment-service runs");
    let before_kill = settled();
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    harness::wait_until_every("payment-service restarted by its restart policy and healthy",
        Duration::from_secs(120),
        DOCKER_POLL,
        async || {
            let state = inspect(
                std::slice::from_ref(&payment_service),
                "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.Pid}}",
            )
            .join("");
            let fields: Vec<&str> = state.split(' ').collect();
            let restarted = fields[0].parse::<u32>().unwrap_or(0) >= 1;
            if restarted && fields[1] == "running" && fields[3] == "healthy" {
                Ok(())
            } else {
                Err(format!(
                    "restarts, status, exit code, health, pid: {state}"
                ))
            }
        },
    )
    .await;
    let back_after = killed_at.elapsed();
    let resumed_from = settled();
    harness::wait_until(
        "traffic: 5 more settlements acknowledged after the restart",
        Duration::from_secs(60),
        async || match settled() {
            n if n >= resumed_from + 5 => Ok(()),
            n => Err(format!(
                "{} since ({})",
                n - resumed_from,
                traffic.lock().unwrap().last_failure
            )),
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let traffic = std::mem::take(&mut *traffic.lock().unwrap());
    eprintln!(
        "compose: payment-service killed (SIGKILL) after {before_kill} settlements, healthy again \
         {:.1} s later by its restart policy; traffic: {} orders, {} settlements acknowledged, \
         {} flows failed (last: {})",
        back_after.as_secs_f64(),
        traffic.orders.len(),
        traffic.settled.len(),
        traffic.failures,
        traffic.last_failure
    );
    assert!(
        traffic.settled_at.iter().any(|at| *at > killed_at),
        "no settlement acknowledged after the kill"
    );
    // Each order checked until it reads as paid, then no more.
    let mut unpaid = traffic.settled.clone();
    harness::wait_until(
        "every acknowledged settlement's order paid",
        Duration::from_secs(90),
        async || {
            let statuses = api.statuses(&unpaid).await?;
            unpaid.retain(|order| statuses[order] != "paid");
            match unpaid.first() {
                None => Ok(()),
                Some(order) => Err(format!(
                    "{} not paid, {order} {}",
                    unpaid.len(),
                    statuses[order]
                )),
            }
        },
    )
    .await;
    orders.extend(traffic.orders);

    // `down` then `up`: every order kept, as it was.
    let before = api.statuses(&orders).await.unwrap();
    project.run(&["down"], Duration::from_secs(3 * 60));
    assert!(project.containers().is_empty(), "down leaves no container");
    let up = Instant::now();
    project.run(&["up", "--detach"], Duration::from_secs(5 * 60));
    project.wait_healthy(Duration::from_secs(180)).await;
    eprintln!(
        "compose: `down` then `up`: healthy again in {:.1} s",
        up.elapsed().as_secs_f64()
    );
    let after = api
        .statuses(&orders)
        .await
        .unwrap_or_else(|e| panic!("an order was lost through down and up: {e}"));
    // A settlement whose answer the kill lost may be delivered since:
    // an order may go from pending to paid, never back.
    for (order, was) in &before {
        let now = &after[order];
        assert!(
            now == was || (was == "pending" && now == "paid"),
            "order {order} was {was} before down and up, {now} after"
        );
    }
    eprintln!(
        "compose: {} orders ({} paid) kept through down and up",
        after.len(),
        after.values().filter(|s| *s == "paid").count()
    );

    // `down -v`: nothing of the project left.
    project.run(
        &["down", "--volumes", "--rmi", "local", "--remove-orphans"],
        Duration::from_secs(3 * 60),
    );
    let label = format!("label=com.docker.compose.project={}", project.name);
    for kind in ["container", "volume", "network"] {
        let mut command = docker();
        command.args([kind, "ls", "--quiet", "--filter", &label]);
        if kind == "container" {
            command.arg("--all");
        }
        let left = listed(&mut command);
        assert!(left.is_empty(), "down -v left {kind}s: {left:?}");
        let left = listed(
            docker()
                .args([kind, "ls", "--quiet", "--filter"])
                .arg(format!("name={}", project.name)),
        );
        assert!(
            left.is_empty(),
            "down -v left {kind}s named for the project: {left:?}"
        );
    }
    let left = listed(
        docker()
            .args(["image", "ls", "--quiet", "--filter"])
            .arg(format!("reference={}*", project.name)),
    );
    assert!(left.is_empty(), "down --rmi local left images: {left:?}");
    eprintln!(
        "compose: down -v left nothing; the whole test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
