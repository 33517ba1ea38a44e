use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The rest of a `/docs/...` path: a Swagger UI asset, or nothing for the page.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DocsPath {
    /// The path's segments after `/docs`.
    pub path: Vec<String>,
}

/// What the liveness or readiness checks found: each check's name and `ok`.
/// These endpoints are for orchestrators, outside the published contract.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Each check by name, with `ok` or what is wrong.
    pub checks: BTreeMap<String, String>,
}
