//! The HTTP handlers: each unpacks its request, calls the order rules, and
//! wraps the result in the envelope; [`observed`] logs and counts it.

use crate::ServiceContext;
use crate::orders::{self, OrderError};
use api_common::{
    ApiError, DocsPath, Envelope, Health, IdempotencyKeyHeader, JsonBody, Page, SignedBody,
};
use dropshot::{HttpResponseOk, Path, Query, RequestContext};
use order_api::{
    ListOrdersQuery, Order, OrderApi, OrderPath, OrderRequest, PaymentAttachment, PaymentCallback,
    PaymentRelease,
};
use service_support::operations;

/// The implementation of [`OrderApi`], served by Dropshot.
pub enum OrderApiImpl {}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;

impl OrderApi for OrderApiImpl {
    type Context = ServiceContext;

    async fn create_order(
        rqctx: RequestContext<ServiceContext>,
        key: IdempotencyKeyHeader,
        body: JsonBody<OrderRequest>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            orders::create(
                &context.store,
                &context.keys,
                key.into_inner().as_ref(),
                &body.into_inner(),
                &rqctx.log,
            )
            .await
            .map(Envelope::ok)
        })
        .await
    }

    async fn list_orders(
        rqctx: RequestContext<ServiceContext>,
        query: Query<ListOrdersQuery>,
    ) -> Reply<Page<Order>> {
        observed(&rqctx, async {
            let query = query.into_inner();
            let limit = query.limit.unwrap_or_default();
            let (orders, next_page) = orders::list(
                &rqctx.context().store,
                query.page_token.as_deref(),
                query.status,
                limit,
            )
            .await?;
            Ok(Page::ok(orders, next_page))
        })
        .await
    }

    async fn get_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            orders::get(&rqctx.context().store, path.into_inner().order_id)
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn update_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
        body: JsonBody<OrderRequest>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let id = path.into_inner().order_id;
            orders::update(&rqctx.context().store, id, &body.into_inner())
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn delete_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            orders::delete(&rqctx.context().store, path.into_inner().order_id)
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn payment_callback(
        rqctx: RequestContext<ServiceContext>,
        body: SignedBody<PaymentCallback>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            let report = verified(context, &body)?;
            let webhook_id = body
                .headers()
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            slog::info!(rqctx.log, "payment callback";
                "webhook_id" => webhook_id,
                "order_id" => %report.order_id,
                "payment_id" => %report.payment_id,
                "payment_status" => %report.payment_status);
            orders::settle(&context.store, &report)
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn attach_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
        body: SignedBody<PaymentAttachment>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            let attachment = verified(context, &body)?;
            let id = path.into_inner().order_id;
            slog::info!(rqctx.log, "attaching a payment";
                "order_id" => %id,
                "payment_id" => %attachment.payment_id);
            orders::attach_payment(&context.store, id, &attachment)
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn release_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
        body: SignedBody<PaymentRelease>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            let release = verified(context, &body)?;
            let id = path.into_inner().order_id;
            slog::info!(rqctx.log, "releasing a payment";
                "order_id" => %id,
                "payment_id" => %release.payment_id);
            orders::release_payment(&context.store, id, &release)
                .await
                .map(Envelope::ok)
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
        operations::ready(vec![("shutdown", stopping), ("database", database)]).map(HttpResponseOk)
    }

    async fn metrics(
        rqctx: RequestContext<ServiceContext>,
    ) -> Result<http::Response<dropshot::Body>, ApiError> {
        let context = rqctx.context();
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

/// The body of a signed internal call, once its signature is verified. The
/// signature comes first: an unauthenticated caller learns nothing, not
/// even whether its body would parse.
fn verified<T: serde::de::DeserializeOwned>(
    context: &ServiceContext,
    body: &SignedBody<T>,
) -> Result<T, OrderError> {
    context
        .verifier
        .verify(body.bytes(), body.headers())
        .map_err(OrderError::Unauthorized)?;
    body.parse().map_err(OrderError::Enveloped)
}

/// Runs a handler's work through [`operations::observed`].
async fn observed<T>(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<T, OrderError>>,
) -> Reply<T>
where
    T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    let metrics = &rqctx.context().metrics;
    operations::observed(&rqctx.log, metrics, &rqctx.endpoint.operation_id, work)
        .await
        .map(HttpResponseOk)
}
