//! The outbox does not grow for ever: a delivered outcome's record is
//! removed once `CALLBACK_RETENTION_SECS` have passed since its delivery,
//! in batches, so that the table holds what is under way and a retention's
//! worth of history, whatever the traffic. The payment keeps when its
//! outcome was delivered. Idempotency keys are pruned by their own task
//! (`service_support::idempotency`).

use super::Outbox;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How many records one statement removes at most.
const BATCH: i64 = 1000;

pub struct Retention {
    pub outbox: Outbox,
    /// How long a delivered outcome's record is kept.
    pub keep: Duration,
    pub log: slog::Logger,
}

impl Retention {
    pub fn spawn(self, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stopped))
    }

    /// Looks for records past their retention every tenth of it (between a
    /// second and an hour), and removes them a batch at a time.
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let every = (self.keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => return,
            }
            loop {
                match self.outbox.prune_delivered(self.keep, BATCH).await {
                    Ok(removed) if removed > 0 => {
                        slog::info!(self.log, "delivered outcomes past their retention removed";
                            "count" => removed);
                        if removed < BATCH as u64 {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(error) => {
                        slog::warn!(self.log, "cannot remove delivered outcomes"; "error" => %error);
                        break;
                    }
                }
            }
        }
    }
}
