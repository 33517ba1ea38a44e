//! Regenerates the clients and the command-line client's modules from `openapi.yaml`.

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
    for module in client_codegen::cli_modules() {
        let written = client_codegen::render_cli(&module).and_then(|sources| {
            for (path, source) in module.paths().iter().zip(sources) {
                std::fs::write(path, source)?;
                println!("wrote {}", path.display());
            }
            Ok(())
        });
        if let Err(error) = written {
            eprintln!("error: {}: {error:#}", module.name);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
