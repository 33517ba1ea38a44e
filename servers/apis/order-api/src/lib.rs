//! The order-service API: the Dropshot trait that defines its operations and
//! the wire types they exchange. No I/O happens here; `tools/contract`
//! turns this trait into the order-service half of `openapi.yaml`, and
//! `order-service` implements it.
//!
//! WHEN CHANGING THE API: edit this trait or its types, run
//! `cargo run -p contract -- generate` and `cargo run -p client-codegen`,
//! and review the diff of `openapi.yaml`; CHANGELOG.md says what changed.
//! Function names are operationIds, and so method names in the generated
//! clients: renaming one is a breaking change.

use api_common::{
    Access, Answer, ApiError, Envelope, IdempotencyKeyHeader, JsonBody, NonBlankText, Page,
    PositiveInt, Scope, SignedBody, SignedRequest,
};
use chrono::{DateTime, Utc};
use dropshot::{HttpResponseOk, Path, Query, RequestContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[dropshot::api_description {
    tag_config = {
        allow_other_tags = false,
        policy = dropshot::EndpointTagPolicy::ExactlyOne,
        tags = {
            "orders" = { description = "Orders placed by clients (order-service, port 8080)." },
            "internal" = { description = "Service-to-service endpoints; not for clients (order-service, port 8080)." },
        },
    },
}]
pub trait OrderApi {
    type Context: Send + Sync + 'static;

    /// Create an order
    ///
    /// Creates a `pending` order whose `total_amount` is `price × quantity`.
    /// A total that does not fit in a signed 64-bit integer is rejected with
    /// `TOTAL_AMOUNT_OVERFLOW`. Answers 200 (not 201), as the original system did.
    ///
    /// Send an `Idempotency-Key` to make the create safe to retry after a
    /// timeout, a lost connection or `OUTCOME_UNKNOWN` (503: the database did
    /// not confirm in time whether the order was made): one order per key,
    /// and every retry answered with it. Without a key, such a retry may make
    /// a second order; list the orders to see. A `SERVICE_UNAVAILABLE` (503)
    /// means that nothing was made.
    ///
    /// Needs scope `orders:write`; the order belongs to the token's `sub`.
    /// An `Idempotency-Key` is the caller's own: another caller's same key
    /// is another key.
    #[endpoint { method = POST, path = "/orders", tags = ["orders"] }]
    async fn create_order(
        rqctx: RequestContext<Self::Context>,
        key: IdempotencyKeyHeader,
        body: JsonBody<OrderRequest>,
    ) -> Result<Answer<Envelope<Order>>, ApiError>;

    /// List orders
    ///
    /// Lists orders oldest first, in pages of at most `limit`. Follow
    /// `next_page` until it is `null` to see every order exactly once, even
    /// while others are being created or deleted.
    ///
    /// Needs scope `orders:read`, and lists the caller's own orders; with
    /// `admin`, every order.
    #[endpoint { method = GET, path = "/orders", tags = ["orders"] }]
    async fn list_orders(
        rqctx: RequestContext<Self::Context>,
        query: Query<ListOrdersQuery>,
    ) -> Result<Answer<Page<Order>>, ApiError>;

    /// Fetch an order
    ///
    /// Needs scope `orders:read`; another customer's order is
    /// `ORDER_NOT_FOUND` (404), as if it did not exist. With `admin`, any
    /// order.
    #[endpoint { method = GET, path = "/orders/{orderId}", tags = ["orders"] }]
    async fn get_order(
        rqctx: RequestContext<Self::Context>,
        path: Path<OrderPath>,
    ) -> Result<Answer<Envelope<Order>>, ApiError>;

    /// Replace a pending order
    ///
    /// Replaces the item, quantity and price of a `pending` order and
    /// recomputes its total. An order that is already `paid` or `failed`
    /// cannot change: `ORDER_NOT_PENDING` (409); nor can one whose payment
    /// is under way: `ORDER_PAYMENT_IN_PROGRESS` (409, naming the payment).
    ///
    /// Needs scope `orders:write`; another customer's order is
    /// `ORDER_NOT_FOUND` (404).
    #[endpoint { method = PUT, path = "/orders/{orderId}", tags = ["orders"] }]
    async fn update_order(
        rqctx: RequestContext<Self::Context>,
        path: Path<OrderPath>,
        body: JsonBody<OrderRequest>,
    ) -> Result<Answer<Envelope<Order>>, ApiError>;

    /// Delete a pending order
    ///
    /// Deletes a `pending` order and answers with it as it was. Later reads
    /// of it answer `ORDER_NOT_FOUND` (404). A settled order cannot be
    /// deleted: `ORDER_NOT_PENDING` (409); nor can one whose payment is under
    /// way: `ORDER_PAYMENT_IN_PROGRESS` (409, naming the payment).
    ///
    /// Needs scope `orders:write`; another customer's order is
    /// `ORDER_NOT_FOUND` (404).
    #[endpoint { method = DELETE, path = "/orders/{orderId}", tags = ["orders"] }]
    async fn delete_order(
        rqctx: RequestContext<Self::Context>,
        path: Path<OrderPath>,
    ) -> Result<Answer<Envelope<Order>>, ApiError>;

    /// Report a payment outcome
    ///
    /// Called by payment-service, signed per Standard Webhooks with a secret
    /// both services share, over the method, the path and the body; a
    /// missing, stale, invalid or replayed signature is `UNAUTHORIZED` (401)
    /// and changes nothing. `success` moves a `pending`
    /// order to `paid` if `amount` equals its `total_amount`
    /// (`AMOUNT_MISMATCH`, 400, otherwise); `failed` moves it to `failed`.
    /// Delivery is at-least-once, so the same report again answers 200 and
    /// changes nothing; a report that contradicts the settled order (the
    /// other outcome, or another payment) is `ORDER_ALREADY_SETTLED` (409),
    /// and one for another payment than the one under way is
    /// `ORDER_PAYMENT_IN_PROGRESS` (409).
    #[endpoint { method = POST, path = "/internal/payment-callback", tags = ["internal"] }]
    async fn payment_callback(
        rqctx: RequestContext<Self::Context>,
        body: SignedBody<PaymentCallback>,
    ) -> Result<HttpResponseOk<Envelope<Order>>, ApiError>;

    /// Start a payment for an order
    ///
    /// Called by payment-service after it notes a payment and before it
    /// records it as created, signed like the outcome report (a missing,
    /// stale or invalid signature is `UNAUTHORIZED`, 401, and changes
    /// nothing). Attaches `payment_id` to a
    /// `pending` order whose `total_amount` equals `amount`, and answers with
    /// the order, its `payment_id` now naming the payment. From then on the
    /// order cannot be changed or deleted (`ORDER_PAYMENT_IN_PROGRESS`, 409)
    /// until the payment's outcome is reported, so the payment is always for
    /// the order as it stands. An order that is not `customer`'s is
    /// `ORDER_NOT_FOUND`; while order-service authenticates its callers,
    /// `customer` is required (`INVALID_REQUEST`, 400, without it).
    /// Idempotent: attaching the same payment again
    /// answers 200. Another payment already under way is
    /// `ORDER_PAYMENT_IN_PROGRESS` (409; the order's `payment_id` names it); a
    /// settled order is `ORDER_NOT_PENDING` (409); another total is
    /// `AMOUNT_MISMATCH` (400); a payment released for this order (see
    /// `release_payment`) is `PAYMENT_RELEASED` (409); an unknown order is
    /// `ORDER_NOT_FOUND` (404).
    #[endpoint { method = POST, path = "/internal/orders/{orderId}/payment", tags = ["internal"] }]
    async fn attach_payment(
        rqctx: RequestContext<Self::Context>,
        path: Path<OrderPath>,
        body: SignedBody<PaymentAttachment>,
    ) -> Result<HttpResponseOk<Envelope<Order>>, ApiError>;

    /// Release a payment that will not be recorded
    ///
    /// Called by payment-service, signed like the outcome report (a missing,
    /// stale or invalid signature is `UNAUTHORIZED`, 401, and changes
    /// nothing), before it forgets a payment it had noted but not recorded:
    /// one order-service refused to attach, or one whose attachment went
    /// unanswered. From then on the order refuses to attach that payment
    /// (`PAYMENT_RELEASED`, 409), so an attachment still on its way can never
    /// leave the order waiting for a payment payment-service does not know.
    /// Answers with the order: if its `payment_id` names the payment, the
    /// payment was attached after all, nothing changes, and payment-service
    /// keeps it. Idempotent. An unknown order is `ORDER_NOT_FOUND` (404).
    #[endpoint { method = POST, path = "/internal/orders/{orderId}/released-payments", tags = ["internal"] }]
    async fn release_payment(
        rqctx: RequestContext<Self::Context>,
        path: Path<OrderPath>,
        body: SignedBody<PaymentRelease>,
    ) -> Result<HttpResponseOk<Envelope<Order>>, ApiError>;

    /// Read an order for a payment
    ///
    /// Called by payment-service before it notes a payment, signed like the
    /// outcome report (a missing, stale, invalid or replayed signature is
    /// `UNAUTHORIZED`, 401). Answers the order; an order that is not
    /// `customer`'s is `ORDER_NOT_FOUND` (404), as is an unknown one. While
    /// order-service authenticates its callers, `customer` is required
    /// (`INVALID_REQUEST`, 400, without it).
    #[endpoint { method = GET, path = "/internal/orders/{orderId}", tags = ["internal"] }]
    async fn get_order_for_payment(
        rqctx: RequestContext<Self::Context>,
        path: Path<OrderPath>,
        query: Query<PayerQuery>,
        signed: SignedRequest,
    ) -> Result<HttpResponseOk<Envelope<Order>>, ApiError>;
}

/// What each public operation asks of its caller's bearer token. The
/// handlers enforce it and the contract publishes it; the internal
/// operations are signed instead and have no entry.
pub const ACCESS: &[Access] = &[
    Access {
        operation: "create_order",
        any_of: &[Scope::OrdersWrite],
        sees_all: &[],
    },
    Access {
        operation: "list_orders",
        any_of: &[Scope::OrdersRead, Scope::Admin],
        sees_all: &[Scope::Admin],
    },
    Access {
        operation: "get_order",
        any_of: &[Scope::OrdersRead, Scope::Admin],
        sees_all: &[Scope::Admin],
    },
    Access {
        operation: "update_order",
        any_of: &[Scope::OrdersWrite],
        sees_all: &[],
    },
    Access {
        operation: "delete_order",
        any_of: &[Scope::OrdersWrite],
        sees_all: &[],
    },
];

/// The longest `item_name` accepted, in characters.
pub const ITEM_NAME_MAX_CHARS: usize = 200;

/// What a client sends to create or replace an order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// What is ordered: 1 to 200 characters, not only whitespace, without the NUL character (U+0000).
    pub item_name: NonBlankText<ITEM_NAME_MAX_CHARS>,
    /// How many items, at least 1.
    pub quantity: PositiveInt,
    /// The price of one item in minor currency units (cents), at least 1.
    pub price: PositiveInt,
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// The order's id.
    pub id: Uuid,
    /// What is ordered.
    pub item_name: String,
    /// How many items.
    pub quantity: i64,
    /// The price of one item in minor currency units.
    pub price: i64,
    /// `price × quantity`, in minor currency units: the amount a payment must match.
    pub total_amount: i64,
    /// Where the order is in its life cycle.
    pub status: OrderStatus,
    /// The payment under way for this order (attached when payment-service
    /// accepted it) or the one that settled it; `null` while no payment has
    /// started.
    pub payment_id: Option<Uuid>,
    /// When the order was created (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// When the order last changed (RFC 3339).
    pub updated_at: DateTime<Utc>,
}

