//! The contract as a checker of live traffic.
//!
//! - `checker`: a response (or request) against the schema the contract
//!   gives for its operation and status; the test harness's proxy applies it
//!   to every exchange of a test.
//! - `remote`: the checks the `conformance` command runs against services
//!   deployed anywhere.

mod checker;
pub mod remote;

pub use checker::{Conformance, is_path_text};
