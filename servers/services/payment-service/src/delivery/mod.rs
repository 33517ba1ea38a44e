//! Delivering payment outcomes to order-service, at least once: the one
//! home of the protocol. A settlement calls [`Delivery::settle`] and the
//! expiry [`Delivery::expire_stale`]; everything else (claims, leases,
//! attempts, retries, retention) happens in here.
//!
//! - `outbox`: every statement on the outbox table, `order_notifications`.
//! - `dispatcher`: the delivery loop, its wake-ups, retries and leases.
//! - `retention`: removing delivered outcomes past their retention.
//!
//! A settlement records its outcome already claimed by the settling
//! instance and hands it to that instance's dispatcher, which delivers it
//! at once: no claim statement, no wake-up of other instances, none of
//! which could take it before the claim's lease ends (measured: claims,
//! which step over the index entries that delivered records leave behind,
//! took two thirds of PostgreSQL's time in the whole flow). If the instance
//! dies first, the lease ends and any instance claims the record.
//!
//! Other outcomes (those of expired payments, failed attempts due again,
//! leases that ran out) are claimed. The dispatcher claims as soon as such
//! an outcome is committed: the instance that recorded it wakes its own
//! dispatcher directly, and every instance hears of it through PostgreSQL
//! LISTEN/NOTIFY. It also polls, because a notification is only a hint: it
//! is lost while the listening connection is down.
//!
//! The NOTIFY is sent after the commit that recorded the outcome, not
//! inside it: PostgreSQL serialises the commits of notifying transactions
//! under one lock held across the commit's flush to disk, so notifying
//! inside would allow one commit per disk flush (measured: pgbench settled
//! 461/s with the NOTIFY inside, against thousands without). Sent on its
//! own, a NOTIFY writes nothing to disk; a burst of outcomes shares one.
//!
//! Failed deliveries are retried with full-jitter exponential backoff, or
//! after the `Retry-After` order-service asked for if that is longer (at
//! most an hour), until the retry window ends. Only order-service's own
//! refusal of the outcome is final: its envelope with one of the codes it
//! refuses outcomes with. Any other answer (a proxy's 404 page, another
//! service behind a wrong `ORDER_SERVICE_URL`) is retried, counted and
//! logged with its likely cause. Every attempt ends recorded, even one
//! whose task panicked.

mod dispatcher;
pub(crate) mod outbox;
mod retention;

pub use dispatcher::DispatcherHandle;
pub use outbox::Outbox;

use crate::config::DeliverySettings;
use dispatcher::{DeliveryMetrics, Dispatcher, Wakeup};
use outbox::Claimant;
use payment_api::{Payment, Settlement};
use service_support::database::{Database, DatabaseSettings, DbError};
use service_support::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Where an outcome's delivery stands: the `state` column of
/// `order_notifications`, mapped to and from its text here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt, or under way.
    Pending,
    /// order-service acknowledged it.
    Delivered,
    /// order-service refused it for good.
    Rejected,
    /// Its retry window ended undelivered.
    DeadLetter,
}

impl DeliveryState {
    /// The state as the database holds it.
    pub fn column(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Rejected => "rejected",
            DeliveryState::DeadLetter => "dead_letter",
        }
    }

    /// The state the database holds as `text`.
    pub fn from_column(text: &str) -> Result<Self, DbError> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Rejected,
            DeliveryState::DeadLetter,
        ]
        .into_iter()
        .find(|state| state.column() == text)
        .ok_or_else(|| DbError::UnexpectedValue(format!("delivery state {text:?}")))
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.column())
    }
}

/// What records outcomes for delivery, for the handlers and the expiry.
#[derive(Clone)]
pub struct Delivery {
    /// On the durable pool: an outcome, once recorded, is never lost.
    outbox: Outbox,
    wakeup: Wakeup,
    retry_window: Duration,
    metrics: DeliveryMetrics,
    /// True while the delivery loop runs.
    running: Arc<AtomicBool>,
}

