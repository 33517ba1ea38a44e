//! Regenerates both clients' `src/generated.rs` from `openapi.yaml`.

use std::process::ExitCode;

fn main() -> ExitCode {
    for spec in client_codegen::clients() {
        let written = client_codegen::render(&spec)
            .and_then(|source| Ok(std::fs::write(spec.path(), source)?));
        match written {
            Ok(()) => println!("wrote {}", spec.path().display()),
            Err(error) => {
                eprintln!("error: {}: {error:#}", spec.name);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
