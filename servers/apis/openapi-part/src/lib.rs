//! One service's part of the contract. `openapi.yaml` holds both services;
//! a client, or a service's own `/openapi.json`, keeps the operations of
//! that service's tags, the tags themselves, and the component schemas and
//! responses those operations reach.

use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Keeps the operations tagged with one of `tags`, and what they reference.
pub fn keep_tags(document: &mut Value, tags: &[&str]) {
    let tagged = |op: &Value| {
        op["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t.as_str().is_some_and(|t| tags.contains(&t)))
    };
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            if let Some(item) = item.as_object_mut() {
                item.retain(|key, op| !METHODS.contains(&key.as_str()) || tagged(op));
            }
        }
        paths.retain(|_, item| METHODS.iter().any(|m| item.get(*m).is_some()));
    }
    if let Some(declared) = document.get_mut("tags").and_then(Value::as_array_mut) {
        declared.retain(|t| t["name"].as_str().is_some_and(|name| tags.contains(&name)));
    }
    prune_components(document);
}

/// Removes the header parameters `names` from every operation.
pub fn drop_header_parameters(document: &mut Value, names: &[&str]) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            if let Some(parameters) = item
                .get_mut(method)
                .and_then(|op| op.get_mut("parameters"))
                .and_then(Value::as_array_mut)
            {
                parameters.retain(|p| {
                    !(p["in"] == "header" && p["name"].as_str().is_some_and(|n| names.contains(&n)))
                });
            }
        }
    }
}

/// Removes the answers with status `codes` from every operation.
pub fn drop_responses(document: &mut Value, codes: &[&str]) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            if let Some(responses) = item
                .get_mut(method)
                .and_then(|op| op.get_mut("responses"))
                .and_then(Value::as_object_mut)
            {
                responses.retain(|code, _| !codes.contains(&code.as_str()));
            }
        }
    }
}

/// Drops component schemas and responses that no path reaches.
fn prune_components(document: &mut Value) {
    let mut reached = BTreeSet::new();
    let mut pending: Vec<&Value> = vec![&document["paths"]];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref")
                    && reached.insert(target.clone())
                    && let Some(found) = target
                        .strip_prefix('#')
                        .and_then(|pointer| document.pointer(pointer))
                {
                    pending.push(found);
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    for kind in ["schemas", "responses"] {
        if let Some(components) = document
            .pointer_mut(&format!("/components/{kind}"))
            .and_then(Value::as_object_mut)
        {
            components.retain(|name, _| reached.contains(&format!("#/components/{kind}/{name}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "paths": {
                "/a": {"get": {"tags": ["one"], "responses": {"200": {"$ref": "#/components/responses/R"}}},
                       "post": {"tags": ["two"], "parameters": [{"in": "header", "name": "x-sig"}, {"in": "header", "name": "x-id"}]}},
                "/b": {"get": {"tags": ["two"], "responses": {"200": {"schema": {"$ref": "#/components/schemas/B"}}}}}
            },
            "tags": [{"name": "one"}, {"name": "two"}],
            "components": {
                "responses": {"R": {"schema": {"$ref": "#/components/schemas/A"}}},
                "schemas": {"A": {"properties": {"inner": {"$ref": "#/components/schemas/Inner"}}}, "Inner": {}, "B": {}}
            }
        })
    }

    #[test]
    fn keeps_a_tags_operations_and_what_they_reach() {
        let mut doc = document();
        keep_tags(&mut doc, &["one"]);
        assert_eq!(
            doc["paths"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["/a"]
        );
        assert!(doc["paths"]["/a"].get("post").is_none());
        assert_eq!(doc["tags"], json!([{"name": "one"}]));
        let schemas: Vec<_> = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            schemas,
            ["A", "Inner"],
            "reached through a response and a nested schema"
        );
    }

    #[test]
    fn drops_only_the_named_headers() {
        let mut doc = document();
        drop_header_parameters(&mut doc, &["x-sig"]);
        assert_eq!(
            doc["paths"]["/a"]["post"]["parameters"],
            json!([{"in": "header", "name": "x-id"}])
        );
    }
}
