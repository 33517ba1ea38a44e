//! The shape the code keeps, held by reading it: HTTP stays at the
//! entrypoints, delivery states are typed, and what both services share is
//! written once.

use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    found.sort();
    found
}

/// The lines of `text` that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

fn service_sources() -> Vec<(PathBuf, String)> {
    let servers = repository().join("servers/services");
    let mut found = sources(&servers.join("order-service/src"));
    found.extend(sources(&servers.join("payment-service/src")));
    found
}

/// The rules answer in their own terms; each service maps them to statuses
/// and codes in one place, its `entrypoints.rs`. (service-support is the
/// edge both services share: its authentication, idempotency and
/// operational endpoints answer HTTP by design, and it holds no rules.) A
/// module that reads order-service's answers, a client of HTTP, may name
/// `reqwest`'s statuses; the check of a signed call reads its method.
#[test]
fn http_answers_are_made_only_at_the_entrypoints() {
    let services = repository().join("servers/services");
    let entrypoints = [
        services.join("order-service/src/entrypoints.rs"),
        services.join("payment-service/src/entrypoints.rs"),
    ];
    let mut found = Vec::new();
    for (path, text) in service_sources() {
        if entrypoints.contains(&path) {
            continue;
        }
        let reads_answers = text.contains("use reqwest::StatusCode");
        for (number, line) in code_lines(&text) {
            let line = line.replace("order_client::types::ApiError", "");
            let status = line.contains("StatusCode")
                && !(reads_answers || line.contains("reqwest::StatusCode"));
            let envelope = [
                "ApiError",
                "ErrorCode",
                "HttpError",
                "HttpResponse",
                "Failure",
            ]
            .iter()
            .any(|word| line.contains(word));
            if status || envelope {
                found.push(format!("{}:{number}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "HTTP below the entrypoints:\n{}",
        found.join("\n")
    );
}

/// A delivery's state is `DeliveryState`; its text is the database's,
/// mapped in one place (`delivery/mod.rs`) and written in SQL only by the
/// delivery module's statements, and by the one column that reads a
/// payment's delivered state after its record is pruned (`store.rs`); the
/// query plans' test seeds history in SQL of its own.
/// (`pending` is also a payment's status, so it is not looked for.)
#[test]
fn delivery_states_are_typed_outside_their_one_mapping() {
    let delivery = repository().join("servers/services/payment-service/src/delivery");
    let mut found = Vec::new();
    for (path, text) in service_sources() {
        if path == delivery.join("mod.rs") {
            continue;
        }
        // Where the states may be written in SQL.
        let writes_sql =
            path.starts_with(&delivery) || path.ends_with("payment-service/src/query_plans.rs");
        for (number, line) in code_lines(&text) {
            let rust = ["\"delivered\"", "\"rejected\"", "\"dead_letter\""]
                .iter()
                .any(|word| line.contains(word));
            let pruned_state = path.ends_with("payment-service/src/store.rs")
                && line.contains("p.notified_at IS NOT NULL THEN 'delivered'");
            let sql = !writes_sql
                && !pruned_state
                && ["'delivered'", "'rejected'", "'dead_letter'"]
                    .iter()
                    .any(|word| line.contains(word));
            if rust || sql {
                found.push(format!("{}:{number}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "delivery states as text:\n{}",
        found.join("\n")
    );
}

/// The operational endpoints, and the settings both services read, are each
/// defined once, in service-support.
#[test]
fn what_both_services_share_is_defined_once() {
    let mut all = service_sources();
    all.extend(sources(&repository().join("servers/apis/order-api/src")));
    all.extend(sources(&repository().join("servers/apis/payment-api/src")));
    all.extend(sources(
        &repository().join("servers/services/service-support/src"),
    ));
    // An endpoint is defined on a line with its path and `path =`
    // (Dropshot's attribute) or `endpoint` (a registration, any case).
    let shared = [
        "\"/healthz\"",
        "\"/readyz\"",
        "\"/metrics\"",
        "\"/openapi.json\"",
        "\"/docs/{path:.*}\"",
        "env = \"LISTEN_ADDR\"",
        "env = \"PORT\"",
        "env = \"MAX_BODY_BYTES\"",
        "env = \"LOG_LEVEL\"",
        "env = \"DB_HOST\"",
        "env = \"IDEMPOTENCY_KEY_TTL_SECS\"",
        "env = \"AUTH_ISSUER\"",
    ];
    for needle in shared {
        let defines = |line: &str| {
            let line = line.replace(' ', "");
            let needle = needle.replace(' ', "");
            line.contains(&needle)
                && (needle.starts_with("env")
                    || line.to_lowercase().contains("endpoint")
                    || line.contains("path="))
        };
        let places: Vec<String> = all
            .iter()
            .flat_map(|(path, text)| {
                code_lines(text)
                    .filter(|(_, line)| defines(line))
                    .map(move |(number, _)| format!("{}:{number}", path.display()))
            })
            .collect();
        assert_eq!(places.len(), 1, "{needle} is defined at {places:?}");
    }
}
