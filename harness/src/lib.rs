//! The test harness: real PostgreSQL (a throwaway cluster per test binary,
//! from `postgres-cluster`), real services on `127.0.0.1:0`, and a proxy in
//! front of each service that checks every response against the contract
//! (with `conformance`'s checker).
//!
//! - `proxy`: applies those checks to all traffic of a test, and balances
//!   over several instances.
//! - `order_service`: order-service under test, on its own database.
//! - `payment_service`: payment-service under test, in a runtime it can be killed in.
//! - `deliveries`: each outcome payment-service recorded, and the callbacks that delivered it.
//! - `webhook`: Standard Webhooks secrets and signatures for raw requests.
//! - `issuer`: the token issuer the services trust, and tokens from it.
//! - `browser`: headless Chromium, for the services' documentation pages.
//! - `plans`: which statements would scan a growing table, per their query plans.
//! - `locks`: rows held by a test's own transactions, and what waits for them.
//! - `process`: a service binary run as its own process, stopped by signals.
//! - `prerequisites`: the programs some tests need, skipped without them outside CI.
//! - `waiting`: the one way the tests wait for a condition ([`wait_until`]), and the rule that holds it.

pub mod browser;
pub mod deliveries;
pub mod issuer;
pub mod locks;
pub mod order_service;
pub mod payment_service;
pub mod plans;
pub mod prerequisites;
pub mod process;
pub mod proxy;
pub mod waiting;
pub mod webhook;

pub use waiting::{wait_until, wait_until_blocking, wait_until_every};

/// A service's server settings in a test: loopback, a free port, the
/// default body limit, debug logs.
pub fn server_settings() -> service_support::server::ServerSettings {
    service_support::server::ServerSettings {
        listen_addr: [127, 0, 0, 1].into(),
        port: 0,
        max_body_bytes: 16 * 1024,
        log_level: "debug".to_string(),
    }
}

/// A logger for a step of a test whose log nobody reads (on stderr if
/// `TEST_LOG` is set).
pub fn test_logger(name: &str) -> slog::Logger {
    LogBuffer::default().logger(name)
}

/// A service's JSON log lines, kept in memory for the test to read, and
/// also written to stderr if `TEST_LOG` is set.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// A logger writing into this buffer.
    pub fn logger(&self, name: &str) -> slog::Logger {
        service_support::logging::json_logger(name, "debug", self.clone())
            .expect("a valid log level")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(bytes)?;
        }
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
