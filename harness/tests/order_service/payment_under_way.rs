//! A payment under way: payment-service attaches it to its order (signed,
//! idempotent) before recording it; the order then cannot change or
//! disappear, and only that payment's outcome settles it.

use crate::{create_order, error_body, order_request};
use harness::order_service::OrderServiceTest;
use order_client::types::{Order, OrderStatus, PaymentAttachment, PaymentCallback, PaymentOutcome};
use reqwest::StatusCode;
use std::num::NonZeroU64;
use uuid::Uuid;

fn attachment(payment_id: Uuid, amount: u64) -> PaymentAttachment {
    PaymentAttachment {
        payment_id,
        amount: NonZeroU64::new(amount).unwrap(),
        customer: Some(harness::issuer::CALLER.to_string()),
    }
}

/// A refusal's status, error code and message.
fn refused<T: std::fmt::Debug>(
    result: Result<T, order_client::Error<order_client::types::ApiError>>,
) -> (StatusCode, String, String) {
    let (status, error) = error_body(result);
    (status, error.data.error_code, error.data.message)
}

async fn attach(
    test: &OrderServiceTest<'_>,
    order: Uuid,
    payment: Uuid,
    amount: u64,
) -> Result<Order, (StatusCode, String, String)> {
    match test
        .client
        .attach_payment(&order, &attachment(payment, amount))
        .await
    {
        Ok(response) => Ok(response.into_inner().data),
        refusal => Err(refused(refusal)),
    }
}

async fn pending_order(test: &OrderServiceTest<'_>) -> Order {
    create_order(test, "Chair", 2, 3_000).await
}

#[tokio::test]
async fn an_attached_payment_freezes_the_order_until_its_own_outcome() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let payment = Uuid::new_v4();

    let attached = attach(&test, order.id, payment, 6_000).await.unwrap();
    assert_eq!(
        (attached.status, attached.payment_id),
        (OrderStatus::Pending, Some(payment))
    );
    let again = attach(&test, order.id, payment, 6_000).await.unwrap();
    assert_eq!(
        again.updated_at, attached.updated_at,
        "the same payment again changes nothing"
    );

    let in_progress = (StatusCode::CONFLICT, "ORDER_PAYMENT_IN_PROGRESS");
    let (status, code, message) = refused(
        test.client
            .update_order(&order.id, &order_request("Chair", 3, 3_000))
            .await,
    );
    assert_eq!((status, code.as_str()), in_progress);
    assert!(message.contains(&payment.to_string()), "{message}");
    let (status, code, _) = refused(test.client.delete_order(&order.id).await);
    assert_eq!((status, code.as_str()), in_progress);
    let other = Uuid::new_v4();
    let (status, code, message) = attach(&test, order.id, other, 6_000).await.unwrap_err();
    assert_eq!((status, code.as_str()), in_progress);
    assert!(
        message.contains(&payment.to_string()),
        "names the one under way: {message}"
    );

    let report = |payment_id| PaymentCallback {
        order_id: order.id,
        payment_id,
        payment_status: PaymentOutcome::Success,
        amount: NonZeroU64::new(6_000).unwrap(),
    };
    let (status, code, _) = refused(test.client.payment_callback(&report(other)).await);
    assert_eq!(
        (status, code.as_str()),
        in_progress,
        "only its own payment settles it"
    );
    let unchanged = test.order(&order.id).await;
    assert_eq!(
        (
            unchanged.status,
            unchanged.total_amount,
            unchanged.payment_id
        ),
        (OrderStatus::Pending, 6_000, Some(payment))
    );

    let paid = test
        .client
        .payment_callback(&report(payment))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(
        (paid.status, paid.payment_id),
        (OrderStatus::Paid, Some(payment))
    );
    let (status, code, _) = attach(&test, order.id, payment, 6_000).await.unwrap_err();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "ORDER_NOT_PENDING")
    );
    test.cleanup().await;
}

