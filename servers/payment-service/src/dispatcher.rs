//! Delivers recorded outcomes to order-service, at least once.
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
//! after the `Retry-After` order-service asked for if that is longer, until
//! the retry window ends; a refusal by order-service (a 4xx other than 401,
//! 408 and 429) is final.

use crate::config::DeliverySettings;
use crate::outbox::{Attempt, Claimant, Claimed, Outbox, WAKE_CHANNEL};
use order_client::types::{PaymentCallback, PaymentOutcome};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use service_support::metrics::Metrics;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_postgres::AsyncMessage;

/// How many records one claim takes at most.
const BATCH: usize = 32;
/// How many deliveries one instance has under way at most.
const IN_FLIGHT: usize = 128;

pub struct Dispatcher {
    pub outbox: Outbox,
    pub client: order_client::Client,
    pub settings: DeliverySettings,
    /// This instance's claims.
    pub claimant: Claimant,
    pub log: slog::Logger,
    pub metrics: DeliveryMetrics,
    /// True while the delivery loop runs, for readiness.
    pub running: Arc<AtomicBool>,
}

/// What delivery did, for Prometheus.
#[derive(Clone, Default)]
pub struct DeliveryMetrics {
    attempts: Counter,
    delivered: Counter,
    failed: Counter,
    rejected: Counter,
    dead_letters: Counter,
    /// Set at scrape time.
    pub backlog: Gauge,
    /// Outcomes order-service refused or never acknowledged; set at scrape time.
    pub disagreements: Gauge,
}

impl DeliveryMetrics {
    pub fn register(&self, metrics: &Metrics) {
        metrics.register(
            "callback_delivery_attempts",
            "Attempts to deliver an outcome to order-service",
            self.attempts.clone(),
        );
        metrics.register(
            "callback_delivered",
            "Outcomes order-service acknowledged",
            self.delivered.clone(),
        );
        metrics.register(
            "callback_delivery_failures",
            "Attempts that failed and will be retried",
            self.failed.clone(),
        );
        metrics.register(
            "callback_rejected",
            "Outcomes order-service refused for good",
            self.rejected.clone(),
        );
        metrics.register(
            "callback_dead_letters",
            "Outcomes whose retry window ended undelivered",
            self.dead_letters.clone(),
        );
        metrics.register(
            "callback_backlog",
            "Outcomes waiting for delivery",
            self.backlog.clone(),
        );
        metrics.register(
            "callback_disagreements",
            "Outcomes order-service refused or never acknowledged in their retry window (see payment-service reconcile)",
            self.disagreements.clone(),
        );
    }
}

/// A running dispatcher and its listener.
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    wakeup: Wakeup,
}

/// Tells dispatchers that an outcome has been committed.
#[derive(Clone)]
pub struct Wakeup {
    /// This instance's dispatcher.
    local: Arc<Notify>,
    /// The announcer, which NOTIFYs every instance's.
    everyone: Arc<Notify>,
    /// Outcomes recorded already claimed for this instance's dispatcher.
    handed: mpsc::UnboundedSender<Claimed>,
    claimant: Claimant,
}

impl Wakeup {
    /// Call after the commit that recorded an outcome nobody has claimed.
    pub fn outcome_recorded(&self) {
        self.local.notify_one();
        self.everyone.notify_one();
    }

    /// The claim to record an outcome with, for [`Wakeup::deliver`].
    pub fn claimant(&self) -> &Claimant {
        &self.claimant
    }

    /// Call after the commit that recorded an outcome claimed by
    /// [`Wakeup::claimant`]: this instance's dispatcher delivers it. Should
    /// the dispatcher have stopped, the lease ends and it is claimed anew.
    pub fn deliver(&self, claimed: Claimed) {
        let _ = self.handed.send(claimed);
    }
}

impl DispatcherHandle {
    pub fn wakeup(&self) -> Wakeup {
        self.wakeup.clone()
    }

