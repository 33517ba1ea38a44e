//! The Rust SDK outside this repository: each client packages (all its code
//! and its manifest, no path into the workspace) and the packaged crate
//! builds on its own, with its doctests compiled.

use std::process::Command;

#[test]
fn the_clients_package_and_build_on_their_own() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = Command::new(cargo)
        .args(["package", "-p", "order-client", "-p", "payment-client"])
        .args(["--allow-dirty", "--locked"])
        .current_dir(workspace)
        .output()
        .expect("cargo runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    for name in ["order-client", "payment-client"] {
        assert!(
            log.contains(&format!("Verifying {name} v")),
            "{name} was not built on its own:\n{log}"
        );
    }
}
