//! The HTTP handlers: each unpacks its request, calls the payment rules,
//! and wraps the result in the envelope; [`observed`] logs and counts it.

use crate::ServiceContext;
use crate::payments::{self, PaymentError};
use api_common::{ApiError, DocsPath, Envelope, Health, IdempotencyKeyHeader, JsonBody};
use dropshot::{HttpResponseOk, Path, RequestContext};
use payment_api::{Payment, PaymentApi, PaymentPath, PaymentRequest, SettlementRoute};
use service_support::operations;
use std::sync::atomic::Ordering;

/// The implementation of [`PaymentApi`], served by Dropshot.
pub enum PaymentApiImpl {}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;

impl PaymentApi for PaymentApiImpl {
    type Context = ServiceContext;

    async fn create_payment(
        rqctx: RequestContext<ServiceContext>,
        key: IdempotencyKeyHeader,
        body: JsonBody<PaymentRequest>,
    ) -> Reply<Envelope<Payment>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            // order-service logs this request's id beside its own.
            let orders = context.orders.with_request_id(&rqctx.request_id);
            payments::create_once(
                &context.store,
                &orders,
                &context.keys,
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
    ) -> Reply<Envelope<Payment>> {
        observed(
            &rqctx,
            payments::get(&rqctx.context().store, path.into_inner().payment_id),
        )
        .await
    }

    async fn settle_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<SettlementRoute>,
    ) -> Reply<Envelope<Payment>> {
        observed(&rqctx, async {
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
            Ok(())
        } else {
            Err("the outcome dispatcher is not running".to_string())
        };
        operations::ready(vec![
            ("shutdown", stopping),
            ("database", database),
            ("dispatcher", dispatcher),
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

/// Runs a handler's work through [`operations::observed`] and wraps the payment.
async fn observed(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<Payment, PaymentError>>,
) -> Reply<Envelope<Payment>> {
    let metrics = &rqctx.context().metrics;
    let payment =
        operations::observed(&rqctx.log, metrics, &rqctx.endpoint.operation_id, work).await?;
    Ok(HttpResponseOk(Envelope::ok(payment)))
}