/// The life cycle of an order: it starts `pending` and is settled once, by
/// payment-service's callback, as `paid` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Awaiting payment; the only state in which the order can be changed or deleted, while no payment is under way.
    Pending,
    /// Paid in full.
    Paid,
    /// Its payment failed.
    Failed,
}

impl OrderStatus {
    /// The status as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order named in the path.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderPath {
    /// The order's id (a UUID).
    #[serde(rename = "orderId")]
    pub order_id: Uuid,
}

/// Who an internal read acts for.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PayerQuery {
    /// The customer (an access token's `sub`) paying; absent only when both
    /// services run with authentication disabled.
    pub customer: Option<String>,
}

/// The default number of orders on a page.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// The largest number of orders on a page.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// Which orders to list, and which page of them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListOrdersQuery {
    /// The most orders to return on this page: 1 to 1000, 100 if absent.
    pub limit: Option<PageLimit>,
    /// The `next_page` of the previous page; absent for the first page.
    pub page_token: Option<String>,
    /// Only list orders in this state.
    pub status: Option<OrderStatus>,
}

/// A page size between 1 and 1000.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "u32")]
pub struct PageLimit(u32);

impl PageLimit {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        PageLimit(DEFAULT_PAGE_LIMIT)
    }
}

impl TryFrom<u32> for PageLimit {
    type Error = String;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if (1..=MAX_PAGE_LIMIT).contains(&value) {
            Ok(PageLimit(value))
        } else {
            Err(format!(
                "limit must be between 1 and {MAX_PAGE_LIMIT}, got {value}"
            ))
        }
    }
}

