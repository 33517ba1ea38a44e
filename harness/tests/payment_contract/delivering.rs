//! Telling order-service a payment's outcome: signed per the contract,
//! retried on failure (401 included) with the same message id, no sooner than
//! `Retry-After` asks (at most an hour), never retried on order-service's
//! refusal and always on any other answer,
//! kept as a dead letter when the retry window ends, taken over from an
//! instance that died holding it.

use crate::{CALLBACK, Mocked, create_payment, error_envelope, order_envelope, signed_with};
use payment_client::types::OrderNotification;
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// A pending payment for a pending order of 2500, created through the stand-in.
async fn pending_payment(mocked: &Mocked) -> (Uuid, Uuid) {
    let order = Uuid::new_v4();
    mocked.order_is(order, 2_500, "pending").await;
    let (_, body) = create_payment(mocked, order, 2_500).await;
    (order, body["data"]["id"].as_str().unwrap().parse().unwrap())
}

async fn settle(mocked: &Mocked, payment: Uuid, outcome: &str) {
    let url = mocked
        .payments
        .url(&format!("/payments/{outcome}/{payment}"));
    let response = mocked.payments.http.put(url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

/// order-service acknowledges the order's outcome, paid, whenever no
/// answer mounted with a higher priority (a lower number) applies.
async fn order_service_takes_the_outcome(mocked: &Mocked, order: Uuid) {
    Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(order_service_answers(
            200,
            order_envelope(order, 2_500, "paid", None),
        ))
        .with_priority(10)
        .mount(&mocked.order_service)
        .await;
}

fn order_service_answers(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

#[tokio::test]
async fn an_outcome_is_sent_signed_with_the_amount_as_the_contract_says() {
    let mocked = Mocked::start(|_| {}).await;
    let (order, payment) = pending_payment(&mocked).await;
    order_service_takes_the_outcome(&mocked, order).await;

    settle(&mocked, payment, "success").await;
    let notified = mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;

    let sent = mocked.sent("POST", CALLBACK).await;
    assert_eq!(sent.len(), 1);
    assert!(
        signed_with(&mocked.secret, &sent[0]),
        "signature does not verify"
    );
    let body: Value = sent[0].body_json().unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "order_id": order, "payment_id": payment, "payment_status": "success", "amount": 2_500
        })
    );
    assert!(notified.order_notified_at.is_some());
    mocked.cleanup().await;
}

