//! Values a client or a peer crafts to reach PostgreSQL or arithmetic out
//! of range: page tokens that decode to any time at all, and signatures
//! made at any timestamp. Each is a 400 or a 401 (or a page, or the
//! callback's own answer when it is in range), never a 5xx.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use harness::order_service::OrderServiceTest;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::StatusCode;
use uuid::Uuid;

/// A token in the service's own shape (`micros:uuid`, base64) around any
/// time, or any text at all.
fn page_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (any::<i64>(), any::<u128>())
            .prop_map(|(micros, id)| URL_SAFE_NO_PAD.encode(format!("{micros}:{}", Uuid::from_u128(id)))),
        1 => any::<String>().prop_map(|text| URL_SAFE_NO_PAD.encode(text)),
        1 => "[A-Za-z0-9_-]{0,40}",
    ]
}

/// Any timestamp, with the extremes and the edges of the tolerance likely.
fn timestamp() -> impl Strategy<Value = i64> {
    let now = harness::webhook::now();
    prop_oneof![
        2 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        2 => now - 400..now + 400,
    ]
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

#[test]
fn any_page_token_is_a_page_or_a_400() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let test = runtime.block_on(OrderServiceTest::start());
    runtime.block_on(crate::create_order(&test, "Lamp", 1, 100));
    let result = runner(300).run(&page_token(), |token| {
        runtime.block_on(async {
            let response = test
                .http
                .get(test.url("/orders"))
                .query(&[("page_token", &token)])
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            prop_assert!(
                status == StatusCode::OK
                    || (status == StatusCode::BAD_REQUEST
                        && body["data"]["error_code"] == "INVALID_PAGE_TOKEN"),
                "{status} for {token:?}: {body}"
            );
            Ok(())
        })
    });
    runtime.block_on(test.cleanup());
    result.unwrap();
}

#[test]
fn a_signature_at_any_timestamp_is_accepted_only_within_five_minutes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let test = runtime.block_on(OrderServiceTest::start());
    let body = serde_json::json!({
        "order_id": Uuid::new_v4(), "payment_id": Uuid::new_v4(),
        "payment_status": "success", "amount": 100
    })
    .to_string();
    let result = runner(200).run(&timestamp(), |timestamp| {
        runtime.block_on(async {
            // Each case a new message: a signed request is accepted once.
            let id = format!("msg_{}", Uuid::new_v4().simple());
            let signature = harness::webhook::signature(
                test.secret(),
                &id,
                timestamp,
                harness::webhook::CALLBACK,
                body.as_bytes(),
            );
            let response = test
                .http
                .post(test.url("/internal/payment-callback"))
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap();
            // Signed a moment ago, re-read now: a second of slack each way.
            let age = harness::webhook::now().checked_sub(timestamp);
            let expected = match age.map(i64::unsigned_abs) {
                Some(age) if age <= 299 => StatusCode::NOT_FOUND,
                Some(age) if age <= 301 => status,
                _ => StatusCode::UNAUTHORIZED,
            };
            prop_assert_eq!(status, expected, "timestamp {}: {}", timestamp, answer);
            Ok(())
        })
    });
    runtime.block_on(test.cleanup());
    result.unwrap();
}
