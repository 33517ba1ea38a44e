//! payment-service against wiremock standing in for order-service: every
//! request it sends must match openapi.yaml (path, method, headers,
//! signature, body schema), and every answer order-service could give, or
//! fail to give, must lead to a clear outcome.

mod claims;
mod creating;
mod delivering;
mod idempotency;
mod shutdown;

use conformance::Conformance;
use harness::payment_service::PaymentServiceTest;
use harness::webhook::new_secret;
use payment_client::types::{OrderNotification, Payment};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const CALLBACK: &str = "/internal/payment-callback";

pub struct Mocked {
    pub order_service: MockServer,
    pub secret: String,
    pub payments: PaymentServiceTest<'static>,
}

impl Mocked {
    pub async fn start(adjust: impl FnOnce(&mut payment_service::Settings)) -> Self {
        let order_service = MockServer::start().await;
        let secret = new_secret();
        let payments = PaymentServiceTest::start(&order_service.uri(), &secret, adjust).await;
        Mocked {
            order_service,
            secret,
            payments,
        }
    }

    /// order-service will answer `GET /internal/orders/{id}` with this order, attach
    /// a payment to it as order-service does: to a pending order of that
    /// total (409 `ORDER_NOT_PENDING` or 400 `AMOUNT_MISMATCH` otherwise), and
    /// answer a release with the order, which holds no payment.
    pub async fn order_is(&self, id: Uuid, total_amount: i64, status: &str) {
        self.order_reads_as(id, total_amount, status).await;
        Mock::given(method("POST"))
            .and(path(format!("/internal/orders/{id}/released-payments")))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_envelope(
                id,
                total_amount,
                status,
                None,
            )))
            .mount(&self.order_service)
            .await;
        let status = status.to_string();
        Mock::given(method("POST"))
            .and(path(format!("/internal/orders/{id}/payment")))
            .respond_with(move |request: &wiremock::Request| {
                let attachment: Value = serde_json::from_slice(&request.body).unwrap();
                let payment: Uuid = attachment["payment_id"].as_str().unwrap().parse().unwrap();
                if status != "pending" {
                    ResponseTemplate::new(409)
                        .set_body_json(error_envelope(409, "ORDER_NOT_PENDING"))
                } else if attachment["amount"] != total_amount {
                    ResponseTemplate::new(400).set_body_json(error_envelope(400, "AMOUNT_MISMATCH"))
                } else {
                    ResponseTemplate::new(200).set_body_json(order_envelope(
                        id,
                        total_amount,
                        "pending",
                        Some(payment),
                    ))
                }
            })
            .mount(&self.order_service)
            .await;
    }

    /// order-service will answer `GET /internal/orders/{id}` with this order
    /// (and nothing else about it).
    pub async fn order_reads_as(&self, id: Uuid, total_amount: i64, status: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/internal/orders/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_envelope(
                id,
                total_amount,
                status,
                None,
            )))
            .mount(&self.order_service)
            .await;
    }

    /// What payment-service sent to `method path`, each checked against the contract.
    pub async fn sent(&self, verb: &str, route: &str) -> Vec<wiremock::Request> {
        let requests = self
            .order_service
            .received_requests()
            .await
            .unwrap_or_default();
        let sent: Vec<_> = requests
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == route)
            .collect();
        for request in &sent {
            let problems =
                Conformance::shared().check_request(verb, route, &request.headers, &request.body);
            assert!(
                problems.is_empty(),
                "payment-service sent a request outside the contract:\n{}",
                problems.join("\n")
            );
        }
        sent
    }

    /// The payment once its outcome's notification is `state`; fails after 10 s.
    pub async fn wait_for_notification(&self, payment: Uuid, state: OrderNotification) -> Payment {
        self.wait_for_notification_via(&self.payments, payment, state)
            .await
    }

    /// The payment once `instance` reads its outcome's notification as
    /// `state`; fails after 10 s.
    pub async fn wait_for_notification_via(
        &self,
        instance: &PaymentServiceTest<'_>,
        payment: Uuid,
        state: OrderNotification,
    ) -> Payment {
        harness::payment_service::wait_for_notification(
            &instance.client,
            payment,
            state,
            Duration::from_secs(10),
        )
        .await
    }

    pub async fn cleanup(self) {
        self.payments.cleanup().await;
    }
}

/// An order in the contract's envelope, with `payment` under way if given
/// (a settled order always names one); checked against the contract so the
/// stand-in answers as order-service would.
pub fn order_envelope(id: Uuid, total_amount: i64, status: &str, payment: Option<Uuid>) -> Value {
    let payment = match (status, payment) {
        (_, Some(payment)) => json!(payment),
        ("pending", None) => Value::Null,
        (_, None) => json!(Uuid::new_v4()),
    };
    let body = json!({"code": 200, "status": "OK", "data": {
        "id": id, "item_name": "Espresso machine", "quantity": 1, "price": total_amount,
        "total_amount": total_amount, "status": status,
        "payment_id": payment,
        "created_at": "2026-11-25T07:00:00Z", "updated_at": "2026-11-25T07:00:00Z"
    }});
    let mut headers = http::HeaderMap::new();
    headers.insert("x-request-id", "stand-in".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    let problems = Conformance::shared().check(
        "GET",
        &format!("/orders/{id}"),
        200,
        &headers,
        body.to_string().as_bytes(),
    );
    assert!(
        problems.is_empty(),
        "the stand-in's order breaks the contract: {problems:?}"
    );
    body
}

/// An error in the contract's envelope.
pub fn error_envelope(status: u16, error_code: &str) -> Value {
    let reason = http::StatusCode::from_u16(status)
        .unwrap()
        .canonical_reason()
        .unwrap()
        .to_uppercase();
    json!({"code": status, "status": reason, "data": {"error_code": error_code, "message": "from the stand-in"}})
}

/// Creates a payment through raw HTTP; returns the status and body.
pub async fn create_payment(
    mocked: &Mocked,
    order: Uuid,
    amount: i64,
) -> (reqwest::StatusCode, Value) {
    let response = mocked
        .payments
        .http
        .post(mocked.payments.url("/payments"))
        .json(&json!({"order_id": order, "amount": amount, "provider": "stripe"}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Verifies the Standard Webhooks signature over the method, the path and
/// query, and the exact body bytes received.
pub fn signed_with(secret: &str, request: &wiremock::Request) -> bool {
    let target = match request.url.query() {
        Some(query) => format!("{}?{query}", request.url.path()),
        None => request.url.path().to_string(),
    };
    let mut content = format!("{} {target}\n", request.method).into_bytes();
    content.extend_from_slice(&request.body);
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&content, &request.headers)
        .is_ok()
}
