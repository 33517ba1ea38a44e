//! The delivery loop: starts the outcomes handed over by settlements,
//! claims the others, sends each once and records what came of it; and
//! the listener and announcer of wake-ups (see the module above for the
//! protocol).

use super::DeliveryState;
use super::outbox::{Attempt, Claimant, Claimed, Outbox, WAKE_CHANNEL};
use crate::config::DeliverySettings;
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
/// How many settled outcomes may wait to be handed to this instance's
/// dispatcher; past that a settlement leaves its outcome to be claimed once
/// its lease ends (see [`Wakeup::deliver`]).
const HAND_OVER: usize = 1024;
/// The longest wait a `Retry-After` can ask for.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);
/// The codes with which order-service refuses an outcome for good.
const REFUSALS: [&str; 4] = [
    "ORDER_NOT_FOUND",
    "ORDER_ALREADY_SETTLED",
    "ORDER_PAYMENT_IN_PROGRESS",
    "AMOUNT_MISMATCH",
];

pub(super) struct Dispatcher {
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
pub(super) struct DeliveryMetrics {
    attempts: Counter,
    delivered: Counter,
    failed: Counter,
    rejected: Counter,
    dead_letters: Counter,
    unexpected: Counter,
    handover_full: Counter,
    /// Set at scrape time.
    pub backlog: Gauge,
    /// Outcomes order-service refused or never acknowledged; set at scrape time.
    pub disagreements: Gauge,
}

impl DeliveryMetrics {
    pub(super) fn register(&self, metrics: &Metrics) {
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
            "callback_unexpected_answers",
            "Attempts answered by something other than order-service (a proxy, a wrong ORDER_SERVICE_URL); retried",
            self.unexpected.clone(),
        );
        metrics.register(
            "callback_handover_full",
            "Settled outcomes left to be claimed after their lease because the hand-over to the dispatcher was full",
            self.handover_full.clone(),
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
pub(super) struct Wakeup {
    /// This instance's dispatcher.
    local: Arc<Notify>,
    /// The announcer, which NOTIFYs every instance's.
    everyone: Arc<Notify>,
    /// Outcomes recorded already claimed for this instance's dispatcher.
    handed: mpsc::Sender<Claimed>,
    claimant: Claimant,
    metrics: DeliveryMetrics,
}

impl Wakeup {
    /// Call after the commit that recorded an outcome nobody has claimed.
    pub(super) fn outcome_recorded(&self) {
        self.local.notify_one();
        self.everyone.notify_one();
    }

    /// The claim to record an outcome with, for [`Wakeup::deliver`].
    pub(super) fn claimant(&self) -> &Claimant {
        &self.claimant
    }

    /// Call after the commit that recorded an outcome claimed by
    /// [`Wakeup::claimant`]: this instance's dispatcher delivers it. Should
    /// the dispatcher have stopped, or have [`HAND_OVER`] outcomes waiting
    /// already, the lease ends and it is claimed anew: never lost, only
    /// later, and the settlement does not wait.
    pub(super) fn deliver(&self, claimed: Claimed) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.handed.try_send(claimed) {
            self.metrics.handover_full.inc();
        }
    }
}

impl DispatcherHandle {
    pub(super) fn wakeup(&self) -> Wakeup {
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
    pub(super) fn spawn(self, listen_config: tokio_postgres::Config) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(false);
        let (handed, handed_over) = mpsc::channel(HAND_OVER);
        let wakeup = Wakeup {
            local: Arc::new(Notify::new()),
            everyone: Arc::new(Notify::new()),
            handed,
            claimant: self.claimant.clone(),
            metrics: self.metrics.clone(),
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
        mut handed_over: mpsc::Receiver<Claimed>,
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

    /// Sends the outcome once and records how it went. The sending runs as
    /// a task of its own, so that even a panic in it ends in a recorded
    /// attempt, retried on the schedule like any failure.
    async fn deliver(self: Arc<Self>, claimed: Claimed) {
        self.metrics.attempts.inc();
        let sending = tokio::spawn({
            let dispatcher = self.clone();
            let claimed = claimed.clone();
            async move { dispatcher.send(&claimed).await }
        });
        let attempt = match sending.await {
            Ok(attempt) => attempt,
            Err(failure) => Attempt::Failed {
                delay: self.backoff(claimed.attempts),
                error: format!("the delivery failed inside payment-service: {failure}"),
            },
        };
        self.record(&claimed, attempt).await;
    }

    /// Sends the outcome to order-service; what came of it.
    async fn send(&self, claimed: &Claimed) -> Attempt {
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
        match client.payment_callback(&body).await {
            Ok(_) => Attempt::Delivered,
            Err(order_client::Error::ErrorResponse(response))
                if response.status().is_client_error()
                    && REFUSALS.contains(&response.data.error_code.as_str()) =>
            {
                Attempt::Rejected(format!(
                    "{} {}: {}",
                    response.status().as_u16(),
                    response.data.error_code,
                    response.data.message
                ))
            }
            Err(error) => {
                let backoff = self.backoff(claimed.attempts);
                let delay = retry_after(&error).map_or(backoff, |asked| asked.max(backoff));
                let error = match unexpected(&error) {
                    Some(cause) => {
                        self.metrics.unexpected.inc();
                        format!("{}; {cause}", bounded(error.to_string()))
                    }
                    None => bounded(error.to_string()),
                };
                Attempt::Failed { delay, error }
            }
        }
    }

    /// Records the attempt, releasing the claim, and logs it.
    async fn record(&self, claimed: &Claimed, attempt: Attempt) {
        let log = self.log.new(slog::o!(
            "payment_id" => claimed.payment_id.to_string(),
            "webhook_id" => claimed.webhook_id.clone(),
            "attempt" => claimed.attempts,
        ));
        match self.outbox.record(&self.claimant, claimed, &attempt).await {
            Ok(state) => match (&attempt, state) {
                (Attempt::Delivered, _) => {
                    self.metrics.delivered.inc();
                    slog::info!(log, "outcome delivered to order-service")
                }
                (Attempt::Rejected(reason), _) => {
                    self.metrics.rejected.inc();
                    slog::error!(log, "order-service refused the outcome; not retrying"; "reason" => reason)
                }
                (Attempt::Failed { error, .. }, DeliveryState::DeadLetter) => {
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

/// The likely cause of an answer that is neither order-service's acceptance
/// nor its refusal of the outcome, nor a failure worth retrying in itself
/// (a 5xx, a timeout, 408 or 429); `None` for those.
fn unexpected<E>(error: &order_client::Error<E>) -> Option<&'static str> {
    use reqwest::StatusCode;
    let status = match error {
        order_client::Error::ErrorResponse(response) => response.status(),
        order_client::Error::UnexpectedResponse(response) => response.status(),
        order_client::Error::InvalidResponsePayload(..) => {
            return Some(
                "the answer is not order-service's: is ORDER_SERVICE_URL order-service's address?",
            );
        }
        _ => return None,
    };
    match status {
        status if status.is_redirection() => {
            Some("a redirect, not followed: ORDER_SERVICE_URL must be order-service's own address")
        }
        StatusCode::UNAUTHORIZED => Some(
            "order-service refused the signature: the two services' PAYMENT_CALLBACK_SECRETs differ",
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => None,
        status if status.is_client_error() => Some(
            "not order-service's refusal of the outcome: is ORDER_SERVICE_URL order-service itself, \
             not a proxy that keeps /internal/ from it?",
        ),
        _ => None,
    }
}

/// How much of a failure's text is recorded and logged: an answer's body
/// (a proxy's HTML page, say) is quoted in it, and is written again on
/// every attempt.
const ERROR_TEXT_BYTES: usize = 512;

/// `text`, cut to [`ERROR_TEXT_BYTES`] on a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > ERROR_TEXT_BYTES {
        let mut end = ERROR_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The wait a failed answer asked for with `Retry-After` (RFC 9110: seconds,
/// or an HTTP date), at most [`RETRY_AFTER_CAP`] whatever the header says.
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
    let asked = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            when.with_timezone(&chrono::Utc)
                .signed_duration_since(chrono::Utc::now())
                .to_std()
                .ok()?
        }
    };
    Some(asked.min(RETRY_AFTER_CAP))
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claimed() -> Claimed {
        Claimed {
            payment_id: Uuid::new_v4(),
            webhook_id: "msg_1".to_string(),
            order_id: Uuid::new_v4(),
            success: true,
            amount: 100,
            attempts: 1,
            give_up_at: chrono::Utc::now(),
            request_id: None,
        }
    }

    #[test]
    fn a_full_hand_over_leaves_the_outcome_to_its_claim_without_waiting() {
        let (handed, mut handed_over) = mpsc::channel(2);
        let metrics = DeliveryMetrics::default();
        let wakeup = Wakeup {
            local: Arc::new(Notify::new()),
            everyone: Arc::new(Notify::new()),
            handed,
            claimant: Claimant {
                instance: "test".to_string(),
                lease: Duration::from_secs(30),
            },
            metrics: metrics.clone(),
        };
        // Nobody takes the outcomes: a dispatcher far behind.
        for _ in 0..5 {
            wakeup.deliver(claimed());
        }
        assert_eq!(metrics.handover_full.get(), 3, "counted, not queued");
        let mut queued = 0;
        while handed_over.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 2, "the queue holds its bound");
    }

    #[test]
    fn a_failures_text_is_bounded_on_a_character_boundary() {
        let page = "é".repeat(10_000);
        let recorded = bounded(page);
        assert!(recorded.len() <= ERROR_TEXT_BYTES + '…'.len_utf8());
        assert!(recorded.ends_with('…'));
        assert_eq!(bounded("short".to_string()), "short");
    }

    #[test]
    fn any_retry_after_asks_for_an_hour_at_most() {
        use order_client::Error;
        let answer = |value: &str| {
            let response = http::Response::builder()
                .status(503)
                .header("retry-after", value)
                .body(String::new())
                .unwrap();
            Error::<()>::UnexpectedResponse(reqwest::Response::from(response))
        };
        for asked in [
            "18446744073709551615",
            "99999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(
                retry_after(&answer(asked)),
                Some(RETRY_AFTER_CAP),
                "{asked}"
            );
        }
        assert_eq!(retry_after(&answer("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&answer("soon")), None);
    }
}
