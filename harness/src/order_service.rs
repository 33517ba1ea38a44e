//! order-service under test: the real service, in-process on
//! `127.0.0.1:0`, on a database of its own, behind a conformance proxy.

use crate::proxy::ConformanceProxy;
use crate::{LogBuffer, issuer, test_logger, webhook};
use dropshot::HttpServer;
use order_service::{ServiceContext, Settings};
use postgres_cluster::Cluster;
use service_support::database::DatabaseSettings;
use service_support::idempotency::IdempotencySettings;
use service_support::shutdown::DrainSettings;
use tokio::sync::OnceCell;

/// The migrated database every test's database is copied from.
const TEMPLATE: &str = "order_template";

pub struct OrderServiceTest<'c> {
    cluster: &'c Cluster,
    database: String,
    owns_database: bool,
    settings: Settings,
    server: Option<HttpServer<ServiceContext>>,
    proxy: ConformanceProxy,
    logs: LogBuffer,
    /// The generated client, as [`issuer::CALLER`] (every scope), signing
    /// internal calls with [`OrderServiceTest::secret`].
    pub client: order_client::Client,
    /// A plain HTTP client, for requests the generated client cannot make,
    /// sending [`issuer::caller_token`].
    pub http: reqwest::Client,
}

impl OrderServiceTest<'static> {
    /// order-service on a fresh database of the test binary's shared cluster.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`OrderServiceTest::start`], after `adjust` has changed the settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        static MIGRATED: OnceCell<()> = OnceCell::const_new();
        let cluster = Cluster::shared();
        let database = cluster
            .database_from_template(TEMPLATE, &MIGRATED, async |settings| {
                order_service::migrate(&settings, &test_logger("migrate")).await
            })
            .await
            .expect("a copy of the migrated template database");
        OrderServiceTest::launch(cluster, database, true, adjust).await
    }
}

impl<'c> OrderServiceTest<'c> {
    /// order-service on a fresh database of `cluster`, migrated at start-up.
    pub async fn start_on(cluster: &'c Cluster) -> Self {
        let database = unique_name();
        cluster
            .create_database(&database, None)
            .await
            .expect("create the database");
        OrderServiceTest::launch(cluster, database, true, |_| {}).await
    }

    /// A second instance on the same database (which the first one owns)
    /// and with the same callback secret.
    pub async fn another_instance(&self) -> OrderServiceTest<'c> {
        let secret = self.settings.callback_secret.clone();
        OrderServiceTest::launch(self.cluster, self.database.clone(), false, |s| {
            s.callback_secret = secret;
        })
        .await
    }

    async fn launch(
        cluster: &'c Cluster,
        database: String,
        owns_database: bool,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = settings_for(cluster, &database);
        adjust(&mut settings);
        let logs = LogBuffer::default();
        let server = order_service::start(&settings, logs.logger("order-service"))
            .await
            .expect("order-service starts");
        // A restart binds the same port, behind the same proxy.
        settings.server.port = server.local_addr().port();
        let proxy = ConformanceProxy::start(format!("http://{}", server.local_addr()))
            .await
            .expect("the conformance proxy starts");
        let client = order_client::Client::new(
            &proxy.url(),
            order_client::ClientContext::with_token(issuer::caller_token())
                .and_callback_secret(settings.callback_secret.clone()),
        );
        OrderServiceTest {
            cluster,
            logs,
            database,
            owns_database,
            settings,
            server: Some(server),
            proxy,
            client,
            http: issuer::http_client_with(&issuer::caller_token()),
        }
    }

    /// The URL of `path` on the service (through the proxy).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proxy.url())
    }

    /// Where the service itself listens, not its proxy: for tests of how it
    /// treats connections.
    pub fn direct_addr(&self) -> std::net::SocketAddr {
        (self.settings.server.listen_addr, self.settings.server.port).into()
    }

    /// Everything the service logged, as JSON lines.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// The proxy in front of the service, with what it saw.
    pub fn proxy(&self) -> &ConformanceProxy {
        &self.proxy
    }

    /// Stops the service (gracefully); its port stays reserved for [`OrderServiceTest::start_again`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server
                .close()
                .await
                .expect("order-service shuts down cleanly");
        }
    }

    /// Starts the service again on the same port and database.
    pub async fn start_again(&mut self) {
        let server = order_service::start(&self.settings, self.logs.logger("order-service"))
            .await
            .expect("order-service starts again");
        self.server = Some(server);
    }

    /// The callback secret the service was started with.
    pub fn secret(&self) -> &str {
        &self.settings.callback_secret
    }

    /// A connection to the service's database, for checking what changed.
    pub async fn database(&self) -> tokio_postgres::Client {
        self.cluster
            .connect(&self.database)
            .await
            .expect("connect to the test database")
    }

    /// The order `id` as its owner reads it now; panics if it cannot be read.
    pub async fn order(&self, id: &uuid::Uuid) -> order_client::types::Order {
        self.client
            .get_order(id)
            .await
            .expect("read the order")
            .into_inner()
            .data
    }

    /// The number of orders in the database.
    pub async fn order_count(&self) -> i64 {
        self.database()
            .await
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("count orders")
            .get(0)
    }

    /// Stops the service; asserts that every response it gave conformed to
    /// the contract; drops the database if it owns it.
    pub async fn cleanup(mut self) {
        if let Some(server) = self.server.take() {
            server
                .close()
                .await
                .expect("order-service shuts down cleanly");
        }
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

/// Waits until `client` reads order `id` in `status`; returns how long that
/// took. An error answer is what it saw meanwhile. Fails after `bound`,
/// saying what the order last was. Looks every 2 ms: tests measure this.
pub async fn wait_for_order(
    client: &order_client::Client,
    id: uuid::Uuid,
    status: order_client::types::OrderStatus,
    bound: std::time::Duration,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    crate::wait_until_every(
        &format!("order {id} to be {status}"),
        bound,
        std::time::Duration::from_millis(2),
        async || match client.get_order(&id).await {
            Ok(order) if order.data.status == status => Ok(()),
            Ok(order) => Err(format!("{:?}", order.into_inner().data)),
            Err(error) => Err(error.to_string()),
        },
    )
    .await;
    started.elapsed()
}

fn unique_name() -> String {
    format!("test_{}", uuid::Uuid::new_v4().simple())
}

/// Settings for order-service on `database` of `cluster`: port 0, a fresh
/// callback secret, a small pool.
pub fn settings_for(cluster: &Cluster, database: &str) -> Settings {
    settings_for_database(cluster.database_settings(database), &webhook::new_secret())
}

/// Settings for order-service on `database` with `secret`: port 0.
pub fn settings_for_database(database: DatabaseSettings, secret: &str) -> Settings {
    Settings {
        database,
        server: crate::server_settings(),
        callback_secret: secret.to_string(),
        previous_callback_secret: None,
        auth: issuer::auth_settings(),
        idempotency: IdempotencySettings {
            ttl_secs: 24 * 3600,
        },
        drain: DrainSettings { drain_ms: 0 },
    }
}
