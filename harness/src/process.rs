//! A service binary run as a separate process, as an operator runs it: on
//! port 0, its JSON log on stderr read for the address it listens on.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct ServiceProcess {
    child: Child,
    pub address: SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
}

impl ServiceProcess {
    /// Starts `binary` with `environment` and waits (up to 60 s) for its
    /// "listening" log line.
    pub fn start(binary: &str, environment: &[(&str, String)]) -> ServiceProcess {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (name, value) in environment {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (sender, log) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let line = log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("{binary} never logged that it listens"));
            let entry: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            // Dropshot's own line says where it listens.
            if entry["msg"] == "listening"
                && let Some(address) = entry["local_addr"].as_str()
            {
                break address.parse().expect("a socket address");
            }
        };
        ServiceProcess {
            child,
            address,
            log,
        }
    }

    /// Sends `signal`; returns the exit status, how long the exit took,
    /// and the log lines written meanwhile. Fails after `bound`.
    pub fn stop(mut self, signal: Signal, bound: Duration) -> (ExitStatus, Duration, Vec<String>) {
        let sent = Instant::now();
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal the service");
        let status = crate::wait_until_blocking(
            &format!("the service to exit after {signal}"),
            bound,
            || match self.child.try_wait().expect("wait") {
                Some(status) => Ok(status),
                None => Err("still running".to_string()),
            },
        );
        let elapsed = sent.elapsed();
        (status, elapsed, self.log.try_iter().collect())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Runs `binary` on a fresh database of the shared cluster, once per
/// signal, and checks that it exits 0 within 10 s of SIGTERM and of
/// SIGINT, saying it is shutting down. Returns how long each exit took.
pub async fn stops_cleanly_on_signals(binary: &str) -> Vec<(Signal, Duration)> {
    let cluster = postgres_cluster::Cluster::shared();
    let mut exits = Vec::new();
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let database = format!("signals_{}", uuid::Uuid::new_v4().simple());
        cluster
            .create_database(&database, None)
            .await
            .expect("a database");
        let service = ServiceProcess::start(
            binary,
            &[
                ("DATABASE_URL", cluster.connection_string(&database)),
                ("PORT", "0".to_string()),
                ("PAYMENT_CALLBACK_SECRET", crate::webhook::new_secret()),
                ("AUTH_ISSUER", crate::issuer::issuer().url().to_string()),
                ("AUTH_AUDIENCE", crate::issuer::AUDIENCE.to_string()),
            ],
        );
        let readyz = format!("http://{}/readyz", service.address);
        crate::wait_until(
            &format!("{binary} to be ready (its token keys fetched)"),
            Duration::from_secs(10),
            async || match reqwest::get(&readyz).await {
                Ok(ready) if ready.status() == reqwest::StatusCode::OK => Ok(()),
                Ok(ready) => Err(format!("{}", ready.status())),
                Err(error) => Err(error.to_string()),
            },
        )
        .await;

        let (status, elapsed, log) = service.stop(signal, Duration::from_secs(10));

        assert!(
            status.success(),
            "{binary}: exit status {status} after {signal}"
        );
        assert!(
            log.iter().any(|line| line.contains("shutting down")),
            "{log:?}"
        );
        exits.push((signal, elapsed));
    }
    exits
}
