//! The statements payment-service runs per request, per poll of its
//! background tasks and per scrape, planned against tables grown as months
//! of traffic grow them: none reads a growing table from end to end.

use crate::delivery::outbox;
use crate::store;
use postgres_cluster::Cluster;

/// Rows of settled, delivered history seeded before planning.
const HISTORY: u64 = 50_000;

/// Each statement with its parameters, as SQL literals.
const STATEMENTS: &[(&str, &str, &str)] = &[
    (
        "get_payment",
        store::GET,
        "(gen_random_uuid(), 'customer-1')",
    ),
    (
        "payment_by_order",
        store::GET_BY_ORDER,
        "(gen_random_uuid())",
    ),
    ("confirm_intent", store::CONFIRM, "(gen_random_uuid())"),
    (
        "settle",
        outbox::SETTLE_PENDING,
        "(gen_random_uuid(), 'success', 1000.0, 'req', 'instance', 3000.0)",
    ),
    (
        "expiry: stale payments",
        outbox::EXPIRE_STALE,
        "(86400.0, 100, 1000.0)",
    ),
    ("expiry: stale intents", store::STALE_INTENTS, "(10.0, 100)"),
    (
        "dispatcher: claim",
        outbox::CLAIM,
        "('instance', 30000.0, 64)",
    ),
    (
        "retention: prune",
        outbox::PRUNE_DELIVERED,
        "(604800.0, 1000)",
    ),
    ("scrape: backlog", outbox::BACKLOG, ""),
    ("scrape: disagreements", outbox::DISAGREEMENT_COUNT, ""),
];

/// The tables that grow with traffic.
const GROWING: [&str; 2] = ["payments", "order_notifications"];

#[tokio::test]
async fn no_statement_reads_a_growing_table_from_end_to_end() {
    let cluster = Cluster::shared();
    let name = format!("plans_{}", uuid::Uuid::new_v4().simple());
    cluster.create_database(&name, None).await.unwrap();
    let log = slog::Logger::root(slog::Discard, slog::o!());
    crate::migrate(&cluster.database_settings(&name), &log)
        .await
        .unwrap();
    let db = cluster.connect(&name).await.unwrap();
    // Months of history: settled payments whose outcomes were delivered, and
    // the few that are under way at any time.
    db.batch_execute(&format!(
        "INSERT INTO payments (id, order_id, amount, provider, status, paid_at, notified_at, owner) \
         SELECT gen_random_uuid(), gen_random_uuid(), 100, 'p', 'success', now(), now(), 'c' || n % 1000 \
         FROM generate_series(1, {HISTORY}) AS n;
         INSERT INTO order_notifications (payment_id, webhook_id, order_id, outcome, amount, \
             state, delivered_at, give_up_at) \
         SELECT id, 'msg_' || id, order_id, 'success', 100, 'delivered', now(), now() \
         FROM payments;
         INSERT INTO payments (id, order_id, amount, provider, attached) \
         SELECT gen_random_uuid(), gen_random_uuid(), 100, 'p', n % 2 = 0 \
         FROM generate_series(1, 40) AS n;
         ANALYZE;"
    ))
    .await
    .unwrap();

    let scans = harness::plans::sequential_scans(&db, STATEMENTS, &GROWING).await;
    assert!(scans.is_empty(), "{}", scans.join("\n"));
    drop(db);
    cluster.drop_database(&name).await.unwrap();
}
