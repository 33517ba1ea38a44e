//! The HTTP handlers: each unpacks its request, calls the order rules, and
//! wraps the result in the envelope.

use crate::ServiceContext;
use crate::orders::{self, OrderError};
use api_common::{ApiError, Envelope, Page, SignedBody};
use dropshot::{HttpResponseOk, Path, Query, RequestContext, TypedBody};
use order_api::{ListOrdersQuery, Order, OrderApi, OrderPath, OrderRequest, PaymentCallback};

/// The implementation of [`OrderApi`], served by Dropshot.
pub enum OrderApiImpl {}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;

impl OrderApi for OrderApiImpl {
    type Context = ServiceContext;

    async fn create_order(
        rqctx: RequestContext<ServiceContext>,
        body: TypedBody<OrderRequest>,
    ) -> Reply<Envelope<Order>> {
        let result = orders::create(&rqctx.context().store, &body.into_inner()).await;
        reply(&rqctx, result.map(Envelope::ok))
    }

    async fn list_orders(
        rqctx: RequestContext<ServiceContext>,
        query: Query<ListOrdersQuery>,
    ) -> Reply<Page<Order>> {
        let query = query.into_inner();
        let result = orders::list(
            &rqctx.context().store,
            query.page_token.as_deref(),
            query.status,
            query.limit.unwrap_or_default(),
        )
        .await;
        reply(
            &rqctx,
            result.map(|(orders, next_page)| Page::ok(orders, next_page)),
        )
    }

    async fn get_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
    ) -> Reply<Envelope<Order>> {
        let result = orders::get(&rqctx.context().store, path.into_inner().order_id).await;
        reply(&rqctx, result.map(Envelope::ok))
    }

    async fn update_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
        body: TypedBody<OrderRequest>,
    ) -> Reply<Envelope<Order>> {
        let id = path.into_inner().order_id;
        let result = orders::update(&rqctx.context().store, id, &body.into_inner()).await;
        reply(&rqctx, result.map(Envelope::ok))
    }

    async fn delete_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
    ) -> Reply<Envelope<Order>> {
        let result = orders::delete(&rqctx.context().store, path.into_inner().order_id).await;
        reply(&rqctx, result.map(Envelope::ok))
    }

    async fn payment_callback(
        rqctx: RequestContext<ServiceContext>,
        body: SignedBody<PaymentCallback>,
    ) -> Reply<Envelope<Order>> {
        let context = rqctx.context();
        // The signature comes first: an unauthenticated caller learns
        // nothing, not even whether its body would parse.
        if let Err(reason) = context.verifier.verify(body.bytes(), body.headers()) {
            return reply(&rqctx, Err(OrderError::Unauthorized(reason)));
        }
        let report = body.parse()?;
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
        let result = orders::settle(&context.store, &report).await;
        reply(&rqctx, result.map(Envelope::ok))
    }
}

/// Turns a rule's result into the response, logging failures: server-side
/// ones with their full cause, refusals briefly.
fn reply<T>(rqctx: &RequestContext<ServiceContext>, result: Result<T, OrderError>) -> Reply<T>
where
    T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    result.map(HttpResponseOk).map_err(|error| {
        let api_error = error.to_api_error();
        if api_error.code >= 500 {
            slog::error!(rqctx.log, "request failed"; "error" => %error, "error_code" => &api_error.data.error_code);
        } else {
            slog::info!(rqctx.log, "request refused"; "error" => %error, "error_code" => &api_error.data.error_code);
        }
        api_error
    })
}
