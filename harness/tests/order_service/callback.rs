//! The payment callback: signed per Standard Webhooks, idempotent, and
//! never settling an order twice or for the wrong amount.

use crate::{assert_error, create_order, error_body, order_request, send};
use harness::order_service::OrderServiceTest;
use harness::webhook::{CALLBACK, new_secret, now, signature};
use order_client::types::{Order, OrderStatus, PaymentCallback, PaymentOutcome as Outcome};
use reqwest::{Method, StatusCode};
use std::num::NonZeroU64;
use uuid::Uuid;

fn report(order: &Order, payment_id: Uuid, outcome: Outcome, amount: i64) -> PaymentCallback {
    PaymentCallback {
        order_id: order.id,
        payment_id,
        payment_status: outcome,
        amount: NonZeroU64::new(amount as u64).unwrap(),
    }
}

async fn pending_order(test: &OrderServiceTest<'_>) -> Order {
    create_order(test, "Headphones", 2, 7_500).await
}

/// Posts `body` to the callback with the given webhook headers.
async fn post_callback(
    test: &OrderServiceTest<'_>,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(
        test,
        Method::POST,
        "/internal/payment-callback",
        &all,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_successful_payment_marks_the_order_paid() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let payment = Uuid::new_v4();

    let settled = test
        .client
        .payment_callback(&report(&order, payment, Outcome::Success, 15_000))
        .await
        .unwrap();

    let settled = settled.into_inner().data;
    assert_eq!(settled.status, OrderStatus::Paid);
    assert_eq!(settled.payment_id, Some(payment));
    assert_eq!(test.order(&order.id).await.status, OrderStatus::Paid);
    test.cleanup().await;
}

#[tokio::test]
async fn a_failed_payment_marks_the_order_failed() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;

    let settled = test
        .client
        .payment_callback(&report(&order, Uuid::new_v4(), Outcome::Failed, 15_000))
        .await
        .unwrap()
        .into_inner()
        .data;

    assert_eq!(settled.status, OrderStatus::Failed);
    test.cleanup().await;
}

#[tokio::test]
async fn the_same_report_again_is_a_200_that_changes_nothing() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let callback = report(&order, Uuid::new_v4(), Outcome::Success, 15_000);
    let first = test
        .client
        .payment_callback(&callback)
        .await
        .unwrap()
        .into_inner()
        .data;

    for _ in 0..5 {
        let again = test
            .client
            .payment_callback(&callback)
            .await
            .unwrap()
            .into_inner()
            .data;
        assert_eq!(
            (again.status, again.updated_at),
            (OrderStatus::Paid, first.updated_at)
        );
    }
    let concurrent =
        futures::future::join_all((0..5).map(|_| test.client.payment_callback(&callback))).await;
    for reply in concurrent {
        assert_eq!(
            reply.unwrap().into_inner().data.updated_at,
            first.updated_at
        );
    }
    test.cleanup().await;
}

#[tokio::test]
async fn concurrent_first_deliveries_settle_the_order_once() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let callback = report(&order, Uuid::new_v4(), Outcome::Success, 15_000);

    let replies =
        futures::future::join_all((0..5).map(|_| test.client.payment_callback(&callback))).await;

    let orders: Vec<Order> = replies
        .into_iter()
        .map(|r| r.unwrap().into_inner().data)
        .collect();
    assert!(
        orders
            .iter()
            .all(|o| o.status == OrderStatus::Paid && o.updated_at == orders[0].updated_at)
    );
    test.cleanup().await;
}

#[tokio::test]
async fn a_report_contradicting_a_settled_order_is_a_409() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let payment = Uuid::new_v4();
    test.client
        .payment_callback(&report(&order, payment, Outcome::Success, 15_000))
        .await
        .unwrap();

    let other_outcome = report(&order, payment, Outcome::Failed, 15_000);
    let other_payment = report(&order, Uuid::new_v4(), Outcome::Success, 15_000);
    for callback in [other_outcome, other_payment] {
        let (status, error) = error_body(test.client.payment_callback(&callback).await);
        assert_eq!(
            (status, error.data.error_code.as_str()),
            (StatusCode::CONFLICT, "ORDER_ALREADY_SETTLED")
        );
    }
    let after = test.order(&order.id).await;
    assert_eq!(
        (after.status, after.payment_id),
        (OrderStatus::Paid, Some(payment))
    );
    test.cleanup().await;
}

