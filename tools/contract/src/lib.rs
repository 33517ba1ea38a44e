//! Builds `openapi.yaml`, the one contract of both services, from the
//! order and payment API traits, and reviews it the way a person would.

pub mod compat;
pub mod security;

use anyhow::{Context, anyhow, bail};
use indexmap::IndexMap;
use openapiv3::{Link, LinkOperation, OpenAPI, ReferenceOr, Server, StatusCode};
use serde_json::Value;
use serde_json::json;
use std::path::PathBuf;

/// The version of the contract, in `info.version`, following semver: a
/// change that breaks a client (see [`compat`]) needs a new major version;
/// an addition a new minor one. Progenitor clients send it as
/// `api-version` on every request. CHANGELOG.md says what each changed.
pub const CONTRACT_VERSION: semver::Version = semver::Version::new(2, 0, 0);

/// The command that regenerates `openapi.yaml`.
pub const GENERATE_COMMAND: &str = "cargo run -p contract -- generate";

const HEADER: &str = "\
# The contract of order-service and payment-service.
# Generated from servers/apis/order-api and servers/apis/payment-api by
# `cargo run -p contract -- generate`; do not edit by hand.
";

/// The contract as last released, which the current one must not break.
/// Releasing copies `openapi.yaml` here.
pub fn released_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("released/openapi.yaml")
}

/// Where the committed contract lives: the repository root.
pub fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi.yaml")
}

/// The contract as the API traits define it today, as YAML text.
pub fn generate() -> anyhow::Result<String> {
    let spec = merged()?;
    let problems = review(&spec);
    if !problems.is_empty() {
        bail!(
            "the generated contract fails review:\n  {}",
            problems.join("\n  ")
        );
    }
    // Through serde_json::Value, whose maps are sorted, so the text is stable.
    let value = serde_json::to_value(&spec)?;
    Ok(format!("{HEADER}{}", serde_yaml::to_string(&value)?))
}

/// One document for both services: the union of their paths, schemas,
/// responses and tags. Each path names the service that serves it.
pub fn merged() -> anyhow::Result<OpenAPI> {
    let orders = service_document(
        order_api::order_api_mod::stub_api_description()
            .map_err(|e| anyhow!("order API: {e}"))?
            .openapi("order-service", CONTRACT_VERSION)
            .json()?,
    )?;
    let mut payments = service_document(
        payment_api::payment_api_mod::stub_api_description()
            .map_err(|e| anyhow!("payment API: {e}"))?
            .openapi("payment-service", CONTRACT_VERSION)
            .json()?,
    )?;
    let settlement = service_document(
        payment_api::payment_settlement_api_mod::stub_api_description()
            .map_err(|e| anyhow!("payment settlement API: {e}"))?
            .openapi("payment-service", CONTRACT_VERSION)
            .json()?,
    )?;
    absorb(&mut payments, settlement)?;

    let mut merged = orders.clone();
    merged.info.title = "Order & Payment Services".to_string();
    merged.info.description = Some(DESCRIPTION.trim().to_string());
    // One list for the document rather than one server per path: client
    // generators that honour per-path servers (openapi-generator's python
    // and typescript-fetch) would pin those URLs and ignore the base URL a
    // user configures. Each client takes its service's URL; the tags say
    // which service serves an operation.
    merged.servers = vec![
        local_server(
            "http://localhost:8080",
            "order-service (tags orders and internal)",
        ),
        local_server("http://localhost:8081", "payment-service (tag payments)"),
    ];
    absorb(&mut merged, payments)?;
    for (from, to, parameter) in LINKS {
        link(&mut merged, from, to, parameter)?;
    }
    security::secure(&mut merged)?;
    Ok(merged)
}

/// What a created resource's id leads to: (operation that creates it,
/// operation that takes its id, that operation's path parameter). The
/// links tell readers, and stateful test generators, how calls chain.
const LINKS: &[(&str, &str, &str)] = &[
    ("create_order", "get_order", "orderId"),
    ("create_order", "update_order", "orderId"),
    ("create_order", "delete_order", "orderId"),
    ("create_payment", "get_payment", "paymentId"),
    ("create_payment", "mark_payment_success", "paymentId"),
    ("create_payment", "mark_payment_failed", "paymentId"),
];

