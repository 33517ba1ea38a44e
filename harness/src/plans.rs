//! Query plans: which statements would read a growing table from end to
//! end, planned as PostgreSQL plans them for the parameters given.

use serde_json::Value;

/// Plans each of `statements` (a name, the SQL, its parameters as an SQL
/// literal list such as `(1, 'a')` or empty) on `db` and describes each
/// sequential scan of a table in `growing`, with its plan.
pub async fn sequential_scans(
    db: &tokio_postgres::Client,
    statements: &[(&str, &str, &str)],
    growing: &[&str],
) -> Vec<String> {
    let mut scans = Vec::new();
    for (index, (what, sql, parameters)) in statements.iter().enumerate() {
        db.batch_execute(&format!("PREPARE planned{index} AS {sql}"))
            .await
            .unwrap_or_else(|e| panic!("{what} does not prepare: {e}"));
        let explain = format!("EXPLAIN (FORMAT JSON) EXECUTE planned{index}{parameters}");
        let plan: Value = db
            .query_one(&explain, &[])
            .await
            .unwrap_or_else(|e| panic!("{what} does not plan: {e}"))
            .get(0);
        for relation in scanned(&plan) {
            if growing.contains(&relation.as_str()) {
                scans.push(format!("{what}: a sequential scan of {relation}\n{plan:#}"));
            }
        }
    }
    scans
}

/// The relations a plan scans sequentially, at any depth.
fn scanned(plan: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![plan];
    while let Some(node) = pending.pop() {
        match node {
            Value::Array(items) => pending.extend(items),
            Value::Object(fields) => {
                if fields.get("Node Type").and_then(Value::as_str) == Some("Seq Scan")
                    && let Some(relation) = fields.get("Relation Name").and_then(Value::as_str)
                {
                    found.push(relation.to_string());
                }
                pending.extend(fields.values());
            }
            _ => {}
        }
    }
    found
}