#[tokio::test]
async fn an_attachment_for_another_total_an_unknown_order_or_unsigned_is_refused() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;

    let (status, code, message) = attach(&test, order.id, Uuid::new_v4(), 5_999)
        .await
        .unwrap_err();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "AMOUNT_MISMATCH")
    );
    assert!(
        message.contains("5999") && message.contains("6000"),
        "{message}"
    );
    let (status, code, _) = attach(&test, Uuid::new_v4(), Uuid::new_v4(), 6_000)
        .await
        .unwrap_err();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND")
    );
    let unsigned = order_client::Client::new(&test.url(""), order_client::ClientContext::default());
    let (status, code, _) = refused(
        unsigned
            .attach_payment(&order.id, &attachment(Uuid::new_v4(), 6_000))
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );

    // Refused attachments leave the order free to change.
    let changed = test
        .client
        .update_order(&order.id, &order_request("Chair", 1, 3_000))
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!((changed.total_amount, changed.payment_id), (3_000, None));
    test.cleanup().await;
}

async fn release(test: &OrderServiceTest<'_>, order: Uuid, payment: Uuid) -> Order {
    test.client
        .release_payment(
            &order,
            &order_client::types::PaymentRelease {
                payment_id: payment,
            },
        )
        .await
        .expect("the release is answered")
        .into_inner()
        .data
}

#[tokio::test]
async fn a_released_payment_is_never_attached_and_an_attached_one_is_never_released() {
    let test = OrderServiceTest::start().await;
    let order = pending_order(&test).await;
    let (given_up, kept) = (Uuid::new_v4(), Uuid::new_v4());

    let released = release(&test, order.id, given_up).await;
    assert_eq!(
        (released.status, released.payment_id),
        (OrderStatus::Pending, None)
    );
    let (status, code, message) = attach(&test, order.id, given_up, 6_000).await.unwrap_err();
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "PAYMENT_RELEASED"),
        "{message}"
    );
    assert_eq!(
        release(&test, order.id, given_up).await.payment_id,
        None,
        "releasing again changes nothing"
    );

    // Another payment attaches; releasing it then answers it attached.
    attach(&test, order.id, kept, 6_000).await.unwrap();
    let answered = release(&test, order.id, kept).await;
    assert_eq!(answered.payment_id, Some(kept));
    assert_eq!(
        attach(&test, order.id, kept, 6_000)
            .await
            .unwrap()
            .payment_id,
        Some(kept),
        "still attached"
    );

    // A release for an order that is gone says so.
    let (status, error) = error_body(
        test.client
            .release_payment(
                &Uuid::new_v4(),
                &order_client::types::PaymentRelease {
                    payment_id: given_up,
                },
            )
            .await,
    );
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::NOT_FOUND, "ORDER_NOT_FOUND")
    );
    test.cleanup().await;
}

/// A signed call as an eavesdropper captures it: what payment-service sent.
struct Captured {
    method: reqwest::Method,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// A call to `target` signed as payment-service signs it.
fn captured(
    test: &OrderServiceTest<'_>,
    method: reqwest::Method,
    target: String,
    body: Option<serde_json::Value>,
) -> Captured {
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    let id = format!("msg_{}", Uuid::new_v4().simple());
    let timestamp = harness::webhook::now();
    let signature = harness::webhook::signature_of(
        test.secret(),
        &id,
        timestamp,
        method.as_str(),
        &target,
        body.as_bytes(),
    );
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ];
    Captured {
        method,
        target,
        headers,
        body,
    }
}

/// A signed attachment of `payment` to `order`, as captured.
fn captured_attachment(test: &OrderServiceTest<'_>, order: Uuid, payment: Uuid) -> Captured {
    captured(
        test,
        reqwest::Method::POST,
        format!("/internal/orders/{order}/payment"),
        Some(serde_json::json!({
            "payment_id": payment, "amount": 6_000, "customer": harness::issuer::CALLER
        })),
    )
}

/// A signed read of `order` for a payment by the test's customer, as captured.
fn captured_read(test: &OrderServiceTest<'_>, order: Uuid) -> Captured {
    captured(
        test,
        reqwest::Method::GET,
        format!(
            "/internal/orders/{order}?customer={}",
            harness::issuer::CALLER
        ),
        None,
    )
}

