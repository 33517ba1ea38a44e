//! Both services against a real OpenID provider (the certified
//! `oidc-provider` package on Node.js, harness/oidc-provider): they find its
//! keys by discovery, accept the JWT access tokens it issues for the client
//! credentials grant, and follow a rotation of its signing key without a
//! restart: tokens signed by the new key are accepted, tokens signed by the
//! removed key are refused.

use crate::System;
use harness::prerequisites;
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_support::auth::AuthSettings;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// The resource (audience) the provider issues tokens for: an absolute URI,
/// as RFC 8707 asks.
const AUDIENCE: &str = "https://api.orders-and-payments.test";
const CUSTOMER: (&str, &str) = (
    "shopper",
    "orders:read orders:write payments:read payments:write",
);
const CONNECTOR: (&str, &str) = ("connector", "payments:settle");

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

/// The provider serving on `port` with the private JWKs in `keys` (the
/// first signs), until dropped.
struct Provider {
    child: Child,
    url: String,
}

impl Provider {
    async fn serve(port: u16, keys: &[&Value], scratch: &Path) -> Provider {
        let file = scratch.join("keys.json");
        std::fs::write(&file, serde_json::to_vec(keys).unwrap()).unwrap();
        let clients = json!({
            CUSTOMER.0: ["shopper-secret", CUSTOMER.1],
            CONNECTOR.0: ["connector-secret", CONNECTOR.1],
        });
        let child = Command::new("node")
            .arg(provider_dir().join("provider.mjs"))
            .arg("serve")
            .env("PORT", port.to_string())
            .env("KEYS", &file)
            .env("AUDIENCE", AUDIENCE)
            .env("CLIENTS", clients.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the provider");
        let url = format!("http://127.0.0.1:{port}");
        let discovery = format!("{url}/.well-known/openid-configuration");
        harness::wait_until(
            "the provider to serve discovery",
            Duration::from_secs(20),
            async || match reqwest::get(&discovery).await {
                Ok(answer) if answer.status().is_success() => Ok(()),
                Ok(answer) => Err(answer.status().to_string()),
                Err(error) => Err(error.to_string()),
            },
        )
        .await;
        Provider { child, url }
    }

    /// An access token for `client` by the client credentials grant.
    async fn token(&self, (client, scopes): (&str, &str)) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/token", self.url))
            .basic_auth(client, Some(format!("{client}-secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("scope", scopes),
                ("resource", AUDIENCE),
            ]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_string()
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("the provider stops");
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

/// A new RS256 private JWK named `kid`, made by the provider's runtime.
async fn new_key(kid: &str) -> Value {
    let output = Command::new("node")
        .arg(provider_dir().join("provider.mjs"))
        .args(["new-key", kid])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `method url` with `token`: the status and body.
async fn call(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_a_real_provider_are_accepted_and_its_key_rotation_followed_without_a_restart() {
    if !prerequisites::runs("node", &["--version"])
        || !provider_dir().join("node_modules/oidc-provider").exists()
    {
        prerequisites::skip_without("oidc-provider", "npm ci --prefix harness/oidc-provider");
        return;
    }
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("identity-provider");
    std::fs::create_dir_all(&scratch).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (first, second) = (new_key("first").await, new_key("second").await);
    let provider = Provider::serve(port, &[&first], &scratch).await;
    let auth = AuthSettings {
        keys_refresh_secs: 1,
        ..AuthSettings::issuer(&provider.url, AUDIENCE)
    };
    let (order_auth, payment_auth) = (auth.clone(), auth);
    let system = System::start_adjusted(|s| s.auth = order_auth, |s| s.auth = payment_auth).await;

    // The whole flow with the provider's tokens: the customer orders and
    // pays, the connector settles.
    let customer = provider.token(CUSTOMER).await;
    let (status, order) = call(
        reqwest::Method::POST,
        system.orders.url("/orders"),
        &customer,
        Some(json!({"item_name": "Lamp", "quantity": 1, "price": 900})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let order_id = order["data"]["id"].as_str().unwrap().to_string();
    let (status, payment) = call(
        reqwest::Method::POST,
        system.payments.url("/payments"),
        &customer,
        Some(json!({"order_id": order_id, "amount": 900, "provider": "stripe"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{payment}");
    let connector = provider.token(CONNECTOR).await;
    let settle = system.payments.url(&format!(
        "/payments/success/{}",
        payment["data"]["id"].as_str().unwrap()
    ));
    let (status, _) = call(reqwest::Method::PUT, settle.clone(), &customer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer cannot settle");
    let (status, settled) = call(reqwest::Method::PUT, settle, &connector, None).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    let mine = system.orders.url(&format!("/orders/{order_id}"));
    let as_customer = order_client::Client::new(
        &system.orders.url(""),
        order_client::ClientContext::with_token(customer.clone()),
    );
    harness::order_service::wait_for_order(
        &as_customer,
        order_id.parse().unwrap(),
        order_client::types::OrderStatus::Paid,
        Duration::from_secs(10),
    )
    .await;

    // A provider that is down stops nothing: once a refresh has failed, the
    // keys fetched before still verify.
    provider.stop().await;
    harness::wait_until(
        "a refresh of the keys to fail",
        Duration::from_secs(10),
        async || match system
            .orders
            .logs()
            .contains("cannot fetch the identity provider's keys")
        {
            true => Ok(()),
            false => Err("no failed fetch logged yet".to_string()),
        },
    )
    .await;
    let (status, read) = call(reqwest::Method::GET, mine.clone(), &customer, None).await;
    assert_eq!(status, StatusCode::OK, "with the provider down: {read}");

    // The provider rotates: the first key is removed, the second signs.
    let provider = Provider::serve(port, &[&second], &scratch).await;
    let rotated = provider.token(CUSTOMER).await;
    let (status, read) = call(reqwest::Method::GET, mine.clone(), &rotated, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a token signed by the new key: {read}"
    );
    assert_eq!(read["data"]["status"], "paid");
    // Each service drops the removed key when it next fetches the keys:
    // at once when a token names a key it has not seen, and at the latest
    // after AUTH_KEYS_REFRESH_SECS (1 s here).
    let payment_of_mine = system.payments.url(&format!(
        "/payments/{}",
        payment["data"]["id"].as_str().unwrap()
    ));
    for url in [mine, payment_of_mine] {
        harness::wait_until(
            "a token signed by the removed key to be refused",
            Duration::from_secs(10),
            async || match call(reqwest::Method::GET, url.clone(), &customer, None).await {
                (StatusCode::UNAUTHORIZED, body)
                    if body["data"]["error_code"] == "INVALID_TOKEN" =>
                {
                    Ok(())
                }
                (status, body) => Err(format!("{status} {body}")),
            },
        )
        .await;
    }
    provider.stop().await;
    system.cleanup().await;
}
