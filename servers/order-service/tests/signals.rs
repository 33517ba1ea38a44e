//! The order-service binary stops cleanly on SIGTERM and SIGINT.

use harness::postgres::Cluster;
use harness::process::ServiceProcess;
use harness::webhook::new_secret;
use nix::sys::signal::Signal;
use std::time::Duration;

#[tokio::test]
async fn the_binary_exits_0_soon_after_sigterm_or_sigint() {
    let cluster = Cluster::shared();
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let database = format!("signals_{}", uuid::Uuid::new_v4().simple());
        cluster.create_database(&database, None).await.unwrap();
        let service = ServiceProcess::start(
            env!("CARGO_BIN_EXE_order-service"),
            &[
                ("DATABASE_URL", cluster.connection_string(&database)),
                ("PORT", "0".to_string()),
                ("PAYMENT_CALLBACK_SECRET", new_secret()),
            ],
        );
        let ready = reqwest::get(format!("http://{}/readyz", service.address))
            .await
            .unwrap();
        assert_eq!(ready.status(), reqwest::StatusCode::OK);

        let (status, elapsed, log) = service.stop(signal, Duration::from_secs(10));

        assert!(status.success(), "exit status {status} after {signal}");
        assert!(
            log.iter().any(|line| line.contains("shutting down")),
            "{log:?}"
        );
        eprintln!("order-service exited 0 {elapsed:?} after {signal}");
    }
}