/// Adds a link from `from`'s 200 response to `to`, passing the created
/// resource's `data.id` as `parameter`.
fn link(spec: &mut OpenAPI, from: &str, to: &str, parameter: &str) -> anyhow::Result<()> {
    let operation = spec
        .paths
        .paths
        .values_mut()
        .filter_map(|item| match item {
            ReferenceOr::Item(item) => Some(item),
            ReferenceOr::Reference { .. } => None,
        })
        .flat_map(|item| {
            [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
        })
        .flatten()
        .find(|op| op.operation_id.as_deref() == Some(from))
        .with_context(|| format!("no operation {from} to link from"))?;
    let Some(ReferenceOr::Item(ok)) = operation
        .responses
        .responses
        .get_mut(&StatusCode::Code(200))
    else {
        bail!("{from} has no inline 200 response");
    };
    let mut parameters = IndexMap::new();
    parameters.insert(parameter.to_string(), json!("$response.body#/data/id"));
    ok.links.insert(
        to.to_string(),
        ReferenceOr::Item(Link {
            description: Some(format!(
                "`data.id` of the answer is the `{parameter}` of {to}."
            )),
            operation: LinkOperation::OperationId(to.to_string()),
            request_body: None,
            parameters,
            server: None,
            extensions: IndexMap::new(),
        }),
    );
    Ok(())
}

/// Adds `other`'s paths, schemas, responses and tags to `spec`. Shared
/// schemas (the envelope, the error) must be identical; paths and tags must
/// not collide.
fn absorb(spec: &mut OpenAPI, other: OpenAPI) -> anyhow::Result<()> {
    for (path, item) in other.paths.paths {
        if spec.paths.paths.insert(path.clone(), item).is_some() {
            bail!("path {path} is defined twice");
        }
    }
    let components = spec.components.get_or_insert_with(Default::default);
    let theirs = other.components.unwrap_or_default();
    for (name, schema) in theirs.schemas {
        match components.schemas.get(&name) {
            Some(existing) if *existing != schema => {
                bail!("schema {name} differs between the two services")
            }
            Some(_) => {}
            None => {
                components.schemas.insert(name, schema);
            }
        }
    }
    for (name, response) in theirs.responses {
        match components.responses.get(&name) {
            Some(existing) if *existing != response => {
                bail!("response {name} differs between the two services")
            }
            Some(_) => {}
            None => {
                components.responses.insert(name, response);
            }
        }
    }
    for tag in other.tags {
        match spec.tags.iter().find(|t| t.name == tag.name) {
            Some(existing) if *existing != tag => bail!("tag {} is defined twice", tag.name),
            Some(_) => {}
            None => spec.tags.push(tag),
        }
    }
    Ok(())
}

const DESCRIPTION: &str = "
Two services, each with its own PostgreSQL database, talking only over HTTP.
order-service (port 8080) serves the `orders` and `internal` operations;
payment-service (port 8081) serves the `payments` operations.

Every response is JSON in one envelope. Success: HTTP 200 with
`{\"code\": 200, \"status\": \"OK\", \"data\": ...}`. Error: the HTTP status
with `{\"code\": <status>, \"status\": \"<REASON PHRASE>\", \"data\":
{\"error_code\": \"...\", \"message\": \"...\"}}`, where `error_code` is stable
and `message` is for people. Money is an integer number of minor currency
units. Requests outside this document (an unknown path, or a method a path
does not have) are answered 404 or 405 with the framework's own
`{\"request_id\", \"message\"}` body.
";

fn service_document(json: Value) -> anyhow::Result<OpenAPI> {
    serde_json::from_value(json).context("Dropshot produced a document openapiv3 cannot read")
}

fn local_server(url: &str, service: &str) -> Server {
    Server {
        url: url.to_string(),
        description: Some(format!("{service}, as started locally")),
        ..Default::default()
    }
}

/// What a reviewer checks in the contract; each problem is one line.
pub fn review(spec: &OpenAPI) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.openapi != "3.0.3" {
        problems.push(format!("openapi is {}, expected 3.0.3", spec.openapi));
    }
    let declared: Vec<&str> = spec.tags.iter().map(|t| t.name.as_str()).collect();
    for tag in &spec.tags {
        if tag.description.as_deref().unwrap_or("").is_empty() {
            problems.push(format!("tag {} has no description", tag.name));
        }
    }
    let mut operation_ids = Vec::new();
    for (path, method, op) in spec.operations() {
        let at = format!("{} {path}", method.to_uppercase());
        match op.tags.as_slice() {
            [tag] if declared.contains(&tag.as_str()) => {}
            tags => problems.push(format!(
                "{at}: needs exactly one declared tag, has {tags:?}"
            )),
        }
        if op.summary.as_deref().unwrap_or("").is_empty() {
            problems.push(format!("{at}: has no summary"));
        }
        let internal = op.tags.iter().any(|t| t == "internal");
        if !internal && op.security.as_ref().is_none_or(Vec::is_empty) {
            problems.push(format!(
                "{at}: is public but says no scope (add it to its API crate's ACCESS)"
            ));
        }
        match &op.operation_id {
            Some(id) if operation_ids.contains(id) => {
                problems.push(format!("{at}: operationId {id} is used twice"))
            }
            Some(id) => operation_ids.push(id.clone()),
            None => problems.push(format!("{at}: has no operationId")),
        }
        for parameter in &op.parameters {
            if let ReferenceOr::Item(parameter) = parameter {
                let data = parameter.parameter_data_ref();
                if data.description.as_deref().unwrap_or("").is_empty() {
                    problems.push(format!("{at}: parameter {} has no description", data.name));
                }
            }
        }
    }
    let schemas = spec.components.as_ref().map(|c| &c.schemas);
    for (name, schema) in schemas.into_iter().flatten() {
        let Ok(value) = serde_json::to_value(schema) else {
            continue;
        };
        if value.get("description").is_none() {
            problems.push(format!("schema {name} has no description"));
        }
        let properties = value.get("properties").and_then(Value::as_object);
        for (field, property) in properties.into_iter().flatten() {
            if property.get("description").is_none() {
                problems.push(format!("schema {name}: field {field} has no description"));
            }
        }
    }
    problems
}
