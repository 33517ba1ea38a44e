//! Each outcome in payment-service's outbox and its deliveries to
//! order-service, as the proxy in front of order-service saw them.
//!
//! payment-service signs every attempt with a `webhook-id` of its own, since
//! order-service acts on a signed call once, so the attempts at one outcome
//! share no `webhook-id`. They share their `x-request-id`: the request's
//! that settled the payment, or the outcome's name when it carried none
//! (`order_notifications.request_id`, else `webhook_id`).

use crate::proxy::Exchange;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The order-service operation that delivers an outcome.
const CALLBACK: &str = "/internal/payment-callback";

/// One outcome and every delivery of it.
#[derive(Debug)]
pub struct Outcome {
    pub payment_id: Uuid,
    /// Its `order_notifications.state`.
    pub state: String,
    /// How often an instance took it on: the settling instance's claim and
    /// each claim after a lease ran out or an attempt failed.
    pub claims: i32,
    pub deliveries: Vec<Exchange>,
}

impl Outcome {
    /// Delivered at least once, and each delivery under a claim of its own:
    /// never more often than it was claimed, never two at once, each signed
    /// with a `webhook-id` of its own. A second delivery is the protocol's
    /// at-least-once (an instance could not record its delivery before its
    /// lease ran out); a delivery no claim accounts for is two instances
    /// sharing a record.
    pub fn assert_each_delivery_claimed(&self) {
        let id = self.payment_id;
        let sent = self.deliveries.len();
        assert!(sent >= 1, "payment {id}'s outcome was never delivered");
        assert!(
            sent <= self.claims as usize,
            "payment {id}'s outcome was delivered {sent} times under {} claims: {:?}",
            self.claims,
            self.deliveries
        );
        for (i, a) in self.deliveries.iter().enumerate() {
            for b in &self.deliveries[i + 1..] {
                assert!(
                    !(a.started < b.finished && b.started < a.finished),
                    "payment {id}'s outcome was in flight twice at once: {a:?} and {b:?}"
                );
                assert_ne!(
                    a.webhook_id, b.webhook_id,
                    "payment {id}'s outcome was sent twice with one webhook-id"
                );
            }
        }
    }

    /// The status of each delivery, in the order they were answered.
    pub fn statuses(&self) -> Vec<u16> {
        self.deliveries.iter().map(|e| e.status).collect()
    }
}

/// Every outcome recorded in payment-service's database `db`, each with
/// the callbacks among `exchanges` that delivered it. Panics on a callback
/// that delivered none of them.
pub async fn outcomes(db: &tokio_postgres::Client, exchanges: Vec<Exchange>) -> Vec<Outcome> {
    let rows = db
        .query(
            "SELECT payment_id, state, attempts, coalesce(request_id, webhook_id) \
             FROM order_notifications ORDER BY payment_id",
            &[],
        )
        .await
        .expect("read the outbox");
    let mut by_request: BTreeMap<String, Outcome> = rows
        .iter()
        .map(|row| {
            let outcome = Outcome {
                payment_id: row.get(0),
                state: row.get(1),
                claims: row.get(2),
                deliveries: Vec::new(),
            };
            (row.get(3), outcome)
        })
        .collect();
    assert_eq!(
        by_request.len(),
        rows.len(),
        "two outcomes were sent under one x-request-id"
    );
    for exchange in exchanges.into_iter().filter(|e| e.path == CALLBACK) {
        let outcome = exchange
            .request_id
            .as_ref()
            .and_then(|id| by_request.get_mut(id));
        match outcome {
            Some(outcome) => outcome.deliveries.push(exchange),
            None => panic!("a callback of no recorded outcome: {exchange:?}"),
        }
    }
    by_request.into_values().collect()
}
