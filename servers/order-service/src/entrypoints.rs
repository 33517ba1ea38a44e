//! The HTTP handlers: each authenticates its caller (a bearer token on
//! public operations, a signature on internal ones), unpacks its request,
//! calls the order rules, and wraps the result in the envelope;
//! [`observed`] logs and counts it.

use crate::ServiceContext;
use crate::orders::{self, OrderError};
use crate::signed_calls::Refusal;
use api_common::{
    Answer, ApiError, DocsPath, Envelope, Health, IdempotencyKeyHeader, JsonBody, Page, SignedBody,
    SignedRequest,
};
use dropshot::{HttpResponseOk, Path, Query, RequestContext};
use order_api::{
    ListOrdersQuery, Order, OrderApi, OrderPath, OrderRequest, PayerQuery, PaymentAttachment,
    PaymentCallback, PaymentRelease,
};
use service_support::auth::Caller;
use service_support::operations;

/// The implementation of [`OrderApi`], served by Dropshot.
pub enum OrderApiImpl {}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;
type Answered<T> = Result<Answer<T>, ApiError>;

impl OrderApi for OrderApiImpl {
    type Context = ServiceContext;

    async fn create_order(
        rqctx: RequestContext<ServiceContext>,
        key: IdempotencyKeyHeader,
        body: JsonBody<OrderRequest>,
    ) -> Answered<Envelope<Order>> {
        answered(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let context = rqctx.context();
            orders::create(
                &context.store,
                &context.keys,
                caller.subject(),
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
    ) -> Answered<Page<Order>> {
        answered(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let query = query.into_inner();
            let limit = query.limit.unwrap_or_default();
            let (orders, next_page) = orders::list(
                &rqctx.context().store,
                caller.owner_filter(),
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
    ) -> Answered<Envelope<Order>> {
        answered(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let id = path.into_inner().order_id;
            orders::get(&rqctx.context().store, id, caller.owner_filter())
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn update_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
        body: JsonBody<OrderRequest>,
    ) -> Answered<Envelope<Order>> {
        answered(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let id = path.into_inner().order_id;
            let store = &rqctx.context().store;
            orders::update(store, id, caller.owner_filter(), &body.into_inner())
                .await
                .map(Envelope::ok)
        })
        .await
    }

    async fn delete_order(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
    ) -> Answered<Envelope<Order>> {
        answered(&rqctx, async {
            let caller = caller(&rqctx).await?;
            let id = path.into_inner().order_id;
            orders::delete(&rqctx.context().store, id, caller.owner_filter())
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
            let report = verified(context, &body).await?;
            let webhook_id = body
                .request()
                .headers
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
            let mut attachment = verified(context, &body).await?;
            attachment.customer = payer(context, attachment.customer)?;
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
            let release = verified(context, &body).await?;
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

    async fn get_order_for_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<OrderPath>,
        query: Query<PayerQuery>,
        signed: SignedRequest,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            accepted(context, &signed, &[]).await?;
            let id = path.into_inner().order_id;
            let customer = payer(context, query.into_inner().customer)?;
            orders::get(&context.store, id, customer.as_deref())
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
        operations::ready(vec![
            ("shutdown", stopping),
            ("database", database),
            ("authentication", context.auth.readiness()),
        ])
        .map(HttpResponseOk)
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

/// The caller of a public operation, by its bearer token and the
/// operation's rule in [`order_api::ACCESS`].
async fn caller(rqctx: &RequestContext<ServiceContext>) -> Result<Caller, OrderError> {
    let rule = api_common::access_of(order_api::ACCESS, &rqctx.endpoint.operation_id);
    rqctx
        .context()
        .auth
        .authenticate(rqctx.request.headers(), rule)
        .await
        .map_err(OrderError::Enveloped)
}

/// The customer a signed call acts for, which order-service requires while
/// it authenticates its callers: without one, the call would act on every
/// customer's orders (a payment-service running with AUTH_DISABLED in front
/// of an authenticated order-service).
fn payer(context: &ServiceContext, customer: Option<String>) -> Result<Option<String>, OrderError> {
    let refused = |message: &str| {
        OrderError::Enveloped(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            api_common::ErrorCode::InvalidRequest,
            message,
        ))
    };
    match customer {
        None if !context.auth.is_open() => Err(refused(
            "customer is required: order-service authenticates its callers, so a payment is \
             made for a customer (is payment-service running with AUTH_DISABLED?)",
        )),
        Some(customer) if customer.is_empty() || customer.chars().any(char::is_control) => Err(
            refused("customer must be a token's sub: text without control characters"),
        ),
        customer => Ok(customer),
    }
}

/// Accepts a signed internal call: a valid signature over `request` and
/// `body`, seen for the first time.
async fn accepted(
    context: &ServiceContext,
    request: &SignedRequest,
    body: &[u8],
) -> Result<(), OrderError> {
    context
        .verifier
        .verify(request, body)
        .map_err(OrderError::Unauthorized)?;
    context
        .seen_calls
        .first_time(&request.headers)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Replayed(why) => OrderError::Unauthorized(why),
            Refusal::Database(error) => OrderError::Database(error),
        })
}

/// The body of a signed internal call, once the call is accepted. The
/// signature comes first: an unauthenticated caller learns nothing, not
/// even whether its body would parse.
async fn verified<T: serde::de::DeserializeOwned>(
    context: &ServiceContext,
    body: &SignedBody<T>,
) -> Result<T, OrderError> {
    accepted(context, body.request(), body.bytes()).await?;
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

/// Like [`observed`], for a public operation, whose refused credential
/// answers with its challenge.
async fn answered<T>(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<T, OrderError>>,
) -> Answered<T>
where
    T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    let metrics = &rqctx.context().metrics;
    operations::answered(&rqctx.log, metrics, &rqctx.endpoint.operation_id, work).await
}
