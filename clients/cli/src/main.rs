//! `order-payment`: one command per public operation of both services,
//! generated from the contract. Answers are printed as JSON on stdout; an
//! enveloped error is printed as `error: <status> <error_code>: <message>`
//! on stderr. Exit codes: 0 success, 1 a refusal (4xx), 2 a usage mistake,
//! 3 no usable answer (unreachable, 5xx, unreadable).

mod generated;
mod output;

use clap::{Arg, ArgMatches, Command};
use generated::{orders_client, orders_commands, payments_client, payments_commands};
use output::{Json, Outcome};
use std::process::ExitCode;

fn command() -> Command {
    let mut root = Command::new("order-payment")
        .about("Calls order-service and payment-service from the command line.")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg(
            Arg::new("order-url")
                .long("order-url")
                .env("ORDER_SERVICE_URL")
                .default_value("http://127.0.0.1:8080")
                .global(true)
                .help("order-service's base URL"),
        )
        .arg(
            Arg::new("payment-url")
                .long("payment-url")
                .env("PAYMENT_SERVICE_URL")
                .default_value("http://127.0.0.1:8081")
                .global(true)
                .help("payment-service's base URL"),
        );
    for operation in orders_commands::CliCommand::iter() {
        root = root.subcommand(
            orders_commands::Cli::<Json>::get_command(operation)
                .name(name(operation.operation_id())),
        );
    }
    for operation in payments_commands::CliCommand::iter() {
        root = root.subcommand(
            payments_commands::Cli::<Json>::get_command(operation)
                .name(name(operation.operation_id())),
        );
    }
    root
}

/// `create_order` is typed `create-order`.
fn name(operation_id: &str) -> String {
    operation_id.replace('_', "-")
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = command().get_matches();
    let (subcommand, arguments) = matches.subcommand().expect("a subcommand is required");
    let url = |name: &str| matches.get_one::<String>(name).expect("a default").clone();
    let outcome = Outcome::default();
    let result = run(
        subcommand,
        arguments,
        &url("order-url"),
        &url("payment-url"),
        &outcome,
    )
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // An enveloped error was printed by the output already.
            if !outcome.printed() {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(outcome.exit_code())
        }
    }
}

async fn run(
    subcommand: &str,
    arguments: &ArgMatches,
    order_url: &str,
    payment_url: &str,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    if let Some(operation) =
        orders_commands::CliCommand::iter().find(|op| name(op.operation_id()) == subcommand)
    {
        let cli = orders_commands::Cli::new(orders_client::Client::new(order_url), Json(outcome));
        return cli.execute(operation, arguments).await;
    }
    if let Some(operation) =
        payments_commands::CliCommand::iter().find(|op| name(op.operation_id()) == subcommand)
    {
        let cli =
            payments_commands::Cli::new(payments_client::Client::new(payment_url), Json(outcome));
        return cli.execute(operation, arguments).await;
    }
    anyhow::bail!("unknown command {subcommand}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_valid() {
        super::command().debug_assert();
    }
}
