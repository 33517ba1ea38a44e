//! Payments nobody settles do not keep their orders frozen for ever: once a
//! payment has been pending for the expiry time (24 h by default, like a
//! checkout session), it fails, and its failure reaches order-service
//! through the outbox like any other outcome, failing the order.
//!
//! Nor do payments nobody finished creating: an intent whose create stopped
//! or went unanswered is resolved once it is older than any create runs
//! (order-service releases it or confirms it attached; see
//! [`payments::resolve`]), so an order never waits for a payment that
//! payment-service does not hold.

use crate::delivery::Delivery;
use crate::payments::{self, Resolution};
use crate::store::PaymentStore;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How many payments one statement expires at most, and how many intents
/// one round resolves at most.
const BATCH: i64 = 100;
/// Failures in a row that end a round of resolving intents.
const FAILURES_PER_ROUND: usize = 3;

pub struct Expiry {
    pub store: PaymentStore,
    /// How long a payment may stay pending.
    pub after: Duration,
    /// The retry window of the outcomes it records.
    pub delivery: Delivery,
    /// order-service, which resolves intents.
    pub orders: order_client::Client,
    /// How old an intent is once no create can still be finishing it.
    pub intents_after: Duration,
    pub log: slog::Logger,
}

impl Expiry {
    pub fn spawn(self, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stopped))
    }

    /// Resolves up to a batch of intents nobody finished, oldest first. One
    /// that cannot be resolved now (its order's row held, a bad answer) is
    /// left for the next round and the others go on; after
    /// [`FAILURES_PER_ROUND`] failures in a row (order-service or the
    /// database not answering) the rest wait for the next round too, rather
    /// than each wait for its own timeout.
    async fn resolve_stale_intents(&self) {
        let stale = match self.store.stale_intents(self.intents_after, BATCH).await {
            Ok(stale) => stale,
            Err(error) => {
                slog::warn!(self.log, "cannot look for unfinished payments"; "error" => %error);
                return;
            }
        };
        let mut failures = 0;
        for intent in stale {
            match payments::resolve(&self.store, &self.orders, &intent).await {
                Ok(resolution) => {
                    failures = 0;
                    let became = match resolution {
                        Resolution::Attached(_) => "found attached: recorded",
                        Resolution::Released(_) => "released by order-service: forgotten",
                    };
                    slog::info!(self.log, "unfinished payment resolved";
                        "payment_id" => %intent.id, "order_id" => %intent.order_id,
                        "became" => became);
                }
                Err(error) => {
                    failures += 1;
                    slog::warn!(self.log, "cannot resolve an unfinished payment yet";
                        "payment_id" => %intent.id, "order_id" => %intent.order_id,
                        "error" => %error);
                    if failures == FAILURES_PER_ROUND {
                        return;
                    }
                }
            }
        }
    }

    /// Looks for stale payments every tenth of the expiry time (between
    /// 100 ms and a minute), so a payment fails at most that late, and for
    /// unfinished intents every half of their age limit (at most a minute),
    /// so an order waits at most about twice that for one.
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let ticker = |every: Duration| {
            let mut tick = tokio::time::interval(
                every.clamp(Duration::from_millis(100), Duration::from_secs(60)),
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        };
        let mut payments_tick = ticker(self.after / 10);
        let mut intents_tick = ticker(self.intents_after / 2);
        loop {
            tokio::select! {
                _ = payments_tick.tick() => {}
                _ = intents_tick.tick() => {
                    self.resolve_stale_intents().await;
                    continue;
                }
                _ = stopped.changed() => return,
            }
            loop {
                match self.delivery.expire_stale(self.after, BATCH).await {
                    Ok(expired) if expired.is_empty() => break,
                    Ok(expired) => {
                        slog::info!(self.log, "pending payments expired; their orders will fail";
                            "count" => expired.len(),
                            "after_secs" => self.after.as_secs());
                        if (expired.len() as i64) < BATCH {
                            break;
                        }
                    }
                    Err(error) => {
                        slog::warn!(self.log, "cannot expire stale payments"; "error" => %error);
                        break;
                    }
                }
            }
        }
    }
}
