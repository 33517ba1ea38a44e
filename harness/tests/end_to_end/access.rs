//! Who may do what: every public operation against every way a caller can
//! be wrong, through the conformance proxies (so each refusal is checked
//! against the contract), and nothing changes in either database when a
//! caller is refused.

use crate::System;
use base64::Engine;
use harness::issuer::{self, AUDIENCE};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const ALICE: &str = "alice";
const MALLORY: &str = "mallory";
const CUSTOMER: &str = "orders:read orders:write payments:read payments:write";

/// The claims of a good token for `subject` with `scopes`, to break one at a time.
fn claims(subject: &str, scopes: &str) -> Value {
    let now = local_issuer::unix_now();
    json!({
        "iss": issuer::issuer().url(), "aud": AUDIENCE, "sub": subject, "scope": scopes,
        "iat": now, "nbf": now, "exp": now + 3600,
    })
}

fn signed(claims: &Value) -> String {
    issuer::issuer()
        .signing()
        .sign(Header::new(Algorithm::EdDSA), claims)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Every way a token can be wrong, each with the status it gets. The
/// scope case is per operation, below.
fn bad_tokens() -> Vec<(&'static str, Option<String>, StatusCode, &'static str)> {
    let good = claims(ALICE, CUSTOMER);
    let mut expired = good.clone();
    expired["exp"] = json!(local_issuer::unix_now() - 120);
    let mut early = good.clone();
    early["nbf"] = json!(local_issuer::unix_now() + 300);
    let mut other_issuer = good.clone();
    other_issuer["iss"] = json!("http://127.0.0.1:1/elsewhere");
    let mut control_in_sub = good.clone();
    control_in_sub["sub"] = json!("alice\u{0}");
    let mut other_audience = good.clone();
    other_audience["aud"] = json!("another-api");
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(good.to_string().as_bytes())
    );
    // The issuer's public key, as an HMAC secret (RFC 8725 §2.1).
    let public = issuer::issuer().signing().jwk();
    let public_bytes = match &public.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x.clone(),
        _ => unreachable!("an Ed25519 key"),
    };
    let mut hmac_header = Header::new(Algorithm::HS256);
    hmac_header.kid = Some(issuer::issuer().signing().kid().to_string());
    let hmac = jsonwebtoken::encode(
        &hmac_header,
        &good,
        &EncodingKey::from_secret(public_bytes.as_bytes()).unwrap(),
    )
    .unwrap();
    let stranger = local_issuer::SigningIdentity::generate().unwrap();
    let unknown_kid = stranger.sign(Header::new(Algorithm::EdDSA), &good);
    let genuine = signed(&good);
    let (body, signature) = genuine.rsplit_once('.').unwrap();
    let mut forged = signature.as_bytes().to_vec();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let bad_signature = format!("{body}.{}", String::from_utf8(forged).unwrap());
    vec![
        ("no token", None, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        (
            "malformed",
            Some("not-a-jwt".into()),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "expired",
            Some(signed(&expired)),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "not yet valid",
            Some(signed(&early)),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "wrong issuer",
            Some(signed(&other_issuer)),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "wrong audience",
            Some(signed(&other_audience)),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "a control character in sub",
            Some(signed(&control_in_sub)),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "alg none",
            Some(unsigned),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "HMAC with the public key",
            Some(hmac),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "unknown kid",
            Some(unknown_kid),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
        (
            "bad signature",
            Some(bad_signature),
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        ),
    ]
}

/// One public operation on Alice's resources.
struct Operation {
    name: &'static str,
    method: Method,
    url: String,
    body: Option<Value>,
    /// The scopes that let a token call it, the one a challenge names first.
    allowed: &'static [&'static str],
    /// What another customer gets: a status and error code, or a 200.
    another_customer: (StatusCode, Option<&'static str>),
}

async fn call(operation: &Operation, token: Option<&str>) -> (StatusCode, Value, Option<String>) {
    let mut request = reqwest::Client::new().request(operation.method.clone(), &operation.url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &operation.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        challenge,
    )
}

/// Both databases' rows, to compare before and after.
async fn snapshot(system: &System) -> (String, String) {
    let orders = system.orders.database().await;
    let payments = system.payments.database().await;
    let rows = |sql: &'static str| sql;
    let order_rows: String = orders
        .query_one(
            rows("SELECT coalesce(string_agg(o::text, '|' ORDER BY id), '') FROM orders o"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let payment_rows: String = payments
        .query_one(
            rows("SELECT coalesce(string_agg(p::text, '|' ORDER BY id), '') FROM payments p"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (order_rows, payment_rows)
}

async fn as_alice(system: &System, method: Method, url: String, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(issuer::token(ALICE, CUSTOMER))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let _ = system;
    response.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test]
async fn every_operation_refuses_every_wrong_caller_and_changes_nothing() {
    let system = System::start().await;
    let order_body = json!({"item_name": "Lamp", "quantity": 2, "price": 700});
    let order = as_alice(
        &system,
        Method::POST,
        system.orders.url("/orders"),
        order_body.clone(),
    )
    .await;
    let paid_order = as_alice(
        &system,
        Method::POST,
        system.orders.url("/orders"),
        order_body.clone(),
    )
    .await;
    let payment = as_alice(
        &system,
        Method::POST,
        system.payments.url("/payments"),
        json!({"order_id": paid_order["id"], "amount": 1400, "provider": "stripe"}),
    )
    .await;
    let (order_id, payment_id) = (
        order["id"].as_str().unwrap(),
        payment["id"].as_str().unwrap(),
    );
    let not_found = |code| (StatusCode::NOT_FOUND, Some(code));
    let operations = [
        Operation {
            name: "create_order",
            method: Method::POST,
            url: system.orders.url("/orders"),
            body: Some(order_body.clone()),
            allowed: &["orders:write"],
            another_customer: (StatusCode::OK, None),
        },
        Operation {
            name: "list_orders",
            method: Method::GET,
            url: system.orders.url("/orders"),
            body: None,
            allowed: &["orders:read", "admin"],
            another_customer: (StatusCode::OK, None),
        },
        Operation {
            name: "get_order",
            method: Method::GET,
            url: system.orders.url(&format!("/orders/{order_id}")),
            body: None,
            allowed: &["orders:read", "admin"],
            another_customer: not_found("ORDER_NOT_FOUND"),
        },
        Operation {
            name: "update_order",
            method: Method::PUT,
            url: system.orders.url(&format!("/orders/{order_id}")),
            body: Some(json!({"item_name": "Lamp", "quantity": 2, "price": 700})),
            allowed: &["orders:write"],
            another_customer: not_found("ORDER_NOT_FOUND"),
        },
        Operation {
            name: "delete_order",
            method: Method::DELETE,
            url: system.orders.url(&format!("/orders/{order_id}")),
            body: None,
            allowed: &["orders:write"],
            another_customer: not_found("ORDER_NOT_FOUND"),
        },
        Operation {
            name: "create_payment",
            method: Method::POST,
            url: system.payments.url("/payments"),
            body: Some(json!({"order_id": order_id, "amount": 1400, "provider": "stripe"})),
            allowed: &["payments:write"],
            another_customer: not_found("ORDER_NOT_FOUND"),
        },
        Operation {
            name: "get_payment",
            method: Method::GET,
            url: system.payments.url(&format!("/payments/{payment_id}")),
            body: None,
            allowed: &["payments:read", "payments:settle", "admin"],
            another_customer: not_found("PAYMENT_NOT_FOUND"),
        },
        Operation {
            name: "mark_payment_success",
            method: Method::PUT,
            url: system
                .payments
                .url(&format!("/payments/success/{payment_id}")),
            body: None,
            allowed: &["payments:settle"],
            another_customer: (StatusCode::FORBIDDEN, Some("INSUFFICIENT_SCOPE")),
        },
        Operation {
            name: "mark_payment_failed",
            method: Method::PUT,
            url: system
                .payments
                .url(&format!("/payments/failed/{payment_id}")),
            body: None,
            allowed: &["payments:settle"],
            another_customer: (StatusCode::FORBIDDEN, Some("INSUFFICIENT_SCOPE")),
        },
    ];
    let before = snapshot(&system).await;
    for operation in &operations {
        for (case, token, status, code) in bad_tokens() {
            let (got, body, challenge) = call(operation, token.as_deref()).await;
            assert_eq!(got, status, "{} with {case}: {body}", operation.name);
            assert_eq!(
                body["data"]["error_code"], code,
                "{} with {case}",
                operation.name
            );
            let challenge =
                challenge.unwrap_or_else(|| panic!("{} with {case}: no challenge", operation.name));
            assert!(challenge.starts_with("Bearer realm="), "{challenge}");
            assert_eq!(
                challenge.contains("error=\"invalid_token\""),
                token.is_some(),
                "{} with {case}: {challenge}",
                operation.name
            );
        }
        // Every scope but the ones that allow the operation.
        let others: Vec<&str> = issuer::ALL_SCOPES
            .split(' ')
            .filter(|s| !operation.allowed.contains(s))
            .collect();
        let (got, body, challenge) =
            call(operation, Some(&issuer::token(ALICE, &others.join(" ")))).await;
        assert_eq!(
            got,
            StatusCode::FORBIDDEN,
            "{} without scope: {body}",
            operation.name
        );
        assert_eq!(body["data"]["error_code"], "INSUFFICIENT_SCOPE");
        let challenge = challenge.expect("a challenge");
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains(&format!("scope=\"{}\"", operation.allowed[0])),
            "{} without scope: {challenge}",
            operation.name
        );
        if operation.another_customer.0 != StatusCode::OK {
            let (got, body, _) = call(operation, Some(&issuer::token(MALLORY, CUSTOMER))).await;
            assert_eq!(
                got, operation.another_customer.0,
                "{} as another customer: {body}",
                operation.name
            );
            assert_eq!(
                body["data"]["error_code"],
                operation.another_customer.1.unwrap()
            );
        }
    }
    let (listed, body, _) = call(&operations[1], Some(&issuer::token(MALLORY, CUSTOMER))).await;
    assert_eq!(listed, StatusCode::OK);
    assert_eq!(
        body["data"],
        json!([]),
        "another customer lists none of Alice's orders"
    );
    assert_eq!(
        snapshot(&system).await,
        before,
        "refusals changed a database"
    );

    // The right callers: Alice reads, changes and pays her order; only
    // the settlement connector settles; admin reads everything.
    let alice = issuer::token(ALICE, CUSTOMER);
    for operation in [
        &operations[2],
        &operations[3],
        &operations[6],
        &operations[5],
    ] {
        let (got, body, _) = call(operation, Some(&alice)).await;
        assert_eq!(got, StatusCode::OK, "{} as Alice: {body}", operation.name);
    }
    let admin = issuer::token("back-office", "admin");
    let (got, body, _) = call(&operations[1], Some(&admin)).await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        2,
        "admin lists Alice's orders: {body}"
    );
    let connector = issuer::token("settlement-connector", "payments:settle");
    let (got, body, _) = call(&operations[7], Some(&connector)).await;
    assert_eq!(got, StatusCode::OK, "the connector settles: {body}");
    system
        .wait_for_order(
            paid_order["id"].as_str().unwrap().parse().unwrap(),
            order_client::types::OrderStatus::Paid,
            Duration::from_secs(10),
        )
        .await;
    system.cleanup().await;
}

/// The same key from two callers is two keys: Mallory can neither replay
/// nor block Alice's create by guessing her Idempotency-Key.
#[tokio::test]
async fn idempotency_keys_are_each_callers_own() {
    let system = System::start().await;
    let create = |subject: &'static str, price: u64| {
        let url = system.orders.url("/orders");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(issuer::token(subject, CUSTOMER))
                .header("idempotency-key", "checkout-1")
                .json(&json!({"item_name": "Lamp", "quantity": 1, "price": price}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()["data"].clone()
        }
    };
    let alices = create(ALICE, 700).await;
    let mallorys = create(MALLORY, 900).await;
    assert_ne!(
        alices["id"], mallorys["id"],
        "Mallory got an order of his own"
    );
    assert_eq!(mallorys["price"], 900);
    assert_eq!(
        create(ALICE, 700).await["id"],
        alices["id"],
        "Alice's retry gets hers"
    );
    system.cleanup().await;
}
