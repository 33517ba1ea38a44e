//! The payment-service API: the Dropshot trait that defines its operations
//! and the wire types they exchange. No I/O happens here; `tools/contract`
//! turns this trait into the payment-service half of `openapi.yaml`.
//!
//! WHEN CHANGING THE API: edit this trait or its types, run
//! `cargo run -p contract -- generate` and `cargo run -p client-codegen`,
//! and review the diff of `openapi.yaml`; CHANGELOG.md says what changed.
//! Function names are operationIds, and so method names in the generated
//! clients: renaming one is a breaking change.

use api_common::{
    Access, Answer, ApiError, Envelope, IdempotencyKeyHeader, JsonBody, NonBlankText, PositiveInt,
    Scope,
};
use chrono::{DateTime, Utc};
use dropshot::{Path, RequestContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[dropshot::api_description {
    tag_config = {
        allow_other_tags = false,
        policy = dropshot::EndpointTagPolicy::ExactlyOne,
        tags = {
            "payments" = { description = "Payments for orders (payment-service, port 8081)." },
        },
    },
}]
pub trait PaymentApi {
    type Context: Send + Sync + 'static;

    /// Create a payment for an order
    ///
    /// Creates a `pending` payment after order-service has attached it to the
    /// order, which requires the order to exist (`ORDER_NOT_FOUND`, 404), be
    /// `pending` (`ORDER_NOT_PENDING`, 409) and cost exactly `amount`
    /// (`AMOUNT_MISMATCH`, 400); from then on the order cannot be changed or
    /// deleted until the payment succeeds or fails. An order has at most one
    /// payment: creating one again with the same `amount` and `provider`
    /// answers 200 with the existing payment; another amount is
    /// `AMOUNT_MISMATCH` (400), another provider `PAYMENT_EXISTS` (409). A
    /// payment nobody settles expires after 24 hours (the service's
    /// `PAYMENT_EXPIRY_SECS`): it becomes `failed`, and so does its order. If
    /// order-service cannot be reached the answer is
    /// `ORDER_SERVICE_UNAVAILABLE` (503) and no payment was created. If it
    /// does not answer in time whether it took the payment, the answer is
    /// `OUTCOME_UNKNOWN` (503), or `ORDER_SERVICE_BAD_RESPONSE` (502) if its
    /// answer is unreadable: send the same request again, which answers the
    /// payment or why there is none (a payment left unfinished is given up
    /// by the service within a few timeouts, and its order is free again).
    ///
    /// Send an `Idempotency-Key` to make the create safe to retry: every
    /// retry with the key is answered as the first request was, refusals
    /// included, until the key expires. Keys are the caller's own: another
    /// caller's same key is another key.
    ///
    /// Needs scope `payments:write`, and the order must be the caller's
    /// (order-service decides): another customer's order is
    /// `ORDER_NOT_FOUND` (404), as if it did not exist.
    #[endpoint { method = POST, path = "/payments", tags = ["payments"] }]
    async fn create_payment(
        rqctx: RequestContext<Self::Context>,
        key: IdempotencyKeyHeader,
        body: JsonBody<PaymentRequest>,
    ) -> Result<Answer<Envelope<Payment>>, ApiError>;

    /// Fetch a payment
    ///
    /// Needs scope `payments:read`, and answers the caller's own payments;
    /// another customer's is `PAYMENT_NOT_FOUND` (404), as if it did not
    /// exist. With `payments:settle` or `admin`, any payment.
    #[endpoint { method = GET, path = "/payments/{paymentId}", tags = ["payments"] }]
    async fn get_payment(
        rqctx: RequestContext<Self::Context>,
        path: Path<PaymentPath>,
    ) -> Result<Answer<Envelope<Payment>>, ApiError>;

    /// Route both settlement operations of [`PaymentSettlementApi`].
    ///
    /// Dropshot's router cannot hold the literal segments `success` and
    /// `failed` beside `{paymentId}` at the same position, and it requires one
    /// variable name per position. So the settlement paths are served by this
    /// one unpublished route, whose second segment is named `paymentId` like
    /// `get_payment`'s but holds the outcome (`success` or `failed`), and whose
    /// third is the payment's id. The published contract for these URLs is
    /// [`PaymentSettlementApi`]; the harness checks the two agree.
    #[endpoint { method = PUT, path = "/payments/{paymentId}/{settledPaymentId}", unpublished = true }]
    async fn settle_payment(
        rqctx: RequestContext<Self::Context>,
        path: Path<SettlementRoute>,
    ) -> Result<Answer<Envelope<Payment>>, ApiError>;
}

/// What each public operation asks of its caller's bearer token; the
/// handlers enforce it and the contract publishes it. `settle_payment` is
/// the route that serves the two published settlement operations.
pub const ACCESS: &[Access] = &[
    Access {
        operation: "create_payment",
        any_of: &[Scope::PaymentsWrite],
        sees_all: &[],
    },
    Access {
        operation: "get_payment",
        any_of: &[Scope::PaymentsRead, Scope::PaymentsSettle, Scope::Admin],
        sees_all: &[Scope::PaymentsSettle, Scope::Admin],
    },
    SETTLE,
    Access {
        operation: "mark_payment_success",
        ..SETTLE
    },
    Access {
        operation: "mark_payment_failed",
        ..SETTLE
    },
];

/// Settling is a privilege: only `payments:settle`, on any payment; a
/// customer cannot settle even their own.
const SETTLE: Access = Access {
    operation: "settle_payment",
    any_of: &[Scope::PaymentsSettle],
    sees_all: &[Scope::PaymentsSettle],
};

/// The published contract of the two settlement operations, served by
/// [`PaymentApi::settle_payment`] (see there why they need a trait of their own).
#[dropshot::api_description {
    tag_config = {
        allow_other_tags = false,
        policy = dropshot::EndpointTagPolicy::ExactlyOne,
        tags = {
            "payments" = { description = "Payments for orders (payment-service, port 8081)." },
        },
    },
}]
pub trait PaymentSettlementApi {
    type Context: Send + Sync + 'static;