#[tokio::test]
async fn a_success_for_another_amount_is_a_400_and_the_order_stays_pending() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;

    let (status, error) = error_body(
        test.client
            .payment_callback(&report(&order, Uuid::new_v4(), Outcome::Success, 14_999))
            .await,
    );

    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::BAD_REQUEST, "AMOUNT_MISMATCH")
    );
    assert!(
        error.data.message.contains("14999") && error.data.message.contains("15000"),
        "{}",
        error.data.message
    );
    assert_eq!(test.order(&order.id).await.status, OrderStatus::Pending);
    test.cleanup().await;
}

#[tokio::test]
async fn a_report_for_an_unknown_order_is_a_404() {
    let test = OrderServiceTest::start().await;
    let mut ghost = pending_order(&test).await;
    ghost.id = Uuid::new_v4();

    let (status, error) = error_body(
        test.client
            .payment_callback(&report(&ghost, Uuid::new_v4(), Outcome::Success, 15_000))
            .await,
    );

    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND")
    );
    test.cleanup().await;
}

#[tokio::test]
async fn a_settled_order_can_no_longer_be_changed_or_deleted() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    test.client
        .payment_callback(&report(&order, Uuid::new_v4(), Outcome::Failed, 15_000))
        .await
        .unwrap();

    let (status, error) = error_body(
        test.client
            .update_order(&order.id, &order_request("Other", 1, 1))
            .await,
    );
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::CONFLICT, "ORDER_NOT_PENDING")
    );
    assert!(
        error.data.message.contains("is failed"),
        "{}",
        error.data.message
    );
    let (status, error) = error_body(test.client.delete_order(&order.id).await);
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::CONFLICT, "ORDER_NOT_PENDING")
    );
    let after = test.order(&order.id).await;
    assert_eq!(
        (after.item_name.as_str(), after.status),
        ("Headphones", OrderStatus::Failed)
    );
    test.cleanup().await;
}

/// One delivery attempt: a body and the webhook headers sent with it.
struct Attempt {
    body: String,
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
}

impl Attempt {
    /// Signed as message `id`, made unique: each id is accepted once.
    fn signed(secret: &str, id: &str, timestamp: i64, body: &str) -> Attempt {
        let id = format!("{id}_{}", Uuid::new_v4().simple());
        Attempt {
            body: body.to_string(),
            signature: Some(signature(secret, &id, timestamp, CALLBACK, body.as_bytes())),
            id: Some(id),
            timestamp: Some(timestamp.to_string()),
        }
    }

    async fn post(&self, test: &OrderServiceTest<'_>) -> (StatusCode, serde_json::Value) {
        let mut headers = vec![];
        headers.extend(self.id.as_deref().map(|id| ("webhook-id", id)));
        headers.extend(self.timestamp.as_deref().map(|t| ("webhook-timestamp", t)));
        headers.extend(self.signature.as_deref().map(|s| ("webhook-signature", s)));
        post_callback(test, &self.body, &headers).await
    }
}

