//! Prometheus metrics, one registry per service instance (no global), so
//! two services in one test process keep their own figures.
//!
//! Dropshot has no middleware, so handlers report each request through
//! [`Metrics::observe_request`]. Requests rejected by an extractor before
//! the handler runs (malformed JSON, bad path id) or by the router are not
//! counted here; Dropshot's own request log has them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::Duration;

/// Request latency buckets in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
    log_lines_dropped: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by operation and status",
            requests.clone(),
        );
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from the handler's start to its answer, by operation",
            latency.clone(),
        );
        let (pool_size, pool_available, pool_waiting) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_available",
            "Idle database connections",
            pool_available.clone(),
        );
        registry.register(
            "db_pool_waiting",
            "Requests waiting for a database connection",
            pool_waiting.clone(),
        );
        let log_lines_dropped = Gauge::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped since the process started: stderr did not keep up, or a line could not be formatted",
            log_lines_dropped.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            pool_size,
            pool_available,
            pool_waiting,
            log_lines_dropped,
        }
    }

    /// Registers a service's own metric.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .expect("registry lock")
            .register(name, help, metric);
    }

    pub fn observe_request(&self, operation: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records the pool's state, for the next scrape.
    pub fn set_pool(&self, status: deadpool_postgres::Status) {
        self.pool_size.set(status.size as i64);
        self.pool_available.set(status.available as i64);
        self.pool_waiting.set(status.waiting as i64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.log_lines_dropped
            .set(crate::logging::dropped_lines() as i64);
        let mut text = String::new();
        let registry = self.registry.lock().expect("registry lock");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
