//! The HTTP handlers: each authenticates its caller, unpacks its request,
//! calls the payment rules, and wraps the result in the envelope;
//! [`observed`] logs and counts it.

use crate::ServiceContext;
use crate::payments::{self, PaymentError};
use api_common::{Answer, ApiError, DocsPath, Envelope, Health, IdempotencyKeyHeader, JsonBody};
use dropshot::{HttpResponseOk, Path, RequestContext};
use payment_api::{Payment, PaymentApi, PaymentPath, PaymentRequest, SettlementRoute};
use service_support::auth::Caller;
use service_support::operations;
use std::sync::atomic::Ordering;

/// The implementation of [`PaymentApi`], served by Dropshot.
pub enum PaymentApiImpl {}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;
type Answered<T> = Result<Answer<T>, ApiError>;

impl PaymentApi for PaymentApiImpl {
    type Context = ServiceContext;

    async fn create_payment(
        rqctx: RequestContext<ServiceContext>,
        key: IdempotencyKeyHeader,
        body: JsonBody<PaymentRequest>,
    ) -> Answered<Envelope<Payment>> {
        observed(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let context = rqctx.context();
            // order-service logs this request's id beside its own.
            let orders = context.orders.with_request_id(&rqctx.request_id);
            payments::create_once(
                &context.store,
                &orders,
                &context.keys,
                caller.subject(),
                key.into_inner().as_ref(),
                &body.into_inner(),
                &rqctx.log,
            )
            .await
        })
        .await
    }

    async fn get_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<PaymentPath>,
    ) -> Answered<Envelope<Payment>> {
        observed(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let id = path.into_inner().payment_id;
            payments::get(&rqctx.context().store, id, caller.owner_filter()).await
        })
        .await
    }

    async fn settle_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<SettlementRoute>,
    ) -> Answered<Envelope<Payment>> {
        observed(&rqctx, async {
            caller(&rqctx).await?;
            let route = path.into_inner();
            let context = rqctx.context();
            let window = context.retry_window;
            let (payment, claimed) = payments::settle(
                &context.store,
                route.payment_id,
                route.outcome,
                window,
                &rqctx.request_id,
                context.wakeup.claimant(),
            )
            .await?;
            context.wakeup.deliver(claimed);
            Ok(payment)
        })
        .await
    }

    async fn healthz(_rqctx: RequestContext<ServiceContext>) -> Reply<Envelope<Health>> {
        Ok(HttpResponseOk(operations::alive()))
    }

    async fn readyz(rqctx: RequestContext<ServiceContext>) -> Reply<Envelope<Health>> {
        let context = rqctx.context();
        let stopping = context.draining.check();
        let database = operations::database_check(&context.db).await;
        let dispatcher = if context.dispatcher_running.load(Ordering::SeqCst) {
            Ok("ok")
        } else {
            Err("the outcome dispatcher is not running".to_string())
        };
        operations::ready(vec![
            ("shutdown", stopping),
            ("database", database),
            ("dispatcher", dispatcher),
            ("authentication", context.auth.readiness()),
        ])
        .map(HttpResponseOk)
    }

    async fn metrics(
        rqctx: RequestContext<ServiceContext>,
    ) -> Result<http::Response<dropshot::Body>, ApiError> {
        let context = rqctx.context();
        // Left as last scraped when the database does not answer in time.
        if let Ok(backlog) = context.outbox.backlog().await {
            context.delivery_metrics.backlog.set(backlog);
        }
        if let Ok(disagreements) = context.outbox.disagreement_count().await {
            context.delivery_metrics.disagreements.set(disagreements);
        }
        operations::metrics_response(&context.metrics, &context.db)
    }

    async fn contract_document(
        rqctx: RequestContext<ServiceContext>,
    ) -> Result<http::Response<dropshot::Body>, ApiError> {
        rqctx.context().docs.openapi_json()
    }

    async fn docs_page(
        rqctx: RequestContext<ServiceContext>,
        path: Path<DocsPath>,
    ) -> Result<http::Response<dropshot::Body>, ApiError> {
        rqctx.context().docs.page(&path.into_inner().path)
    }
}

/// The caller, by its bearer token and the operation's rule in
/// [`payment_api::ACCESS`].
async fn caller(rqctx: &RequestContext<ServiceContext>) -> Result<Caller, PaymentError> {
    let rule = api_common::access_of(payment_api::ACCESS, &rqctx.endpoint.operation_id);
    rqctx
        .context()
        .auth
        .authenticate(rqctx.request.headers(), rule)
        .await
        .map_err(PaymentError::Enveloped)
}

/// Runs a handler's work through [`operations::answered`] and wraps the
/// payment; a refused credential answers with its challenge.
async fn observed(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<Payment, PaymentError>>,
) -> Answered<Envelope<Payment>> {
    let metrics = &rqctx.context().metrics;
    let operation = &rqctx.endpoint.operation_id;
    let work = async { work.await.map(Envelope::ok) };
    operations::answered(&rqctx.log, metrics, operation, work).await
}
