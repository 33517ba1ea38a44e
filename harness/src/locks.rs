//! A test's own transactions holding rows, as a long transaction elsewhere
//! would, and what is waiting for them.

/// Locks row `id` of `table` in a transaction of `holder` until the
/// transaction ends.
pub async fn hold_row<'a>(
    holder: &'a mut tokio_postgres::Client,
    table: &str,
    id: uuid::Uuid,
) -> tokio_postgres::Transaction<'a> {
    let lock = holder.transaction().await.expect("a transaction");
    lock.execute(
        &format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE"),
        &[&id],
    )
    .await
    .expect("the row is locked");
    lock
}

/// How many statements wait for a lock in `database`'s database.
pub async fn waiting_on_locks(database: &tokio_postgres::Client) -> i64 {
    database
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}