    /// Turns true when the dispatcher is told to stop.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// A task that stops with the dispatcher, and is waited for with it.
    pub fn add_task(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Stops claiming, lets deliveries in flight finish, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl Dispatcher {
    pub fn spawn(self, listen_config: tokio_postgres::Config) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(false);
        let (handed, handed_over) = mpsc::unbounded_channel();
        let wakeup = Wakeup {
            local: Arc::new(Notify::new()),
            everyone: Arc::new(Notify::new()),
            handed,
            claimant: self.claimant.clone(),
        };
        let listener = tokio::spawn(listen(
            listen_config,
            wakeup.local.clone(),
            self.log.clone(),
            stopped.clone(),
        ));
        let announcer = tokio::spawn(announce(
            self.outbox.clone(),
            wakeup.everyone.clone(),
            self.log.clone(),
            stopped.clone(),
        ));
        let dispatcher =
            tokio::spawn(Arc::new(self).run(wakeup.local.clone(), handed_over, stopped));
        DispatcherHandle {
            stop,
            tasks: vec![dispatcher, listener, announcer],
            wakeup,
        }
    }

    /// Keeps up to [`IN_FLIGHT`] deliveries going: starts those handed
    /// over, claims due records whenever there is room, and otherwise waits
    /// for a delivery to end, a hand-over, a wake-up, the poll, or the stop.
    /// Under load a slow delivery does not hold back the records claimed
    /// after it. Each delivery is a task of
    /// its own, so it progresses (and gives back its database connection)
    /// while this loop waits on a claim.
    async fn run(
        self: Arc<Self>,
        wake: Arc<Notify>,
        mut handed_over: mpsc::UnboundedReceiver<Claimed>,
        mut stopped: watch::Receiver<bool>,
    ) {
        self.running.store(true, Ordering::SeqCst);
        let _stopped = RunningFlag(self.running.clone());
        // An interval rather than a fresh sleep per wait, so deliveries
        // ending one after another cannot keep postponing the poll.
        let mut poll = tokio::time::interval(Duration::from_millis(self.settings.poll_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deliveries = JoinSet::new();
        // Whether the last claim found everything due: then only news
        // (a wake-up, the poll) makes claiming again worthwhile.
        let mut caught_up = false;
        loop {
            if *stopped.borrow() {
                // Deliveries under way finish, and those handed over; nothing
                // new is claimed.
                handed_over.close();
                while let Some(claimed) = handed_over.recv().await {
                    self.start(&mut deliveries, claimed);
                }
                while deliveries.join_next().await.is_some() {}
                return;
            }
            // Claims come in batches: refilling one slot at a time would
            // cost a statement per delivery.
            let room = IN_FLIGHT - deliveries.len();
            if (room >= BATCH || deliveries.is_empty()) && !caught_up {
                let asked = room.min(BATCH);
                match self.outbox.claim(&self.claimant, asked as i64).await {
                    Ok(batch) => {
                        caught_up = batch.len() < asked;
                        for claimed in batch {
                            self.start(&mut deliveries, claimed);
                        }
                    }
                    Err(error) => {
                        slog::warn!(self.log, "cannot claim outcomes to deliver"; "error" => %error);
                        caught_up = true;
                    }
                }
                continue;
            }
            tokio::select! {
                Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
                Some(claimed) = handed_over.recv(), if deliveries.len() < IN_FLIGHT => {
                    self.start(&mut deliveries, claimed);
                }
                _ = wake.notified() => caught_up = false,
                _ = poll.tick() => caught_up = false,
                _ = stopped.changed() => {}
            }
        }
    }

    /// Starts delivering `claimed` as a task of its own among `deliveries`.
    fn start(self: &Arc<Self>, deliveries: &mut JoinSet<()>, claimed: Claimed) {
        let dispatcher = self.clone();
        deliveries.spawn(async move { dispatcher.deliver(claimed).await });
    }

    async fn deliver(&self, claimed: Claimed) {
        let body = PaymentCallback {
            order_id: claimed.order_id,
            payment_id: claimed.payment_id,
            payment_status: if claimed.success {
                PaymentOutcome::Success
            } else {
                PaymentOutcome::Failed
            },
            amount: NonZeroU64::new(claimed.amount.max(1) as u64).expect("at least 1"),
        };
        // Sent as x-request-id, so order-service's log names the request that
        // settled the payment.
        let request_id = claimed.request_id.as_deref().unwrap_or(&claimed.webhook_id);
        let client = self.client.with_request_id(request_id);
        self.metrics.attempts.inc();
        let attempt = match client.payment_callback(&claimed.webhook_id, &body).await {
            Ok(_) => Attempt::Delivered,
            Err(order_client::Error::ErrorResponse(response)) if is_refusal(response.status()) => {
                Attempt::Rejected(format!(
                    "{} {}: {}",
                    response.status().as_u16(),
                    response.data.error_code,
                    response.data.message
                ))
            }
            Err(error) => {
                let backoff = self.backoff(claimed.attempts);
                Attempt::Failed {
                    delay: retry_after(&error).map_or(backoff, |asked| asked.max(backoff)),
                    error: error.to_string(),
                }
            }
        };
        let log = self.log.new(slog::o!(
            "payment_id" => claimed.payment_id.to_string(),
            "webhook_id" => claimed.webhook_id.clone(),
            "attempt" => claimed.attempts,
        ));
        match self.outbox.record(&claimed, &attempt).await {
            Ok(state) => match (&attempt, state) {
                (Attempt::Delivered, _) => {
                    self.metrics.delivered.inc();
                    slog::info!(log, "outcome delivered to order-service")
                }
                (Attempt::Rejected(reason), _) => {
                    self.metrics.rejected.inc();
                    slog::error!(log, "order-service refused the outcome; not retrying"; "reason" => reason)
                }
                (Attempt::Failed { error, .. }, "dead_letter") => {
                    self.metrics.dead_letters.inc();
                    slog::error!(log, "retry window over; outcome kept as a dead letter"; "error" => error)
                }
                (Attempt::Failed { error, delay }, _) => {
                    self.metrics.failed.inc();
                    slog::warn!(log, "delivery failed; will retry";
                    "error" => error, "retry_in_ms" => delay.as_millis() as u64)
                }
            },
            // The claim lapses and the record is delivered again later.
            Err(error) => slog::warn!(log, "cannot record the delivery attempt"; "error" => %error),
        }
    }

    /// Full jitter: a uniform delay up to `min(cap, base × 2^(attempt-1))`.
    fn backoff(&self, attempt: i32) -> Duration {
        let exponent = attempt.clamp(1, 32) as u32 - 1;
        let bound = self
            .settings
            .retry_base_ms
            .saturating_mul(1 << exponent)
            .min(self.settings.retry_cap_ms);
        Duration::from_millis(rand::rng().random_range(0..=bound))
    }
}

/// Whether order-service refused the outcome for good: a 4xx other than
/// 408 and 429 (try later) and 401 (a secret being rotated or misconfigured
/// is fixed by operators; the outcome must not be lost meanwhile).
fn is_refusal(status: reqwest::StatusCode) -> bool {
    use reqwest::StatusCode;
    status.is_client_error()
        && ![
            StatusCode::UNAUTHORIZED,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
        ]
        .contains(&status)
}

/// The wait a failed answer asked for with `Retry-After` (RFC 9110: seconds,
/// or an HTTP date).
fn retry_after<E>(error: &order_client::Error<E>) -> Option<Duration> {
    let headers = match error {
        order_client::Error::ErrorResponse(response) => response.headers(),
        order_client::Error::UnexpectedResponse(response) => response.headers(),
        _ => return None,
    };
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// Clears the running flag when the delivery loop ends, however it ends.
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// NOTIFYs every instance's dispatcher after outcomes are recorded, one
/// NOTIFY at a time: outcomes recorded while one is being sent share the next.
async fn announce(
    outbox: Outbox,
    recorded: Arc<Notify>,
    log: slog::Logger,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = recorded.notified() => {}
            _ = stopped.changed() => return,
        }
        if let Err(error) = outbox.announce().await {
            // The other instances find the outcome when they next poll.
            slog::warn!(log, "cannot notify the other instances"; "error" => %error);
        }
    }
}

/// Keeps a connection LISTENing on the wake channel, reconnecting after
/// failures; each notification, and each (re)subscription, wakes the
/// dispatcher, so nothing that happened while unsubscribed waits for the poll.
async fn listen(
    config: tokio_postgres::Config,
    wake: Arc<Notify>,
    log: slog::Logger,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let session = async {
            let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
            let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
            let pump = tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => {
                            if notified.send(()).is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            client
                .batch_execute(&format!("LISTEN {WAKE_CHANNEL}"))
                .await?;
            wake.notify_one();
            while notifications.recv().await.is_some() {
                wake.notify_one();
            }
            pump.abort();
            Ok::<(), tokio_postgres::Error>(())
        };
        tokio::select! {
            result = session => {
                if let Err(error) = result {
                    slog::warn!(log, "wake-up channel lost; polling until it is back"; "error" => %error);
                }
            }
            _ = stopped.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.changed() => return,
        }
    }
}
