//! `order-payment`: one command per public operation of both services,
//! generated from the contract. Answers are printed as JSON on stdout; an
//! enveloped error is printed as `error: <status> <error_code>: <message>`
//! on stderr. Exit codes: 0 success, 1 a refusal (4xx), 2 a usage mistake,
//! 3 no usable answer (unreachable, 5xx, unreadable). The access token
//! (`--token` or `ORDER_PAYMENT_TOKEN`) goes on every request and is never
//! printed.

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
        )
        .arg(
            Arg::new("token")
                .long("token")
                .env("ORDER_PAYMENT_TOKEN")
                .hide_env_values(true)
                .global(true)
                .help(
                    "An OAuth 2.0 access token from the services' identity provider, sent as \
                     Authorization: Bearer (`devstack token` prints one for devstack)",
                ),
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
    let token = matches.get_one::<String>("token").map(String::as_str);
    let result = match http_client(token) {
        Ok(http) => {
            let urls = (url("order-url"), url("payment-url"));
            run(subcommand, arguments, &urls, http, &outcome).await
        }
        Err(error) => Err(error),
    };
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

/// The HTTP client for both services, sending `token` as a bearer token
/// (marked sensitive, so it never appears in a debug print).
fn http_client(token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| {
                anyhow::anyhow!("--token is not a token: it holds characters a header cannot")
            })?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(15))
        .build()?)
}

async fn run(
    subcommand: &str,
    arguments: &ArgMatches,
    (order_url, payment_url): &(String, String),
    http: reqwest::Client,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    if let Some(operation) =
        orders_commands::CliCommand::iter().find(|op| name(op.operation_id()) == subcommand)
    {
        let client = orders_client::Client::new_with_client(order_url, http);
        let cli = orders_commands::Cli::new(client, Json(outcome));
        return cli.execute(operation, arguments).await;
    }
    if let Some(operation) =
        payments_commands::CliCommand::iter().find(|op| name(op.operation_id()) == subcommand)
    {
        let client = payments_client::Client::new_with_client(payment_url, http);
        let cli = payments_commands::Cli::new(client, Json(outcome));
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