    /// Record that a payment succeeded
    ///
    /// Moves a `pending` payment to `success` and sets `paid_at`; any other
    /// transition is `PAYMENT_NOT_PENDING` (409). order-service is then told
    /// reliably, and the order becomes `paid`.
    ///
    /// Needs scope `payments:settle` (the payment provider's connector or
    /// the back office), which acts on any payment; a customer cannot
    /// settle even their own.
    #[endpoint { method = PUT, path = "/payments/success/{paymentId}", tags = ["payments"] }]
    async fn mark_payment_success(
        rqctx: RequestContext<Self::Context>,
        path: Path<PaymentPath>,
    ) -> Result<Answer<Envelope<Payment>>, ApiError>;

    /// Record that a payment failed
    ///
    /// Moves a `pending` payment to `failed`; any other transition is
    /// `PAYMENT_NOT_PENDING` (409). order-service is then told reliably, and
    /// the order becomes `failed`.
    ///
    /// Needs scope `payments:settle`, like `mark_payment_success`.
    #[endpoint { method = PUT, path = "/payments/failed/{paymentId}", tags = ["payments"] }]
    async fn mark_payment_failed(
        rqctx: RequestContext<Self::Context>,
        path: Path<PaymentPath>,
    ) -> Result<Answer<Envelope<Payment>>, ApiError>;
}

/// The unpublished settlement route's path: `/payments/{outcome}/{payment id}`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SettlementRoute {
    /// The outcome (`success` or `failed`), in the position `get_payment` calls `paymentId`.
    #[serde(rename = "paymentId")]
    pub outcome: Settlement,
    /// The payment's id (a UUID).
    #[serde(rename = "settledPaymentId")]
    pub payment_id: Uuid,
}

/// The outcome a settlement records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// `PUT /payments/success/{paymentId}`.
    Success,
    /// `PUT /payments/failed/{paymentId}`.
    Failed,
}

/// The longest `provider` accepted, in characters.
pub const PROVIDER_MAX_CHARS: usize = 100;

/// What a client sends to create a payment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The order to pay.
    pub order_id: Uuid,
    /// The amount in minor currency units; must equal the order's `total_amount`.
    pub amount: PositiveInt,
    /// Who processes the payment, for example `stripe` or `bank_transfer`: 1 to 100 characters, not only whitespace, without the NUL character (U+0000).
    pub provider: NonBlankText<PROVIDER_MAX_CHARS>,
}

/// A payment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Payment {
    /// The payment's id.
    pub id: Uuid,
    /// The order it pays.
    pub order_id: Uuid,
    /// The amount in minor currency units.
    pub amount: i64,
    /// Where the payment is in its life cycle.
    pub status: PaymentStatus,
    /// Who processes the payment.
    pub provider: String,
    /// When the payment succeeded (RFC 3339); `null` unless `status` is `success`.
    pub paid_at: Option<DateTime<Utc>>,
    /// When the payment was created (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// When the payment last changed (RFC 3339).
    pub updated_at: DateTime<Utc>,
    /// Whether order-service has been told the payment's outcome.
    pub order_notification: OrderNotification,
    /// When order-service acknowledged the outcome (RFC 3339); `null` until then.
    pub order_notified_at: Option<DateTime<Utc>>,
}

/// How far telling order-service about a payment's outcome has got.
///
/// The outcome is recorded together with the payment's change of status and
/// delivered afterwards, retried with backoff while order-service is
/// unreachable, so a settled payment is `pending` here for a while at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderNotification {
    /// The payment is still pending: there is no outcome to report yet.
    None,
    /// The outcome is waiting to be delivered, or being retried.
    Pending,
    /// order-service acknowledged the outcome.
    Delivered,
    /// order-service refused the outcome for good (for example the order was
    /// already settled otherwise); the reason is logged. Operators can replay it.
    Rejected,
    /// Delivery kept failing for the whole retry window (72 hours by
    /// default); kept as a dead letter that operators can replay.
    DeadLetter,
}

/// The life cycle of a payment: it starts `pending` and ends once, as
/// `success` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created; awaiting the outcome.
    Pending,
    /// The payment went through.
    Success,
    /// The payment failed, or expired unsettled.
    Failed,
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Success => "success",
            PaymentStatus::Failed => "failed",
        })
    }
}

/// The payment named in the path.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PaymentPath {
    /// The payment's id (a UUID).
    #[serde(rename = "paymentId")]
    pub payment_id: Uuid,
}
