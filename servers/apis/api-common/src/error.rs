use dropshot::{ErrorStatusCode, HttpError, HttpResponseError};
use http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The error envelope of every operation.
///
/// Errors keep the success envelope's shape so one client-side parser fits
/// both; `data` then carries a stable machine-readable `error_code` and a
/// message for a person.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{code} {status} {}: {}", data.error_code, data.message)]
pub struct ApiError {
    /// The HTTP status code of the response, repeated in the body.
    pub code: u16,
    /// The upper-case reason phrase of `code`, for example `BAD REQUEST` or `CONFLICT`.
    pub status: String,
    /// What went wrong.
    pub data: ErrorData,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750): a
    /// header, not part of the body. An operation that may answer one
    /// returns [`Answer`](crate::Answer), which can send it.
    #[serde(skip)]
    #[schemars(skip)]
    pub challenge: Option<String>,
}

/// The machine-readable and the human-readable description of an error.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorData {
    /// A stable code to branch on. Current codes: `INVALID_BODY`,
    /// `INVALID_PATH_PARAMETER`, `INVALID_QUERY_PARAMETER`, `INVALID_PAGE_TOKEN`,
    /// `UNSUPPORTED_MEDIA_TYPE`, `BODY_TOO_LARGE`, `TOTAL_AMOUNT_OVERFLOW`,
    /// `AMOUNT_MISMATCH`, `UNAUTHORIZED`, `ORDER_NOT_FOUND`, `PAYMENT_NOT_FOUND`,
    /// `ORDER_NOT_PENDING`, `ORDER_PAYMENT_IN_PROGRESS`, `ORDER_ALREADY_SETTLED`, `PAYMENT_NOT_PENDING`,
    /// `ORDER_SERVICE_UNAVAILABLE`, `ORDER_SERVICE_BAD_RESPONSE`, `SERVICE_UNAVAILABLE`, `INTERNAL_ERROR`,
    /// `INVALID_REQUEST`, `NOT_FOUND`, `INVALID_IDEMPOTENCY_KEY`, `IDEMPOTENCY_KEY_IN_USE`,
    /// `IDEMPOTENCY_KEY_REUSED`, `OUTCOME_UNKNOWN`, `PAYMENT_EXISTS`, `PAYMENT_RELEASED`, `INVALID_TOKEN`, `INSUFFICIENT_SCOPE`. New codes may be added; treat unknown ones by their HTTP status.
    pub error_code: String,
    /// What happened and what to change, for a person to read. Not stable: do not parse it.
    pub message: String,
}

/// The stable error codes. `error_code` is a plain string on the wire so that
/// adding a code never breaks a client; this enum keeps the servers' spelling
/// of them in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidBody,
    InvalidPathParameter,
    InvalidQueryParameter,
    InvalidPageToken,
    UnsupportedMediaType,
    BodyTooLarge,
    TotalAmountOverflow,
    AmountMismatch,
    Unauthorized,
    OrderNotFound,
    PaymentNotFound,
    OrderNotPending,
    OrderPaymentInProgress,
    OrderAlreadySettled,
    PaymentNotPending,
    OrderServiceUnavailable,
    OrderServiceBadResponse,
    ServiceUnavailable,
    InternalError,
    InvalidRequest,
    NotFound,
    InvalidIdempotencyKey,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    OutcomeUnknown,
    PaymentExists,
    PaymentReleased,
    InvalidToken,
    InsufficientScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidBody => "INVALID_BODY",
            ErrorCode::InvalidPathParameter => "INVALID_PATH_PARAMETER",
            ErrorCode::InvalidQueryParameter => "INVALID_QUERY_PARAMETER",
            ErrorCode::InvalidPageToken => "INVALID_PAGE_TOKEN",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::BodyTooLarge => "BODY_TOO_LARGE",
            ErrorCode::TotalAmountOverflow => "TOTAL_AMOUNT_OVERFLOW",
            ErrorCode::AmountMismatch => "AMOUNT_MISMATCH",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::OrderNotFound => "ORDER_NOT_FOUND",
            ErrorCode::PaymentNotFound => "PAYMENT_NOT_FOUND",
            ErrorCode::OrderNotPending => "ORDER_NOT_PENDING",
            ErrorCode::OrderPaymentInProgress => "ORDER_PAYMENT_IN_PROGRESS",
            ErrorCode::OrderAlreadySettled => "ORDER_ALREADY_SETTLED",
            ErrorCode::PaymentNotPending => "PAYMENT_NOT_PENDING",
            ErrorCode::OrderServiceUnavailable => "ORDER_SERVICE_UNAVAILABLE",
            ErrorCode::OrderServiceBadResponse => "ORDER_SERVICE_BAD_RESPONSE",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY",
            ErrorCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::OutcomeUnknown => "OUTCOME_UNKNOWN",
            ErrorCode::PaymentExists => "PAYMENT_EXISTS",
            ErrorCode::PaymentReleased => "PAYMENT_RELEASED",
            ErrorCode::InvalidToken => "INVALID_TOKEN",
            ErrorCode::InsufficientScope => "INSUFFICIENT_SCOPE",
        }
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code: status.as_u16(),
            status: reason_phrase(status),
            data: ErrorData {
                error_code: code.as_str().to_string(),
                message: message.into(),
            },
            challenge: None,
        }
    }

    /// The same error with a `WWW-Authenticate: challenge` header.
    pub fn with_challenge(self, challenge: impl Into<String>) -> Self {
        ApiError {
            challenge: Some(challenge.into()),
            ..self
        }
    }
}

fn reason_phrase(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("ERROR").to_uppercase()
}

impl HttpResponseError for ApiError {
    fn status_code(&self) -> ErrorStatusCode {
        ErrorStatusCode::from_u16(self.code).unwrap_or(ErrorStatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Errors Dropshot raises itself (extractors: malformed JSON, wrong content
/// type, oversize body, unparsable path or query) reach clients through this
/// conversion, so they carry the envelope too. Dropshot reports them all as a
/// 400 with no error code; the message prefixes below are the ones its 0.18
/// extractors write, and the harness pins each of them.
impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        let mut message = error.external_message;
        let (status, code) = if message.starts_with("request body exceeded maximum size") {
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BodyTooLarge)
        } else if message.starts_with("unsupported content-type")
            || message.starts_with("expected content type")
            || message.starts_with("invalid content type")
        {
            message.push_str("; send the body as JSON with content-type: application/json");
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            )
        } else if message.starts_with("unable to parse JSON body") {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidBody)
        } else if message.starts_with("bad parameter in URL path") {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidPathParameter)
        } else if message.starts_with(crate::idempotency_key::INVALID_KEY_PREFIX) {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidIdempotencyKey)
        } else if message.starts_with("unable to parse query string") {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidQueryParameter)
        } else {
            let status = error.status_code.as_status();
            let code = if status == StatusCode::SERVICE_UNAVAILABLE {
                ErrorCode::ServiceUnavailable
            } else if status.is_server_error() {
                ErrorCode::InternalError
            } else {
                ErrorCode::InvalidRequest
            };
            (status, code)
        };
        ApiError::new(status, code, message)
    }
}
