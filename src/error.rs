//! One error type for the whole API, answered as RFC 9457 `application/problem+json` with a stable `code`.
//!
//! Unexpected failures become a 500 whose cause is logged (with the request id) but never sent.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

crate::text_enum! {
    /// Every `code` a problem document can carry: the list clients program against.
    pub enum ErrorCode {
        AlreadyClaimed = "already_claimed",
        AmountOutOfRange = "amount_out_of_range",
        BadBody = "bad_body",
        BelowOneTonne = "below_one_tonne",
        BadNonce = "bad_nonce",
        BadRequest = "bad_request",
        BadSignature = "bad_signature",
        BindingCodeInvalid = "binding_code_invalid",
        Conflict = "conflict",
        ConsentRevoked = "consent_revoked",
        DuplicateTrip = "duplicate_trip",
        EmptyBatch = "empty_batch",
        EvaluationFailed = "evaluation_failed",
        Forbidden = "forbidden",
        IdempotencyConflict = "idempotency_conflict",
        IdempotencyKeyRequired = "idempotency_key_required",
        IncompatibleSchema = "incompatible_schema",
        InsufficientFunds = "insufficient_funds",
        InternalError = "internal_error",
        InvalidCredentials = "invalid_credentials",
        InvalidFormula = "invalid_formula",
        InvalidIdempotencyKey = "invalid_idempotency_key",
        InvalidPath = "invalid_path",
        InvalidQuery = "invalid_query",
        InvalidState = "invalid_state",
        InvalidVoucher = "invalid_voucher",
        KeyRevoked = "key_revoked",
        LimitReached = "limit_reached",
        MalformedJson = "malformed_json",
        MethodNotAllowed = "method_not_allowed",
        MissingField = "missing_field",
        NoGridFactor = "no_grid_factor",
        NoMethodology = "no_methodology",
        NoOperatorCode = "no_operator_code",
        NoRegionValue = "no_region_value",
        NonceReplayed = "nonce_replayed",
        NotEmpty = "not_empty",
        NotFound = "not_found",
        NotReady = "not_ready",
        OfferInactive = "offer_inactive",
        OperatorCodeTaken = "operator_code_taken",
        OutOfScope = "out_of_scope",
        OutOfStock = "out_of_stock",
        PayloadTooLarge = "payload_too_large",
        RateLimited = "rate_limited",
        RefreshTokenReused = "refresh_token_reused",
        RegionNotServed = "region_not_served",
        RequestTimeout = "request_timeout",
        Retry = "retry",
        SelfTransfer = "self_transfer",
        SessionRevoked = "session_revoked",
        SignatureMissing = "signature_missing",
        StaleTimestamp = "stale_timestamp",
        TokenExpired = "token_expired",
        TradingDisabled = "trading_disabled",
        TooManyKeys = "too_many_keys",
        Unauthorized = "unauthorized",
        Unavailable = "unavailable",
        Unbound = "unbound",
        UnknownAccount = "unknown_account",
        UnknownActivityType = "unknown_activity_type",
        UnknownKey = "unknown_key",
        UnknownRegion = "unknown_region",
        UnknownUser = "unknown_user",
        UnsupportedMediaType = "unsupported_media_type",
        ValidationFailed = "validation_failed",
        VoucherExpired = "voucher_expired",
    }
}

