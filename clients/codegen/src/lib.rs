//! Generates a progenitor client for one service from the committed
//! `openapi.yaml`, from a build script.
//!
//! The contract holds both services. A client keeps the operations of its
//! service's tags and the schemas they reach (see `openapi-part`), so that,
//! say, the payment client has no order-callback types in it.

use openapiv3::OpenAPI;
use progenitor::{GenerationSettings, Generator};
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
    let mut document: serde_json::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", contract.display()));
    openapi_part::keep_tags(&mut document, spec.tags);
    openapi_part::drop_header_parameters(&mut document, spec.hook_headers);
    let document: OpenAPI = serde_json::from_value(document)
        .unwrap_or_else(|e| panic!("{} is not an OpenAPI document: {e}", contract.display()));

    let tokens = Generator::new(&spec.settings)
        .generate_tokens(&document)
        .unwrap_or_else(|e| panic!("progenitor cannot generate a client: {e}"));
    let file = syn::parse2(tokens).expect("progenitor generated invalid Rust");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("client.rs");
    std::fs::write(&out, prettyplease::unparse(&file))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
