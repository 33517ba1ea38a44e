//! Generates the progenitor clients from the committed `openapi.yaml` into
//! their crates' `src/generated.rs`, and the command-line client's modules
//! into `clients/cli/src/generated/`, all committed: a client crate then
//! holds all its code and packages and builds on its own.
//! `cargo run -p client-codegen` regenerates them; a test fails when a
//! committed file differs from what the contract gives.
//!
//! The contract holds both services. A client keeps the operations of its
//! service's tags and the schemas they reach (see `openapi-part`), so that,
//! say, the payment client has no order-callback types in it.

use openapiv3::OpenAPI;
use progenitor::{GenerationSettings, Generator, InterfaceStyle};
use std::path::PathBuf;

/// What one client is made of.
pub struct ClientSpec {
    /// The crate, under `clients/`.
    pub name: &'static str,
    /// The operations to keep, by tag.
    pub tags: &'static [&'static str],
    /// Header parameters the client's hook supplies itself, so they are not
    /// arguments of the generated methods.
    pub hook_headers: &'static [&'static str],
    /// Progenitor's settings (interface style, inner type, hooks).
    pub settings: GenerationSettings,
}

impl ClientSpec {
    /// The committed generated file.
    pub fn path(&self) -> PathBuf {
        repository()
            .join("clients")
            .join(self.name)
            .join("src/generated.rs")
    }
}

/// Both clients.
pub fn clients() -> [ClientSpec; 2] {
    let mut orders = GenerationSettings::default();
    // The context carries the callback secret to the signing hook in lib.rs.
    orders.with_inner_type("crate::ClientContext".parse().expect("a Rust path"));
    // The context carries the bearer token to the hook in lib.rs.
    let mut payments = GenerationSettings::default();
    payments.with_inner_type("crate::ClientContext".parse().expect("a Rust path"));
    [
        ClientSpec {
            name: "order-client",
            tags: &["orders", "internal"],
            // Computed by the hook over the exact bytes sent, so they are not
            // arguments: a caller could not know the body's bytes in advance.
            hook_headers: &["webhook-id", "webhook-timestamp", "webhook-signature"],
            settings: orders,
        },
        ClientSpec {
            name: "payment-client",
            tags: &["payments"],
            hook_headers: &[],
            settings: payments,
        },
    ]
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The client `spec` describes, as Rust source, from the committed contract.
pub fn render(spec: &ClientSpec) -> anyhow::Result<String> {
    let document = part(spec.tags, spec.hook_headers)?;
    let tokens = Generator::new(&spec.settings)
        .generate_tokens(&document)
        .map_err(|e| anyhow::anyhow!("progenitor cannot generate {}: {e}", spec.name))?;
    source(tokens)
}

/// One service's part of the command-line client: a builder-style client
/// of its public operations and the clap commands over it.
pub struct CliModule {
    /// The module under `clients/cli/src/generated/`.
    pub name: &'static str,
    pub tags: &'static [&'static str],
}

impl CliModule {
    /// The committed client and commands.
    pub fn paths(&self) -> [PathBuf; 2] {
        let dir = repository().join("clients/cli/src/generated");
        [
            dir.join(format!("{}_client.rs", self.name)),
            dir.join(format!("{}_commands.rs", self.name)),
        ]
    }
}

/// The services' public operations; the signed internal ones stay out.
pub fn cli_modules() -> [CliModule; 2] {
    [
        CliModule {
            name: "orders",
            tags: &["orders"],
        },
        CliModule {
            name: "payments",
            tags: &["payments"],
        },
    ]
}

/// The module's client and its commands, as Rust source.
pub fn render_cli(module: &CliModule) -> anyhow::Result<[String; 2]> {
    let document = part(module.tags, &[])?;
    let mut settings = GenerationSettings::default();
    // What progenitor's CLI generator needs: builders to fill from
    // arguments, and schemas of the types it prints.
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_derive("schemars::JsonSchema");
    let mut generator = Generator::new(&settings);
    let client = generator
        .generate_tokens(&document)
        .map_err(|e| anyhow::anyhow!("progenitor cannot generate {}: {e}", module.name))?;
    let commands = generator
        .cli(
            &document,
            &format!("crate::generated::{}_client", module.name),
        )
        .map_err(|e| anyhow::anyhow!("progenitor cannot generate {}'s CLI: {e}", module.name))?;
    Ok([source(client)?, source(commands)?])
}

/// The operations of `tags` of the committed contract, without the
/// `hook_headers` parameters, and without the 401 and 403 answers: they
/// carry the same `ApiError` as the `4XX` range, which progenitor would
/// match first and so leave them unreachable.
fn part(tags: &[&str], hook_headers: &[&str]) -> anyhow::Result<OpenAPI> {
    use anyhow::Context;
    let contract = repository().join("openapi.yaml");
    let text = std::fs::read_to_string(&contract)
        .with_context(|| format!("cannot read {}", contract.display()))?;
    let mut document: serde_json::Value = serde_yaml::from_str(&text)?;
    openapi_part::keep_tags(&mut document, tags);
    openapi_part::drop_header_parameters(&mut document, hook_headers);
    openapi_part::drop_responses(&mut document, &["401", "403"]);
    Ok(serde_json::from_value(document)?)
}

fn source(tokens: proc_macro2::TokenStream) -> anyhow::Result<String> {
    let file = syn::parse2(tokens)?;
    Ok(format!(
        "// Generated by `cargo run -p client-codegen` from openapi.yaml; do not edit.\n\n{}",
        prettyplease::unparse(&file)
    ))
}
