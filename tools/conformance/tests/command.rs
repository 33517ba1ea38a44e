//! The `conformance` command as an operator runs it: against live services,
//! from a directory that holds no contract, and given a bad secret.

use harness::order_service::OrderServiceTest;
use harness::payment_service::PaymentServiceTest;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_against_the_services_from_any_directory() {
    let orders = OrderServiceTest::start().await;
    let payments = PaymentServiceTest::start(&orders.url(""), orders.secret(), |_| {}).await;
    let (order_url, payment_url, secret) = (
        orders.url(""),
        payments.url(""),
        orders.secret().to_string(),
    );
    let customer = harness::issuer::token(
        "conformance",
        "orders:read orders:write payments:read payments:write",
    );
    let connector = harness::issuer::token("connector", "payments:settle");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_conformance"))
            .args(["--order-url", &order_url, "--payment-url", &payment_url])
            .args(["--secret", &secret])
            .args(["--token", &customer, "--settle-token", &connector])
            .current_dir("/")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(
        report
            .lines()
            .last()
            .unwrap()
            .starts_with("10 passed, 0 failed, 4 skipped"),
        "{report}"
    );
    payments.cleanup().await;
    orders.cleanup().await;
}

#[test]
fn a_bad_secret_is_refused_saying_what_is_wanted() {
    let output = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--secret", "not-a-secret"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("conformance: --secret is not a callback secret")
            && stderr.contains("whsec_"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