/// A signed release of `payment` for `order`, as captured.
fn captured_release(test: &OrderServiceTest<'_>, order: Uuid, payment: Uuid) -> Captured {
    captured(
        test,
        reqwest::Method::POST,
        format!("/internal/orders/{order}/released-payments"),
        Some(serde_json::json!({ "payment_id": payment })),
    )
}

/// A signed report that `payment` of 6,000 for `order` succeeded, as captured.
fn captured_outcome(test: &OrderServiceTest<'_>, order: Uuid, payment: Uuid) -> Captured {
    captured(
        test,
        reqwest::Method::POST,
        "/internal/payment-callback".to_string(),
        Some(serde_json::json!({
            "order_id": order, "payment_id": payment,
            "payment_status": "success", "amount": 6_000
        })),
    )
}

/// Sends `call` as captured, to `target` (where it was signed for, or not).
async fn replay_at(
    test: &OrderServiceTest<'_>,
    target: &str,
    call: &Captured,
) -> (StatusCode, serde_json::Value) {
    let mut request = test
        .http
        .request(call.method.clone(), test.url(target))
        .body(call.body.clone());
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Sends `call` as captured, where it was signed for.
async fn replay(test: &OrderServiceTest<'_>, call: &Captured) -> (StatusCode, serde_json::Value) {
    replay_at(test, &call.target, call).await
}

fn is_a_replay_refusal((status, body): &(StatusCode, serde_json::Value)) -> bool {
    *status == StatusCode::UNAUTHORIZED
        && body["data"]["error_code"] == "UNAUTHORIZED"
        && body["data"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("accepted before"))
}

#[tokio::test]
async fn a_captured_signed_attachment_works_on_no_other_order_and_only_once() {
    let test = OrderServiceTest::start().await;
    let mine = create_order(&test, "Desk", 2, 3_000).await;
    let other = create_order(&test, "Desk", 2, 3_000).await;
    let captured = captured_attachment(&test, mine.id, Uuid::new_v4());

    // Moved onto another order of the same total: its path is not what was signed.
    let elsewhere = format!("/internal/orders/{}/payment", other.id);
    let (status, body) = replay_at(&test, &elsewhere, &captured).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["data"]["error_code"], "UNAUTHORIZED");
    let untouched = test.order(&other.id).await;
    assert_eq!(untouched.payment_id, None, "the other order is free");

    // Where it was signed for, it is accepted once; the same request again is a replay.
    let (status, body) = replay(&test, &captured).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = replay(&test, &captured).await;
    assert!(is_a_replay_refusal(&again), "{again:?}");
    test.cleanup().await;
}

/// Every kind of signed call, the read included, is acted on once; one
/// that was refused is not tried again either, and a replay changes
/// nothing.
#[tokio::test]
async fn every_signed_call_is_acted_on_once_even_a_refused_one() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Desk", 2, 3_000).await;
    let (payment, released) = (Uuid::new_v4(), Uuid::new_v4());
    let customer = harness::issuer::CALLER;
    let attach_target = format!("/internal/orders/{}/payment", order.id);
    let calls = [
        (
            "the read for a payment",
            StatusCode::OK,
            captured_read(&test, order.id),
        ),
        (
            "an attachment of the wrong amount",
            StatusCode::BAD_REQUEST,
            captured(
                &test,
                reqwest::Method::POST,
                attach_target.clone(),
                Some(serde_json::json!({
                    "payment_id": released, "amount": 1, "customer": customer
                })),
            ),
        ),
        (
            "the attachment",
            StatusCode::OK,
            captured_attachment(&test, order.id, payment),
        ),
        (
            "a release of another payment",
            StatusCode::OK,
            captured_release(&test, order.id, released),
        ),
        (
            "the outcome",
            StatusCode::OK,
            captured_outcome(&test, order.id, payment),
        ),
    ];
    for (what, expected, call) in &calls {
        let (status, body) = replay(&test, call).await;
        assert_eq!(status, *expected, "{what}: {body}");
    }
    let paid = test.order(&order.id).await;
    assert_eq!(
        (paid.status, paid.payment_id),
        (OrderStatus::Paid, Some(payment))
    );
    for (what, _, call) in &calls {
        let again = replay(&test, call).await;
        assert!(is_a_replay_refusal(&again), "{what} sent again: {again:?}");
    }
    let after = test.order(&order.id).await;
    assert_eq!(
        after.updated_at, paid.updated_at,
        "a replay changed the order"
    );
    test.cleanup().await;
}

