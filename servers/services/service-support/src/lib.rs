//! What both services need around their handlers: database settings and a
//! connection pool whose every use has a deadline, migrations applied under
//! an advisory lock, logging, and the shutdown signal.

pub mod auth;
pub mod callback_secret;
pub mod database;
pub mod docs;
pub mod idempotency;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod operations;
pub mod server;
pub mod shutdown;
