//! Property: whatever a client sends (bodies with control characters, NUL,
//! lone surrogates, huge or malformed numbers, deep nesting, duplicate keys,
//! data after the JSON value, any value of any type in any field; paths and
//! queries of arbitrary bytes) every operation answers 2xx or a 4xx in the
//! error envelope, never a 5xx, and a request that is refused changes
//! nothing in either database. The one exception is Dropshot's: a path
//! that is not UTF-8 once percent-decoded, or holds a dot-segment, is
//! refused by its router (400)
//! before any handler runs, with its own body (see the README's framework
//! limits).

use crate::System;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

/// A JSON string literal, as sent: valid ones with hostile content, and
/// invalid ones (raw control characters, lone surrogates, bad escapes).
fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>().prop_map(|s| json_string(&s)),
        2 => "[\\x00-\\x1f\\x7f ]{0,6}".prop_map(|s| json_string(&s)),
        2 => "[a-z]{0,3}\\x00[a-z]{0,3}".prop_map(|s| json_string(&s)),
        1 => "[a-z]{95,110}".prop_map(|s| json_string(&s)),
        1 => "[\\x01-\\x1f]{1,3}".prop_map(|s| format!("\"a{s}b\"")),
        2 => prop::sample::select(vec![
            r#""a\u0000b""#,
            r#""\u0000""#,
            r#""\ud800""#,
            r#""x\udfff""#,
            r#""\ud83d\ude00""#,
            r#""\x41""#,
            r#""\u12""#,
            r#""unterminated"#,
            r#""""#,
            r#""   ""#,
            r#""\t\n""#,
        ])
        .prop_map(str::to_string),
    ]
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// A JSON number as sent, valid or not.
fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (1i64..5).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0",
            "-0",
            "1.0",
            "1e3",
            "1e400",
            "-1e400",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "123456789012345678901234567890",
            "01",
            "+1",
            "NaN",
            "Infinity",
            "0x10",
            ".5",
        ])
        .prop_map(str::to_string),
    ]
}

/// Any JSON-ish value: scalars, arrays, and objects whose keys may repeat.
fn value_literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_literal(),
        number_literal(),
        prop::sample::select(vec!["null", "true", "false", "tru", "nul"]).prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((field_name(), inner), 0..4).prop_map(|fields| object(&fields)),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "item_name",
            "quantity",
            "price",
            "order_id",
            "amount",
            "provider",
            "id",
            "status",
        ])
        .prop_map(json_string),
        string_literal(),
    ]
}

fn object(fields: &[(String, String)]) -> String {
    let members: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", members.join(","))
}

/// How a body departs from a valid one at one field.
#[derive(Debug, Clone)]
enum Spoil {
    Value(String),
    Missing,
    Twice(String),
    Extra(String, String),
}

fn spoil() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        4 => prop_oneof![string_literal(), number_literal()].prop_map(Spoil::Value),
        2 => value_literal().prop_map(Spoil::Value),
        1 => Just(Spoil::Missing),
        1 => value_literal().prop_map(Spoil::Twice),
        1 => (field_name(), value_literal()).prop_map(|(k, v)| Spoil::Extra(k, v)),
    ]
}

/// A body with `fields` at valid values but for one, spoilt (or none); or
/// any value at all; or deep nesting. Then, sometimes, trailing data.
fn body(fields: Vec<(&'static str, BoxedStrategy<String>)>) -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = fields.iter().map(|(name, _)| *name).collect();
    let valid: Vec<BoxedStrategy<String>> = fields.into_iter().map(|(_, v)| v).collect();
    let count = names.len();
    let structured = (valid, 0..=count, spoil()).prop_map(move |(values, at, spoil)| {
        let mut members: Vec<(String, String)> = Vec::new();
        for (index, (name, value)) in names.iter().zip(values).enumerate() {
            let name = json_string(name);
            match (&spoil, index == at) {
                (Spoil::Value(other), true) => members.push((name, other.clone())),
                (Spoil::Missing, true) => {}
                (Spoil::Twice(other), true) => {
                    members.push((name.clone(), value));
                    members.push((name, other.clone()));
                }
                _ => members.push((name, value)),
            }
        }
        if let (Spoil::Extra(key, value), true) = (&spoil, at == count) {
            members.push((key.clone(), value.clone()));
        }
        object(&members)
    });
    let nested = (1usize..3000, prop::bool::ANY).prop_map(|(depth, arrays)| {
        if arrays {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }
    });
    let trailing = prop_oneof![
        6 => Just(""),
        1 => prop::sample::select(vec!["}", " xyz", "{}", "\u{0}", "\n", " ", "1"]),
    ];
    (
        prop_oneof![8 => structured, 1 => value_literal(), 1 => nested],
        trailing,
    )
        .prop_map(|(body, tail)| body + tail)
}

fn order_body() -> impl Strategy<Value = String> {
    body(vec![
        (
            "item_name",
            "[A-Za-z ]{0,12}[A-Za-z]"
                .prop_map(|s| json_string(&s))
                .boxed(),
        ),
        ("quantity", (1u32..50).prop_map(|n| n.to_string()).boxed()),
        ("price", (1u32..10_000).prop_map(|n| n.to_string()).boxed()),
    ])
}

/// A payment body whose valid values pay `order` (of total 100).
fn payment_body(order: Uuid) -> impl Strategy<Value = String> {
    body(vec![
        ("order_id", Just(json_string(&order.to_string())).boxed()),
        ("amount", Just("100".to_string()).boxed()),
        (
            "provider",
            "[a-z]{1,10}".prop_map(|s| json_string(&s)).boxed(),
        ),
    ])
}

/// A path segment or query value of arbitrary bytes, percent-encoded.
fn encoded_bytes() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..40).prop_map(|bytes| {
            bytes
                .iter()
                .map(|b| format!("%{b:02X}"))
                .collect::<String>()
        }),
        "[a-zA-Z0-9._~-]{1,40}",
        Just(Uuid::new_v4().to_string().to_uppercase()),
        Just(format!("{{{}}}", Uuid::new_v4())),
        Just(format!("urn:uuid:{}", Uuid::new_v4())),
        Just("%00".to_string()),
        Just("%FF%FE".to_string()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["limit", "status", "page_token", "other", "limit[]"]);
    let value = prop_oneof![number_literal(), encoded_bytes(), Just("paid".to_string())];
    prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[derive(Debug, Clone)]
