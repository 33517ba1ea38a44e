//! Checks HTTP responses against the contract, `openapi.yaml` as committed
//! when this crate was built (it is compiled in, so the checks work from
//! any directory): the body of
//! every response to a documented operation must validate against the
//! schema the contract gives for its status code, and every response must
//! carry an `x-request-id`.

use anyhow::{Context, anyhow};
use jsonschema::{Draft, Registry, Validator};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

const DOCUMENT_URI: &str = "urn:openapi:contract";

/// The contract this crate was built with.
const CONTRACT: &str = include_str!("../../../openapi.yaml");

/// The contract's response schemas, compiled once.
pub struct Conformance {
    operations: Vec<Operation>,
}

struct Operation {
    method: String,
    template: Vec<String>,
    id: String,
    /// By response key: "200", "4XX", "5XX" or "default".
    responses: BTreeMap<String, Validator>,
    /// The JSON request body's schema, if the operation takes one.
    request: Option<Validator>,
    /// Header parameters the contract requires.
    required_headers: Vec<String>,
}

impl Conformance {
    /// The contract, compiled once per process.
    pub fn shared() -> Arc<Conformance> {
        static SHARED: LazyLock<Arc<Conformance>> = LazyLock::new(|| {
            Arc::new(
                Conformance::from_document(CONTRACT)
                    .unwrap_or_else(|e| panic!("the compiled-in contract does not load: {e:#}")),
            )
        });
        SHARED.clone()
    }

    fn from_document(text: &str) -> anyhow::Result<Conformance> {
        let mut document: Value = serde_yaml::from_str(text)?;
        rewrite_nullable(&mut document);
        let registry = Registry::new()
            .draft(Draft::Draft4)
            .add(DOCUMENT_URI, document.clone())?
            .prepare()?;

        let mut operations = Vec::new();
        let paths = document["paths"]
            .as_object()
            .context("the contract has no paths")?;
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                    continue;
                };
                let compile = |pointer: &str| {
                    let schema = serde_json::json!({ "$ref": format!("{DOCUMENT_URI}#{}", encode(pointer)) });
                    jsonschema::options()
                        .with_draft(Draft::Draft4)
                        .with_registry(&registry)
                        .should_validate_formats(true)
                        .with_format("uuid", |s: &str| uuid::Uuid::parse_str(s).is_ok())
                        .build(&schema)
                        .map_err(|e| anyhow!("{method} {path} {pointer}: {e}"))
                };
                let mut validators = BTreeMap::new();
                for (key, response) in responses {
                    let pointer = response_schema_pointer(&document, path, method, key, response)?;
                    validators.insert(key.clone(), compile(&pointer)?);
                }
                let request = op
                    .pointer("/requestBody/content/application~1json/schema")
                    .map(|_| {
                        compile(&format!(
                            "/paths/{}/{method}/requestBody/content/application~1json/schema",
                            escape(path)
                        ))
                    })
                    .transpose()?;
                let required_headers = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "header" && p["required"] == true)
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect();
                operations.push(Operation {
                    method: method.to_uppercase(),
                    template: path.split('/').map(str::to_string).collect(),
                    id: op["operationId"].as_str().unwrap_or(path).to_string(),
                    responses: validators,
                    request,
                    required_headers,
                });
            }
        }
        Ok(Conformance { operations })
    }

    /// The operationId serving `method path`, if the contract has one.
    pub fn operation_id(&self, method: &str, path: &str) -> Option<&str> {
        self.find(method, path).map(|op| op.id.as_str())
    }

    /// Every way this response breaks the contract; empty if it conforms.
    /// Requests outside the contract (no documented operation) are only
    /// checked for the request id.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let at = format!("{method} {path} -> {status}");
        if !headers.contains_key("x-request-id") {
            problems.push(format!("{at}: no x-request-id header"));
        }
        let Some(op) = self.find(method, path) else {
            return problems;
        };
        let hundreds = format!("{}XX", status / 100);
        let Some(validator) = [status.to_string(), hundreds, "default".to_string()]
            .iter()
            .find_map(|key| op.responses.get(key))
        else {
            problems.push(format!(
                "{at}: status {status} is not documented for {}",
                op.id
            ));
            return problems;
        };
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("application/json") {
            problems.push(format!(
                "{at}: content-type {content_type:?} is not application/json"
            ));
        }
        match serde_json::from_slice::<Value>(body) {
            Err(e) => problems.push(format!(
                "{at}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )),
            Ok(json) => problems.extend(
                validator
                    .iter_errors(&json)
                    .map(|e| format!("{at} ({}): at '{}': {e}", op.id, e.instance_path())),
            ),
        }
        problems
    }

    /// Every way this request breaks the contract: an undocumented
    /// operation, a missing required header, a body that does not
    /// validate against the operation's request schema.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let at = format!("request {method} {path}");
        let Some(op) = self.find(method, path) else {
            return vec![format!("{at}: no such operation in the contract")];
        };
        let mut problems: Vec<String> = op
            .required_headers
            .iter()
            .filter(|name| !headers.contains_key(name.as_str()))
            .map(|name| format!("{at}: required header {name} missing"))
            .collect();
        match (&op.request, body.is_empty()) {
            (None, true) => {}
            (None, false) => problems.push(format!("{at}: {} takes no body", op.id)),
            (Some(_), true) => problems.push(format!("{at}: {} requires a body", op.id)),
            (Some(validator), false) => match serde_json::from_slice::<Value>(body) {
                Err(e) => problems.push(format!("{at}: body is not JSON: {e}")),
                Ok(json) => problems.extend(
                    validator
                        .iter_errors(&json)
                        .map(|e| format!("{at} ({}): at '{}': {e}", op.id, e.instance_path())),
                ),
            },
        }
        problems
    }

    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.split('?').next().unwrap_or(path).split('/').collect();
        // A path parameter is text: a segment that does not decode to UTF-8,
        // or a dot-segment, is no value of one (Dropshot's router refuses
        // such paths itself, as it does unknown ones; the README says so).
        let matches = |op: &&Operation| {
            op.method == method
                && op.template.len() == segments.len()
                && op
                    .template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && is_path_text(s)) || t == s)
        };
        // A literal segment beats a variable one, as in any router.
        self.operations
            .iter()
            .filter(matches)
            .max_by_key(|op| op.template.iter().filter(|t| !t.starts_with('{')).count())
    }
}

