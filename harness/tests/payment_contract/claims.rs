//! Why the outbox's claim is planned at each execution: a queue's table
//! swings from empty to large, and a plan PostgreSQL cached while it was
//! empty keeps scanning the whole table after it has grown.

use postgres_cluster::Cluster;
use service_support::database::Database;

const DUE: &str = "SELECT id FROM queue WHERE NOT done AND due <= now() ORDER BY due LIMIT $1";

/// Sequential and index scans of the queue table so far.
async fn scans(inspector: &tokio_postgres::Client) -> (i64, i64) {
    let row = inspector
        .query_one(
            "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'queue'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_statement_planned_afresh_uses_the_index_once_an_empty_queue_has_grown() {
    let cluster = Cluster::shared();
    let name = format!("claims_{}", uuid::Uuid::new_v4().simple());
    cluster.create_database(&name, None).await.unwrap();
    let inspector = cluster.connect(&name).await.unwrap();
    inspector
        .batch_execute(
            "CREATE TABLE queue (id bigint PRIMARY KEY, due timestamptz NOT NULL, done boolean NOT NULL); \
             CREATE INDEX queue_due ON queue (due) WHERE NOT done",
        )
        .await
        .unwrap();
    inspector
        .batch_execute("VACUUM ANALYZE queue")
        .await
        .unwrap();
    // One connection, so every statement below runs in the same session
    // and shares its plan cache.
    let mut settings = cluster.database_settings(&name);
    settings.pool_size = 1;
    let db = Database::new(&settings).unwrap();
    let due = async |afresh: bool| {
        let limit = 32_i64;
        if afresh {
            db.query_planned_afresh(DUE, &[&limit], |_| Ok(())).await
        } else {
            db.query(DUE, &[&limit], |_| Ok(())).await
        }
        .unwrap();
        // The session's counters reach pg_stat_user_tables when it next
        // goes idle, after this statement.
        db.query("SELECT pg_stat_force_next_flush()", &[], |_| Ok(()))
            .await
            .unwrap();
    };
    // While the queue is empty, the cached statement settles on a plan.
    for _ in 0..8 {
        due(false).await;
    }
    inspector
        .batch_execute(
            "INSERT INTO queue SELECT n, now() - interval '1 hour', true FROM generate_series(1, 50000) n; \
             INSERT INTO queue SELECT n, now(), false FROM generate_series(50001, 50010) n",
        )
        .await
        .unwrap();

    let before = scans(&inspector).await;
    due(false).await;
    let cached = scans(&inspector).await;
    assert_eq!(
        cached.0,
        before.0 + 1,
        "the plan cached while the queue was empty scans all 50,010 rows"
    );
    due(true).await;
    let afresh = scans(&inspector).await;
    assert_eq!(afresh.0, cached.0, "planned afresh, no sequential scan");
    assert_eq!(afresh.1, cached.1 + 1, "planned afresh, the index");
    drop(db);
    cluster.drop_database(&name).await.unwrap();
}
