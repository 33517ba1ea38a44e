//! payment-service under test: the real service on `127.0.0.1:0`, on a
//! database of its own, behind a conformance proxy, in a runtime of its
//! own so that a test can kill it abruptly, mid-delivery, as a crash would.

use crate::proxy::ConformanceProxy;
use crate::{LogBuffer, issuer, test_logger};
use payment_service::{DeliverySettings, OrderServiceSettings, PaymentService, Settings};
use postgres_cluster::Cluster;
use service_support::idempotency::IdempotencySettings;
use service_support::lifecycle::Service;
use service_support::shutdown::DrainSettings;
use tokio::runtime::Runtime;
use tokio::sync::OnceCell;

const TEMPLATE: &str = "payment_template";

pub struct PaymentServiceTest<'c> {
    cluster: &'c Cluster,
    database: String,
    owns_database: bool,
    settings: Settings,
    running: Option<(Runtime, PaymentService)>,
    proxy: ConformanceProxy,
    logs: LogBuffer,
    /// The generated client.
    pub client: payment_client::Client,
    /// A plain HTTP client, for requests the generated client cannot make.
    pub http: reqwest::Client,
}

impl PaymentServiceTest<'static> {
    /// payment-service on a fresh database of the shared cluster, calling
    /// order-service at `order_service_url` with `secret`.
    pub async fn start(
        order_service_url: &str,
        secret: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        static MIGRATED: OnceCell<()> = OnceCell::const_new();
        let cluster = Cluster::shared();
        let database = cluster
            .database_from_template(TEMPLATE, &MIGRATED, async |settings| {
                payment_service::migrate(&settings, &test_logger("migrate")).await
            })
            .await
            .expect("a copy of the migrated template database");
        let mut settings = settings_for(cluster, &database, order_service_url, secret);
        adjust(&mut settings);
        PaymentServiceTest::launch(cluster, database, true, settings).await
    }
}

impl<'c> PaymentServiceTest<'c> {
    /// payment-service on a fresh database of `cluster`, migrated at start-up.
    pub async fn start_on(
        cluster: &'c Cluster,
        order_service_url: &str,
        secret: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let database = format!("test_{}", uuid::Uuid::new_v4().simple());
        cluster
            .create_database(&database, None)
            .await
            .expect("create the database");
        let mut settings = settings_for(cluster, &database, order_service_url, secret);
        adjust(&mut settings);
        PaymentServiceTest::launch(cluster, database, true, settings).await
    }

    /// A second instance on the same database (which the first one owns).
    pub async fn another_instance(
        &self,
        adjust: impl FnOnce(&mut Settings),
    ) -> PaymentServiceTest<'c> {
        let mut settings = self.settings.clone();
        settings.server.port = 0;
        adjust(&mut settings);
        PaymentServiceTest::launch(self.cluster, self.database.clone(), false, settings).await
    }

    async fn launch(
        cluster: &'c Cluster,
        database: String,
        owns_database: bool,
        mut settings: Settings,
    ) -> Self {
        let logs = LogBuffer::default();
        let (runtime, service) = run(&settings, &logs).await;
        settings.server.port = service.local_addr().port();
        let proxy = ConformanceProxy::start(format!("http://{}", service.local_addr()))
            .await
            .expect("the conformance proxy starts");
        let client = payment_client::Client::new(
            &proxy.url(),
            payment_client::ClientContext::with_token(issuer::caller_token()),
        );
        PaymentServiceTest {
            cluster,
            logs,
            database,
            owns_database,
            settings,
            running: Some((runtime, service)),
            proxy,
            client,
            http: issuer::http_client_with(&issuer::caller_token()),
        }
    }

    /// The URL of `path` on the service (through the proxy).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proxy.url())
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Everything the service logged, as JSON lines.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// Stops the service gracefully: requests and deliveries in flight finish.
    pub async fn stop(&mut self) {
        if let Some((runtime, service)) = self.running.take() {
            runtime
                .spawn(service.shutdown())
                .await
                .expect("shutdown task")
                .expect("payment-service shuts down");
            runtime.shutdown_background();
        }
    }

    /// A connection to the service's database, for checking what changed.
    pub async fn database(&self) -> tokio_postgres::Client {
        self.cluster
            .connect(&self.database)
            .await
            .expect("connect to the test database")
    }

    /// The number of payments in the database.
    /// How many payments there are, as clients see them (intents aside).
    pub async fn payment_count(&self) -> i64 {
        self.count("SELECT count(*) FROM payments WHERE attached")
            .await
    }

    /// How many payments were noted and not yet finished or given up.
    pub async fn intent_count(&self) -> i64 {
        self.count("SELECT count(*) FROM payments WHERE NOT attached")
            .await
    }

    async fn count(&self, sql: &str) -> i64 {
        self.database()
            .await
            .query_one(sql, &[])
            .await
            .expect("count payments")
            .get(0)
    }

    /// Kills the service as a crash would: its tasks stop wherever they
    /// are, no shutdown code runs, its connections drop.
    pub fn crash(&mut self) {
        if let Some((runtime, service)) = self.running.take() {
            runtime.shutdown_background();
            drop(service);
        }
    }

    /// Starts the service again, same port and database, after `adjust`.
    pub async fn start_again(&mut self, adjust: impl FnOnce(&mut Settings)) {
        adjust(&mut self.settings);
        self.running = Some(run(&self.settings, &self.logs).await);
    }

    /// Stops the service gracefully; asserts that every response it gave
    /// conformed to the contract; drops its database if it owns it.
    pub async fn cleanup(mut self) {
        self.stop().await;
        let violations = self.proxy.violations();
        assert!(
            violations.is_empty(),
            "responses broke the contract:\n{}",
            violations.join("\n")
        );
        if self.owns_database {
            self.cluster
                .drop_database(&self.database)
                .await
                .expect("drop the test database");
        }
    }
}

