//! The committed clients are what the contract gives.

#[test]
fn each_committed_client_is_generated_from_the_committed_contract() {
    for spec in client_codegen::clients() {
        let generated = client_codegen::render(&spec).expect("the client generates");
        let committed = std::fs::read_to_string(spec.path()).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: run `cargo run -p client-codegen` and review its diff",
            spec.path().display()
        );
    }
}

#[test]
fn the_committed_command_line_client_is_generated_from_the_committed_contract() {
    for module in client_codegen::cli_modules() {
        let generated = client_codegen::render_cli(&module).expect("the CLI generates");
        for (path, source) in module.paths().iter().zip(generated) {
            let committed = std::fs::read_to_string(path).unwrap_or_default();
            assert!(
                committed == source,
                "{} is stale: run `cargo run -p client-codegen` and review its diff",
                path.display()
            );
        }
    }
}