impl Delivery {
    /// Starts delivering: the dispatcher with its wake-ups, and the
    /// retention. Stop them with the returned handle.
    pub fn start(
        settings: &DeliverySettings,
        database: &DatabaseSettings,
        db: &Database,
        orders: order_client::Client,
        metrics: &Metrics,
        log: &slog::Logger,
    ) -> anyhow::Result<(Delivery, DispatcherHandle)> {
        let instance = format!(
            "{}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let delivery_metrics = DeliveryMetrics::default();
        delivery_metrics.register(metrics);
        let running = Arc::new(AtomicBool::new(false));
        let mut handle = Dispatcher {
            // Claims and delivery records need not wait for the disk: a lost
            // one is redone (see `Database::without_flush_wait`). Recording
            // the outcome, in the settlement's own statement, stays durable.
            outbox: Outbox::new(Database::without_flush_wait(database)?),
            client: orders,
            settings: settings.clone(),
            claimant: Claimant {
                instance: instance.clone(),
                lease: Duration::from_millis(settings.lease_ms),
            },
            log: log.new(slog::o!("component" => "dispatcher", "instance" => instance)),
            metrics: delivery_metrics.clone(),
            running: running.clone(),
        }
        .spawn(database.pg_config()?);
        let retention = retention::Retention {
            outbox: Outbox::new(db.clone()),
            keep: Duration::from_secs(settings.retention_secs),
            log: log.new(slog::o!("component" => "retention")),
        }
        .spawn(handle.stopped());
        handle.add_task(retention);
        let delivery = Delivery {
            outbox: Outbox::new(db.clone()),
            wakeup: handle.wakeup(),
            retry_window: Duration::from_secs(settings.retry_window_secs),
            metrics: delivery_metrics,
            running,
        };
        Ok((delivery, handle))
    }

    /// Settles pending payment `id` and records its outcome for
    /// order-service in one statement; this instance's dispatcher delivers
    /// it at once, and should this instance die first, any instance does
    /// once the claim's lease ends. `None` if no pending payment has this
    /// id. `request_id` goes with the outcome, so order-service's log names
    /// the request that settled the payment.
    pub async fn settle(
        &self,
        id: Uuid,
        settlement: Settlement,
        request_id: &str,
    ) -> Result<Option<Payment>, DbError> {
        let settled = self
            .outbox
            .settle_pending(
                id,
                settlement,
                self.retry_window,
                request_id,
                self.wakeup.claimant(),
            )
            .await?;
        Ok(settled.map(|(payment, claimed)| {
            self.wakeup.deliver(claimed);
            payment
        }))
    }

    /// Fails up to `limit` payments pending for longer than `after`,
    /// recording each outcome for order-service, and wakes the dispatchers;
    /// returns their ids.
    pub async fn expire_stale(&self, after: Duration, limit: i64) -> Result<Vec<Uuid>, DbError> {
        let expired = self
            .outbox
            .expire_stale(after, limit, self.retry_window)
            .await?;
        if !expired.is_empty() {
            self.wakeup.outcome_recorded();
        }
        Ok(expired)
    }

    /// Sets the backlog and disagreement gauges, for a scrape. Left as last
    /// scraped when the database does not answer in time.
    pub async fn refresh_gauges(&self) {
        if let Ok(backlog) = self.outbox.backlog().await {
            self.metrics.backlog.set(backlog);
        }
        if let Ok(disagreements) = self.outbox.disagreement_count().await {
            self.metrics.disagreements.set(disagreements);
        }
    }

    /// The readiness check: the delivery loop runs.
    pub fn readiness(&self) -> Result<&'static str, String> {
        if self.running.load(Ordering::SeqCst) {
            Ok("ok")
        } else {
            Err("the outcome dispatcher is not running".to_string())
        }
    }
}
