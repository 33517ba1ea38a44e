//! The unpublished endpoints every service has, defined once here:
//! liveness, readiness and metrics for orchestrators and Prometheus, and
//! the service's part of the contract with its documentation pages. And
//! what every handler goes through: [`observed`].

use crate::database::{Database, DbError};
use crate::docs::Docs;
use crate::metrics::{self, Metrics};
use crate::shutdown::Draining;
use api_common::{Answer, ApiError, DocsPath, Envelope, ErrorCode, Health};
use dropshot::{
    ApiDescription, ApiDescriptionRegisterError, ApiEndpoint, ApiEndpointVersions,
    CONTENT_TYPE_JSON, HttpResponseOk, Path, RequestContext,
};
use http::{Method, StatusCode};

/// What every service's context holds for its operational endpoints.
pub struct Shell {
    pub db: Database,
    pub metrics: Metrics,
    pub docs: Docs,
    pub draining: Draining,
}

/// What a service's context gives its operational endpoints.
pub trait Operated: Send + Sync + 'static {
    fn shell(&self) -> &Shell;
    /// The service's own readiness checks, after the shutdown and the
    /// database: each check's name and what to show (`ok`, or a note).
    fn readiness(&self) -> Vec<(&'static str, Result<&'static str, String>)>;
    /// Brings the service's own gauges up to date before a scrape.
    fn before_scrape(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;
type Document = Result<http::Response<dropshot::Body>, ApiError>;

/// Adds the operational endpoints, unpublished, to a service's API.
pub fn register<C: Operated>(
    api: &mut ApiDescription<C>,
) -> Result<(), ApiDescriptionRegisterError> {
    macro_rules! endpoint {
        ($name:literal, $path:literal, $handler:expr) => {
            ApiEndpoint::new(
                $name.to_string(),
                $handler,
                Method::GET,
                CONTENT_TYPE_JSON,
                $path,
                ApiEndpointVersions::All,
            )
            .visible(false)
        };
    }
    for endpoint in [
        endpoint!("healthz", "/healthz", healthz::<C>),
        endpoint!("readyz", "/readyz", readyz::<C>),
        endpoint!("metrics", "/metrics", scrape::<C>),
        endpoint!("contract_document", "/openapi.json", contract_document::<C>),
        endpoint!("docs_page", "/docs/{path:.*}", docs_page::<C>),
    ] {
        api.register(endpoint)?;
    }
    Ok(())
}

/// Liveness: the process is up and serving HTTP.
async fn healthz<C: Operated>(_rqctx: RequestContext<C>) -> Reply<Envelope<Health>> {
    Ok(HttpResponseOk(alive()))
}

/// Readiness: not shutting down, the database answers, and the service's
/// own checks pass; 503 `SERVICE_UNAVAILABLE` naming what is not ready.
async fn readyz<C: Operated>(rqctx: RequestContext<C>) -> Reply<Envelope<Health>> {
    let context = rqctx.context();
    let shell = context.shell();
    let mut checks = vec![
        ("shutdown", shell.draining.check()),
        ("database", database_check(&shell.db).await),
    ];
    checks.extend(context.readiness());
    ready(checks).map(HttpResponseOk)
}

/// Prometheus metrics in the OpenMetrics text format.
async fn scrape<C: Operated>(rqctx: RequestContext<C>) -> Document {
    let context = rqctx.context();
    context.before_scrape().await;
    metrics_response(&context.shell().metrics, &context.shell().db)
}

/// This service's part of the contract, as JSON.
async fn contract_document<C: Operated>(rqctx: RequestContext<C>) -> Document {
    rqctx.context().shell().docs.openapi_json()
}

/// Interactive documentation (Swagger UI) of this service's part of the
/// contract, served with all its assets.
async fn docs_page<C: Operated>(rqctx: RequestContext<C>, path: Path<DocsPath>) -> Document {
    rqctx.context().shell().docs.page(&path.into_inner().path)
}

/// A service's error type: how it reads to a person, and its envelope.
/// Implemented at a service's entrypoints: its rules know nothing of HTTP.
pub trait ServiceError: std::fmt::Display {
    fn to_api_error(&self) -> ApiError;
}

/// The envelope for a failed database statement of the service holding
/// `resource`s. Details are for the log, not the client.
pub fn database_failure(error: &DbError, resource: &str) -> ApiError {
    match error {
        DbError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            format!("the {resource} database is unavailable; retry in a few seconds"),
        ),
        DbError::OutcomeUnknown(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::OutcomeUnknown,
            format!(
                "the {resource} database did not confirm in time whether this change was made; \
                 read the {resource} to see, or send the same request again (with the same \
                 Idempotency-Key, if any), which answers what was done"
            ),
        ),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error; it has been logged",
        ),
    }
}

/// Why a handler did not answer 200: its rules refused or failed, or the
/// edge answered before them (a refused credential, an unreadable body,
/// the stored answer to an Idempotency-Key).
#[derive(Debug)]
pub enum Failure<E> {
    Rules(E),
    Answer(ApiError),
}

impl<E> From<E> for Failure<E> {
    fn from(error: E) -> Self {
        Failure::Rules(error)
    }
}

impl<E: std::fmt::Display> std::fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rules(error) => error.fmt(f),
            Failure::Answer(answer) => f.write_str(&answer.data.message),
        }
    }
}

impl<E: ServiceError> ServiceError for Failure<E> {
    fn to_api_error(&self) -> ApiError {
        match self {
            Failure::Rules(error) => error.to_api_error(),
            Failure::Answer(answer) => answer.clone(),
        }
    }
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
fn alive() -> Envelope<Health> {
    let mut health = Health::default();
    health
        .checks
        .insert("process".to_string(), "ok".to_string());
    Envelope::ok(health)
}

/// Readiness from named checks, each passed with what to show (`ok`, or a
/// note): 200 if all passed, else 503 naming the failures.
fn ready(checks: Vec<(&str, Result<&str, String>)>) -> Result<Envelope<Health>, ApiError> {
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
async fn database_check(db: &Database) -> Result<&'static str, String> {
    db.ping().await.map(|()| "ok").map_err(|e| e.to_string())
}

/// The `/metrics` response, with the pool's state as of now.
fn metrics_response(
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
