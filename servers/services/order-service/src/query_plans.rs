//! The statements order-service runs per request and per prune, planned
//! against tables grown as months of traffic grow them: none reads a
//! growing table from end to end.

use crate::{signed_calls, store};
use postgres_cluster::Cluster;

/// Orders seeded before planning, over this many customers.
const HISTORY: u64 = 50_000;
const CUSTOMERS: u64 = 1_000;

/// Each statement with its parameters, as SQL literals.
const STATEMENTS: &[(&str, &str, &str)] = &[
    ("get_order", store::GET, "(gen_random_uuid(), 'c7')"),
    (
        "list_orders, a customer's first page",
        store::LIST,
        "(NULL, NULL, NULL, 101, 'c7')",
    ),
    (
        "list_orders, a customer's next page of pending ones",
        store::LIST,
        "(now() - interval '1 day', gen_random_uuid(), 'pending', 101, 'c7')",
    ),
    (
        "update_order",
        store::UPDATE_PENDING,
        "(gen_random_uuid(), 'x', 1, 1, 1, 'c7')",
    ),
    (
        "delete_order",
        store::DELETE_PENDING,
        "(gen_random_uuid(), 'c7')",
    ),
    (
        "attach_payment",
        store::ATTACH_PAYMENT,
        "(gen_random_uuid(), gen_random_uuid(), 1, 'c7', 'msg_new')",
    ),
    (
        "attach_payment's reason",
        store::GET_FOR_ATTACH,
        "(gen_random_uuid(), gen_random_uuid(), 'c7')",
    ),
    (
        "release_payment",
        store::RELEASE_PAYMENT,
        "(gen_random_uuid(), gen_random_uuid(), 'msg_new')",
    ),
    (
        "payment_callback",
        store::SETTLE_PENDING,
        "(gen_random_uuid(), 'paid', gen_random_uuid(), 1, 'msg_new')",
    ),
    (
        "get_order_for_payment",
        store::GET_FOR_PAYMENT,
        "(gen_random_uuid(), 'c7', 'msg_new')",
    ),
    ("signed calls pruned", signed_calls::PRUNE, "(600.0, 5000)"),
];

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
    // Months of history: every customer's orders, most settled, and the
    // signed calls of the last minutes.
    db.batch_execute(&format!(
        "INSERT INTO orders (item_name, quantity, price, total_amount, status, payment_id, owner, \
             created_at) \
         SELECT 'item', 1, 100, 100, CASE WHEN n % 10 = 0 THEN 'pending' ELSE 'paid' END, \
             CASE WHEN n % 10 = 0 THEN NULL ELSE gen_random_uuid() END, 'c' || n % {CUSTOMERS}, \
             now() - n * interval '1 minute' \
         FROM generate_series(1, {HISTORY}) AS n;
         INSERT INTO signed_calls_seen (webhook_id, seen_at) \
         SELECT 'msg_' || n, now() - n * interval '10 milliseconds' \
         FROM generate_series(1, {HISTORY}) AS n;
         ANALYZE;"
    ))
    .await
    .unwrap();
    let scans =
        harness::plans::sequential_scans(&db, STATEMENTS, &["orders", "signed_calls_seen"]).await;
    assert!(scans.is_empty(), "{}", scans.join("\n"));
    drop(db);
    cluster.drop_database(&name).await.unwrap();
}
