//! The benchmark runs from start to end (PostgreSQL, pgbench, the service
//! binaries and plain-orders, wrk, the flow) and prints its tables, in a
//! quick run whose figures nobody judges: it proves the command still
//! works, not how fast anything is.

use std::process::Command;

#[test]
fn a_smoke_run_prints_every_row_of_the_table() {
    if Command::new("wrk").arg("--version").output().is_err() {
        harness::prerequisites::skip_without("wrk", "apt-get install wrk");
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_benchmark"))
        .arg("--smoke")
        .output()
        .expect("the benchmark runs");
    let table = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {}\n{log}\n{table}",
        output.status
    );
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
            .split('|')
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for measured in [
        "`GET /orders/{id}`",
        "`POST /orders`",
        "`GET /orders (100)`",
        "`POST /payments`",
        "`PUT /payments/success/{id}`",
        "as fast as it goes",
        "at half that rate",
    ] {
        let cells = row(measured);
        assert_ne!(cells[2], "0", "{measured} did no work: {cells:?}");
        assert_eq!(cells[7], "0", "{measured} had errors: {cells:?}");
    }
    // Side by side: plain-orders, and the product with authentication off
    // and on (the same reads, creates and flows, with tokens).
    let compared = table
        .split("| side by side |")
        .nth(1)
        .unwrap_or_else(|| panic!("no side-by-side comparison in:\n{table}"));
    for (measured, plain) in [
        ("`GET /orders/{id}`", true),
        ("`POST /orders`", true),
        ("`whole flow (flows/s)`", false),
    ] {
        let cells: Vec<&str> = compared
            .lines()
            .find(|line| line.contains(measured))
            .unwrap_or_else(|| panic!("no row {measured} side by side"))
            .split('|')
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .collect();
        if plain {
            assert_ne!(cells[1], "0", "{measured} did no work on plain: {cells:?}");
        } else {
            assert_eq!(cells[1], "—", "{measured} has no plain: {cells:?}");
        }
        assert_ne!(cells[2], "0", "{measured} did no work: {cells:?}");
        assert_ne!(
            cells[3], "0",
            "{measured} did no work with tokens: {cells:?}"
        );
        assert_eq!(cells[10], "0", "{measured} had errors: {cells:?}");
    }
    for service in ["| order-service |", "| payment-service |"] {
        let cells = row(service);
        assert!(
            cells[1].parse::<f64>().is_ok_and(|mib| mib > 0.0),
            "{cells:?}"
        );
    }
    println!("{table}");
}
