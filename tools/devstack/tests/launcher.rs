//! The launcher (`devstack`) as a person runs it: as a separate process,
//! stopped with signals, its output read.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Launcher {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Launcher {
    /// Starts devstack and waits for it to say it is ready; returns it and what it printed.
    fn start(data_dir: &std::path::Path, ports: (u16, u16, u16)) -> (Launcher, Vec<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devstack"))
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args([
                "--order-port",
                &ports.0.to_string(),
                "--payment-port",
                &ports.1.to_string(),
                "--issuer-port",
                &ports.2.to_string(),
            ])
            .env_remove("PAYMENT_CALLBACK_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("devstack starts");
        let (sender, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut launcher = Launcher { child, lines };
        let printed = launcher.read_until("Ctrl-C stops everything.");
        (launcher, printed)
    }

    fn read_until(&mut self, last: &str) -> Vec<String> {
        let mut printed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let done = line == last;
            printed.push(line);
            if done {
                return printed;
            }
        }
        panic!("devstack did not print {last:?}; it printed {printed:?}");
    }

    /// Sends `signal` and waits for a clean exit.
    fn stop_with(mut self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
        let status = harness::wait_until_blocking(
            &format!("devstack to exit after {signal}"),
            Duration::from_secs(15),
            || match self.child.try_wait().unwrap() {
                Some(status) => Ok(status),
                None => Err("still running".to_string()),
            },
        );
        assert!(
            status.success(),
            "devstack exited with {status} after {signal}"
        );
        self.read_until("stopped");
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn the_launcher_runs_the_system_and_keeps_its_data() {
    let data =
        std::env::temp_dir().join(format!("devstack-test-{}", uuid::Uuid::new_v4().simple()));
    let ports = (free_port(), free_port(), free_port());
    let (launcher, printed) = Launcher::start(&data, ports);
    let token_of = |subject: &str| {
        let at = printed
            .iter()
            .position(|l| l.starts_with(&format!("  {subject} (")))
            .unwrap_or_else(|| panic!("no token printed for {subject}: {printed:?}"));
        printed[at + 1].trim().to_string()
    };
    let (customer, connector) = (token_of("customer-1"), token_of("settlement-connector"));
    let secret = printed
        .iter()
        .find_map(|l| l.strip_prefix("callback secret  "))
        .expect("the secret is printed")
        .to_string();
    let order_url = format!("http://127.0.0.1:{}", ports.0);
    let payment_url = format!("http://127.0.0.1:{}", ports.1);
    assert!(
        printed.iter().any(|l| l.contains(&payment_url)),
        "{printed:?}"
    );

    // Nothing is open: a request without a token is refused.
    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!("{order_url}/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);

    // The whole flow runs on what it started, with the tokens it printed.
    let post = |url: String, body: serde_json::Value| {
        let http = http.clone();
        let customer = customer.clone();
        async move {
            let response = http
                .post(url)
                .bearer_auth(customer)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let paid = post(
        format!("{order_url}/orders"),
        serde_json::json!({"item_name": "paid", "quantity": 1, "price": 5}),
    )
    .await;
    let order_id = paid["data"]["id"].as_str().unwrap().to_string();
    let payment = post(
        format!("{payment_url}/payments"),
        serde_json::json!({"order_id": order_id, "amount": 5, "provider": "stripe"}),
    )
    .await;
    let settled = http
        .put(format!(
            "{payment_url}/payments/success/{}",
            payment["data"]["id"].as_str().unwrap()
        ))
        .bearer_auth(&connector)
        .send()
        .await
        .unwrap();
    assert_eq!(settled.status(), reqwest::StatusCode::OK);
    let orders = order_client::Client::new(
        &order_url,
        order_client::ClientContext::with_token(customer.clone()),
    );
    harness::order_service::wait_for_order(
        &orders,
        order_id.parse().unwrap(),
        order_client::types::OrderStatus::Paid,
        Duration::from_secs(10),
    )
    .await;

    let order = post(
        format!("{order_url}/orders"),
        serde_json::json!({"item_name": "kept", "quantity": 1, "price": 1}),
    )
    .await;
    launcher.stop_with(Signal::SIGINT);

    let (launcher, printed) = Launcher::start(&data, ports);
    assert!(
        printed
            .iter()
            .any(|l| l == &format!("callback secret  {secret}")),
        "the secret is kept too"
    );
    let id = order["data"]["id"].as_str().unwrap();
    // The issuer's key is kept: `devstack token` mints for the running one.
    let minted = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["token", "--subject", "customer-1", "--scope", "orders:read"])
        .output()
        .unwrap();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let minted = String::from_utf8(minted.stdout).unwrap();
    // A new client: the old one's kept-alive connections died with the first run.
    let kept = reqwest::Client::new()
        .get(format!("{order_url}/orders/{id}"))
        .bearer_auth(minted.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.status(),
        reqwest::StatusCode::OK,
        "the order survived a restart"
    );
    launcher.stop_with(Signal::SIGTERM);
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_taken_port_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data =
        std::env::temp_dir().join(format!("devstack-test-{}", uuid::Uuid::new_v4().simple()));
    let output = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--order-port",
            &port,
            "--payment-port",
            "0",
            "--issuer-port",
            "0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("is the port in use? --order-port picks another"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn missing_postgres_binaries_are_explained() {
    let data =
        std::env::temp_dir().join(format!("devstack-test-{}", uuid::Uuid::new_v4().simple()));
    let output = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["--data-dir", data.to_str().unwrap()])
        .env("PG_BINDIR", "/nonexistent/postgresql/bin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(
        stderr.trim(),
        "devstack: PG_BINDIR=/nonexistent/postgresql/bin holds no `postgres` server binary"
    );
    let _ = std::fs::remove_dir_all(&data);
}
