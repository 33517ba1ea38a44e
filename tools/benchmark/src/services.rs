//! The service binaries, run as their own processes the way an operator
//! runs them: production log level, their JSON log written to a file.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    pub name: &'static str,
    child: Child,
    pub address: SocketAddr,
}

impl Service {
    /// Starts `bin_dir/name` with `environment`, its log in `log_dir`, and
    /// waits for it to say where it listens.
    pub fn start(
        name: &'static str,
        bin_dir: &Path,
        log_dir: &Path,
        environment: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let binary = bin_dir.join(name);
        if !binary.exists() {
            bail!(
                "{} is missing; build the services first (cargo build --release --bins) \
                 or name their directory with --bin-dir",
                binary.display()
            );
        }
        // Numbered: two instances of a service may run at once.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let number = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_file = log_dir.join(format!("{name}.{number}.log"));
        let log = std::fs::File::create(&log_file)?;
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent. A service outlives no benchmark, however it ends.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut service = Service {
            name,
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        service.address = service.wait_until_listening(&log_file)?;
        Ok(service)
    }

    fn wait_until_listening(&mut self, log_file: &PathBuf) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(log_file).unwrap_or_default();
            for line in text.lines() {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                // Dropshot's own line says where it listens.
                if entry["msg"] == "listening"
                    && let Some(address) = entry["local_addr"].as_str()
                {
                    return Ok(address.parse()?);
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening; its log:\n{text}",
                    self.name
                );
            }
            if Instant::now() > deadline {
                bail!("{} did not listen within 60 s; its log:\n{text}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, for the profile's counters.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Resident memory now, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .context("no VmRSS in /proc/PID/status")?;
        Ok(kib * 1024)
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s).
    pub fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
