use client_codegen::{ClientSpec, generate};
use progenitor::GenerationSettings;

fn main() {
    generate(
        "../../openapi.yaml".as_ref(),
        &ClientSpec {
            tags: &["payments"],
            hook_headers: &[],
            settings: GenerationSettings::default(),
        },
    );
}
