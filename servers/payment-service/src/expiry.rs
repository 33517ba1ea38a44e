//! Payments nobody settles do not keep their orders frozen for ever: once a
//! payment has been pending for the expiry time (24 h by default, like a
//! checkout session), it fails, and its failure reaches order-service
//! through the outbox like any other outcome, failing the order.

use crate::dispatcher::Wakeup;
use crate::store::PaymentStore;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How many payments one statement expires at most.
const BATCH: i64 = 100;

pub struct Expiry {
    pub store: PaymentStore,
    /// How long a payment may stay pending.
    pub after: Duration,
    /// The retry window of the outcomes it records.
    pub retry_window: Duration,
    pub wakeup: Wakeup,
    pub log: slog::Logger,
}

impl Expiry {
    pub fn spawn(self, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stopped))
    }

    /// Looks for stale payments every tenth of the expiry time (between
    /// 100 ms and a minute), so a payment fails at most that late.
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let every = (self.after / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return,
            }
            loop {
                match self
                    .store
                    .expire_stale(self.after, BATCH, self.retry_window)
                    .await
                {
                    Ok(expired) if expired.is_empty() => break,
                    Ok(expired) => {
                        slog::info!(self.log, "pending payments expired; their orders will fail";
                            "count" => expired.len(),
                            "after_secs" => self.after.as_secs());
                        self.wakeup.outcome_recorded();
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