pub use crate::domain::FieldError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    /// The cause of a 500, logged and never sent.
    source: Option<anyhow::Error>,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn bad_request(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422 with one entry per offending field.
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            errors,
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
                detail,
            )
        }
    }

    /// The same error under another stable `code`.
    pub fn with_code(self, code: ErrorCode) -> ApiError {
        ApiError { code, ..self }
    }

    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::validation(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }

    pub fn unprocessable(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many attempts; try again later",
            )
        }
    }

    /// 503 `retry` with `Retry-After`: the request lost a race, nothing was written, and the same request
    /// can simply be sent again.
    pub fn retry(detail: impl Into<String>) -> ApiError {
        ApiError {
            retry_after_secs: Some(RETRY_AFTER_CONFLICT_SECS),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Retry, detail)
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, detail)
    }

    /// A 503 whose cause is logged, not sent: a driver's message names hosts, addresses and roles.
    pub fn unavailable_because(detail: &str, cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            source: Some(anyhow::anyhow!("{detail}: {cause}")),
            ..ApiError::unavailable(detail)
        }
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> ApiError {
        ApiError {
            source: Some(source.into()),
            ..ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "an unexpected error occurred",
            )
        }
    }

    /// What to log: the cause of a 500 or 503 (never sent to the client), else what the client is told.
    pub fn log_message(&self) -> String {
        match &self.source {
            Some(source) => format!("{source:#}"),
            None => self.to_string(),
        }
    }

    /// The problem document as sent: what a stored refusal replays.
    pub fn problem_json(&self) -> String {
        serde_json::to_string(&self.problem()).unwrap_or_default()
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!(
                "https://tanhui.example/problems/{}",
                self.code.as_str().replace('_', "-")
            ),
            title: self.status.canonical_reason().unwrap_or("Error").to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.source.is_some() {
            tracing::error!(error = self.log_message(), "request failed");
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.body(self.problem_json())
    }
}

/// How long a client is asked to wait before retrying a write that lost a race in the database
/// (`Retry-After`): the conflicting transaction is short, so it has committed or rolled back by then.
pub const RETRY_AFTER_CONFLICT_SECS: u64 = 1;

/// PostgreSQL's message for a deadlock (SQLSTATE 40P01). Diesel maps SQLSTATE 40001 to
/// `DatabaseErrorKind::SerializationFailure` but has no kind for 40P01 and does not expose the SQLSTATE,
/// so a deadlock is recognised by its message, which PostgreSQL writes in English unless `lc_messages`
/// is set otherwise.
const DEADLOCK_MESSAGE: &str = "deadlock detected";

/// Whether the database refused a write only because it raced another transaction (a serialization
/// failure or a deadlock): nothing was written, and the same request can simply be sent again.
pub fn lost_a_race(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().starts_with(DEADLOCK_MESSAGE),
        _ => false,
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> ApiError {
        use diesel::result::Error;
        match e {
            Error::NotFound => ApiError::not_found("not found"),
            // A serialization failure or deadlock is the database asking the client to retry.
            Error::DatabaseError(_, ref info) if lost_a_race(&e) => {
                ApiError::retry(format!("concurrent update, retry: {}", info.message()))
            }
            // The database went away or ran out of room: nothing was written, and the same request
            // succeeds once it is back.
            ref other if database_unavailable(other) => {
                ApiError::unavailable_because("database unavailable", other)
            }
            other => ApiError::internal(other),
        }
    }
}

/// Messages of a database that cannot take the statement right now (PostgreSQL restarting or
/// unreachable, a disk full on either backend), as libpq and SQLite word them. Matched by message
/// because diesel reports most of them as `Unknown`.
const UNAVAILABLE_MESSAGES: [&str; 9] = [
    "server closed the connection",
    "terminating connection due to administrator command",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "no connection to the server",
    "could not extend file",
    "database or disk is full",
    "No space left on device",
];

/// Whether `e` says the database is down or full rather than that the statement was wrong.
pub fn database_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        Error::DatabaseError(_, info) => UNAVAILABLE_MESSAGES.iter().any(|m| info.message().contains(m)),
        // A statement sent on a connection that broke before it: SQLite's I/O errors and libpq's write
        // failures surface here.
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> ApiError {
        ApiError::unavailable_because("database unavailable", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_cause_is_logged_not_sent() {
        let cause = "connection to server at \"db.internal\" (10.0.3.4) failed";
        let e = ApiError::unavailable_because("database unavailable", cause);
        let sent = e.problem_json();
        assert!(!sent.contains("10.0.3.4"), "{sent}");
        assert!(sent.contains("database unavailable"), "{sent}");
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.log_message().contains("10.0.3.4"));
    }
}
