use client_codegen::{ClientSpec, generate};
use progenitor::GenerationSettings;

fn main() {
    let mut settings = GenerationSettings::default();
    // The context carries the callback secret to the signing hook in lib.rs.
    settings.with_inner_type("crate::ClientContext".parse().expect("a Rust path"));
    generate(
        "../../openapi.yaml".as_ref(),
        &ClientSpec {
            tags: &["orders", "internal"],
            // Computed by the hook over the exact bytes sent, so they are not
            // arguments: a caller could not know the body's bytes in advance.
            hook_headers: &["webhook-timestamp", "webhook-signature"],
            settings,
        },
    );
}
