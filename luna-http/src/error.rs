//! One error type for the wire, one status table, one body shape (`{"detail": …}`).
//!
//! Conversions never log: a server error carries its cause, which rides on the response as an
//! [`ErrorCause`] extension and is logged once, with the request id, by the access log (axum's
//! `examples/error-handling` pattern).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luna_app::{AppError, AuthError, BillingError};
use luna_core::{DomainError, JsonPart};
use luna_ports::WebhookError;
use serde_json::{Value, json};

/// An error answer: a status and a `detail` (string or object).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `detail` value.
    pub detail: Value,
    /// What went wrong inside, for the log only (never sent).
    pub cause: Option<String>,
    /// Seconds for `Retry-After` (429 and 503; a 503 without it says 1).
    pub retry_after: Option<i64>,
}

/// The cause of a 5xx, attached to its response for the access log.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

impl ApiError {
    /// `{"detail": "<message>"}` with a status.
    pub fn message(status: StatusCode, message: &str) -> ApiError {
        ApiError {
            status,
            detail: Value::String(message.to_owned()),
            cause: None,
            retry_after: None,
        }
    }

    /// `{"detail": {"error": code, "message": …}}` with a status: a refusal by a named rule.
    pub fn rule(status: StatusCode, code: &str, message: &str) -> ApiError {
        ApiError {
            status,
            detail: json!({ "error": code, "message": message }),
            cause: None,
            retry_after: None,
        }
    }

    /// 422 in the validation list shape: `{"detail":[{"loc":[…],"msg":…,"type":…}]}`.
    pub fn validation(loc: &[&str], msg: &str, kind: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{ "loc": loc, "msg": msg, "type": kind }]),
            cause: None,
            retry_after: None,
        }
    }

    /// 401 (with `WWW-Authenticate: Bearer` added when rendered).
    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::message(StatusCode::UNAUTHORIZED, message)
    }

    /// 403 `{"detail":"forbidden"}`.
    pub fn forbidden() -> ApiError {
        ApiError::message(StatusCode::FORBIDDEN, "forbidden")
    }

    /// 413 `{"detail":"Request body too large"}`.
    pub fn body_too_large() -> ApiError {
        ApiError::message(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
    }

    /// 400 `{"detail":"Invalid user ID format"}`.
    pub fn invalid_user_id() -> ApiError {
        ApiError::message(StatusCode::BAD_REQUEST, "Invalid user ID format")
    }

    /// Sets `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, seconds: i64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds the inside cause (logged, never sent).
    #[must_use]
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> ApiError {
        self.cause = Some(cause.to_string());
        self
    }

    /// The JSON body bytes.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({ "detail": self.detail })).unwrap_or_default()
    }

    /// Builds a JSON response from a status and body bytes.
    pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = ApiError::json_response(self.status, self.body());
        if let Some(seconds) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let Some(cause) = self.cause {
            r.extensions_mut().insert(ErrorCause(cause));
        }
        r
    }
}

/// The body field a client JSON object comes from.
fn part_field(part: JsonPart) -> &'static str {
    match part {
        JsonPart::Context => "context",
        JsonPart::EventData => "event_data",
        JsonPart::Metadata => "metadata",
    }
}

fn out_of_range(field: &str, e: &DomainError) -> ApiError {
    ApiError::validation(
        &["body", field],
        &e.to_string(),
        "value_error.number.out_of_range",
    )
}

