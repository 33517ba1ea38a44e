//! The rows the measurements work on, made with SQL before the services
//! start. Ids are derived from numbers, so pgbench scripts and wrk scripts
//! can name a row without a lookup: order `n` has id `lpad(hex(n), 32, '0')`,
//! and payment `n` has id `'b' || lpad(hex(n), 31, '0')`.

/// Orders read by `GET /orders/{id}` (and listed): `1..=READ_ORDERS`.
pub const READ_ORDERS: u64 = 10_000;
/// Pending orders that `POST /payments` pays, one each, from here on.
pub const PAYABLE_FROM: u64 = 10_000_000;
/// Pending payments (with their pending orders) that the services settle.
pub const SETTLEABLE_FROM: u64 = 20_000_000;
/// Pending payments that pgbench settles, `:client_id × stride` apart.
pub const CEILING_SETTLEABLE_FROM: u64 = 30_000_000;
/// Pending orders that pgbench attaches payments to, `:client_id × stride` apart.
pub const CEILING_PAYABLE_FROM: u64 = 40_000_000;

/// The customer who owns every seeded order and payment: the subject of the
/// benchmark's tokens when authentication is on (with it off, everyone's).
pub const CUSTOMER: &str = "bench-customer";

/// Every order row costs this much: 2 × 250.
pub const TOTAL: i64 = 500;

/// SQL for order `n`'s id, `n` being an SQL expression.
pub fn order_id_sql(n: &str) -> String {
    format!("lpad(to_hex(({n})::bigint), 32, '0')::uuid")
}

/// SQL for payment `n`'s id.
pub fn payment_id_sql(n: &str) -> String {
    format!("('b' || lpad(to_hex(({n})::bigint), 31, '0'))::uuid")
}

/// Pending orders `first..first + count` in order_db.
pub fn orders(first: u64, count: u64) -> String {
    format!(
        "INSERT INTO orders (id, item_name, quantity, price, total_amount, owner) \
         SELECT {}, 'bench item', 2, 250, {TOTAL}, '{CUSTOMER}' \
         FROM generate_series({first}::bigint, {}) AS n",
        order_id_sql("n"),
        first + count - 1
    )
}

/// Pending payments `first..first + count` in payment_db, each for order `n`.
pub fn payments(first: u64, count: u64) -> String {
    format!(
        "INSERT INTO payments (id, order_id, amount, provider, owner) \
         SELECT {}, {}, {TOTAL}, 'bench', '{CUSTOMER}' FROM generate_series({first}::bigint, {}) AS n",
        payment_id_sql("n"),
        order_id_sql("n"),
        first + count - 1
    )
}
