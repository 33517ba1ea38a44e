//! The test harness: real PostgreSQL, real services on `127.0.0.1:0`, and
//! a proxy in front of each service that checks every response against
//! the committed `openapi.yaml`.
//!
//! - `postgres`: throwaway clusters from the machine's server binaries.
//! - `conformance`: response checks against the contract.
//! - `proxy`: applies those checks to all traffic of a test.
//! - `order_service`: order-service under test, on its own database.
//! - `payment_service`: payment-service under test, in a runtime it can be killed in.
//! - `webhook`: Standard Webhooks secrets and signatures for raw requests.

pub mod conformance;
pub mod order_service;
pub mod payment_service;
pub mod postgres;
pub mod proxy;
pub mod webhook;

/// The logger for services under test: silent unless `TEST_LOG` is set.
pub fn test_logger(name: &str) -> slog::Logger {
    if std::env::var_os("TEST_LOG").is_some() {
        service_support::logging::logger(name, "debug").expect("a valid log level")
    } else {
        slog::Logger::root(slog::Discard, slog::o!())
    }
}