/// A replay whose statement would otherwise act again, while the order is
/// still pending: refused before it locks or rewrites the order's row.
#[tokio::test]
async fn a_replay_that_would_act_again_is_refused_before_it_touches_the_order() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Desk", 2, 3_000).await;
    let (payment, given_up) = (Uuid::new_v4(), Uuid::new_v4());
    let release = captured_release(&test, order.id, given_up);
    let attachment = captured_attachment(&test, order.id, payment);
    for call in [&release, &attachment] {
        let (status, body) = replay(&test, call).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let db = test.database().await;
    let row = |db: tokio_postgres::Client| async move {
        let row = db
            .query_one(
                "SELECT released_payments, xmax::text AS xmax FROM orders WHERE id = $1",
                &[&order.id],
            )
            .await
            .unwrap();
        (row.get::<_, Vec<Uuid>>(0), row.get::<_, String>(1), db)
    };
    let (released, _, db) = row(db).await;
    assert_eq!(
        released,
        Vec::<Uuid>::new(),
        "the attachment cleared the releases"
    );
    // Acted on again, the release would refuse `given_up` once more, and the
    // attachment would rewrite the row with what it holds.
    for (what, call) in [("the release", &release), ("the attachment", &attachment)] {
        let again = replay(&test, call).await;
        assert!(is_a_replay_refusal(&again), "{what} sent again: {again:?}");
    }
    let (released, xmax, _) = row(db).await;
    assert_eq!(released, Vec::<Uuid>::new(), "a replayed release acted");
    assert_eq!(xmax, "0", "a replay locked or rewrote the order's row");
    test.cleanup().await;
}

/// Copies of one signed call sent at once: one is acted on, every other is
/// a replay.
#[tokio::test]
async fn of_copies_of_a_signed_call_sent_at_once_one_is_acted_on() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Desk", 2, 3_000).await;
    let payment = Uuid::new_v4();
    let read = captured_read(&test, order.id);
    let outcome = captured_outcome(&test, order.id, payment);
    let calls = [
        ("the read", read),
        (
            "the attachment",
            captured_attachment(&test, order.id, payment),
        ),
        ("the outcome", outcome),
    ];
    for (what, call) in &calls {
        let answers = futures::future::join_all((0..8).map(|_| replay(&test, call))).await;
        let accepted = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .count();
        assert_eq!(accepted, 1, "{what}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|answer| answer.0 == StatusCode::OK || is_a_replay_refusal(answer)),
            "{what}: {answers:?}"
        );
    }
    assert_eq!(test.order(&order.id).await.status, OrderStatus::Paid);
    test.cleanup().await;
}

/// While order-service authenticates its callers, a payment is made for a
/// customer: a signed attachment naming none would act on anyone's order.
#[tokio::test]
async fn a_signed_attachment_for_no_customer_or_another_is_refused() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Desk", 2, 3_000).await;
    for (customer, status, code) in [
        (None, StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        (
            Some("someone-else"),
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
        ),
        (Some("nul\u{0}"), StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
    ] {
        let attachment = PaymentAttachment {
            customer: customer.map(str::to_string),
            ..attachment(Uuid::new_v4(), 6_000)
        };
        let (got, error_code, message) =
            refused(test.client.attach_payment(&order.id, &attachment).await);
        assert_eq!(
            (got, error_code.as_str()),
            (status, code),
            "{customer:?}: {message}"
        );
    }
    let unchanged = test.order(&order.id).await;
    assert_eq!(unchanged.payment_id, None);
    test.cleanup().await;
}