/// The JSON pointer of the schema for one response, following a
/// `$ref` to `components/responses` (not a schema, so not the validator's to resolve).
fn response_schema_pointer(
    document: &Value,
    path: &str,
    method: &str,
    key: &str,
    response: &Value,
) -> anyhow::Result<String> {
    let mut pointer = format!("/paths/{}/{method}/responses/{key}", escape(path));
    let mut response = response;
    if let Some(target) = response.get("$ref").and_then(Value::as_str) {
        pointer = target.trim_start_matches('#').to_string();
        response = document
            .pointer(&pointer)
            .with_context(|| format!("dangling reference {target}"))?;
    }
    response
        .pointer("/content/application~1json/schema")
        .with_context(|| format!("{method} {path} {key}: no application/json schema"))?;
    Ok(format!("{pointer}/content/application~1json/schema"))
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Percent-encodes what a URI fragment cannot hold (the braces of path templates).
fn encode(pointer: &str) -> String {
    pointer.replace('{', "%7B").replace('}', "%7D")
}

/// OpenAPI 3.0's `nullable: true` is not JSON Schema: turn it into a type
/// union, or an `anyOf` with null where the schema is a reference or a
/// combination. Example, enum and default values are data, left alone.
fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if !matches!(key.as_str(), "example" | "enum" | "default") {
                    rewrite_nullable(child);
                }
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let composite = ["$ref", "allOf", "anyOf", "oneOf", "enum"]
                    .iter()
                    .any(|k| map.contains_key(*k));
                match map.get("type").cloned() {
                    Some(Value::String(kind)) if !composite => {
                        map.insert("type".into(), serde_json::json!([kind, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        let mut wrapped = Map::new();
                        wrapped
                            .insert("anyOf".into(), serde_json::json!([inner, {"type": "null"}]));
                        *map = wrapped;
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

/// Whether a path segment, as sent, can be the value of a path parameter:
/// text once percent-decoded, and not a dot-segment. Dropshot's router
/// refuses any other before a handler runs.
pub fn is_path_text(segment: &str) -> bool {
    !matches!(segment, "." | "..")
        && percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract() -> Arc<Conformance> {
        Conformance::shared()
    }

    fn headers() -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-request-id", "r".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers
    }

    fn order() -> Value {
        json!({
            "id": "0b9a8d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "item_name": "pen", "quantity": 2,
            "price": 5, "total_amount": 10, "status": "pending", "payment_id": null,
            "created_at": "2026-11-25T07:00:00Z", "updated_at": "2026-11-25T07:00:00Z"
        })
    }

    #[test]
    fn a_conforming_order_passes() {
        let body = json!({"code": 200, "status": "OK", "data": order()}).to_string();
        let problems = contract().check(
            "GET",
            "/orders/0b9a8d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
            200,
            &headers(),
            body.as_bytes(),
        );
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn wrong_types_missing_fields_and_bad_formats_are_reported() {
        let mut bad = order();
        bad["total_amount"] = json!("10");
        bad["created_at"] = json!("yesterday");
        bad["status"] = json!("bogus");
        bad.as_object_mut().unwrap().remove("item_name");
        let body = json!({"code": 200, "status": "OK", "data": bad}).to_string();
        let problems = contract()
            .check("GET", "/orders/x", 200, &headers(), body.as_bytes())
            .join("\n");
        for expected in [
            "/data/total_amount",
            "/data/created_at",
            "/data/status",
            "item_name",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} not reported in:\n{problems}"
            );
        }
    }

    #[test]
    fn an_error_must_be_the_envelope_and_carry_a_request_id() {
        let dropshot_body = json!({"request_id": "r", "message": "Not Found"}).to_string();
        let problems = contract().check(
            "GET",
            "/orders/x",
            404,
            &http::HeaderMap::new(),
            dropshot_body.as_bytes(),
        );
        assert!(
            problems.iter().any(|p| p.contains("no x-request-id")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"code\" is a required property")),
            "{problems:?}"
        );
    }

    #[test]
    fn requests_are_checked_for_body_and_required_headers() {
        let mut headers = http::HeaderMap::new();
        let good = json!({"order_id": "0b9a8d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
            "payment_id": "0b9a8d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4f", "payment_status": "success", "amount": 5});
        let problems = contract().check_request(
            "POST",
            "/internal/payment-callback",
            &headers,
            good.to_string().as_bytes(),
        );
        assert_eq!(
            problems.len(),
            3,
            "three webhook headers missing: {problems:?}"
        );
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(name, "x".parse().unwrap());
        }
        let path = "/internal/payment-callback";
        assert_eq!(
            contract().check_request("POST", path, &headers, good.to_string().as_bytes()),
            Vec::<String>::new()
        );
        let bad = json!({"order_id": "nope", "payment_status": "refunded", "amount": 0});
        let problems = contract()
            .check_request("POST", path, &headers, bad.to_string().as_bytes())
            .join("\n");
        for expected in ["/order_id", "payment_id", "/payment_status", "/amount"] {
            assert!(
                problems.contains(expected),
                "{expected} not reported in:\n{problems}"
            );
        }
        assert!(
            !contract()
                .check_request("GET", "/orders/x", &headers, b"{}")
                .is_empty()
        );
    }

    #[test]
    fn literal_paths_win_over_templates() {
        assert_eq!(
            contract().operation_id("PUT", "/payments/success/abc"),
            Some("mark_payment_success")
        );
        assert_eq!(
            contract().operation_id("GET", "/payments/abc"),
            Some("get_payment")
        );
        assert_eq!(contract().operation_id("GET", "/nope"), None);
    }
}