impl Drop for PaymentServiceTest<'_> {
    // A runtime cannot be dropped from async code (a failing test's
    // unwinding included); shut it down without waiting instead.
    fn drop(&mut self) {
        self.crash();
    }
}

/// Waits until `client` reads payment `id`'s outcome as `state`
/// (`delivered`, `rejected`, ...) and returns the payment as read then. An
/// error answer is what it saw meanwhile. Fails after `bound`, saying what
/// the payment last was.
pub async fn wait_for_notification(
    client: &payment_client::Client,
    id: uuid::Uuid,
    state: payment_client::types::OrderNotification,
    bound: std::time::Duration,
) -> payment_client::types::Payment {
    crate::wait_until(
        &format!("payment {id}'s outcome to be {state}"),
        bound,
        async || match client.get_payment(&id).await {
            Ok(payment) if payment.data.order_notification == state => {
                Ok(payment.into_inner().data)
            }
            Ok(payment) => Err(format!("{:?}", payment.into_inner().data)),
            Err(error) => Err(error.to_string()),
        },
    )
    .await
}

/// Starts payment-service in a runtime of its own.
async fn run(settings: &Settings, logs: &LogBuffer) -> (Runtime, PaymentService) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("payment-service")
        .enable_all()
        .build()
        .expect("a runtime for payment-service");
    let settings = settings.clone();
    let log = logs.logger("payment-service");
    let service = runtime
        .spawn(async move { payment_service::start(&settings, log).await })
        .await
        .expect("start task")
        .expect("payment-service starts");
    (runtime, service)
}

/// Settings for tests: short timeouts, fast retries, a short lease.
pub fn settings_for(
    cluster: &Cluster,
    database: &str,
    order_service_url: &str,
    secret: &str,
) -> Settings {
    Settings {
        command: None,
        database: cluster.database_settings(database),
        server: crate::server_settings(),
        expiry_secs: 3600,
        auth: issuer::auth_settings(),
        idempotency: IdempotencySettings {
            ttl_secs: 24 * 3600,
        },
        drain: DrainSettings { drain_ms: 0 },
        order_service: OrderServiceSettings {
            url: order_service_url.to_string(),
            timeout_ms: 1000,
            callback_secret: Some(secret.to_string()),
            token: None,
        },
        delivery: DeliverySettings {
            retry_base_ms: 50,
            retry_cap_ms: 500,
            retry_window_secs: 3600,
            lease_ms: 3000,
            poll_ms: 200,
            retention_secs: 7 * 24 * 3600,
        },
    }
}
