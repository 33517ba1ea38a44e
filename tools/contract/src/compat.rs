//! Whether a new contract keeps every promise an old one made to clients.
//!
//! A client built against the old contract must keep working against the
//! new one: every operation it calls still exists under the same id and
//! answers with the same success status; every request it could send is
//! still accepted (no parameter or field newly required, no type changed,
//! no bound or pattern narrowed, no field or enum value removed); every
//! response field it reads is still there, of the same type, never newly
//! null. Additions (operations, optional parameters and fields, response
//! fields) keep the promises and pass.

use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every way `new` breaks a client of `old`, one sentence each.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = serde_json::Map::new();
    for (path, old_item) in old["paths"].as_object().unwrap_or(&empty) {
        for method in METHODS {
            let Some(old_op) = old_item.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            let Some(new_op) = new["paths"].get(path).and_then(|item| item.get(method)) else {
                problems.push(format!("{at}: the operation was removed"));
                continue;
            };
            let context = Context { old, new };
            context.operation(&at, old_op, new_op, &mut problems);
        }
    }
    problems
}

/// Which way data flows: clients send requests and read responses.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Request,
    Response,
}

struct Context<'a> {
    old: &'a Value,
    new: &'a Value,
}

impl Context<'_> {
    fn operation(&self, at: &str, old: &Value, new: &Value, problems: &mut Vec<String>) {
        if old["operationId"] != new["operationId"] {
            problems.push(format!(
                "{at}: operationId changed from {} to {} (a method name in generated clients)",
                old["operationId"], new["operationId"]
            ));
        }
        if requirements(old).is_empty() && !requirements(new).is_empty() {
            problems.push(format!(
                "{at}: now requires a credential ({}) that clients did not send",
                requirements(new).join(" or ")
            ));
        }
        let old_params = parameters(old);
        let new_params = parameters(new);
        for ((name, place), old_param) in &old_params {
            let Some(new_param) = new_params
                .iter()
                .find(|(k, _)| k == &(name.clone(), place.clone()))
            else {
                problems.push(format!("{at}: {place} parameter {name} was removed"));
                continue;
            };
            let new_param = new_param.1;
            if old_param["required"] != true && new_param["required"] == true {
                problems.push(format!("{at}: {place} parameter {name} became required"));
            }
            self.schema(
                &format!("{at}: {place} parameter {name}"),
                &old_param["schema"],
                &new_param["schema"],
                Direction::Request,
                problems,
                &mut BTreeSet::new(),
            );
        }
        for ((name, place), new_param) in &new_params {
            let existed = old_params
                .iter()
                .any(|(k, _)| k == &(name.clone(), place.clone()));
            if !existed && new_param["required"] == true {
                problems.push(format!("{at}: new {place} parameter {name} is required"));
            }
        }
        let old_body = &old["requestBody"];
        let new_body = &new["requestBody"];
        if old_body.is_null() && new_body["required"] == true {
            problems.push(format!("{at}: a request body became required"));
        }
        if !old_body.is_null() {
            self.schema(
                &format!("{at}: request body"),
                json_schema(old_body),
                json_schema(new_body),
                Direction::Request,
                problems,
                &mut BTreeSet::new(),
            );
        }
        let successes = |op: &Value| -> BTreeSet<String> {
            op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, _)| status.clone())
                .filter(|status| status.starts_with('2'))
                .collect()
        };
        if successes(old) != successes(new) {
            problems.push(format!(
                "{at}: success status changed from {:?} to {:?}",
                successes(old),
                successes(new)
            ));
        }
        for (status, old_response) in old["responses"].as_object().into_iter().flatten() {
            let old_response = self.resolve(self.old, old_response);
            let new_response = new["responses"]
                .get(status)
                .map(|r| self.resolve(self.new, r))
                .unwrap_or(&Value::Null);
            if new_response.is_null() {
                problems.push(format!("{at}: the {status} response was removed"));
                continue;
            }
            self.schema(
                &format!("{at}: {status} response"),
                json_schema(old_response),
                json_schema(new_response),
                Direction::Response,
                problems,
                &mut BTreeSet::new(),
            );
        }
    }

    /// `$ref`s to `components/…` followed within `document`.
    fn resolve<'v>(&self, document: &'v Value, value: &'v Value) -> &'v Value {
        let mut value = value;
        for _ in 0..16 {
            let Some(reference) = value["$ref"].as_str() else {
                return value;
            };
            let pointer = reference.trim_start_matches('#');
            value = document.pointer(pointer).unwrap_or(&Value::Null);
        }
        value
    }

    fn schema(
        &self,
        at: &str,
        old: &Value,
        new: &Value,
        direction: Direction,
        problems: &mut Vec<String>,
        seen: &mut BTreeSet<(String, String)>,
    ) {
        // Named schemas are compared once per pair: recursive types end.
        if let (Some(a), Some(b)) = (old["$ref"].as_str(), new["$ref"].as_str())
            && !seen.insert((a.to_string(), b.to_string()))
        {
            return;
        }
        let old = self.resolve(self.old, old);
        let new = self.resolve(self.new, new);
        if old.is_null() {
            return;
        }
        if new.is_null() {
            problems.push(format!("{at}: the schema was removed"));
            return;
        }
        // Wrappers such as `allOf: [$ref]` (a described reference), and
        // alternatives other than an enum's values (compared below).
        for wrapper in ["allOf", "oneOf", "anyOf"] {
            if let (Some(a), Some(b)) = (old[wrapper].as_array(), new[wrapper].as_array())
                && !a.iter().all(|alternative| alternative["enum"].is_array())
            {
                if a.len() == 1 && b.len() == 1 {
                    self.schema(at, &a[0], &b[0], direction, problems, seen);
                } else {
                    for (index, item) in a.iter().enumerate() {
                        match b.get(index) {
                            Some(other) => self.schema(
                                &format!("{at} ({wrapper} {index})"),
                                item,
                                other,
                                direction,
                                problems,
                                seen,
                            ),
                            None => problems
                                .push(format!("{at}: {wrapper} alternative {index} was removed")),
                        }
                    }
                }
            }
        }
        if old["type"] != new["type"] && !old["type"].is_null() {
            problems.push(format!(
                "{at}: type changed from {} to {}",
                old["type"], new["type"]
            ));
            return;
        }
        if old["format"] != new["format"] && !old["format"].is_null() {
            problems.push(format!(
                "{at}: format changed from {} to {}",
                old["format"], new["format"]
            ));
        }
        let nullable = |s: &Value| s["nullable"] == true;
        match direction {
            Direction::Response if !nullable(old) && nullable(new) => {
                problems.push(format!("{at}: may now be null"));
            }
            Direction::Request if nullable(old) && !nullable(new) => {
                problems.push(format!("{at}: no longer accepts null"));
            }
            _ => {}
        }
        let (old_values, new_values) = (enum_values(old), enum_values(new));
        if !new_values.is_empty() {
            for value in old_values.difference(&new_values) {
                problems.push(format!("{at}: enum value {value} was removed"));
            }
        }
        if direction == Direction::Request {
            narrowed(at, old, new, problems);
        }
        let required = |s: &Value| -> BTreeSet<String> {
            s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let (old_required, new_required) = (required(old), required(new));
        match direction {
            Direction::Request => {
                for field in new_required.difference(&old_required) {
                    problems.push(format!("{at}: field {field} became required"));
                }
            }
            Direction::Response => {
                for field in old_required.difference(&new_required) {
                    problems.push(format!("{at}: field {field} is no longer always present"));
                }
            }
        }
        for (field, old_field) in old["properties"].as_object().into_iter().flatten() {
            match new["properties"].get(field) {
                Some(new_field) => self.schema(
                    &format!("{at}.{field}"),
                    old_field,
                    new_field,
                    direction,
                    problems,
                    seen,
                ),
                None => problems.push(format!("{at}: field {field} was removed")),
            }
        }
        if !old["items"].is_null() {
            self.schema(
                &format!("{at}[]"),
                &old["items"],
                &new["items"],
                direction,
                problems,
                seen,
            );
        }
    }
}

