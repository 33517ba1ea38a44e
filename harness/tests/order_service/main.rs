//! order-service against real PostgreSQL, through the generated client and
//! raw HTTP. Every response is checked against openapi.yaml by the proxy
//! in front of the service (see `OrderServiceTest::cleanup`).

mod callback;
mod connections;
mod crafted_values;
mod database_outage;
mod deadlines;
mod docs;
mod idempotency;
mod lifecycle;
mod operations;
mod pagination;
mod payment_under_way;
mod requests;
mod slow_clients;

use harness::order_service::OrderServiceTest;
use order_client::types::{ApiError, Order, OrderRequest};
use reqwest::StatusCode;
use serde_json::Value;
use std::num::NonZeroU64;
use uuid::Uuid;

pub fn order_request(item_name: &str, quantity: u64, price: u64) -> OrderRequest {
    OrderRequest {
        item_name: item_name.parse().expect("a valid item name"),
        quantity: NonZeroU64::new(quantity).expect("quantity >= 1"),
        price: NonZeroU64::new(price).expect("price >= 1"),
    }
}

/// An order created through the generated client, which must succeed.
pub async fn create_order(
    test: &OrderServiceTest<'_>,
    item_name: &str,
    quantity: u64,
    price: u64,
) -> Order {
    test.client
        .create_order(None, &order_request(item_name, quantity, price))
        .await
        .expect("the order is created")
        .into_inner()
        .data
}

/// Locks order `id`'s row in a transaction of `holder` until it ends, as a
/// concurrent writer would.
pub async fn lock_order(
    holder: &mut tokio_postgres::Client,
    id: Uuid,
) -> tokio_postgres::Transaction<'_> {
    harness::locks::hold_row(holder, "orders", id).await
}

/// The envelope a failed generated-client call carried.
pub fn error_body<T: std::fmt::Debug>(
    result: Result<T, order_client::Error<ApiError>>,
) -> (StatusCode, ApiError) {
    match result {
        Err(order_client::Error::ErrorResponse(response)) => {
            (response.status(), response.into_inner())
        }
        other => panic!("expected an error envelope, got {other:?}"),
    }
}

/// Sends a raw request; returns the status and the JSON body.
pub async fn send(
    test: &OrderServiceTest<'_>,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = test.http.request(method, test.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, json)
}

/// Sends a raw JSON request.
pub async fn send_json(
    test: &OrderServiceTest<'_>,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (StatusCode, Value) {
    send(
        test,
        method,
        path,
        &[("content-type", "application/json")],
        Some(body),
    )
    .await
}

/// Asserts `body` is the error envelope for `status` with `error_code`, and
/// returns its message.
pub fn assert_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    error_code: &str,
) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected.as_u16(), "{body}");
    assert_eq!(
        body["status"],
        expected.canonical_reason().unwrap().to_uppercase(),
        "{body}"
    );
    assert_eq!(body["data"]["error_code"], error_code, "{body}");
    body["data"]["message"]
        .as_str()
        .expect("a message")
        .to_string()
}
