//! Clients in other languages, generated from the contract by
//! openapi-generator in this run, against both live services: Python
//! (`python`, its pytest tests in clients/python/tests) and TypeScript
//! (`typescript-fetch`, compiled with tsc with its tests in
//! clients/typescript/test, run by node's test runner). Each runs the whole
//! flow, a retried create, and checks an enveloped error arrives as the
//! language's typed error.

use crate::{System, installed};
use std::path::{Path, PathBuf};
use tokio::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `command` in `dir`; fails with its output unless it succeeds.
async fn run(dir: &Path, command: &mut Command) -> String {
    let output = command
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// A customer's token and the settlement connector's, as the tests read them.
fn tokens() -> [(&'static str, String); 2] {
    use harness::issuer::token;
    [
        (
            "CUSTOMER_TOKEN",
            token(
                "polyglot",
                "orders:read orders:write payments:read payments:write",
            ),
        ),
        ("SETTLEMENT_TOKEN", token("connector", "payments:settle")),
    ]
}

/// A fresh directory under the test's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn generate(generator: &str, out: &Path, properties: &str) {
    let contract = repository().join("openapi.yaml");
    run(
        out,
        Command::new("openapi-generator-cli")
            .args(["generate", "-g", generator, "-i"])
            .arg(&contract)
            .arg("-o")
            .arg(out)
            .args(["--additional-properties", properties]),
    )
    .await;
}

/// Copies the tree at `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_runs_the_flow_and_raises_typed_errors() {
    if !installed(&[
        ("openapi-generator-cli", &["version"]),
        (
            "python3",
            &["-c", "import pytest, pydantic, dateutil, urllib3"],
        ),
    ]) {
        return;
    }
    let client = scratch("python-client");
    generate(
        "python",
        &client,
        "packageName=order_payment_client,projectName=order-payment-client",
    )
    .await;
    let system = System::start().await;
    let report = run(
        &client,
        Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(repository().join("clients/python/tests"))
            .env("PYTHONPATH", &client)
            .env("ORDER_URL", system.orders.url(""))
            .env("PAYMENT_URL", system.payments.url(""))
            .envs(tokens()),
    )
    .await;
    eprintln!("pytest: {}", report.lines().last().unwrap_or_default());
    system.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_runs_the_flow_and_rejects_with_typed_errors() {
    if !installed(&[
        ("openapi-generator-cli", &["version"]),
        ("tsc", &["--version"]),
        ("node", &["--version"]),
    ]) {
        return;
    }
    let project = scratch("typescript-client");
    let generated = project.join("generated");
    std::fs::create_dir_all(&generated).unwrap();
    generate(
        "typescript-fetch",
        &generated,
        "npmName=order-payment-client,supportsES6=true",
    )
    .await;
    copy_dir(&generated.join("src"), &project.join("src"));
    copy_dir(
        &repository().join("clients/typescript/test"),
        &project.join("test"),
    );
    std::fs::copy(
        repository().join("clients/typescript/tsconfig.json"),
        project.join("tsconfig.json"),
    )
    .unwrap();
    run(&project, Command::new("tsc").args(["-p", "tsconfig.json"])).await;
    let system = System::start().await;
    let report = run(
        &project,
        Command::new("node")
            .args(["--test", "out/test/"])
            .env("ORDER_URL", system.orders.url(""))
            .env("PAYMENT_URL", system.payments.url(""))
            .envs(tokens()),
    )
    .await;
    assert!(report.contains("# fail 0"), "{report}");
    eprintln!(
        "node --test: {}",
        report
            .lines()
            .filter(|l| l.starts_with("# pass") || l.starts_with("# fail"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    system.cleanup().await;
}