/// A request bound the new schema tightened.
fn narrowed(at: &str, old: &Value, new: &Value, problems: &mut Vec<String>) {
    let number = |s: &Value, key: &str| s[key].as_f64();
    for key in ["minimum", "minLength", "minItems"] {
        if let Some(new_bound) = number(new, key)
            && number(old, key).is_none_or(|old_bound| new_bound > old_bound)
        {
            problems.push(format!("{at}: {key} raised to {new_bound}"));
        }
    }
    for key in ["maximum", "maxLength", "maxItems"] {
        if let Some(new_bound) = number(new, key)
            && number(old, key).is_none_or(|old_bound| new_bound < old_bound)
        {
            problems.push(format!("{at}: {key} lowered to {new_bound}"));
        }
    }
    if !new["pattern"].is_null() && old["pattern"] != new["pattern"] {
        problems.push(format!("{at}: pattern changed to {}", new["pattern"]));
    }
}

/// An enum's values, given as `enum` or as alternatives of one value each
/// (how documented Rust enums appear), as JSON text.
fn enum_values(schema: &Value) -> BTreeSet<String> {
    let direct = schema["enum"].as_array().into_iter().flatten();
    let alternatives = ["oneOf", "anyOf"]
        .into_iter()
        .flat_map(|key| schema[key].as_array().into_iter().flatten())
        .flat_map(|alternative| alternative["enum"].as_array().into_iter().flatten());
    direct.chain(alternatives).map(Value::to_string).collect()
}

