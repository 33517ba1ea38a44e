//! docker-compose.yml, the Dockerfile and the Kubernetes manifests
//! (`kubernetes.rs`), checked without a Docker engine or a cluster: the
//! compose file against the Compose specification's schema, the Dockerfile
//! with hadolint, and both against what the binaries actually read, serve
//! and are called; and the front proxy's configuration with `nginx -t`.
//! Then the compose file run for real on a Docker Engine (`compose.rs`).

mod compose;
mod kubernetes;

use clap::CommandFactory;
use harness::order_service::OrderServiceTest;
use harness::prerequisites;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compose() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repository().join("docker-compose.yml")).unwrap())
        .unwrap()
}

fn dockerfile() -> String {
    std::fs::read_to_string(repository().join("Dockerfile")).unwrap()
}

/// Runs a validator installed by `.ci/run`; skips, saying so, where it is
/// missing outside CI.
fn validator(program: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(program)
        .args(args)
        .current_dir(repository())
        .output()
    {
        Ok(output) => Some(output),
        Err(_) => {
            prerequisites::skip_without(program, ".ci/run shows how to install it");
            None
        }
    }
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let Some(output) = validator(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
    ) else {
        return;
    };
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let Some(output) = validator("hadolint", &["Dockerfile"]) else {
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// The environment variables a service's binary reads, from its `--help`.
fn variables_read(command: clap::Command) -> BTreeSet<String> {
    let mut command = command;
    command.build();
    command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

fn service_environment(service: &str) -> Vec<(String, String)> {
    let environment = compose()["services"][service]["environment"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    environment
        .into_iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().map(str::to_string).unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn every_variable_compose_sets_is_one_the_service_reads() {
    for (service, command) in [
        ("order-service", order_service::Settings::command()),
        ("payment-service", payment_service::Settings::command()),
    ] {
        let read = variables_read(command);
        for (name, _) in service_environment(service) {
            assert!(
                read.contains(&name),
                "{service} does not read {name}; it reads {read:?}"
            );
        }
        let set: Vec<String> = service_environment(service)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert!(
            set.contains(&"PAYMENT_CALLBACK_SECRET".to_string()),
            "{service} needs the callback secret"
        );
        // Nothing is open by default: each service names who issues tokens.
        for name in ["AUTH_ISSUER", "AUTH_AUDIENCE"] {
            assert!(set.contains(&name.to_string()), "{service} sets no {name}");
        }
        assert!(
            !set.contains(&"AUTH_DISABLED".to_string()),
            "{service} is open by default"
        );
    }
}

#[test]
fn every_variable_compose_interpolates_is_documented_in_env_example() {
    let text = std::fs::read_to_string(repository().join("docker-compose.yml")).unwrap();
    let example = std::fs::read_to_string(repository().join(".env.example")).unwrap();
    let documented: BTreeSet<&str> = example
        .lines()
        .filter_map(|l| l.split_once('='))
        // An optional setting is documented commented out.
        .map(|(k, _)| k.trim().trim_start_matches('#').trim())
        .collect();
    let mut checked = 0;
    for (at, _) in text.match_indices("${") {
        // `$${X}` is an escaped dollar: the container's shell expands it, not compose.
        if text[..at].ends_with('$') {
            continue;
        }
        let name: String = text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            documented.contains(name.as_str()),
            "{name} is not in .env.example"
        );
        checked += 1;
    }
    assert!(checked >= 5, "compose interpolates its settings");
}

#[tokio::test]
async fn only_the_service_ports_are_published_and_healthchecks_hit_served_paths() {
    let services = compose()["services"].as_mapping().cloned().unwrap();
    let test = OrderServiceTest::start().await;
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let ports = service["ports"].as_sequence().cloned().unwrap_or_default();
        match name {
            "order-service" | "payment-service" => {
                let port = service_environment(name)
                    .into_iter()
                    .find(|(k, _)| k == "PORT")
                    .unwrap()
                    .1;
                assert_eq!(
                    ports,
                    vec![Value::from(format!("{port}:{port}"))],
                    "{name} publishes its PORT"
                );
                let check: Vec<&str> = service["healthcheck"]["test"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                let url = check.last().unwrap();
                assert_eq!(*url, format!("http://127.0.0.1:{port}/readyz"), "{name}");
                assert!(
                    dockerfile().contains(&format!("\"http://127.0.0.1:{port}/readyz\"")),
                    "image healthcheck for {name}"
                );
            }
            "token-issuer" => {
                assert!(ports.is_empty(), "the token issuer must not be published");
                let discovery = "http://127.0.0.1:8079/.well-known/openid-configuration";
                let check = format!("{:?}", service["healthcheck"]["test"]);
                assert!(check.contains(discovery), "{check}");
                assert!(
                    dockerfile().contains(&format!("\"{discovery}\"")),
                    "image healthcheck for {name}"
                );
                // The path the healthcheck calls is one the issuer serves.
                let served = harness::issuer::issuer().url().to_string()
                    + "/.well-known/openid-configuration";
                let answer = reqwest::get(served).await.unwrap();
                assert_eq!(answer.status(), reqwest::StatusCode::OK);
            }
            database => {
                assert!(ports.is_empty(), "{database} must not be published");
                assert!(
                    service["volumes"]
                        .as_sequence()
                        .is_some_and(|v| !v.is_empty()),
                    "{database} keeps its data in a volume"
                );
                let check = format!("{:?}", service["healthcheck"]["test"]);
                assert!(check.contains("pg_isready"), "{database} healthcheck");
            }
        }
    }
    // The path the healthchecks call is one the service serves.
    let ready = test.http.get(test.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    test.cleanup().await;
}

#[test]
fn the_dockerfile_builds_and_runs_the_binaries_compose_names() {
    let dockerfile = dockerfile();
    let build_line = dockerfile
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build step");
    for (name, service) in compose()["services"].as_mapping().unwrap() {
        let Some(target) = service["build"]["target"].as_str() else {
            continue;
        };
        let name = name.as_str().unwrap();
        assert_eq!(target, name, "the image target is named after the service");
        assert!(
            dockerfile.contains(&format!("AS {target}\n")),
            "no stage {target}"
        );
        // (package, its binary's source) of each image's binary.
        let (package, source) = match target {
            "token-issuer" => ("local-issuer", "tools/local-issuer/src/main.rs".to_string()),
            service => (service, format!("servers/services/{service}/src/main.rs")),
        };
        assert!(
            build_line.contains(&format!("-p {package}")),
            "the build step does not build {target}"
        );
        assert!(
            dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{target}\"]")),
            "{target} is not run"
        );
        assert!(
            repository().join(&source).exists(),
            "{target} is not a binary here"
        );
        assert_eq!(
            service["restart"].as_str(),
            Some("on-failure"),
            "{name} restarts on failure"
        );
        if target == "token-issuer" {
            continue;
        }
        let database = format!("{}-db", name.trim_end_matches("-service"));
        for dependency in [database.as_str(), "token-issuer"] {
            assert_eq!(
                service["depends_on"][dependency]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits for {dependency}"
            );
        }
    }
    assert!(
        dockerfile.contains("USER 10001"),
        "services run as a non-root user"
    );
}

/// The front proxy's configuration in a directory of its own, its
/// upstreams at `upstream` (nginx resolves them while starting; the compose
/// service names resolve only inside compose's network) and, if given, its
/// two listeners on `ports`. Returns the directory.
fn front_proxy(name: &str, upstream: &str, ports: Option<(u16, u16)>) -> std::path::PathBuf {
    let source = repository().join("deploy/front-proxy");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = std::fs::read_to_string(source.join("nginx.conf"))
        .unwrap()
        .replace("server order-service:8080", &format!("server {upstream}"))
        .replace("server payment-service:8081", &format!("server {upstream}"));
    assert!(
        !config.contains("-service:"),
        "an upstream was left unresolvable"
    );
    if let Some((orders, payments)) = ports {
        config = config
            .replace("listen 8080;", &format!("listen 127.0.0.1:{orders};"))
            .replace("listen 8081;", &format!("listen 127.0.0.1:{payments};"));
    }
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    for file in ["error_envelopes", "not_public"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    dir
}

#[test]
fn the_front_proxy_configuration_passes_nginx_t() {
    let dir = front_proxy("front-proxy", "127.0.0.1:8080", None);
    let prefix = dir.to_str().unwrap();
    let config = format!("{prefix}/nginx.conf");
    let pid = format!("pid {prefix}/nginx.pid;");
    let Some(output) = validator(
        "nginx",
        &[
            "-t", "-e", "stderr", "-p", prefix, "-c", &config, "-g", &pid,
        ],
    ) else {
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_front_proxy_keeps_metrics_and_internal_calls_from_the_public_side() {
    if !prerequisites::runs("nginx", &["-v"]) {
        prerequisites::skip_without("nginx", ".ci/run shows how to install it");
        return;
    }
    // A stand-in for both services that answers every request it gets.
    let services = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("from the service"))
        .mount(&services)
        .await;
    let (orders, payments) = (free_port(), free_port());
    let dir = front_proxy(
        "front-proxy-run",
        &services.address().to_string(),
        Some((orders, payments)),
    );
    let prefix = dir.to_str().unwrap().to_string();
    let directives = format!("pid {prefix}/nginx.pid; daemon off; error_log stderr;");
    /// Ends nginx however the test ends: SIGTERM, so that its master stops
    /// its workers (SIGKILL would leave them running).
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let master = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(master, nix::sys::signal::Signal::SIGTERM);
            let _ = self.0.wait();
        }
    }
    let _nginx = Stop(
        Command::new("nginx")
            .args([
                "-p",
                &prefix,
                "-c",
                &format!("{prefix}/nginx.conf"),
                "-g",
                &directives,
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts"),
    );
    let http = reqwest::Client::new();
    let get = |port: u16, path: &'static str| {
        let http = http.clone();
        async move {
            let response = http
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((response.status().as_u16(), response.text().await.unwrap()))
        }
    };
    harness::wait_until(
        "nginx to listen",
        std::time::Duration::from_secs(10),
        async || get(payments, "/payments/x").await.map(drop),
    )
    .await;

    for (port, path) in [
        (orders, "/metrics"),
        (payments, "/metrics"),
        (orders, "/metrics/"),
        (payments, "/metrics//"),
        (payments, "//metrics?x=1"),
        (orders, "/internal/payment-callback"),
        (orders, "/internal/orders/x/payment"),
    ] {
        let (status, body) = get(port, path).await.unwrap();
        assert_eq!(status, 404, "{port}{path}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["data"]["error_code"], "NOT_FOUND", "{path}");
    }
    for (port, path) in [
        (orders, "/orders"),
        (payments, "/payments/x"),
        (orders, "/readyz"),
    ] {
        assert_eq!(
            get(port, path).await.unwrap(),
            (200, "from the service".to_string()),
            "{path} is passed on"
        );
    }
}

#[test]
fn the_front_proxy_admits_the_bodies_the_services_admit() {
    let config =
        std::fs::read_to_string(repository().join("deploy/front-proxy/nginx.conf")).unwrap();
    let limit = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("client_max_body_size "))
        .and_then(|value| value.trim_end_matches(';').strip_suffix('k'))
        .and_then(|kib| kib.parse::<usize>().ok())
        .expect("client_max_body_size in KiB");
    let settings = order_service::Settings::command().get_matches_from([
        "order-service",
        "--callback-secret",
        "x",
    ]);
    let services: usize = *settings.get_one("max_body_bytes").unwrap();
    assert_eq!(limit * 1024, services);
}
