//! Delivers recorded outcomes to order-service, at least once.
//!
//! The dispatcher wakes as soon as an outcome is committed (PostgreSQL
//! LISTEN/NOTIFY) and also polls, because a notification is only a hint: it
//! is lost while the listening connection is down. Failed deliveries are
//! retried with full-jitter exponential backoff until the retry window ends;
//! a refusal by order-service (a 4xx other than 408 and 429) is final.

use crate::config::DeliverySettings;
use crate::outbox::{Attempt, Claimed, Outbox};
use crate::store::WAKE_CHANNEL;
use order_client::types::{PaymentCallback, PaymentOutcome};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use service_support::metrics::Metrics;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

/// How many records one instance claims at a time.
const BATCH: i64 = 16;

pub struct Dispatcher {
    pub outbox: Outbox,
    pub client: order_client::Client,
    pub settings: DeliverySettings,
    /// Names this instance in its claims.
    pub instance: String,
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
    }
}

/// A running dispatcher and its listener.
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DispatcherHandle {
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
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(
            listen_config,
            wake.clone(),
            self.log.clone(),
            stopped.clone(),
        ));
        let dispatcher = tokio::spawn(self.run(wake, stopped));
        DispatcherHandle {
            stop,
            tasks: vec![dispatcher, listener],
        }
    }

    async fn run(self, wake: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
        self.running.store(true, Ordering::SeqCst);
        let _stopped = RunningFlag(self.running.clone());
        let lease = Duration::from_millis(self.settings.lease_ms);
        let poll = Duration::from_millis(self.settings.poll_ms);
        loop {
            // Deliver everything due, then wait for news.
            loop {
                if *stopped.borrow() {
                    return;
                }
                match self.outbox.claim(&self.instance, lease, BATCH).await {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => {
                        let deliveries = batch.iter().map(|claimed| self.deliver(claimed));
                        futures::future::join_all(deliveries).await;
                    }
                    Err(error) => {
                        slog::warn!(self.log, "cannot claim outcomes to deliver"; "error" => %error);
                        break;
                    }
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stopped.changed() => return,
            }
        }
    }

    async fn deliver(&self, claimed: &Claimed) {
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
            Err(order_client::Error::ErrorResponse(response))
                if response.status().is_client_error()
                    && response.status() != reqwest::StatusCode::REQUEST_TIMEOUT
                    && response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
            {
                Attempt::Rejected(format!(
                    "{} {}: {}",
                    response.status().as_u16(),
                    response.data.error_code,
                    response.data.message
                ))
            }
            Err(error) => Attempt::Failed {
                error: error.to_string(),
                delay: self.backoff(claimed.attempts),
            },
        };
        let log = self.log.new(slog::o!(
            "payment_id" => claimed.payment_id.to_string(),
            "webhook_id" => claimed.webhook_id.clone(),
            "attempt" => claimed.attempts,
        ));
        match self.outbox.record(claimed, &attempt).await {
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

/// Clears the running flag when the delivery loop ends, however it ends.
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
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
