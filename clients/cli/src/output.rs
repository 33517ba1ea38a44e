//! How the commands print: answers as JSON on stdout, errors as one line on
//! stderr, and the exit code an error calls for.

use std::cell::Cell;

/// What happened to the command's request, for its exit code.
#[derive(Default)]
pub struct Outcome {
    exit_code: Cell<u8>,
    printed: Cell<bool>,
}

impl Outcome {
    /// 1 for a refusal (4xx), 3 for no usable answer; 3 if nothing was recorded.
    pub fn exit_code(&self) -> u8 {
        match self.exit_code.get() {
            0 => 3,
            code => code,
        }
    }

    /// Whether the error was printed already.
    pub fn printed(&self) -> bool {
        self.printed.get()
    }

    fn error(&self, code: u8, line: String) {
        eprintln!("{line}");
        self.exit_code.set(code);
        self.printed.set(true);
    }
}

/// The output of both services' commands.
pub struct Json<'a>(pub &'a Outcome);

fn print<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("error: the answer cannot be printed: {error}"),
    }
}

/// `error: <status> <error_code>: <message>` for an enveloped error, else
/// what went wrong.
fn report<T: serde::Serialize + std::fmt::Debug>(
    outcome: &Outcome,
    error: &progenitor_client::Error<T>,
) {
    match error {
        progenitor_client::Error::ErrorResponse(response) => {
            let status = response.status();
            let body = serde_json::to_value(response.as_ref()).unwrap_or_default();
            let code = if status.is_client_error() { 1 } else { 3 };
            outcome.error(
                code,
                format!(
                    "error: {} {}: {}",
                    status.as_u16(),
                    body["data"]["error_code"].as_str().unwrap_or("?"),
                    body["data"]["message"].as_str().unwrap_or("?"),
                ),
            );
        }
        other => outcome.error(3, format!("error: {other}")),
    }
}

/// The same output for each service's generated `CliConfig` trait.
macro_rules! json_output {
    ($($commands:ident),*) => {$(
        impl crate::generated::$commands::CliConfig for Json<'_> {
            fn success_item<T>(&self, value: &progenitor_client::ResponseValue<T>)
            where
                T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
            {
                print(value.as_ref());
            }

            fn success_no_item(&self, _: &progenitor_client::ResponseValue<()>) {}

            fn error<T>(&self, value: &progenitor_client::Error<T>)
            where
                T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
            {
                report(self.0, value);
            }

            fn list_start<T>(&self)
            where
                T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
            {
            }

            fn list_item<T>(&self, value: &T)
            where
                T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
            {
                print(value);
            }

            fn list_end_success<T>(&self)
            where
                T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
            {
            }

            fn list_end_error<T>(&self, value: &progenitor_client::Error<T>)
            where
                T: schemars::JsonSchema + serde::Serialize + std::fmt::Debug,
            {
                report(self.0, value);
            }
        }
    )*};
}

json_output!(orders_commands, payments_commands);
