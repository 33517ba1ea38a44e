//! PostgreSQL's own ceiling: pgbench running the statements the services
//! run for each operation, prepared once (`-M prepared`), on as many
//! connections as a service's pool holds. No HTTP, no service: what the
//! database allows for the same work.

use crate::seed;
use anyhow::{Context, bail};
use postgres_cluster::Cluster;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A pgbench script and the database it runs in.
pub struct Script {
    pub database: &'static str,
    pub text: String,
}

const ORDER_COLUMNS: &str =
    "id, item_name, quantity, price, total_amount, status, payment_id, created_at, updated_at";

pub fn get_order() -> Script {
    Script {
        database: "order_db",
        text: format!(
            "\\set n random(1, {})\nSELECT {ORDER_COLUMNS} FROM orders WHERE id = {};\n",
            seed::READ_ORDERS,
            seed::order_id_sql(":n")
        ),
    }
}

pub fn create_order() -> Script {
    Script {
        database: "order_db",
        text: format!(
            "INSERT INTO orders (item_name, quantity, price, total_amount) \
             VALUES ('bench item', 2, 250, {}) RETURNING {ORDER_COLUMNS};\n",
            seed::TOTAL
        ),
    }
}

pub fn list_orders() -> Script {
    Script {
        database: "order_db",
        text: format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY created_at, id LIMIT 101;\n"),
    }
}

const PAYMENT_COLUMNS: &str = "p.id, p.order_id, p.amount, p.provider, p.status, p.paid_at, \
     p.created_at, p.updated_at, n.state AS notification, n.delivered_at";

pub fn create_payment() -> Script {
    Script {
        database: "payment_db",
        text: format!(
            "WITH p AS (INSERT INTO payments (order_id, amount, provider) \
             VALUES (gen_random_uuid(), {}, 'bench') \
             ON CONFLICT (order_id) DO NOTHING RETURNING *) \
             SELECT {PAYMENT_COLUMNS} FROM p LEFT JOIN order_notifications n ON false;\n",
            seed::TOTAL
        ),
    }
}

/// The attachment `POST /payments` asks order-service for, on orders of
/// each client's own run, so none is attached twice.
pub fn attach_payment(stride: u64) -> Script {
    let n = format!(
        "({} + :client_id * {stride} + :i)",
        seed::CEILING_PAYABLE_FROM
    );
    Script {
        database: "order_db",
        text: format!(
            "\\set i :i + 1\n\
             UPDATE orders SET payment_id = gen_random_uuid(), \
             updated_at = CASE WHEN payment_id IS NULL THEN clock_timestamp() ELSE updated_at END \
             WHERE id = {} AND status = 'pending' AND total_amount = {} \
             AND payment_id IS NULL RETURNING {ORDER_COLUMNS};\n",
            seed::order_id_sql(&n),
            seed::TOTAL
        ),
    }
}

/// Each client settles its own run of payments, so none is settled twice.
pub fn settle_payment(stride: u64) -> Script {
    let n = format!(
        "({} + :client_id * {stride} + :i)",
        seed::CEILING_SETTLEABLE_FROM
    );
    Script {
        database: "payment_db",
        text: format!(
            "\\set i :i + 1\n\
             WITH p AS (UPDATE payments SET status = 'success', updated_at = clock_timestamp(), \
                 paid_at = clock_timestamp() WHERE id = {} AND status = 'pending' RETURNING *), \
             n AS (INSERT INTO order_notifications \
                 (payment_id, webhook_id, order_id, outcome, amount, give_up_at, request_id) \
                 SELECT id, 'msg_' || replace(id::text, '-', ''), order_id, status, amount, \
                 clock_timestamp() + interval '72 hours', 'bench' FROM p \
                 RETURNING payment_id, state, delivered_at) \
             SELECT {PAYMENT_COLUMNS} \
             FROM p JOIN n ON n.payment_id = p.id;\n",
            seed::payment_id_sql(&n)
        ),
    }
}

/// Runs `script` for `duration` on `clients` connections; returns the
/// transactions per second pgbench reports.
pub fn measure(
    cluster: &Cluster,
    work_dir: &Path,
    name: &str,
    script: &Script,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let file = work_dir.join(format!("{name}.pgbench.sql"));
    std::fs::write(&file, &script.text)?;
    let output = Command::new(cluster.program("pgbench"))
        .arg("-h")
        .arg(cluster.socket_dir())
        .args(["-p", "5432", "-U", "postgres", "-n", "-M", "prepared"])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &duration.as_secs().max(1).to_string()])
        .args(["-D", "i=0", "-f"])
        .arg(&file)
        .arg(script.database)
        .output()
        .context("cannot run pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed for {name}: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
}
