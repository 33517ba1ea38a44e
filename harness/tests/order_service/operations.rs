//! What operators and orchestrators use: health, readiness, metrics, logs.

use crate::{order_request, send};
use conformance::Conformance;
use harness::order_service::OrderServiceTest;
use postgres_cluster::Cluster;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn health_and_readiness_answer_and_stay_out_of_the_contract() {
    let test = OrderServiceTest::start().await;
    let (status, body) = send(&test, Method::GET, "/healthz", &[], None).await;
    assert_eq!(
        (status, body["data"]["checks"]["process"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = send(&test, Method::GET, "/readyz", &[], None).await;
    assert_eq!(
        (status, body["data"]["checks"]["database"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = send(&test, Method::GET, "/docs/no-such-asset.js", &[], None).await;
    assert_eq!(
        (status, body["data"]["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND")),
        "{body}"
    );
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(
            Conformance::shared().operation_id("GET", path),
            None,
            "{path} is published"
        );
    }
    test.cleanup().await;
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let cluster = Cluster::start().expect("a private cluster");
    let test = OrderServiceTest::start_on(&cluster).await;

    cluster.stop().unwrap();
    let (status, body) = send(&test, Method::GET, "/readyz", &[], None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .starts_with("not ready: database: "),
        "{body}"
    );
    let (status, _) = send(&test, Method::GET, "/healthz", &[], None).await;
    assert_eq!(status, StatusCode::OK, "alive all along");

    cluster.resume().unwrap();
    harness::wait_until(
        "order-service to be ready after the database returned",
        std::time::Duration::from_secs(10),
        async || match send(&test, Method::GET, "/readyz", &[], None).await {
            (StatusCode::OK, _) => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        },
    )
    .await;
    test.cleanup().await;
}

async fn scrape(test: &OrderServiceTest<'_>) -> String {
    let response = test.http.get(test.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_status() {
    let test = OrderServiceTest::start().await;
    let created = r#"http_requests_total{operation="create_order",status="200"}"#;
    let missing = r#"http_requests_total{operation="get_order",status="404"}"#;
    let before = scrape(&test).await;
    assert_eq!(sample(&before, created), None);

    test.client
        .create_order(None, &order_request("Pen", 1, 100))
        .await
        .unwrap();
    test.client
        .create_order(None, &order_request("Pen", 1, 100))
        .await
        .unwrap();
    assert!(test.client.get_order(&uuid::Uuid::new_v4()).await.is_err());
    let after = scrape(&test).await;

    assert_eq!(sample(&after, created), Some(2.0));
    assert_eq!(sample(&after, missing), Some(1.0));
    let fast = r#"http_request_duration_seconds_bucket{le="10.0",operation="create_order"}"#;
    assert_eq!(
        sample(&after, fast),
        Some(2.0),
        "explicit buckets up to 10 s:\n{after}"
    );
    assert!(
        sample(&after, "db_pool_connections").is_some_and(|n| n >= 1.0),
        "{after}"
    );
    test.cleanup().await;
}

#[tokio::test]
async fn logs_are_json_lines_carrying_the_callers_request_id() {
    let test = OrderServiceTest::start().await;
    let response = test
        .http
        .get(test.url("/orders"))
        .header("x-request-id", "flow-7f3a")
        .send()
        .await
        .unwrap();
    let own_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();

    let logs = test.logs();
    let completed: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .filter(|entry: &serde_json::Value| entry["msg"] == "request completed")
        .collect();
    let entry = completed
        .iter()
        .find(|e| e["req_id"] == own_id.as_str())
        .expect("a line for the request");
    assert_eq!(entry["hdr_x_request_id"], "flow-7f3a");
    assert_eq!(entry["response_code"], 200);
    test.cleanup().await;
}

#[tokio::test]
async fn replicas_starting_at_once_migrate_one_at_a_time() {
    let cluster = Cluster::shared();
    let name = format!("migrate_{}", uuid::Uuid::new_v4().simple());
    cluster.create_database(&name, None).await.unwrap();
    let settings = cluster.database_settings(&name);
    let log = harness::test_logger("migrate");
    // Eight replicas of a rollout, all finding the database empty.
    let runs =
        futures::future::join_all((0..8).map(|_| order_service::migrate(&settings, &log))).await;
    for run in runs {
        run.expect("every replica starts");
    }
    let db = cluster.connect(&name).await.unwrap();
    let applied: Vec<i32> = db
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(applied, vec![1, 2, 3, 4, 5], "each migration applied once");
    // The index built CONCURRENTLY after them is there and valid; one a
    // crashed build left invalid is built again by the next start.
    let valid = "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname = 'orders_by_owner_and_creation'";
    let built: bool = db.query_one(valid, &[]).await.unwrap().get(0);
    assert!(built, "the owner index is valid");
    db.execute(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = \
         'orders_by_owner_and_creation'::regclass",
        &[],
    )
    .await
    .unwrap();
    order_service::migrate(&settings, &log).await.unwrap();
    let rebuilt: bool = db.query_one(valid, &[]).await.unwrap().get(0);
    assert!(rebuilt, "an invalid index is built again");
    drop(db);
    cluster.drop_database(&name).await.unwrap();
}

/// The open interface only when asked for, and said loudly: without an
/// issuer and audience, or AUTH_DISABLED, the service does not start.
#[tokio::test]
async fn authentication_is_off_only_when_asked_for_and_says_so() {
    let mut settings = harness::order_service::settings_for(Cluster::shared(), "unused");
    settings.auth = service_support::auth::AuthSettings {
        issuer: None,
        audience: None,
        ..harness::issuer::auth_settings()
    };
    let refused = order_service::start(&settings, harness::test_logger("unconfigured"))
        .await
        .err()
        .expect("no start without an issuer");
    assert!(
        format!("{refused:#}").contains("AUTH_ISSUER and AUTH_AUDIENCE"),
        "{refused:#}"
    );

    let open =
        OrderServiceTest::start_with(|s| s.auth = service_support::auth::AuthSettings::open())
            .await;
    let anonymous = reqwest::Client::new();
    let listed = anonymous.get(open.url("/orders")).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK, "no token asked for");
    let ready: serde_json::Value = anonymous
        .get(open.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let said = ready["data"]["checks"]["authentication"]
        .as_str()
        .unwrap_or_default();
    assert!(said.starts_with("DISABLED"), "{ready}");
    assert!(
        open.logs().contains("AUTHENTICATION IS DISABLED"),
        "the start says so in the log"
    );
    open.cleanup().await;
}

/// Until the issuer's keys are fetched the service is up but not ready,
/// and says why.
#[tokio::test]
async fn readiness_waits_for_the_issuers_keys() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let test = OrderServiceTest::start_with(|s| {
        s.auth = service_support::auth::AuthSettings::issuer(&nowhere, "orders-and-payments");
    })
    .await;
    let (status, body) = send(&test, Method::GET, "/readyz", &[], None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let message = body["data"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("authentication: the signing keys") && message.contains(&nowhere),
        "{message}"
    );
    test.cleanup().await;
}