/// The parameters of an operation, by (name, location).
fn parameters(op: &Value) -> Vec<((String, String), &Value)> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_ascii_lowercase();
            let place = p["in"].as_str().unwrap_or_default().to_string();
            ((name, place), p)
        })
        .collect()
}

/// The JSON schema of a request body or response.
fn json_schema(body: &Value) -> &Value {
    &body["content"]["application/json"]["schema"]
}

/// An operation's security requirements, one `scheme: scopes` each.
fn requirements(operation: &Value) -> Vec<String> {
    operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|requirement| !requirement.is_empty())
        .map(|requirement| {
            requirement
                .iter()
                .map(|(scheme, scopes)| format!("{scheme} {scopes}"))
                .collect::<Vec<_>>()
                .join(" and ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract(order: Value, status: &str, extra_params: Value) -> Value {
        json!({
            "paths": {"/orders": {"post": {
                "operationId": "create_order",
                "parameters": extra_params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderRequest"}}}},
                "responses": {status: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}}}
            }}},
            "components": {"schemas": {
                "OrderRequest": {"type": "object", "required": ["item_name"], "properties": {
                    "item_name": {"type": "string", "maxLength": 100},
                    "note": {"type": "string"}
                }},
                "Order": order
            }}
        })
    }

    fn order() -> Value {
        json!({"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending", "paid", "failed"]}
        }})
    }

    /// A change made to a contract.
    type Change = Box<dyn Fn(&mut Value)>;

    fn released() -> Value {
        contract(order(), "200", json!([]))
    }

    #[test]
    fn the_same_contract_keeps_every_promise() {
        assert_eq!(
            breaking_changes(&released(), &released()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn additions_keep_every_promise() {
        let mut new = released();
        new["paths"]["/orders"]["get"] = json!({"operationId": "list_orders", "responses": {}});
        new["paths"]["/orders"]["post"]["parameters"] =
            json!([{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}]);
        new["components"]["schemas"]["Order"]["properties"]["total"] = json!({"type": "integer"});
        new["components"]["schemas"]["OrderRequest"]["properties"]["coupon"] =
            json!({"type": "string"});
        assert_eq!(breaking_changes(&released(), &new), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_break_is_named() {
        let cases: Vec<(&str, Change)> = vec![
            (
                "the operation was removed",
                Box::new(|c| c["paths"]["/orders"].as_object_mut().unwrap().clear()),
            ),
            (
                "operationId changed",
                Box::new(|c| c["paths"]["/orders"]["post"]["operationId"] = json!("new_order")),
            ),
            (
                "success status changed",
                Box::new(|c| {
                    let responses = c["paths"]["/orders"]["post"]["responses"]
                        .as_object_mut()
                        .unwrap();
                    let ok = responses.remove("200").unwrap();
                    responses.insert("201".into(), ok);
                }),
            ),
            (
                "field note became required",
                Box::new(|c| {
                    c["components"]["schemas"]["OrderRequest"]["required"] =
                        json!(["item_name", "note"])
                }),
            ),
            (
                "maxLength lowered to 50",
                Box::new(|c| {
                    c["components"]["schemas"]["OrderRequest"]["properties"]["item_name"]["maxLength"] =
                        json!(50)
                }),
            ),
            (
                "pattern changed",
                Box::new(|c| {
                    c["components"]["schemas"]["OrderRequest"]["properties"]["item_name"]["pattern"] =
                        json!("^[a-z]+$")
                }),
            ),
            (
                "field status was removed",
                Box::new(|c| {
                    c["components"]["schemas"]["Order"]["properties"]
                        .as_object_mut()
                        .unwrap()
                        .remove("status");
                }),
            ),
            (
                "enum value \"failed\" was removed",
                Box::new(|c| {
                    c["components"]["schemas"]["Order"]["properties"]["status"]["enum"] =
                        json!(["pending", "paid"])
                }),
            ),
            (
                "type changed",
                Box::new(|c| {
                    c["components"]["schemas"]["Order"]["properties"]["id"]["type"] =
                        json!("integer")
                }),
            ),
            (
                "may now be null",
                Box::new(|c| {
                    c["components"]["schemas"]["Order"]["properties"]["id"]["nullable"] =
                        json!(true)
                }),
            ),
            (
                "field id is no longer always present",
                Box::new(|c| c["components"]["schemas"]["Order"]["required"] = json!(["status"])),
            ),
            (
                "new header parameter x-tenant is required",
                Box::new(
                    |c| c["paths"]["/orders"]["post"]["parameters"] = json!([{"name": "X-Tenant", "in": "header", "required": true, "schema": {"type": "string"}}]),
                ),
            ),
        ];
        for (expected, change) in cases {
            let mut new = released();
            change(&mut new);
            let problems = breaking_changes(&released(), &new);
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected:?} not among {problems:?}"
            );
        }
    }

    #[test]
    fn an_enum_of_documented_alternatives_loses_a_value() {
        let status = |values: &[&str]| {
            let alternatives: Vec<Value> = values
                .iter()
                .map(|v| json!({"type": "string", "enum": [v], "description": "…"}))
                .collect();
            let mut order = order();
            order["properties"]["status"] = json!({"oneOf": alternatives});
            contract(order, "200", json!([]))
        };
        let problems = breaking_changes(
            &status(&["pending", "paid", "failed"]),
            &status(&["paid", "pending"]),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].ends_with("enum value \"failed\" was removed"),
            "{problems:?}"
        );
        assert!(
            breaking_changes(
                &status(&["pending", "paid"]),
                &status(&["paid", "failed", "pending"])
            )
            .is_empty()
        );
    }

    #[test]
    fn an_optional_parameter_that_becomes_required_is_named() {
        let old = contract(
            order(),
            "200",
            json!([{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}]),
        );
        let new = contract(
            order(),
            "200",
            json!([{"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string"}}]),
        );
        assert_eq!(
            breaking_changes(&old, &new),
            vec!["POST /orders: header parameter idempotency-key became required".to_string()]
        );
    }
}