impl JsonSchema for PageLimit {
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        "PageLimit".to_string()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        use schemars::schema::{InstanceType, NumberValidation, SchemaObject};
        SchemaObject {
            instance_type: Some(InstanceType::Integer.into()),
            format: Some("uint32".to_string()),
            number: Some(Box::new(NumberValidation {
                minimum: Some(1.0),
                maximum: Some(f64::from(MAX_PAGE_LIMIT)),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

/// A payment outcome, reported by payment-service.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentCallback {
    /// The order the payment is for.
    pub order_id: Uuid,
    /// The payment that settled.
    pub payment_id: Uuid,
    /// How the payment ended.
    pub payment_status: PaymentOutcome,
    /// The amount paid in minor currency units; for `success` it must equal the order's `total_amount`.
    pub amount: PositiveInt,
}

/// A payment payment-service is about to record for an order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentAttachment {
    /// The payment's id, chosen by payment-service.
    pub payment_id: Uuid,
    /// The amount to be paid in minor currency units; it must equal the order's `total_amount`.
    pub amount: PositiveInt,
    /// The customer (an access token's `sub`) paying: the order must be
    /// theirs. Absent only when both services run with authentication disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
}

/// A payment payment-service will not record for the order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRelease {
    /// The payment's id, as sent when it was to be attached.
    pub payment_id: Uuid,
}

/// How a payment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// The payment went through: the order becomes `paid`.
    Success,
    /// The payment failed: the order becomes `failed`.
    Failed,
}

impl std::fmt::Display for PaymentOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PaymentOutcome::Success => "success",
            PaymentOutcome::Failed => "failed",
        })
    }
}
