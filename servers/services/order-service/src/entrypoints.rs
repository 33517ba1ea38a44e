//! The HTTP handlers: each authenticates its caller (a bearer token on
//! public operations, a signature on internal ones), unpacks its request,
//! applies its Idempotency-Key, calls the order rules, and wraps the
//! result in the envelope; [`observed`] logs and counts it. The one
//! mapping of the rules' errors to statuses and codes is here.

use crate::ServiceContext;
use crate::orders::{self, OrderError};
use crate::signed_calls::CallId;
use api_common::{
    Answer, ApiError, Envelope, ErrorCode, IdempotencyKeyHeader, JsonBody, Page, SignedBody,
    SignedRequest,
};
use dropshot::{HttpResponseOk, Path, Query, RequestContext};
use http::StatusCode;
use order_api::{
    ListOrdersQuery, Order, OrderApi, OrderPath, OrderRequest, PayerQuery, PaymentAttachment,
    PaymentCallback, PaymentRelease,
};
use service_support::auth::Caller;
use service_support::operations::{self, Failure, ServiceError};

/// The implementation of [`OrderApi`], served by Dropshot.
pub enum OrderApiImpl {}

type Reply<T> = Result<HttpResponseOk<T>, ApiError>;
type Answered<T> = Result<Answer<T>, ApiError>;
type Failed = Failure<OrderError>;

impl ServiceError for OrderError {
    /// The envelope for this error.
    fn to_api_error(&self) -> ApiError {
        let (status, code) = match self {
            OrderError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::OrderNotFound),
            OrderError::NotPending { .. } => (StatusCode::CONFLICT, ErrorCode::OrderNotPending),
            OrderError::PaymentInProgress { .. } => {
                (StatusCode::CONFLICT, ErrorCode::OrderPaymentInProgress)
            }
            OrderError::TotalOverflow { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::TotalAmountOverflow)
            }
            OrderError::AmountMismatch { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::AmountMismatch)
            }
            OrderError::AlreadySettled { .. } => {
                (StatusCode::CONFLICT, ErrorCode::OrderAlreadySettled)
            }
            OrderError::PaymentReleased { .. } => {
                (StatusCode::CONFLICT, ErrorCode::PaymentReleased)
            }
            OrderError::InvalidPageToken => (StatusCode::BAD_REQUEST, ErrorCode::InvalidPageToken),
            OrderError::CallRefused(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            OrderError::Database(error) => return operations::database_failure(error, "order"),
        };
        ApiError::new(status, code, self.to_string())
    }
}

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
            let (owner, request) = (caller.subject(), body.into_inner());
            // Refused before the key is looked at: such a request leaves no trace.
            let total = orders::total_amount(&request)?;
            let work = async |attempt: Option<&_>| {
                orders::create(&context.store, owner, &request, total, attempt).await
            };
            let key = key.into_inner();
            context
                .keys
                .once(owner, key.as_ref(), &request, &rqctx.log, work)
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
                .map_err(Failure::from)
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
                .map_err(Failure::from)
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
                .map_err(Failure::from)
        })
        .await
    }

    async fn payment_callback(
        rqctx: RequestContext<ServiceContext>,
        body: SignedBody<PaymentCallback>,
    ) -> Reply<Envelope<Order>> {
        observed(&rqctx, async {
            let context = rqctx.context();
            let (report, call) = verified(context, &body)?;
            slog::info!(rqctx.log, "payment callback";
                "webhook_id" => call.as_str(),
                "order_id" => %report.order_id,
                "payment_id" => %report.payment_id,
                "payment_status" => %report.payment_status);
            orders::settle(&context.store, &report, &call)
                .await
                .map(Envelope::ok)
                .map_err(Failure::from)
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
            let (mut attachment, call) = verified(context, &body)?;
            attachment.customer = payer(context, attachment.customer)?;
            let id = path.into_inner().order_id;
            slog::info!(rqctx.log, "attaching a payment";
                "order_id" => %id,
                "payment_id" => %attachment.payment_id);
            orders::attach_payment(&context.store, id, &attachment, &call)
                .await
                .map(Envelope::ok)
                .map_err(Failure::from)
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
            let (release, call) = verified(context, &body)?;
            let id = path.into_inner().order_id;
            slog::info!(rqctx.log, "releasing a payment";
                "order_id" => %id,
                "payment_id" => %release.payment_id);
            orders::release_payment(&context.store, id, &release, &call)
                .await
                .map(Envelope::ok)
                .map_err(Failure::from)
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
            let call = accepted(context, &signed, &[])?;
            let id = path.into_inner().order_id;
            let customer = payer(context, query.into_inner().customer)?;
            orders::get_for_payment(&context.store, id, customer.as_deref(), &call)
                .await
                .map(Envelope::ok)
                .map_err(Failure::from)
        })
        .await
    }
}

/// The caller of a public operation, by its bearer token and the
/// operation's rule in [`order_api::ACCESS`].
async fn caller(rqctx: &RequestContext<ServiceContext>) -> Result<Caller, Failed> {
    let rule = api_common::access_of(order_api::ACCESS, &rqctx.endpoint.operation_id);
    rqctx
        .context()
        .auth
        .authenticate(rqctx.request.headers(), rule)
        .await
        .map_err(Failure::Answer)
}

/// The customer a signed call acts for, which order-service requires while
/// it authenticates its callers: without one, the call would act on every
/// customer's orders (a payment-service running with AUTH_DISABLED in front
/// of an authenticated order-service).
fn payer(context: &ServiceContext, customer: Option<String>) -> Result<Option<String>, Failed> {
    let refused = |message: &str| {
        Failure::Answer(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
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

/// Accepts a signed internal call with a valid signature over `request`
/// and `body`; answers its id, which the rules act on once (a replay is
/// refused where the call's work commits).
fn accepted(
    context: &ServiceContext,
    request: &SignedRequest,
    body: &[u8],
) -> Result<CallId, Failed> {
    let refused = |why: String| Failure::Rules(OrderError::CallRefused(why));
    context.verifier.verify(request, body).map_err(refused)?;
    CallId::of(&request.headers).map_err(refused)
}

/// The body of a signed internal call and the call's id, once the
/// signature is accepted. The signature comes first: an unauthenticated
/// caller learns nothing, not even whether its body would parse.
fn verified<T: serde::de::DeserializeOwned>(
    context: &ServiceContext,
    body: &SignedBody<T>,
) -> Result<(T, CallId), Failed> {
    let call = accepted(context, body.request(), body.bytes())?;
    Ok((body.parse().map_err(Failure::Answer)?, call))
}

/// Runs a handler's work through [`operations::observed`].
async fn observed<T>(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<T, Failed>>,
) -> Reply<T>
where
    T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    let metrics = &rqctx.context().shell.metrics;
    operations::observed(&rqctx.log, metrics, &rqctx.endpoint.operation_id, work)
        .await
        .map(HttpResponseOk)
}

/// Like [`observed`], for a public operation, whose refused credential
/// answers with its challenge.
async fn answered<T>(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<T, Failed>>,
) -> Answered<T>
where
    T: serde::Serialize + schemars::JsonSchema + Send + Sync + 'static,
{
    let metrics = &rqctx.context().shell.metrics;
    operations::answered(&rqctx.log, metrics, &rqctx.endpoint.operation_id, work).await
}
