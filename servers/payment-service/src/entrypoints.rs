//! The HTTP handlers: each unpacks its request, calls the payment rules,
//! and wraps the result in the envelope.

use crate::ServiceContext;
use crate::payments::{self, PaymentError};
use api_common::{ApiError, Envelope};
use dropshot::{HttpResponseOk, Path, RequestContext, TypedBody};
use payment_api::{Payment, PaymentApi, PaymentPath, PaymentRequest, SettlementRoute};

/// The implementation of [`PaymentApi`], served by Dropshot.
pub enum PaymentApiImpl {}

type Reply = Result<HttpResponseOk<Envelope<Payment>>, ApiError>;

impl PaymentApi for PaymentApiImpl {
    type Context = ServiceContext;

    async fn create_payment(
        rqctx: RequestContext<ServiceContext>,
        body: TypedBody<PaymentRequest>,
    ) -> Reply {
        let context = rqctx.context();
        let result = payments::create(&context.store, &context.orders, &body.into_inner()).await;
        reply(&rqctx, result)
    }

    async fn get_payment(rqctx: RequestContext<ServiceContext>, path: Path<PaymentPath>) -> Reply {
        let result = payments::get(&rqctx.context().store, path.into_inner().payment_id).await;
        reply(&rqctx, result)
    }

    async fn settle_payment(
        rqctx: RequestContext<ServiceContext>,
        path: Path<SettlementRoute>,
    ) -> Reply {
        let route = path.into_inner();
        let context = rqctx.context();
        let result = payments::settle(
            &context.store,
            route.payment_id,
            route.outcome,
            context.retry_window,
        )
        .await;
        reply(&rqctx, result)
    }
}

/// Turns a rule's result into the response, logging failures: server-side
/// ones with their full cause, refusals briefly.
fn reply(rqctx: &RequestContext<ServiceContext>, result: Result<Payment, PaymentError>) -> Reply {
    result.map(|payment| HttpResponseOk(Envelope::ok(payment))).map_err(|error| {
        let api_error = error.to_api_error();
        if api_error.code >= 500 {
            slog::error!(rqctx.log, "request failed"; "error" => %error, "error_code" => &api_error.data.error_code);
        } else {
            slog::info!(rqctx.log, "request refused"; "error" => %error, "error_code" => &api_error.data.error_code);
        }
        api_error
    })
}
