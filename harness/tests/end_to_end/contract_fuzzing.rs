//! schemathesis fuzzes the committed contract against both live services:
//! every public operation, with every check (no 5xx, responses and their
//! status codes, content types and headers as documented, invalid input
//! refused, valid input accepted), including a stateful phase that follows
//! the contract's links from a created order or payment to the operations
//! that take its id. A fixed seed makes a run repeatable; any finding fails.
//!
//! The signed internal operations are left out: without the secret every
//! request to them is a 401, which order_service/callback.rs covers.

use crate::{System, installed};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const CONTRACT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");

/// Examples per operation and phase: about a thousand requests per
/// service, a few seconds each.
const EXAMPLES: &str = "200";

#[tokio::test]
async fn schemathesis_finds_nothing_against_either_service() {
    if !installed(&[("schemathesis", &["--version"])]) {
        return;
    }
    let system = System::start().await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract-fuzzing");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let orders_config = dir.join("orders.toml");
    std::fs::copy(CONFIG, &orders_config).unwrap();
    run(
        &dir,
        &orders_config,
        &system.orders.url(""),
        // A replayed create may name an order deleted since; see the config.
        &[
            "--include-tag",
            "orders",
            "--exclude-checks",
            "ensure_resource_availability",
        ],
    )
    .await;

    // Payments need orders to pay: a few pending ones of a known total,
    // offered to the generator for most requests.
    let mut order_ids = Vec::new();
    for _ in 0..20 {
        order_ids.push(format!("\"{}\"", system.order(1, 100).await.id));
    }
    let payments_config = dir.join("payments.toml");
    let dictionaries = format!(
        "\n[dictionaries.orders]\nvalues = [{}]\n\n[dictionaries.totals]\nvalues = [100]\n\n\
         [parameters]\n\"body.order_id\" = {{ dictionary = \"orders\", probability = 0.8 }}\n\
         \"body.amount\" = {{ dictionary = \"totals\", probability = 0.8 }}\n",
        order_ids.join(", ")
    );
    std::fs::write(
        &payments_config,
        std::fs::read_to_string(CONFIG).unwrap() + &dictionaries,
    )
    .unwrap();
    run(
        &dir,
        &payments_config,
        &system.payments.url(""),
        &["--include-tag", "payments"],
    )
    .await;
    system.cleanup().await;
}

/// Runs schemathesis against `url`; fails with its report on any finding.
async fn run(dir: &Path, config: &PathBuf, url: &str, filter: &[&str]) {
    let url = url.trim_end_matches('/');
    let mut command = tokio::process::Command::new("schemathesis");
    command
        .arg("--config-file")
        .arg(config)
        .args(["--no-color", "run", CONTRACT, "--url", url])
        // A caller with every scope, so requests reach the operations.
        .arg("--header")
        .arg(format!(
            "Authorization: Bearer {}",
            harness::issuer::caller_token()
        ))
        .args(filter)
        .args([
            "--exclude-path-regex",
            "^/internal/",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "1",
            "--request-timeout",
            "5",
            "--generation-database",
            "none",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("schemathesis finished within 5 minutes")
        .expect("schemathesis runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems at {url}:\n{report}"
    );
    let summary: Vec<&str> = report
        .lines()
        .filter(|line| line.contains("generated") || line.contains("API Links"))
        .map(str::trim)
        .collect();
    eprintln!("schemathesis at {url}: {}", summary.join("; "));
}
