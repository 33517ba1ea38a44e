use dropshot::{ConfigDropshot, HandlerTaskMode};
use std::net::{IpAddr, SocketAddr};

/// How both services run Dropshot.
pub fn config(listen_addr: IpAddr, port: u16, max_body_bytes: usize) -> ConfigDropshot {
    ConfigDropshot {
        bind_address: SocketAddr::new(listen_addr, port),
        // Dropshot's default is 1 KiB; the services' settings raise it.
        default_request_body_max_bytes: max_body_bytes,
        // A request whose client went away still runs to completion, so a
        // state change is never cut off half-way.
        default_handler_task_mode: HandlerTaskMode::Detached,
        // Logged as hdr_x_request_id beside Dropshot's own req_id, so a flow
        // can be followed from the caller's log into ours.
        log_headers: vec!["x-request-id".to_string()],
        ..Default::default()
    }
}
