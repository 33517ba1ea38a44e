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
        let command = orders_commands::Cli::<Json>::get_command(operation);
        root = root.subcommand(subcommand(command, operation.operation_id()));
    }
    for operation in payments_commands::CliCommand::iter() {
        let command = payments_commands::Cli::<Json>::get_command(operation);
        root = root.subcommand(subcommand(command, operation.operation_id()));
    }
    root
}

/// A generated command as a subcommand: named after its operation, its
/// summary in listings and the contract's whole text under its own
/// `--help`, without progenitor's `--json-body-template`, which does nothing.
fn subcommand(command: Command, operation_id: &str) -> Command {
    let text = command
        .get_about()
        .map(|about| about.to_string())
        .unwrap_or_default();
    let summary = text.lines().next().unwrap_or_default().to_string();
    let mut command = command
        .name(name(operation_id))
        .about(summary)
        .long_about(text);
    if command
        .get_arguments()
        .any(|argument| argument.get_id() == "json-body-template")
    {
        command = command.mut_arg("json-body-template", |argument| argument.hide(true));
    }
    command
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

    #[test]
    fn every_public_operation_is_a_subcommand_listed_by_its_summary() {
        let root = super::command();
        let mut names: Vec<&str> = root.get_subcommands().map(|c| c.get_name()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "create-order",
                "create-payment",
                "delete-order",
                "get-order",
                "get-payment",
                "list-orders",
                "mark-payment-failed",
                "mark-payment-success",
                "update-order",
            ]
        );
        for command in root.get_subcommands() {
            let about = command.get_about().unwrap().to_string();
            assert!(!about.contains('\n'), "{}: {about}", command.get_name());
            let hidden = command
                .get_arguments()
                .filter(|a| a.get_id() == "json-body-template")
                .all(|a| a.is_hide_set());
            assert!(
                hidden,
                "{} offers a flag that does nothing",
                command.get_name()
            );
        }
    }
}
