//! The README's walk-through with the command-line client, against both
//! live services: create an order, pay it, mark the payment successful,
//! read the order `paid`; and a refusal printed and exited as documented.

use harness::order_service::OrderServiceTest;
use harness::payment_service::PaymentServiceTest;
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

struct Services {
    orders: OrderServiceTest<'static>,
    payments: PaymentServiceTest<'static>,
}

impl Services {
    async fn start() -> Services {
        let orders = OrderServiceTest::start().await;
        let payments = PaymentServiceTest::start(&orders.url(""), orders.secret(), |_| {}).await;
        Services { orders, payments }
    }

    async fn cleanup(self) {
        self.payments.cleanup().await;
        self.orders.cleanup().await;
    }

    /// Creates an order with `extra` arguments; returns its `data`.
    async fn create_order(&self, quantity: &str, price: &str, extra: &[&str]) -> Value {
        let mut args = vec![
            "create-order",
            "--item-name",
            "Desk lamp",
            "--quantity",
            quantity,
            "--price",
            price,
        ];
        args.extend_from_slice(extra);
        self.data(&args).await
    }
    /// Runs `order-payment` with `args` against the services.
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_order-payment"));
        command
            .args(args)
            .env("ORDER_SERVICE_URL", self.orders.url(""))
            .env("PAYMENT_SERVICE_URL", self.payments.url(""))
            .env("ORDER_PAYMENT_TOKEN", harness::issuer::caller_token());
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs a command that must succeed; returns the `data` it printed.
    async fn data(&self, args: &[&str]) -> Value {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        printed["data"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_created_paid_and_read_paid_from_the_command_line() {
    let services = Services::start().await;

    let order = services.create_order("2", "2500", &[]).await;
    assert_eq!(order["total_amount"], 5000);
    let order_id = order["id"].as_str().unwrap();
    let payment = services
        .data(&[
            "create-payment",
            "--order-id",
            order_id,
            "--amount",
            "5000",
            "--provider",
            "stripe",
        ])
        .await;
    let payment_id = payment["id"].as_str().unwrap();
    let settled = services
        .data(&["mark-payment-success", "--payment-id", payment_id])
        .await;
    assert_eq!(settled["status"], "success");

    harness::wait_until(
        "the order to read paid",
        Duration::from_secs(10),
        async || match services.data(&["get-order", "--order-id", order_id]).await {
            order if order["status"] == "paid" => Ok(()),
            order => Err(order.to_string()),
        },
    )
    .await;

    let key = ["--idempotency-key", "cli-1"];
    let again = services.create_order("1", "10", &key).await;
    let retried = services.create_order("1", "10", &key).await;
    assert_eq!(again["id"], retried["id"]);

    services.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_mistakes_are_explained_with_their_exit_codes() {
    let services = Services::start().await;

    let missing = uuid::Uuid::new_v4().to_string();
    let refused = services.run(&["get-order", "--order-id", &missing]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: 404 ORDER_NOT_FOUND: no order has id {missing}"
        )),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());

    let mistaken = services
        .run(&[
            "create-order",
            "--item-name",
            "x",
            "--quantity",
            "0",
            "--price",
            "1",
        ])
        .await;
    assert_eq!(mistaken.status.code(), Some(2), "a usage mistake");

    services.cleanup().await;

    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_order-payment"))
        .args([
            "--order-url",
            "http://127.0.0.1:9",
            "get-order",
            "--order-id",
            &missing,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(3), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_refusal_says_so_and_a_token_is_never_printed() {
    let services = Services::start().await;
    let token = harness::issuer::caller_token();
    let anonymous = std::process::Command::new(env!("CARGO_BIN_EXE_order-payment"))
        .args(["list-orders", "--order-url", &services.orders.url("")])
        .env_remove("ORDER_PAYMENT_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert_eq!(anonymous.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401 UNAUTHORIZED"), "{stderr}");
    let output = services
        .run(&["get-order", "--order-id", "not-a-uuid"])
        .await;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_order-payment"))
        .args(["list-orders", "--help"])
        .env("ORDER_PAYMENT_TOKEN", &token)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for text in [printed.as_str(), help.as_ref()] {
        assert!(!text.contains(&token), "the token was printed: {text}");
    }
    services.cleanup().await;
}
