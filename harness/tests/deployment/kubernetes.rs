//! The Kubernetes manifests, without a cluster: every overlay renders with
//! `kubectl kustomize` and passes `kubernetes-validate --strict`; and what no
//! schema can know is checked against the binaries, the Dockerfile and the
//! live services.

use crate::{dockerfile, validator, variables_read};
use clap::CommandFactory;
use harness::order_service::OrderServiceTest;
use harness::payment_service::PaymentServiceTest;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::BTreeSet;

const OVERLAYS: [&str; 2] = ["dev", "production"];

/// The variables that hold secrets: only ever set from a Secret.
const SECRETS: [&str; 4] = [
    "PAYMENT_CALLBACK_SECRET",
    "PAYMENT_CALLBACK_SECRET_PREVIOUS",
    "DATABASE_URL",
    "DB_PASSWORD",
];

/// An overlay rendered by kubectl, or `None` where kubectl is missing.
fn render(overlay: &str) -> Option<String> {
    let path = format!("deploy/kubernetes/overlays/{overlay}");
    let output = validator("kubectl", &["kustomize", &path])?;
    assert!(
        output.status.success(),
        "{overlay} does not render:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

fn documents(rendered: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(rendered)
        .map(|document| Value::deserialize(document).unwrap())
        .collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

fn named<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(documents, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The services' Deployments, as (service name, its container).
fn service_containers(documents: &[Value]) -> Vec<(String, &Value)> {
    of_kind(documents, "Deployment")
        .into_iter()
        .map(|d| {
            let name = text(&d["metadata"]["name"]).to_string();
            (name, &d["spec"]["template"]["spec"]["containers"][0])
        })
        .collect()
}

#[test]
fn every_overlay_renders_and_passes_strict_validation() {
    for overlay in OVERLAYS {
        let Some(rendered) = render(overlay) else {
            return;
        };
        let file =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{overlay}.yaml"));
        std::fs::write(&file, &rendered).unwrap();
        let Some(output) = validator(
            "kubernetes-validate",
            &[
                "--strict",
                "--quiet",
                "-k",
                "1.32.0",
                file.to_str().unwrap(),
            ],
        ) else {
            return;
        };
        assert!(
            output.status.success(),
            "{overlay}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let kinds: BTreeSet<String> = documents(&rendered)
            .iter()
            .map(|d| text(&d["kind"]).to_string())
            .collect();
        for kind in [
            "Deployment",
            "Service",
            "ServiceAccount",
            "ConfigMap",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
        ] {
            assert!(kinds.contains(kind), "{overlay} has no {kind}");
        }
    }
}

#[test]
fn every_variable_set_is_one_the_binary_reads_and_secrets_come_only_from_secrets() {
    for overlay in OVERLAYS {
        let Some(rendered) = render(overlay) else {
            return;
        };
        let documents = documents(&rendered);
        for (service, container) in service_containers(&documents) {
            let read = match service.as_str() {
                "order-service" => variables_read(order_service::Settings::command()),
                "payment-service" => variables_read(payment_service::Settings::command()),
                // The development issuer (tools/local-issuer/src/main.rs).
                "token-issuer" => [
                    "TOKEN_ISSUER_DATA_DIR",
                    "TOKEN_ISSUER_LISTEN",
                    "TOKEN_ISSUER_URL",
                    "TOKEN_ISSUER_AUDIENCE",
                ]
                .into_iter()
                .map(str::to_string)
                .collect(),
                other => panic!("unexpected Deployment {other}"),
            };
            let mut set = Vec::new();
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let name = text(&variable["name"]).to_string();
                if SECRETS.contains(&name.as_str()) {
                    assert!(
                        variable["value"].is_null()
                            && !variable["valueFrom"]["secretKeyRef"].is_null(),
                        "{overlay}: {service} sets {name} other than from a Secret"
                    );
                }
                set.push(name);
            }
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                let map = named(
                    &documents,
                    "ConfigMap",
                    text(&source["configMapRef"]["name"]),
                );
                for (key, value) in map["data"].as_mapping().unwrap() {
                    let (key, value) = (text(key), text(value));
                    assert!(
                        !(SECRETS.contains(&key)
                            || value.starts_with("whsec_")
                            || (value.contains("://") && value.contains('@'))),
                        "{overlay}: a secret in ConfigMap {}: {key}",
                        text(&map["metadata"]["name"])
                    );
                    set.push(key.to_string());
                }
            }
            for name in &set {
                assert!(
                    read.contains(name),
                    "{overlay}: {service} does not read {name}"
                );
            }
            if service == "token-issuer" {
                assert_eq!(overlay, "dev", "a development issuer outside dev");
                continue;
            }
            assert!(
                set.iter().any(|n| n == "PAYMENT_CALLBACK_SECRET"),
                "{overlay}: {service} needs the callback secret"
            );
            // Nothing is open: each service names who issues its tokens.
            for name in ["AUTH_ISSUER", "AUTH_AUDIENCE"] {
                assert!(
                    set.iter().any(|n| n == name),
                    "{overlay}: {service} sets no {name}"
                );
            }
            assert!(
                !set.iter().any(|n| n == "AUTH_DISABLED"),
                "{overlay}: {service} is open"
            );
        }
    }
}

#[test]
fn images_and_commands_are_the_dockerfile_targets() {
    let dockerfile = dockerfile();
    for overlay in OVERLAYS {
        let Some(rendered) = render(overlay) else {
            return;
        };
        for (service, container) in service_containers(&documents(&rendered)) {
            let image = text(&container["image"]);
            let repository = image.rsplit_once(':').map_or(image, |(name, _)| name);
            let target = repository.rsplit('/').next().unwrap();
            assert_eq!(target, service, "{overlay}: {service} runs image {image}");
            assert!(
                dockerfile.contains(&format!("AS {target}\n")),
                "no stage {target}"
            );
            let command: Vec<&str> = container["command"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            let entrypoint = format!("ENTRYPOINT [\"{}\"]", command.join("\", \""));
            assert!(
                dockerfile.contains(&entrypoint),
                "{overlay}: {service} runs {command:?}, which is not its image's entrypoint"
            );
            let security = &container["securityContext"];
            assert_eq!(security["readOnlyRootFilesystem"], true, "{service}");
            assert_eq!(security["allowPrivilegeEscalation"], false, "{service}");
        }
    }
}

#[tokio::test]
async fn probes_and_ports_are_what_the_services_serve() {
    let Some(rendered) = render("production") else {
        return;
    };
    let documents = documents(&rendered);
    let orders = OrderServiceTest::start().await;
    let payments = PaymentServiceTest::start(&orders.url(""), orders.secret(), |_| {}).await;
    for (service, container) in service_containers(&documents) {
        let config = named(&documents, "ConfigMap", &service);
        let port: u16 = text(&config["data"]["PORT"]).parse().unwrap();
        let http = container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "http")
            .expect("a port named http");
        assert_eq!(
            http["containerPort"].as_u64(),
            Some(u64::from(port)),
            "{service}"
        );
        let svc = named(&documents, "Service", &service);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http", "{service}");
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["port"], "http", "{service} {probe}");
            let path = text(&get["path"]);
            let url = match service.as_str() {
                "order-service" => orders.url(path),
                _ => payments.url(path),
            };
            let status = orders.http.get(&url).send().await.unwrap().status();
            assert_eq!(status, reqwest::StatusCode::OK, "{service} {probe} {path}");
        }
    }
    let payment_config = named(&documents, "ConfigMap", "payment-service");
    let order_port = text(&named(&documents, "ConfigMap", "order-service")["data"]["PORT"]);
    assert_eq!(
        text(&payment_config["data"]["ORDER_SERVICE_URL"]),
        format!("http://order-service:{order_port}"),
        "payment-service calls order-service's Service"
    );
    payments.cleanup().await;
    orders.cleanup().await;
}