enum Request {
    CreateOrder(String),
    ReplaceOrder(String),
    ListOrders(String),
    OrderAt(Method, String),
    CreatePayment(String),
    PaymentAt(Method, String),
}

impl Request {
    /// Whether the path has a segment that is no text: not UTF-8 once
    /// decoded, or a dot-segment.
    fn path_is_not_text(&self) -> bool {
        match self {
            Request::OrderAt(_, path) | Request::PaymentAt(_, path) => {
                !path.split('/').all(conformance::is_path_text)
            }
            _ => false,
        }
    }
}

fn request(order: Uuid) -> impl Strategy<Value = Request> {
    prop_oneof![
        order_body().prop_map(Request::CreateOrder),
        order_body().prop_map(Request::ReplaceOrder),
        query().prop_map(Request::ListOrders),
        (
            prop::sample::select(vec![Method::GET, Method::DELETE]),
            encoded_bytes()
        )
            .prop_map(|(m, p)| Request::OrderAt(m, p)),
        payment_body(order).prop_map(Request::CreatePayment),
        (
            prop::sample::select(vec!["GET", "PUT success", "PUT failed"]),
            encoded_bytes()
        )
            .prop_map(|(m, p)| {
                let method = if m == "GET" { Method::GET } else { Method::PUT };
                let path = match m {
                    "GET" => p,
                    _ => format!("{}/{p}", m.trim_start_matches("PUT ")),
                };
                Request::PaymentAt(method, path)
            }),
    ]
}

/// Both databases' rows, as text: equal before and after means unchanged.
async fn snapshot(system: &System) -> String {
    const ROWS: &str = "SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') FROM ";
    let orders = system.orders.database().await;
    let payments = system.payments.database().await;
    let mut text = String::new();
    for table in ["orders", "idempotency_keys"] {
        text += &orders
            .query_one(&format!("{ROWS}{table} t"), &[])
            .await
            .unwrap()
            .get::<_, String>(0);
    }
    for table in ["payments", "order_notifications", "idempotency_keys"] {
        text += &payments
            .query_one(&format!("{ROWS}{table} t"), &[])
            .await
            .unwrap()
            .get::<_, String>(0);
    }
    text
}

async fn send(system: &System, order: Uuid, request: &Request) -> (reqwest::StatusCode, String) {
    let http = &system.orders.http;
    let json = |builder: reqwest::RequestBuilder, body: &str| {
        builder
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let builder = match request {
        Request::CreateOrder(body) => json(http.post(system.orders.url("/orders")), body),
        Request::ReplaceOrder(body) => json(
            http.put(system.orders.url(&format!("/orders/{order}"))),
            body,
        ),
        Request::ListOrders(query) => http.get(system.orders.url(&format!("/orders?{query}"))),
        Request::OrderAt(method, id) => {
            http.request(method.clone(), system.orders.url(&format!("/orders/{id}")))
        }
        Request::CreatePayment(body) => json(http.post(system.payments.url("/payments")), body),
        Request::PaymentAt(method, path) => http.request(
            method.clone(),
            system.payments.url(&format!("/payments/{path}")),
        ),
    };
    let response = builder.send().await.expect("the service answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

#[test]
fn no_client_input_gets_a_5xx_and_a_refused_one_changes_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let system = runtime.block_on(System::start());
    let order = runtime.block_on(system.order(1, 100)).id;
    // Seeded, so every run sends the same requests and a failure repeats.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 1000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&request(order), |request| {
        runtime.block_on(async {
            let before = snapshot(&system).await;
            let (status, text) = send(&system, order, &request).await;
            *statuses.lock().unwrap().entry(status.as_u16()).or_default() += 1;
            prop_assert!(
                !status.is_server_error(),
                "{status} for {request:?}: {text}"
            );
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{status}, not JSON ({e}): {text}")))?;
            if status.is_success() {
                return Ok(());
            }
            if body["message"] == "invalid path encoding" {
                prop_assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
                prop_assert!(request.path_is_not_text(), "{:?}: {}", request, text);
            } else {
                prop_assert_eq!(&body["code"], status.as_u16(), "{:?}: {}", request, text);
                prop_assert!(
                    body["data"]["error_code"]
                        .as_str()
                        .is_some_and(|c| !c.is_empty()),
                    "no error_code for {:?}: {}",
                    request,
                    text
                );
            }
            prop_assert_eq!(
                snapshot(&system).await,
                before,
                "{:?} was refused but changed data",
                request
            );
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    eprintln!("answers by status: {:?}", statuses.lock().unwrap());
    runtime.block_on(system.cleanup());
}
