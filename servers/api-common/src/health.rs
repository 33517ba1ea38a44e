use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the liveness or readiness checks found: each check's name and `ok`.
/// These endpoints are for orchestrators, outside the published contract.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Each check by name, with `ok` or what is wrong.
    pub checks: BTreeMap<String, String>,
}
