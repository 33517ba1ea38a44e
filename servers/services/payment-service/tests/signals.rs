//! The payment-service binary stops cleanly on SIGTERM and SIGINT.

#[tokio::test]
async fn the_binary_exits_0_soon_after_sigterm_or_sigint() {
    let exits =
        harness::process::stops_cleanly_on_signals(env!("CARGO_BIN_EXE_payment-service")).await;
    eprintln!("payment-service exited 0 after: {exits:?}");
}