#[tokio::test]
async fn unsigned_stale_tampered_or_foreign_callbacks_are_401_and_change_nothing() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let body = serde_json::json!({
        "order_id": order.id, "payment_id": Uuid::new_v4(), "payment_status": "success", "amount": 15_000
    })
    .to_string();
    let secret = test.secret().to_string();
    let ts = now();
    let valid = || Attempt::signed(&secret, "msg_1", ts, &body);
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap())
            .unwrap();

    let cases = [
        (
            "no headers",
            Attempt {
                id: None,
                timestamp: None,
                signature: None,
                ..valid()
            },
        ),
        (
            "no signature",
            Attempt {
                signature: None,
                ..valid()
            },
        ),
        (
            "no id",
            Attempt {
                id: None,
                ..valid()
            },
        ),
        (
            "no timestamp",
            Attempt {
                timestamp: None,
                ..valid()
            },
        ),
        (
            "tampered body",
            Attempt {
                body: body.replace("15000", "1"),
                ..valid()
            },
        ),
        (
            "re-serialised body",
            Attempt {
                body: pretty,
                ..valid()
            },
        ),
        (
            "another id",
            Attempt {
                id: Some("msg_2".to_string()),
                ..valid()
            },
        ),
        (
            "another secret",
            Attempt::signed(&new_secret(), "msg_1", ts, &body),
        ),
        (
            // Well past the 300 s tolerance: the signing time is taken
            // now, not at the test's start, so a slow run cannot drift
            // them back inside it.
            "330 s old",
            Attempt::signed(&secret, "msg_1", now() - 330, &body),
        ),
        (
            "330 s ahead",
            Attempt::signed(&secret, "msg_1", now() + 330, &body),
        ),
        (
            "timestamp not a number",
            Attempt {
                timestamp: Some("soon".into()),
                ..valid()
            },
        ),
    ];
    for (case, attempt) in cases {
        let (status, reply) = attempt.post(&test).await;
        let message = assert_error(status, &reply, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert!(
            message.starts_with("payment callback rejected: "),
            "{case}: {message}"
        );
    }
    let after = test.order(&order.id).await;
    assert_eq!(
        (after.status, after.updated_at),
        (OrderStatus::Pending, order.updated_at)
    );

    // The same request, correctly signed and 290 s old, is accepted.
    let (status, reply) = Attempt::signed(&secret, "msg_1", now() - 290, &body)
        .post(&test)
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "paid");
    test.cleanup().await;
}

#[tokio::test]
async fn during_a_rotation_either_secret_is_accepted() {
    let old = new_secret();
    let old_for_settings = old.clone();
    let test =
        OrderServiceTest::start_with(|s| s.previous_callback_secret = Some(old_for_settings)).await;
    let first = pending_order(&test).await;
    let second = pending_order(&test).await;
    let current = test.secret().to_string();

    for (order, signatures) in [
        (&first, vec![old.as_str()]),
        (&second, vec![old.as_str(), current.as_str()]),
    ] {
        let body = serde_json::json!({
            "order_id": order.id, "payment_id": Uuid::new_v4(), "payment_status": "failed", "amount": 15_000
        })
        .to_string();
        let ts = now();
        let attempt = Attempt::signed(&current, "msg_r", ts, &body);
        let id = attempt.id.clone().unwrap();
        let both = signatures
            .iter()
            .map(|s| signature(s, &id, ts, CALLBACK, body.as_bytes()));
        let attempt = Attempt {
            signature: Some(both.collect::<Vec<_>>().join(" ")),
            ..attempt
        };
        let (status, reply) = attempt.post(&test).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    test.cleanup().await;
}

#[tokio::test]
async fn a_signed_body_that_breaks_the_schema_is_a_400() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let secret = test.secret().to_string();
    let bodies = [
        serde_json::json!({"order_id": order.id, "payment_id": Uuid::new_v4(), "payment_status": "refunded", "amount": 1}),
        serde_json::json!({"order_id": order.id, "payment_id": Uuid::new_v4(), "payment_status": "success", "amount": 0}),
        serde_json::json!({"order_id": order.id, "payment_status": "success", "amount": 1}),
        serde_json::json!({"order_id": "nope", "payment_id": Uuid::new_v4(), "payment_status": "success", "amount": 1}),
    ];
    let valid = serde_json::json!({"order_id": order.id, "payment_id": Uuid::new_v4(), "payment_status": "success", "amount": 15_000});
    let bodies = bodies
        .iter()
        .map(|body| body.to_string())
        // Signed as sent, with something after the JSON value.
        .chain([format!("{valid}}}"), format!("{valid} xyz")]);
    for body in bodies {
        let (status, reply) = Attempt::signed(&secret, "msg_1", now(), &body)
            .post(&test)
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, "INVALID_BODY");
    }
    let (status, reply) = send(
        &test,
        Method::POST,
        "/internal/payment-callback",
        &[("content-type", "text/plain")],
        Some("{}"),
    )
    .await;
    assert_error(
        status,
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    assert_eq!(test.order(&order.id).await.status, OrderStatus::Pending);
    test.cleanup().await;
}
