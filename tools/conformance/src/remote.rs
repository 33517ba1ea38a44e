//! Contract and end-to-end checks against services that are already
//! running anywhere (the launcher's, docker-compose, staging), given their
//! base URLs, access tokens and the callback secret. Every response is also checked
//! against openapi.yaml. Checks that would need to stop a service or a
//! database are skipped, and say so.

use crate::Conformance;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub struct Target {
    pub order_url: String,
    pub payment_url: String,
    /// Without it, the checks that sign callbacks are skipped.
    pub secret: Option<String>,
    /// A customer's access token (scopes orders:read orders:write
    /// payments:read payments:write), sent on every public operation;
    /// `None` for services run with authentication disabled.
    pub token: Option<String>,
    /// A token with scope payments:settle, for settling; the customer's
    /// token if not given.
    pub settle_token: Option<String>,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// What cannot be checked from outside, and why.
const NOT_FROM_OUTSIDE: [&str; 4] = [
    "database stopped or hung: 503 within the deadline, then recovery (needs to stop the database)",
    "order-service down while a payment succeeds, paid after it returns (needs to stop order-service)",
    "payment-service crash right after the commit (needs to kill payment-service)",
    "two payment-service instances on one database (needs to start a second instance)",
];

/// Runs every check, printing one line each and a summary.
pub async fn run(target: &Target, out: &mut impl std::io::Write) -> Summary {
    let session = Session {
        target,
        http: reqwest::Client::new(),
        contract: Conformance::shared(),
    };
    let mut summary = Summary::default();
    let mut report = |outcome: Result<(), String>, rule: &str, out: &mut dyn std::io::Write| {
        let line = match outcome {
            Ok(()) => {
                summary.passed += 1;
                format!("PASS  {rule}")
            }
            Err(reason) => {
                summary.failed += 1;
                format!("FAIL  {rule}: {reason}")
            }
        };
        let _ = writeln!(out, "{line}");
    };
    report(
        session.create_and_read().await,
        "orders: create_order answers a pending order with total = price × quantity; get_order reads it back",
        out,
    );
    report(
        session.pagination().await,
        "orders: list_orders pages with limit and next_page, each order once",
        out,
    );
    report(
        session.update_and_delete().await,
        "orders: update_order recomputes the total; delete_order removes it (then 404 ORDER_NOT_FOUND)",
        out,
    );
    report(
        session.bad_requests().await,
        "orders: invalid bodies, overflow, bad ids and content types get 400/415 with the error envelope",
        out,
    );
    if target.token.is_some() {
        report(
            session.unauthenticated().await,
            "auth: a public operation without a token, or with a malformed one, is 401 with a WWW-Authenticate challenge; a customer cannot settle (403 INSUFFICIENT_SCOPE)",
            out,
        );
    } else {
        summary.skipped += 1;
        let _ = writeln!(
            out,
            "SKIP  auth: the services ask for tokens (no --token given)"
        );
    }
    report(
        session.unsigned_callback().await,
        "internal: payment_callback without a valid signature is 401 UNAUTHORIZED",
        out,
    );
    if target.secret.is_some() {
        report(
            session.signed_callback().await,
            "internal: a signed payment_callback settles the order; the same report again changes nothing; the same signed request replayed is 401",
            out,
        );
    } else {
        summary.skipped += 1;
        let _ = writeln!(
            out,
            "SKIP  internal: signed payment_callback (no callback secret given)"
        );
    }
    report(
        session.payment_refusals().await,
        "payments: create_payment refuses an unknown order (404) and another amount (400 AMOUNT_MISMATCH)",
        out,
    );
    report(
        session.payment_flow().await,
        "payments: create, create again (same payment), success, order paid and notified, settle again (409)",
        out,
    );
    report(
        session.outside_the_contract().await,
        "framework: an unknown path gets Dropshot's own 404 body (documented limit)",
        out,
    );
    for rule in NOT_FROM_OUTSIDE {
        summary.skipped += 1;
        let _ = writeln!(out, "SKIP  {rule}");
    }
    let _ = writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        summary.passed, summary.failed, summary.skipped
    );
    summary
}

