//! plain-orders: the yardstick for what this machine allows a Rust service
//! doing order-service's `POST /orders` and `GET /orders/{id}` (issue 21,
//! "writes at the pace of the disk").
//!
//! A small service written the plain way, with none of the product's
//! machinery (no contract, no authentication, no idempotency keys, no
//! per-request log or metrics, no deadlines): axum on a multi-threaded
//! tokio runtime, a deadpool-postgres pool, statements prepared once per
//! connection, one statement per request. It runs the same SQL as
//! order-service on the same database (the owner NULL: every order is
//! anyone's) and answers with the same JSON envelope, so the bytes on the
//! wire compare. The benchmark measures it in the same run as the product:
//! the product is judged against it, not against a figure from elsewhere.
//!
//! Settings, from the environment: `DATABASE_URL` (required), `DB_POOL_SIZE`
//! (16), `PORT` (on 127.0.0.1; 0 picks any). It writes one line to stderr,
//! `{"msg":"listening","local_addr":"127.0.0.1:…"}`, the way the
//! benchmark learns where a service listens; errors go to stderr too.

use anyhow::Context;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::{Deserialize, Serialize};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// order-service's columns of an order (servers/services/order-service/src/store.rs).
macro_rules! columns {
    () => {
        "id, item_name, quantity, price, total_amount, status, payment_id, created_at, updated_at"
    };
}

/// order-service's insert, word for word.
const INSERT: &str = concat!(
    "INSERT INTO orders (item_name, quantity, price, total_amount, owner) \
     VALUES ($1, $2, $3, $4, $5) RETURNING ",
    columns!()
);

/// order-service's read of one order, word for word.
const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM orders WHERE id = $1 AND ($2::text IS NULL OR owner = $2)"
);

/// The longest `item_name`, in characters, as order-service accepts.
const ITEM_NAME_MAX_CHARS: usize = 200;

/// Nobody: orders made here belong to no customer, and reads see anyone's.
const NO_OWNER: Option<&str> = None;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    item_name: String,
    quantity: u64,
    price: u64,
}

#[derive(Serialize)]
struct Order {
    id: Uuid,
    item_name: String,
    quantity: i64,
    price: i64,
    total_amount: i64,
    status: String,
    payment_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Order {
    fn from_row(row: &tokio_postgres::Row) -> Result<Order, tokio_postgres::Error> {
        Ok(Order {
            id: row.try_get(0)?,
            item_name: row.try_get(1)?,
            quantity: row.try_get(2)?,
            price: row.try_get(3)?,
            total_amount: row.try_get(4)?,
            status: row.try_get(5)?,
            payment_id: row.try_get(6)?,
            created_at: row.try_get(7)?,
            updated_at: row.try_get(8)?,
        })
    }
}

/// `{"code":200,"status":"OK","data":…}`, as order-service answers.
#[derive(Serialize)]
struct Envelope<T, S = &'static str> {
    code: u16,
    status: S,
    data: T,
}

fn ok<T>(data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        code: 200,
        status: "OK",
        data,
    })
}

/// `{"code":…,"status":"BAD REQUEST","data":{"error_code":…,"message":…}}`.
struct ApiError {
    status: StatusCode,
    error_code: &'static str,
    message: String,
}

impl ApiError {
    fn bad_request(error_code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error_code,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorData {
    error_code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.canonical_reason().unwrap_or("").to_uppercase();
        let body = Envelope {
            code: self.status.as_u16(),
            status,
            data: ErrorData {
                error_code: self.error_code,
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> ApiError {
        eprintln!("plain-orders: no database connection: {error}");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error_code: "SERVICE_UNAVAILABLE",
            message: "the database is unavailable".into(),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> ApiError {
        eprintln!("plain-orders: database error: {error}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_code: "INTERNAL_ERROR",
            message: "the database failed".into(),
        }
    }
}

async fn create_order(
    State(pool): State<Pool>,
    body: Result<Json<NewOrder>, JsonRejection>,
) -> Result<Json<Envelope<Order>>, ApiError> {
    let Json(order) = body.map_err(|e| ApiError::bad_request("INVALID_BODY", e.body_text()))?;
    let chars = order.item_name.chars().count();
    if order.item_name.trim().is_empty()
        || chars > ITEM_NAME_MAX_CHARS
        || order.item_name.contains('\0')
    {
        return Err(ApiError::bad_request(
            "INVALID_BODY",
            format!(
                "item_name must be 1 to {ITEM_NAME_MAX_CHARS} characters, not only whitespace, without NUL"
            ),
        ));
    }
    let positive = |name: &str, value: u64| {
        i64::try_from(value)
            .ok()
            .filter(|value| *value >= 1)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_BODY",
                    format!("{name} must be 1 to {}, got {value}", i64::MAX),
                )
            })
    };
    let quantity = positive("quantity", order.quantity)?;
    let price = positive("price", order.price)?;
    let total = price.checked_mul(quantity).ok_or_else(|| {
        ApiError::bad_request(
            "TOTAL_AMOUNT_OVERFLOW",
            format!("price {price} × quantity {quantity} does not fit a 64-bit total"),
        )
    })?;
    let client = pool.get().await?;
    let statement = client.prepare_cached(INSERT).await?;
    let row = client
        .query_one(
            &statement,
            &[&order.item_name, &quantity, &price, &total, &NO_OWNER],
        )
        .await?;
    Ok(ok(Order::from_row(&row)?))
}

async fn get_order(
    State(pool): State<Pool>,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Envelope<Order>>, ApiError> {
    let Path(id) =
        id.map_err(|e| ApiError::bad_request("INVALID_PATH_PARAMETER", e.body_text()))?;
    let client = pool.get().await?;
    let statement = client.prepare_cached(GET).await?;
    match client.query_opt(&statement, &[&id, &NO_OWNER]).await? {
        Some(row) => Ok(ok(Order::from_row(&row)?)),
        None => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            error_code: "ORDER_NOT_FOUND",
            message: format!("no order has id {id}"),
        }),
    }
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name}={value}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let pool_size: usize = setting("DB_POOL_SIZE", 16)?;
    let port: u16 = setting("PORT", 0)?;
    let mut config: tokio_postgres::Config = url.parse().context("DATABASE_URL")?;
    config.application_name("plain-orders");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(pool_size).build()?;
    let app = Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!(
        "{}",
        serde_json::json!({"msg": "listening", "local_addr": listener.local_addr()?.to_string()})
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}
