//! Generates a progenitor client for one service from the committed
//! `openapi.yaml`, from a build script.
//!
//! The contract holds both services. A client keeps the operations of its
//! service's tags and the schemas they reach, so that, say, the payment
//! client has no order-callback types in it.

use openapiv3::{OpenAPI, ReferenceOr};
use progenitor::{GenerationSettings, Generator};
use std::collections::BTreeSet;
use std::path::Path;

/// What one client is made of.
pub struct ClientSpec<'a> {
    /// The operations to keep, by tag.
    pub tags: &'a [&'a str],
    /// Header parameters the client's hook supplies itself, so they are not
    /// arguments of the generated methods.
    pub hook_headers: &'a [&'a str],
    /// Progenitor's settings (interface style, inner type, hooks).
    pub settings: GenerationSettings,
}

/// Writes the client for `spec` from the contract at `contract` into
/// `$OUT_DIR/client.rs`, and asks cargo to rerun when the contract changes.
pub fn generate(contract: &Path, spec: &ClientSpec) {
    println!("cargo:rerun-if-changed={}", contract.display());
    let text = std::fs::read_to_string(contract)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", contract.display()));
    let document: OpenAPI = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not an OpenAPI document: {e}", contract.display()));
    let document = prune_schemas(only_tags(document, spec));

    let tokens = Generator::new(&spec.settings)
        .generate_tokens(&document)
        .unwrap_or_else(|e| panic!("progenitor cannot generate a client: {e}"));
    let file = syn::parse2(tokens).expect("progenitor generated invalid Rust");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("client.rs");
    std::fs::write(&out, prettyplease::unparse(&file))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn only_tags(mut document: OpenAPI, spec: &ClientSpec) -> OpenAPI {
    document.paths.paths.retain(|_, item| match item {
        ReferenceOr::Item(item) => item
            .iter()
            .any(|(_, op)| op.tags.iter().any(|t| spec.tags.contains(&t.as_str()))),
        ReferenceOr::Reference { .. } => false,
    });
    document
        .tags
        .retain(|t| spec.tags.contains(&t.name.as_str()));
    for item in document.paths.paths.values_mut() {
        if let ReferenceOr::Item(item) = item {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for op in operations.into_iter().flatten() {
                op.parameters.retain(|p| match p {
                    ReferenceOr::Item(p) => !spec
                        .hook_headers
                        .contains(&p.parameter_data_ref().name.as_str()),
                    ReferenceOr::Reference { .. } => true,
                });
            }
        }
    }
    document
}

/// Drops component schemas and responses that no kept operation reaches.
fn prune_schemas(mut document: OpenAPI) -> OpenAPI {
    let whole = serde_json::to_value(&document).expect("an OpenAPI document serializes");
    let mut reached = BTreeSet::new();
    let mut pending: Vec<&serde_json::Value> = vec![&whole["paths"]];
    while let Some(value) = pending.pop() {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref")
                    && reached.insert(target.clone())
                    && let Some(pointer) = target.strip_prefix('#')
                    && let Some(found) = whole.pointer(pointer)
                {
                    pending.push(found);
                }
                pending.extend(map.values());
            }
            serde_json::Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    if let Some(components) = document.components.as_mut() {
        components
            .schemas
            .retain(|name, _| reached.contains(&format!("#/components/schemas/{name}")));
        components
            .responses
            .retain(|name, _| reached.contains(&format!("#/components/responses/{name}")));
    }
    document
}