#[tokio::test]
async fn the_settling_instance_delivers_its_outcome_at_once_without_waiting_for_a_claim() {
    // A lease longer than `wait_for_notification` waits: the outcome must
    // be delivered by the hand-over, not claimed once a lease has ended.
    let mocked = Mocked::start(|s| {
        s.delivery.lease_ms = 60_000;
        s.delivery.poll_ms = 60_000;
    })
    .await;
    let (order, payment) = pending_payment(&mocked).await;
    order_service_takes_the_outcome(&mocked, order).await;

    settle(&mocked, payment, "success").await;
    mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;

    assert_eq!(mocked.sent("POST", CALLBACK).await.len(), 1);
    let record = mocked
        .payments
        .database()
        .await
        .query_one(
            "SELECT attempts, locked_by FROM order_notifications WHERE payment_id = $1",
            &[&payment],
        )
        .await
        .unwrap();
    assert_eq!(record.get::<_, i32>("attempts"), 1);
    assert_eq!(
        record.get::<_, Option<String>>("locked_by"),
        None,
        "released"
    );
    mocked.cleanup().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_each_with_a_new_message_id_for_the_same_request() {
    let mocked = Mocked::start(|_| {}).await;
    let (order, payment) = pending_payment(&mocked).await;
    for (failure, priority) in [
        (
            order_service_answers(500, error_envelope(500, "INTERNAL_ERROR")),
            1,
        ),
        (ResponseTemplate::new(502).set_body_string("bad gateway"), 2),
        (
            order_service_answers(429, error_envelope(429, "TOO_MANY_REQUESTS")),
            3,
        ),
        // A secret being rotated or misconfigured: operators fix it, and the
        // outcome must still arrive then.
        (
            order_service_answers(401, error_envelope(401, "UNAUTHORIZED")),
            4,
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(CALLBACK))
            .respond_with(failure)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(&mocked.order_service)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(order_service_answers(
            200,
            order_envelope(order, 2_500, "failed", None),
        ))
        .with_priority(10)
        .mount(&mocked.order_service)
        .await;

    settle(&mocked, payment, "failed").await;
    mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;

    let sent = mocked.sent("POST", CALLBACK).await;
    assert_eq!(sent.len(), 5, "four failures, then the delivery");
    let ids: std::collections::HashSet<_> = sent
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        5,
        "a message id was sent twice, as a replay: {ids:?}"
    );
    let requests: Vec<_> = sent
        .iter()
        .map(|r| r.headers["x-request-id"].clone())
        .collect();
    assert!(
        requests.iter().all(|id| *id == requests[0]),
        "the settling request's id changed between attempts: {requests:?}"
    );
    assert!(
        sent.iter().all(|r| signed_with(&mocked.secret, r)),
        "every attempt is signed anew"
    );
    let attempts: i32 = mocked
        .payments
        .database()
        .await
        .query_one("SELECT attempts FROM order_notifications", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 5);
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_retry_waits_as_long_as_retry_after_asks() {
    // Retries in tests are due after at most 500 ms; order-service asks for 2 s.
    let mocked = Mocked::start(|_| {}).await;
    let (order, payment) = pending_payment(&mocked).await;
    Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(
            order_service_answers(503, error_envelope(503, "SERVICE_UNAVAILABLE"))
                .insert_header("retry-after", "2"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mocked.order_service)
        .await;
    order_service_takes_the_outcome(&mocked, order).await;

    let settled = Instant::now();
    settle(&mocked, payment, "success").await;
    mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;

    let waited = settled.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "delivered after {waited:?}"
    );
    assert_eq!(mocked.sent("POST", CALLBACK).await.len(), 2);
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_calendar_is_capped_and_the_attempt_recorded() {
    // The window (an hour here) is shorter than the capped wait (an hour
    // from now): each of these attempts ends the record as a dead letter
    // with its reason, where the date arithmetic used to panic and leave
    // the outcome to be claimed and to panic again, for ever.
    for asked in ["18446744073709551615", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        let mocked = Mocked::start(|_| {}).await;
        let (_, payment) = pending_payment(&mocked).await;
        Mock::given(method("POST"))
            .and(path(CALLBACK))
            .respond_with(
                order_service_answers(503, error_envelope(503, "SERVICE_UNAVAILABLE"))
                    .insert_header("retry-after", asked),
            )
            .mount(&mocked.order_service)
            .await;

        settle(&mocked, payment, "success").await;
        mocked
            .wait_for_notification(payment, OrderNotification::DeadLetter)
            .await;
        let (attempts, reason): (i32, String) = {
            let row = mocked
                .payments
                .database()
                .await
                .query_one("SELECT attempts, last_error FROM order_notifications", &[])
                .await
                .unwrap();
            (row.get(0), row.get(1))
        };
        assert_eq!(attempts, 1, "{asked}");
        assert!(reason.contains("503"), "{asked}: {reason}");
        mocked.cleanup().await;
    }
}

#[tokio::test]
async fn an_answer_that_is_not_order_services_refusal_is_retried_and_named() {
    let mocked = Mocked::start(|_| {}).await;
    let (order, payment) = pending_payment(&mocked).await;
    // What the shipped front proxy answers for /internal/: an envelope, but
    // no refusal of the outcome.
    Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(order_service_answers(404, error_envelope(404, "NOT_FOUND")))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&mocked.order_service)
        .await;
    order_service_takes_the_outcome(&mocked, order).await;

    settle(&mocked, payment, "success").await;
    mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;

    assert_eq!(mocked.sent("POST", CALLBACK).await.len(), 3);
    let metrics = mocked
        .payments
        .http
        .get(mocked.payments.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("callback_unexpected_answers_total 2"),
        "{metrics}"
    );
    let logs = mocked.payments.logs();
    assert!(
        logs.contains("is ORDER_SERVICE_URL order-service itself"),
        "the log names the likely cause"
    );
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_delivered_outcome_is_removed_after_its_retention_and_the_payment_still_says_when() {
    let mocked = Mocked::start(|s| s.delivery.retention_secs = 1).await;
    let (order, payment) = pending_payment(&mocked).await;
    order_service_takes_the_outcome(&mocked, order).await;

    settle(&mocked, payment, "success").await;
    let delivered = mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;
    let db = mocked.payments.database().await;
    harness::wait_until(
        "the delivered record to be removed",
        Duration::from_secs(15),
        async || {
            let left: i64 = db
                .query_one("SELECT count(*) FROM order_notifications", &[])
                .await
                .unwrap()
                .get(0);
            (left == 0).then_some(()).ok_or(format!("{left} left"))
        },
    )
    .await;

    let after = mocked
        .payments
        .client
        .get_payment(&payment)
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(after.order_notification, OrderNotification::Delivered);
    assert_eq!(after.order_notified_at, delivered.order_notified_at);
    mocked.cleanup().await;
}

#[tokio::test]
async fn a_refusal_is_recorded_at_once_and_not_retried() {
    let mocked = Mocked::start(|_| {}).await;
    let (_, payment) = pending_payment(&mocked).await;
    Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(order_service_answers(
            409,
            error_envelope(409, "ORDER_ALREADY_SETTLED"),
        ))
        .mount(&mocked.order_service)
        .await;

    settle(&mocked, payment, "success").await;
    mocked
        .wait_for_notification(payment, OrderNotification::Rejected)
        .await;
    // Not a wait: a window in which a retry would be sent (retries are due
    // within 500 ms in tests, and looked for every 200 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;

    assert_eq!(
        mocked.sent("POST", CALLBACK).await.len(),
        1,
        "a refusal is not retried"
    );
    let reason: String = mocked
        .payments
        .database()
        .await
        .query_one("SELECT last_error FROM order_notifications", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("409 ORDER_ALREADY_SETTLED"), "{reason}");
    mocked.cleanup().await;
}

#[tokio::test]
async fn an_outcome_failing_for_the_whole_window_is_a_dead_letter_that_can_be_replayed() {
    let mocked = Mocked::start(|s| s.delivery.retry_window_secs = 1).await;
    let (order, payment) = pending_payment(&mocked).await;
    let outage = Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(order_service_answers(
            503,
            error_envelope(503, "SERVICE_UNAVAILABLE"),
        ))
        .mount_as_scoped(&mocked.order_service)
        .await;

    settle(&mocked, payment, "success").await;
    mocked
        .wait_for_notification(payment, OrderNotification::DeadLetter)
        .await;
    let settings = mocked.payments.settings().clone();
    let log = harness::test_logger("command");
    let counts =
        payment_service::run_command(&settings, &payment_service::Command::Notifications, &log)
            .await
            .unwrap();
    assert_eq!(counts, "dead_letter\t1");

    drop(outage);
    order_service_takes_the_outcome(&mocked, order).await;
    let replay = payment_service::Command::Replay {
        payment_ids: vec![],
    };
    let replayed = payment_service::run_command(&settings, &replay, &log)
        .await
        .unwrap();
    assert_eq!(replayed, "1 outcome(s) will be delivered again");
    mocked
        .wait_for_notification(payment, OrderNotification::Delivered)
        .await;
    mocked.cleanup().await;
}

#[tokio::test]
async fn an_outcome_claimed_by_an_instance_that_died_is_delivered_by_another_after_the_lease() {
    let mut mocked = Mocked::start(|s| s.order_service.timeout_ms = 30_000).await;
    let (order, payment) = pending_payment(&mocked).await;
    // The first attempt never gets an answer: the instance dies holding it.
    Mock::given(method("POST"))
        .and(path(CALLBACK))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mocked.order_service)
        .await;
    order_service_takes_the_outcome(&mocked, order).await;

    settle(&mocked, payment, "success").await;
    harness::wait_until(
        "the first attempt to be sent",
        Duration::from_secs(10),
        async || match mocked.sent("POST", CALLBACK).await.len() {
            0 => Err("nothing sent".to_string()),
            _ => Ok(()),
        },
    )
    .await;
    mocked.payments.crash();
    let crashed = Instant::now();
    let other = mocked
        .payments
        .another_instance(|s| s.order_service.timeout_ms = 1_000)
        .await;
    mocked
        .wait_for_notification_via(&other, payment, OrderNotification::Delivered)
        .await;
    let taken_over = crashed.elapsed();

    let lease = Duration::from_millis(other.settings().delivery.lease_ms);
    assert!(
        taken_over + Duration::from_millis(500) >= lease,
        "taken over after {taken_over:?}, before the lease ended"
    );
    let sent = mocked.sent("POST", CALLBACK).await;
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].headers["webhook-id"], sent[1].headers["webhook-id"]);
    assert_eq!(
        sent[0].body, sent[1].body,
        "the same outcome, delivered again"
    );
    eprintln!(
        "claim of a dead instance taken over {taken_over:?} after the crash (lease {lease:?})"
    );
    other.cleanup().await;
    mocked.payments.start_again(|_| {}).await;
    mocked.cleanup().await;
}
