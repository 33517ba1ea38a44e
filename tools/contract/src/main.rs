//! `contract generate` writes openapi.yaml from the API traits;
//! `contract check` fails if the committed file differs from them.

use std::process::ExitCode;

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let path = contract::committed_path();
    let generated = match contract::generate() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match command.as_str() {
        "generate" => match std::fs::write(&path, generated) {
            Ok(()) => {
                println!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        "check" => {
            if std::fs::read_to_string(&path).ok().as_deref() == Some(generated.as_str()) {
                println!("{} is up to date", path.display());
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "{} is stale: run `{}`",
                    path.display(),
                    contract::GENERATE_COMMAND
                );
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("usage: contract generate|check");
            ExitCode::from(2)
        }
    }
}
