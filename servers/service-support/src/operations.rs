//! The unpublished endpoints every service has: liveness, readiness and
//! metrics, for orchestrators and Prometheus.

use crate::database::Database;
use crate::metrics::{self, Metrics};
use api_common::{Answer, ApiError, Envelope, ErrorCode, Health};
use http::StatusCode;

/// A service's error type: how it reads to a person, and its envelope.
pub trait ServiceError: std::fmt::Display {
    fn to_api_error(&self) -> ApiError;
}

/// Runs a handler's work; logs a failure (server-side ones with their
/// cause, refusals briefly) and counts the request by operation and status.
/// Dropshot has no middleware, so every handler goes through this.
pub async fn observed<T, E: ServiceError>(
    log: &slog::Logger,
    metrics: &Metrics,
    operation: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    let started = std::time::Instant::now();
    let result = work.await.map_err(|error| {
        let api_error = error.to_api_error();
        let code = &api_error.data.error_code;
        if api_error.code >= 500 {
            slog::error!(log, "request failed"; "error" => %error, "error_code" => code);
        } else {
            slog::info!(log, "request refused"; "error" => %error, "error_code" => code);
        }
        api_error
    });
    let status = result.as_ref().map_or_else(|e| e.code, |_| 200);
    metrics.observe_request(operation, status, started.elapsed());
    result
}

/// [`observed`], for an operation answering [`Answer`]: an error with a
/// challenge (a refused credential) goes out with its header.
pub async fn answered<T, E: ServiceError>(
    log: &slog::Logger,
    metrics: &Metrics,
    operation: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<Answer<T>, ApiError> {
    match observed(log, metrics, operation, work).await {
        Ok(value) => Ok(Answer::Ok(value)),
        Err(error) if error.challenge.is_some() => Ok(Answer::Challenged(error)),
        Err(error) => Err(error),
    }
}

/// Liveness: answering at all is the check.
pub fn alive() -> Envelope<Health> {
    let mut health = Health::default();
    health
        .checks
        .insert("process".to_string(), "ok".to_string());
    Envelope::ok(health)
}

/// Readiness from named checks, each passed with what to show (`ok`, or a
/// note): 200 if all passed, else 503 naming the failures.
pub fn ready(checks: Vec<(&str, Result<&str, String>)>) -> Result<Envelope<Health>, ApiError> {
    let failures: Vec<String> = checks
        .iter()
        .filter_map(|(name, result)| result.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    if !failures.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            format!("not ready: {}", failures.join("; ")),
        ));
    }
    let mut health = Health::default();
    for (name, shown) in checks {
        health
            .checks
            .insert(name.to_string(), shown.unwrap_or_default().to_string());
    }
    Ok(Envelope::ok(health))
}

/// The database check for [`ready`].
pub async fn database_check(db: &Database) -> Result<&'static str, String> {
    db.ping().await.map(|()| "ok").map_err(|e| e.to_string())
}

/// The `/metrics` response, with the pool's state as of now.
pub fn metrics_response(
    metrics: &Metrics,
    db: &Database,
) -> Result<http::Response<dropshot::Body>, ApiError> {
    metrics.set_pool(db.pool_status());
    http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)
        .body(metrics.render().into())
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                e.to_string(),
            )
        })
}
