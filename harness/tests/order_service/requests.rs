//! Bad requests get a clear error in the envelope and change nothing.

use crate::{assert_error, create_order, error_body, order_request, send, send_json};
use harness::order_service::OrderServiceTest;
use reqwest::{Method, StatusCode};

/// Each body breaks one documented constraint of `OrderRequest`; the
/// message must name what is wrong.
const INVALID_ORDERS: &[(&str, &str)] = &[
    (
        r#"{"item_name":"Pen","quantity":0,"price":100}"#,
        "quantity: must be at least 1, got 0",
    ),
    (
        r#"{"item_name":"Pen","quantity":-3,"price":100}"#,
        "quantity: must be at least 1, got -3",
    ),
    (
        r#"{"item_name":"Pen","quantity":1,"price":0}"#,
        "price: must be at least 1, got 0",
    ),
    (
        r#"{"item_name":"","quantity":1,"price":100}"#,
        "item_name: must not be blank",
    ),
    (
        r#"{"item_name":" \t ","quantity":1,"price":100}"#,
        "item_name: must not be blank",
    ),
    (r#"{"quantity":1,"price":100}"#, "missing field `item_name`"),
    (
        r#"{"item_name":"Pen","quantity":1,"price":100,"discount":5}"#,
        "unknown field `discount`",
    ),
    (
        r#"{"item_name":"Pen","quantity":"1","price":100}"#,
        "quantity: invalid type: string",
    ),
    (
        r#"{"item_name":"Pen","quantity":1.5,"price":100}"#,
        "quantity: invalid type: floating point",
    ),
    (
        r#"{"item_name":"Pen","quantity":1,"price":100"#,
        "EOF while parsing",
    ),
    ("[]", "expected struct OrderRequest"),
    (
        r#"{"item_name":"Pen","quantity":1,"price":100}}"#,
        "trailing characters",
    ),
    (
        r#"{"item_name":"Pen","quantity":1,"price":100} xyz"#,
        "trailing characters",
    ),
    (
        r#"{"item_name":"Pen","quantity":1,"price":100}{"item_name":"Pen","quantity":1,"price":100}"#,
        "trailing characters",
    ),
    (
        r#"{"item_name":"a\u0000b","quantity":1,"price":100}"#,
        "item_name: must not contain the NUL character",
    ),
];

#[tokio::test]
async fn every_constraint_violation_is_a_400_naming_the_problem_and_creates_nothing() {
    let test = OrderServiceTest::start().await;
    for (body, expected) in INVALID_ORDERS {
        let (status, reply) = send_json(&test, Method::POST, "/orders", body).await;
        let message = assert_error(status, &reply, StatusCode::BAD_REQUEST, "INVALID_BODY");
        assert!(
            message.contains(expected),
            "{body}: {message:?} should contain {expected:?}"
        );
    }
    let long_name = "x".repeat(201);
    let (status, reply) = send_json(
        &test,
        Method::POST,
        "/orders",
        &format!(r#"{{"item_name":"{long_name}","quantity":1,"price":1}}"#),
    )
    .await;
    let message = assert_error(status, &reply, StatusCode::BAD_REQUEST, "INVALID_BODY");
    assert!(
        message.contains("item_name: must be at most 200 characters, got 201"),
        "{message}"
    );
    assert_eq!(test.order_count().await, 0);
    test.cleanup().await;
}

#[tokio::test]
async fn the_bounds_themselves_are_accepted() {
    let test = OrderServiceTest::start().await;
    let name = "é".repeat(200);
    let (status, reply) = send_json(
        &test,
        Method::POST,
        "/orders",
        &format!(r#"{{"item_name":"{name}","quantity":1,"price":1}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["data"]["item_name"].as_str().unwrap().chars().count(),
        200
    );
    test.cleanup().await;
}

#[tokio::test]
async fn a_rejected_update_leaves_the_order_as_it_was() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Chair", 2, 3_000).await;
    let path = format!("/orders/{}", order.id);
    for (body, _) in INVALID_ORDERS {
        let (status, reply) = send_json(&test, Method::PUT, &path, body).await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, "INVALID_BODY");
    }
    let after = test.order(&order.id).await;
    assert_eq!(
        (after.item_name.as_str(), after.total_amount),
        ("Chair", 6_000)
    );
    assert_eq!(after.updated_at, order.updated_at);
    test.cleanup().await;
}

#[tokio::test]
async fn a_total_that_overflows_is_a_400_and_nothing_is_stored() {
    let test = OrderServiceTest::start().await;
    let huge = i64::MAX as u64;

    let (status, error) = error_body(
        test.client
            .create_order(None, &order_request("Yacht", 2, huge))
            .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.data.error_code, "TOTAL_AMOUNT_OVERFLOW");
    assert!(
        error.data.message.contains(&format!("{huge} × 2")),
        "{}",
        error.data.message
    );
    assert_eq!(test.order_count().await, 0);

    let order = create_order(&test, "Boat", 1, huge).await;
    assert_eq!(order.total_amount, i64::MAX);
    let (status, error) = error_body(
        test.client
            .update_order(&order.id, &order_request("Boat", 3, huge))
            .await,
    );
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::BAD_REQUEST, "TOTAL_AMOUNT_OVERFLOW")
    );
    assert_eq!(test.order(&order.id).await.quantity, 1);

    // Beyond i64 altogether: the JSON number itself does not fit.
    let body = format!(r#"{{"item_name":"x","quantity":1,"price":{}}}"#, u64::MAX);
    let (status, reply) = send_json(&test, Method::POST, "/orders", &body).await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "INVALID_BODY");
    test.cleanup().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let test = OrderServiceTest::start().await;
    let body = r#"{"item_name":"Pen","quantity":1,"price":100}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let (status, reply) = send(
            &test,
            Method::POST,
            "/orders",
            &[("content-type", content_type)],
            Some(body),
        )
        .await;
        let message = assert_error(
            status,
            &reply,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
        assert!(message.contains("application/json"), "{message}");
    }
    assert_eq!(test.order_count().await, 0);
    test.cleanup().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let test = OrderServiceTest::start().await;
    let padding = "x".repeat(20 * 1024);
    let body = format!(r#"{{"item_name":"{padding}","quantity":1,"price":1}}"#);
    let (status, reply) = send_json(&test, Method::POST, "/orders", &body).await;
    let message = assert_error(
        status,
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TOO_LARGE",
    );
    assert!(message.contains("16384 bytes"), "{message}");
    assert_eq!(test.order_count().await, 0);
    test.cleanup().await;
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_a_400() {
    let test = OrderServiceTest::start().await;
    for (method, body) in [
        (Method::GET, None),
        (
            Method::PUT,
            Some(r#"{"item_name":"a","quantity":1,"price":1}"#),
        ),
        (Method::DELETE, None),
    ] {
        let (status, reply) = send(
            &test,
            method.clone(),
            "/orders/not-a-uuid",
            &[("content-type", "application/json")],
            body,
        )
        .await;
        let message = assert_error(
            status,
            &reply,
            StatusCode::BAD_REQUEST,
            "INVALID_PATH_PARAMETER",
        );
        assert!(
            message.contains("UUID parsing failed"),
            "{method}: {message}"
        );
    }
    test.cleanup().await;
}

#[tokio::test]
async fn bad_list_parameters_are_a_400() {
    let test = OrderServiceTest::start().await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "status=shipped",
        "sort=desc",
    ] {
        let (status, reply) =
            send(&test, Method::GET, &format!("/orders?{query}"), &[], None).await;
        assert_error(
            status,
            &reply,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_PARAMETER",
        );
    }
    let (status, reply) = send(&test, Method::GET, "/orders?page_token=garbage", &[], None).await;
    let message = assert_error(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "INVALID_PAGE_TOKEN",
    );
    assert!(message.contains("without it"), "{message}");
    test.cleanup().await;
}

/// Dropshot's router answers requests that match no route before any
/// handler runs, with its own body; the README documents this limit.
#[tokio::test]
async fn paths_and_methods_outside_the_contract_get_dropshots_own_error_body() {
    let test = OrderServiceTest::start().await;
    let (status, reply) = send(&test, Method::GET, "/nope", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["message"], "Not Found");
    assert!(
        reply["request_id"].is_string() && reply.get("code").is_none(),
        "{reply}"
    );

    let (status, reply) = send(&test, Method::PATCH, "/orders", &[], None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        reply["request_id"].is_string() && reply.get("code").is_none(),
        "{reply}"
    );
    test.cleanup().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let test = OrderServiceTest::start().await;
    for (method, path) in [
        (Method::GET, "/orders"),
        (Method::GET, "/orders/not-a-uuid"),
        (Method::GET, "/nope"),
    ] {
        let response = test
            .http
            .request(method, test.url(path))
            .send()
            .await
            .unwrap();
        let id = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            id.is_some_and(|id| uuid::Uuid::parse_str(&id).is_ok()),
            "{path}"
        );
    }
    test.cleanup().await;
}
