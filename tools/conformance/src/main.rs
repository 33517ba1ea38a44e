//! Checks deployed services against the contract and the system's rules:
//! one line per rule, a summary, and a non-zero exit on any failure.

use clap::Parser;
use conformance::remote::{Target, run};
use std::process::ExitCode;

/// Runs the contract and end-to-end checks against running services.
#[derive(Parser)]
#[command(name = "conformance")]
struct Options {
    /// order-service's base URL.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    order_url: String,
    /// payment-service's base URL.
    #[arg(
        long,
        env = "PAYMENT_SERVICE_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    payment_url: String,
    /// The callback secret, for the checks that sign callbacks (skipped without it).
    #[arg(long, env = "PAYMENT_CALLBACK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// A customer's access token (scopes orders:read orders:write payments:read payments:write); without it, the services must run with authentication disabled.
    #[arg(long, env = "CONFORMANCE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An access token with scope payments:settle, for settling payments (the customer's token is used without it).
    #[arg(long, env = "CONFORMANCE_SETTLE_TOKEN", hide_env_values = true)]
    settle_token: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    if let Some(secret) = &options.secret
        && let Err(error) = standardwebhooks::Webhook::new(secret)
    {
        eprintln!(
            "conformance: --secret is not a callback secret ({error}); give the services' \
             PAYMENT_CALLBACK_SECRET, `whsec_` followed by base64"
        );
        return ExitCode::from(2);
    }
    let target = Target {
        order_url: options.order_url.trim_end_matches('/').to_string(),
        payment_url: options.payment_url.trim_end_matches('/').to_string(),
        secret: options.secret,
        token: options.token,
        settle_token: options.settle_token,
    };
    let summary = run(&target, &mut std::io::stdout()).await;
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
