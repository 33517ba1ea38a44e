//! The HTTP handlers: each authenticates its caller, unpacks its request,
//! applies its Idempotency-Key, calls the payment rules, and wraps the
//! result in the envelope; [`observed`] logs and counts it. The one
//! mapping of the rules' errors to statuses and codes is here.

use crate::ServiceContext;
use crate::payments::{self, PaymentError};
use api_common::{Answer, ApiError, Envelope, ErrorCode, IdempotencyKeyHeader, JsonBody};
use dropshot::{Path, RequestContext};
use http::StatusCode;
use payment_api::{Payment, PaymentApi, PaymentPath, PaymentRequest, SettlementRoute};
use service_support::auth::Caller;
use service_support::idempotency::Done;
use service_support::operations::{self, Failure, ServiceError};

/// The implementation of [`PaymentApi`], served by Dropshot.
pub enum PaymentApiImpl {}

type Answered<T> = Result<Answer<T>, ApiError>;
type Failed = Failure<PaymentError>;

impl ServiceError for PaymentError {
    /// The envelope for this error.
    fn to_api_error(&self) -> ApiError {
        let (status, code) = match self {
            PaymentError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::PaymentNotFound),
            PaymentError::NotPending { .. } => (StatusCode::CONFLICT, ErrorCode::PaymentNotPending),
            PaymentError::OrderNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::OrderNotFound),
            PaymentError::OrderNotPending { .. } => {
                (StatusCode::CONFLICT, ErrorCode::OrderNotPending)
            }
            PaymentError::AmountMismatch { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::AmountMismatch)
            }
            PaymentError::TermsDiffer {
                amount_differs: true,
                ..
            } => (StatusCode::BAD_REQUEST, ErrorCode::AmountMismatch),
            PaymentError::TermsDiffer { .. } => (StatusCode::CONFLICT, ErrorCode::PaymentExists),
            PaymentError::AnotherUnderWay(_) => {
                (StatusCode::CONFLICT, ErrorCode::OrderPaymentInProgress)
            }
            PaymentError::OrderServiceNoAnswer { .. } | PaymentError::Unrecorded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::OutcomeUnknown)
            }
            PaymentError::OrderServiceUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::OrderServiceUnavailable,
            ),
            PaymentError::OrderServiceBadResponse(_) => {
                (StatusCode::BAD_GATEWAY, ErrorCode::OrderServiceBadResponse)
            }
            PaymentError::Database(error) => return operations::database_failure(error, "payment"),
        };
        ApiError::new(status, code, self.to_string())
    }
}

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
            let (customer, request) = (caller.subject(), body.into_inner());
            // The answer is recorded after the work rather than with it: an
            // order has one payment, so an attempt that died before
            // recording is redone by a retry that finds that payment.
            let work = async |_: Option<&_>| {
                payments::create(&context.store, &orders, customer, &request)
                    .await
                    .map(Done::Answered)
            };
            let key = key.into_inner();
            context
                .keys
                .once(customer, key.as_ref(), &request, &rqctx.log, work)
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
            Ok(payments::get(&rqctx.context().store, id, caller.owner_filter()).await?)
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
            let (id, outcome) = (route.payment_id, route.outcome);
            let request_id = &rqctx.request_id;
            Ok(
                payments::settle(&context.store, &context.delivery, id, outcome, request_id)
                    .await?,
            )
        })
        .await
    }
}

/// The caller, by its bearer token and the operation's rule in
/// [`payment_api::ACCESS`].
async fn caller(rqctx: &RequestContext<ServiceContext>) -> Result<Caller, Failed> {
    let rule = api_common::access_of(payment_api::ACCESS, &rqctx.endpoint.operation_id);
    rqctx
        .context()
        .auth
        .authenticate(rqctx.request.headers(), rule)
        .await
        .map_err(Failure::Answer)
}

/// Runs a handler's work through [`operations::answered`] and wraps the
/// payment; a refused credential answers with its challenge.
async fn observed(
    rqctx: &RequestContext<ServiceContext>,
    work: impl Future<Output = Result<Payment, Failed>>,
) -> Answered<Envelope<Payment>> {
    let metrics = &rqctx.context().shell.metrics;
    let operation = &rqctx.endpoint.operation_id;
    let work = async { work.await.map(Envelope::ok) };
    operations::answered(&rqctx.log, metrics, operation, work).await
}
