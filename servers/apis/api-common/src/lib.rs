//! Wire types shared by the order and payment APIs.
//!
//! Everything here is part of the contract in `openapi.yaml`: the response
//! envelope both services answer with, the error body, and validated scalars
//! whose `Deserialize` rejects exactly what their JSON schema forbids, so the
//! documented constraints and the enforced ones cannot drift apart.

mod access;
mod answer;
mod envelope;
mod error;
mod health;
mod idempotency_key;
mod json_body;
mod scalar;
mod signed_body;

pub use access::{Access, Scope, access_of};
pub use answer::Answer;
pub use envelope::{Envelope, Page};
pub use error::{ApiError, ErrorCode, ErrorData};
pub use health::{DocsPath, Health};
pub use idempotency_key::{IdempotencyKey, IdempotencyKeyHeader};
pub use json_body::JsonBody;
pub use scalar::{NonBlankText, PositiveInt};
pub use signed_body::{SignedBody, SignedRequest};
