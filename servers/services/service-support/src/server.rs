//! How both services run Dropshot: their common settings, the server's
//! configuration, and the start with the operational endpoints added.

use crate::operations::{self, Operated};
use anyhow::anyhow;
use dropshot::{ApiDescription, ConfigDropshot, HandlerTaskMode, HttpServer, ServerBuilder};
use std::net::{IpAddr, SocketAddr};

/// The settings of a service's HTTP server and its log, the same for both
/// services. A service names its default port (`mut_arg("port", …)`).
#[derive(Clone, Debug, clap::Args)]
pub struct ServerSettings {
    /// Address to listen on; 0.0.0.0 to accept connections from other hosts.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1")]
    pub listen_addr: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "PORT")]
    pub port: u16,
    /// Largest request body accepted, in bytes; larger bodies are answered 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// Log level: trace, debug, info, warn, error or critical.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Serves `api`, with the operational endpoints added (see
/// [`operations::register`]), on the address `settings` name.
pub fn start<C: Operated>(
    mut api: ApiDescription<C>,
    context: C,
    settings: &ServerSettings,
    log: slog::Logger,
) -> anyhow::Result<HttpServer<C>> {
    operations::register(&mut api).map_err(|e| anyhow!("invalid API description: {e}"))?;
    ServerBuilder::new(api, context, log)
        .config(config(settings))
        .start()
        .map_err(|e| {
            anyhow!(
                "cannot listen on {}:{}: {e}",
                settings.listen_addr,
                settings.port
            )
        })
}

fn config(settings: &ServerSettings) -> ConfigDropshot {
    ConfigDropshot {
        bind_address: SocketAddr::new(settings.listen_addr, settings.port),
        // Dropshot's default is 1 KiB; the services' settings raise it.
        default_request_body_max_bytes: settings.max_body_bytes,
        // A request whose client went away still runs to completion, so a
        // state change is never cut off half-way.
        default_handler_task_mode: HandlerTaskMode::Detached,
        // Logged as hdr_x_request_id beside Dropshot's own req_id, so a flow
        // can be followed from the caller's log into ours.
        log_headers: vec!["x-request-id".to_string()],
        ..Default::default()
    }
}