struct Session<'t> {
    target: &'t Target,
    http: reqwest::Client,
    contract: Arc<Conformance>,
}

type Check = Result<(), String>;

fn expect(condition: bool, what: impl FnOnce() -> String) -> Check {
    if condition { Ok(()) } else { Err(what()) }
}

impl Session<'_> {
    /// Sends a request; fails on a response that breaks the contract.
    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<String>,
        headers: &[(&str, String)],
    ) -> Result<(StatusCode, Value), String> {
        let path = reqwest::Url::parse(&url)
            .map_err(|e| e.to_string())?
            .path()
            .to_string();
        let mut request = self
            .http
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(10));
        let token =
            if path.starts_with("/payments/success/") || path.starts_with("/payments/failed/") {
                self.target
                    .settle_token
                    .as_ref()
                    .or(self.target.token.as_ref())
            } else {
                self.target.token.as_ref()
            };
        if let Some(token) = token
            && !path.starts_with("/internal/")
            && !headers.iter().any(|(name, _)| *name == "authorization")
        {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let problems = self.contract.check(
            method.as_str(),
            &path,
            status.as_u16(),
            &response_headers,
            &bytes,
        );
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn json(
        &self,
        method: Method,
        base: &str,
        path: &str,
        body: Value,
    ) -> Result<(StatusCode, Value), String> {
        let headers = [("content-type", "application/json".to_string())];
        self.call(
            method,
            format!("{base}{path}"),
            Some(body.to_string()),
            &headers,
        )
        .await
    }

    async fn get(&self, base: &str, path: &str) -> Result<(StatusCode, Value), String> {
        self.call(Method::GET, format!("{base}{path}"), None, &[])
            .await
    }

    async fn new_order(&self, quantity: i64, price: i64) -> Result<Value, String> {
        let body = json!({"item_name": "conformance check", "quantity": quantity, "price": price});
        let (status, reply) = self
            .json(Method::POST, &self.target.order_url, "/orders", body)
            .await?;
        expect(status == StatusCode::OK, || {
            format!("create_order answered {status}: {reply}")
        })?;
        Ok(reply["data"].clone())
    }

    async fn create_and_read(&self) -> Check {
        let order = self.new_order(3, 250).await?;
        expect(
            order["total_amount"] == 750 && order["status"] == "pending",
            || format!("created {order}"),
        )?;
        let (status, reply) = self
            .get(
                &self.target.order_url,
                &format!("/orders/{}", order["id"].as_str().unwrap_or("")),
            )
            .await?;
        expect(
            status == StatusCode::OK && reply["data"]["id"] == order["id"],
            || format!("get_order answered {status}: {reply}"),
        )
    }

    async fn pagination(&self) -> Check {
        let mine = [
            self.new_order(1, 1).await?["id"].clone(),
            self.new_order(1, 2).await?["id"].clone(),
        ];
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100_000 {
            let query = match &token {
                Some(token) => format!("/orders?limit=1000&page_token={token}"),
                None => "/orders?limit=1000".to_string(),
            };
            let (status, page) = self.get(&self.target.order_url, &query).await?;
            expect(status == StatusCode::OK, || {
                format!("list_orders answered {status}")
            })?;
            seen.extend(
                page["data"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| o["id"].clone()),
            );
            match page["next_page"].as_str() {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        let (_, first) = self.get(&self.target.order_url, "/orders?limit=1").await?;
        expect(
            first["data"].as_array().is_some_and(|d| d.len() == 1)
                && first["next_page"].is_string(),
            || {
                format!(
                    "limit=1 with several orders should give one order and a next_page: {first}"
                )
            },
        )?;
        for id in &mine {
            let count = seen.iter().filter(|s| *s == id).count();
            expect(count == 1, || format!("order {id} listed {count} times"))?;
        }
        Ok(())
    }

    async fn update_and_delete(&self) -> Check {
        let order = self.new_order(1, 100).await?;
        let path = format!("/orders/{}", order["id"].as_str().unwrap_or(""));
        let body = json!({"item_name": "changed", "quantity": 4, "price": 100});
        let (status, reply) = self
            .json(Method::PUT, &self.target.order_url, &path, body)
            .await?;
        expect(
            status == StatusCode::OK && reply["data"]["total_amount"] == 400,
            || format!("update_order: {status} {reply}"),
        )?;
        let (status, _) = self
            .call(
                Method::DELETE,
                format!("{}{path}", self.target.order_url),
                None,
                &[],
            )
            .await?;
        expect(status == StatusCode::OK, || {
            format!("delete_order answered {status}")
        })?;
        let (status, reply) = self.get(&self.target.order_url, &path).await?;
        expect(
            status == StatusCode::NOT_FOUND && reply["data"]["error_code"] == "ORDER_NOT_FOUND",
            || format!("after delete: {status} {reply}"),
        )
    }

    async fn bad_requests(&self) -> Check {
        let cases = [
            (
                json!({"item_name": "x", "quantity": 0, "price": 1}),
                400,
                "INVALID_BODY",
            ),
            (
                json!({"item_name": "x", "quantity": 1, "price": 0}),
                400,
                "INVALID_BODY",
            ),
            (
                json!({"item_name": "  ", "quantity": 1, "price": 1}),
                400,
                "INVALID_BODY",
            ),
            (
                json!({"item_name": "x", "quantity": 1, "price": 1, "extra": true}),
                400,
                "INVALID_BODY",
            ),
            (
                json!({"item_name": "x", "quantity": 2, "price": i64::MAX}),
                400,
                "TOTAL_AMOUNT_OVERFLOW",
            ),
        ];
        for (body, code, error_code) in cases {
            let (status, reply) = self
                .json(
                    Method::POST,
                    &self.target.order_url,
                    "/orders",
                    body.clone(),
                )
                .await?;
            expect(
                status.as_u16() == code && reply["data"]["error_code"] == error_code,
                || format!("{body}: {status} {reply}"),
            )?;
        }
        let (status, reply) = self
            .get(&self.target.order_url, "/orders/not-a-uuid")
            .await?;
        expect(
            status == StatusCode::BAD_REQUEST
                && reply["data"]["error_code"] == "INVALID_PATH_PARAMETER",
            || format!("bad id: {status}"),
        )?;
        let headers = [("content-type", "text/plain".to_string())];
        let (status, _) = self
            .call(
                Method::POST,
                format!("{}/orders", self.target.order_url),
                Some("{}".into()),
                &headers,
            )
            .await?;
        expect(status == StatusCode::UNSUPPORTED_MEDIA_TYPE, || {
            format!("text/plain body: {status}")
        })
    }

    async fn unsigned_callback(&self) -> Check {
        let order = self.new_order(1, 10).await?;
        let body = json!({"order_id": order["id"], "payment_id": Uuid::new_v4(), "payment_status": "success", "amount": 10});
        let (status, reply) = self
            .json(
                Method::POST,
                &self.target.order_url,
                "/internal/payment-callback",
                body,
            )
            .await?;
        expect(
            status == StatusCode::UNAUTHORIZED && reply["data"]["error_code"] == "UNAUTHORIZED",
            || format!("{status} {reply}"),
        )?;
        let (_, after) = self
            .get(
                &self.target.order_url,
                &format!("/orders/{}", order["id"].as_str().unwrap_or("")),
            )
            .await?;
        expect(after["data"]["status"] == "pending", || {
            "an unsigned callback changed the order".to_string()
        })
    }

    /// A public operation refuses a missing or malformed token with its
    /// challenge, and a customer's token cannot settle.
    async fn unauthenticated(&self) -> Check {
        let url = format!("{}/orders", self.target.order_url);
        for (case, authorization, code) in [
            ("no token", None, "UNAUTHORIZED"),
            (
                "malformed token",
                Some("Bearer not-a-token"),
                "INVALID_TOKEN",
            ),
        ] {
            let (status, reply) = self.challenged(&url, authorization).await?;
            expect(
                status == StatusCode::UNAUTHORIZED && reply["data"]["error_code"] == code,
                || format!("{case}: {status} {reply}"),
            )?;
        }
        if self.target.settle_token.is_some() {
            let order = self.new_order(1, 10).await?;
            let body = json!({"order_id": order["id"], "amount": 10, "provider": "conformance"});
            let (_, payment) = self
                .json(Method::POST, &self.target.payment_url, "/payments", body)
                .await?;
            let id = payment["data"]["id"].as_str().unwrap_or("");
            let url = format!("{}/payments/failed/{id}", self.target.payment_url);
            let customer = format!("Bearer {}", self.target.token.as_deref().unwrap_or(""));
            let (status, reply) = self
                .call(Method::PUT, url, None, &[("authorization", customer)])
                .await?;
            expect(
                status == StatusCode::FORBIDDEN
                    && reply["data"]["error_code"] == "INSUFFICIENT_SCOPE",
                || format!("a customer settling: {status} {reply}"),
            )?;
        }
        Ok(())
    }

    /// `GET url` with only `authorization` as credentials; fails on an
    /// answer that breaks the contract or has no challenge.
    async fn challenged(
        &self,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Value), String> {
        let path = reqwest::Url::parse(url)
            .map_err(|e| e.to_string())?
            .path()
            .to_string();
        let mut request = self.http.get(url).timeout(Duration::from_secs(10));
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let problems = self
            .contract
            .check("GET", &path, status.as_u16(), &headers, &bytes);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        if !headers.contains_key(reqwest::header::WWW_AUTHENTICATE) {
            return Err(format!("{status} without a WWW-Authenticate challenge"));
        }
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn signed_callback(&self) -> Check {
        let secret = self.target.secret.as_deref().unwrap_or_default();
        let order = self.new_order(1, 10).await?;
        let body = json!({"order_id": order["id"], "payment_id": Uuid::new_v4(), "payment_status": "failed", "amount": 10}).to_string();
        let url = format!("{}/internal/payment-callback", self.target.order_url);
        let mut first_update = Value::Null;
        let mut first_headers = Vec::new();
        for attempt in 0..2 {
            // Every attempt is a new message: a signed request is accepted once.
            let id = format!("msg_conformance_{}", Uuid::new_v4().simple());
            let timestamp = unix_now();
            let headers = vec![
                ("content-type", "application/json".to_string()),
                ("webhook-id", id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                (
                    "webhook-signature",
                    sign(
                        secret,
                        &id,
                        timestamp,
                        "/internal/payment-callback",
                        body.as_bytes(),
                    ),
                ),
            ];
            let (status, reply) = self
                .call(Method::POST, url.clone(), Some(body.clone()), &headers)
                .await?;
            if attempt == 0 {
                first_headers = headers;
            }
            expect(
                status == StatusCode::OK && reply["data"]["status"] == "failed",
                || format!("attempt {attempt}: {status} {reply}"),
            )?;
            if attempt == 0 {
                first_update = reply["data"]["updated_at"].clone();
            } else {
                expect(reply["data"]["updated_at"] == first_update, || {
                    "the repeated report changed the order".to_string()
                })?;
            }
        }
        let (status, reply) = self
            .call(Method::POST, url, Some(body), &first_headers)
            .await?;
        expect(
            status == StatusCode::UNAUTHORIZED && reply["data"]["error_code"] == "UNAUTHORIZED",
            || format!("a replayed signed request: {status} {reply}"),
        )
    }

    async fn payment_refusals(&self) -> Check {
        let body = json!({"order_id": Uuid::new_v4(), "amount": 10, "provider": "conformance"});
        let (status, reply) = self
            .json(Method::POST, &self.target.payment_url, "/payments", body)
            .await?;
        expect(
            status == StatusCode::NOT_FOUND && reply["data"]["error_code"] == "ORDER_NOT_FOUND",
            || format!("unknown order: {status} {reply}"),
        )?;
        let order = self.new_order(2, 50).await?;
        let body = json!({"order_id": order["id"], "amount": 99, "provider": "conformance"});
        let (status, reply) = self
            .json(Method::POST, &self.target.payment_url, "/payments", body)
            .await?;
        expect(
            status == StatusCode::BAD_REQUEST && reply["data"]["error_code"] == "AMOUNT_MISMATCH",
            || format!("wrong amount: {status} {reply}"),
        )
    }

    async fn payment_flow(&self) -> Check {
        let order = self.new_order(2, 50).await?;
        let order_id = order["id"].as_str().unwrap_or("").to_string();
        let body = json!({"order_id": order_id, "amount": 100, "provider": "conformance"});
        let (status, payment) = self
            .json(
                Method::POST,
                &self.target.payment_url,
                "/payments",
                body.clone(),
            )
            .await?;
        expect(
            status == StatusCode::OK && payment["data"]["status"] == "pending",
            || format!("create_payment: {status} {payment}"),
        )?;
        let (_, again) = self
            .json(Method::POST, &self.target.payment_url, "/payments", body)
            .await?;
        expect(again["data"]["id"] == payment["data"]["id"], || {
            "a repeated create made another payment".to_string()
        })?;
        let payment_id = payment["data"]["id"].as_str().unwrap_or("").to_string();
        let settle = format!("{}/payments/success/{payment_id}", self.target.payment_url);
        let (status, settled) = self.call(Method::PUT, settle.clone(), None, &[]).await?;
        expect(
            status == StatusCode::OK && settled["data"]["paid_at"].is_string(),
            || format!("mark_payment_success: {status}"),
        )?;
        let started = Instant::now();
        loop {
            let (_, current) = self
                .get(&self.target.order_url, &format!("/orders/{order_id}"))
                .await?;
            let (_, payment) = self
                .get(&self.target.payment_url, &format!("/payments/{payment_id}"))
                .await?;
            if current["data"]["status"] == "paid"
                && payment["data"]["order_notification"] == "delivered"
            {
                break;
            }
            expect(started.elapsed() < Duration::from_secs(10), || {
                format!(
                    "the order was not paid and notified within 10 s; last seen: order {}, \
                     notification {}",
                    current["data"]["status"], payment["data"]["order_notification"]
                )
            })?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, reply) = self.call(Method::PUT, settle, None, &[]).await?;
        expect(
            status == StatusCode::CONFLICT && reply["data"]["error_code"] == "PAYMENT_NOT_PENDING",
            || format!("settle again: {status}"),
        )
    }

    async fn outside_the_contract(&self) -> Check {
        let (status, reply) = self.get(&self.target.order_url, "/no-such-path").await?;
        expect(
            status == StatusCode::NOT_FOUND && reply["request_id"].is_string(),
            || format!("{status} {reply}"),
        )
    }
}

/// The `webhook-signature` value for `body` sent to `POST target` as
/// message `id` at `timestamp` (the signature covers the method, the path
/// and the body); the secret was checked when the command started.
fn sign(secret: &str, id: &str, timestamp: i64, target: &str, body: &[u8]) -> String {
    let mut content = format!("POST {target}\n").into_bytes();
    content.extend_from_slice(body);
    standardwebhooks::Webhook::new(secret)
        .and_then(|w| w.sign(id, timestamp, &content))
        .expect("a secret checked at start-up and a UTF-8 body")
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