fn domain(e: &DomainError) -> ApiError {
    use DomainError as D;
    let msg = e.to_string();
    match e {
        D::InsufficientEnergy(s) => ApiError {
            status: StatusCode::PAYMENT_REQUIRED,
            detail: json!({
                "error": "insufficient_energy",
                "message": format!("Énergie insuffisante : {} requis, {} disponible", s.required, s.available),
                "action": "recharge_energy",
                "required_pack": s.required_pack.as_ref().map(ToString::to_string),
                "energy_required": s.required.units(),
                "current_energy": s.current,
                "available_energy": s.available,
                "deficit": s.deficit,
            }),
            cause: None,
            retry_after: None,
        },
        D::ReservationNotFound | D::TransactionNotFound | D::PurchaseNotFound => {
            ApiError::rule(StatusCode::NOT_FOUND, e.code(), &msg)
        }
        D::ReservationExpired => ApiError::rule(StatusCode::GONE, e.code(), &msg),
        D::ReservationReleased
        | D::ReservationCommitted
        | D::AlreadyRefunded
        | D::NothingToRefund
        | D::RefundWindowExpired
        | D::RefundNotEligible
        | D::RefundQuotaExceeded
        | D::AlreadyUnlimited => ApiError::rule(StatusCode::CONFLICT, e.code(), &msg),
        D::TtlOutOfRange => out_of_range("ttl_seconds", e),
        D::RefundAmountOutOfRange { .. } | D::InvalidGrantAmount => out_of_range("amount", e),
        D::ReasonTooLong => ApiError::validation(&["body", "reason"], &msg, "value_error.too_long"),
        D::PasswordLength => {
            ApiError::validation(&["body", "password"], &msg, "value_error.any_str.length")
        }
        D::TooLarge(part) => {
            ApiError::validation(&["body", part_field(*part)], &msg, "value_error.too_large")
        }
        D::UnknownPack
        | D::NotAOneOffPack
        | D::AmountMismatch
        | D::CurrencyMismatch
        | D::ReservedEventType
        | D::Overflow => ApiError::rule(StatusCode::UNPROCESSABLE_ENTITY, e.code(), &msg),
    }
}

fn auth(e: &AuthError) -> ApiError {
    match e {
        AuthError::InvalidCredentials => ApiError::unauthorized("Invalid email or password"),
        AuthError::InvalidToken => ApiError::unauthorized("Invalid token"),
        AuthError::EmailTaken => {
            ApiError::message(StatusCode::CONFLICT, "Email already registered")
        }
        AuthError::TooManyAttempts { retry_after } => ApiError::rule(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            &format!("Too many attempts, retry in {retry_after} seconds"),
        )
        .retry_after(*retry_after),
        AuthError::Busy => {
            ApiError::message(StatusCode::SERVICE_UNAVAILABLE, "Service busy, retry").retry_after(2)
        }
    }
}

fn billing(e: &BillingError) -> ApiError {
    use BillingError as B;
    let msg = e.to_string();
    match e {
        B::NotConfigured | B::WebhookNotConfigured => {
            ApiError::message(StatusCode::SERVICE_UNAVAILABLE, &msg)
        }
        B::Gateway(g) => {
            ApiError::message(StatusCode::BAD_GATEWAY, "Payment provider error").caused_by(g)
        }
        B::PaymentNotFound | B::NoSubscription => ApiError::message(StatusCode::NOT_FOUND, &msg),
        B::OtherUser => ApiError::forbidden(),
        B::NotCompleted(_) => ApiError::message(StatusCode::CONFLICT, &msg),
        B::PackMismatch => ApiError::rule(StatusCode::UNPROCESSABLE_ENTITY, "pack_mismatch", &msg),
        B::ReturnUrl(field) => {
            ApiError::validation(&["body", field], &msg, "value_error.url.origin")
        }
        B::UnknownPlan => ApiError::validation(&["body", "plan"], &msg, "value_error.plan"),
    }
}

fn webhook(e: &WebhookError) -> ApiError {
    match e {
        WebhookError::InvalidSignature => {
            ApiError::message(StatusCode::BAD_REQUEST, "Invalid signature")
        }
        WebhookError::Unreadable(why) => {
            ApiError::message(StatusCode::BAD_REQUEST, "Unreadable event").caused_by(why)
        }
    }
}

impl From<&AppError> for ApiError {
    fn from(e: &AppError) -> ApiError {
        match e {
            AppError::Domain(d) => domain(d),
            AppError::UnknownAction(a) => {
                ApiError::message(StatusCode::BAD_REQUEST, &a.to_string())
            }
            AppError::Auth(a) => auth(a),
            AppError::Billing(b) => billing(b),
            AppError::Webhook(w) => webhook(w),
            AppError::IdempotencyKeyReused => ApiError::rule(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This idempotency key was already used with another request",
            ),
            AppError::Contended => ApiError::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable, retry",
            )
            .caused_by("stream too contended, retries exhausted"),
            AppError::Infrastructure(inner) if e.is_unavailable() => {
                ApiError::message(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                    .caused_by(inner)
            }
            AppError::Infrastructure(inner) => {
                ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                    .caused_by(inner)
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError::from(&e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        domain(&e)
    }
}

impl From<luna_ports::StoreError> for ApiError {
    fn from(e: luna_ports::StoreError) -> ApiError {
        ApiError::from(&AppError::Infrastructure(e))
    }
}
