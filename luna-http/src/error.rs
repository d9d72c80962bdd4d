//! One error type for the wire, one status table, one body shape (`{"detail": …}`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luna_app::AppError;
use luna_core::DomainError;
use serde_json::{Value, json};

/// An error answer: a status and a `detail` (string or object).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The `detail` value.
    pub detail: Value,
}

impl ApiError {
    /// `{"detail": "<message>"}` with a status.
    pub fn message(status: StatusCode, message: &str) -> ApiError {
        ApiError {
            status,
            detail: Value::String(message.to_owned()),
        }
    }

    /// `{"detail": {"error": code, "message": …}}` with a status: a refusal by a named rule.
    pub fn rule(status: StatusCode, code: &str, message: &str) -> ApiError {
        ApiError {
            status,
            detail: json!({ "error": code, "message": message }),
        }
    }

    /// 422 in the validation list shape: `{"detail":[{"loc":[…],"msg":…,"type":…}]}`.
    pub fn validation(loc: &[&str], msg: &str, kind: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{ "loc": loc, "msg": msg, "type": kind }]),
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
        r
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ApiError::json_response(self.status, self.body())
    }
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
        | D::AlreadyUnlimited => ApiError::rule(StatusCode::CONFLICT, e.code(), &msg),
        D::TtlOutOfRange => ApiError::validation(
            &["body", "ttl_seconds"],
            &msg,
            "value_error.number.out_of_range",
        ),
        D::RefundAmountOutOfRange { .. } | D::InvalidGrantAmount => {
            ApiError::validation(&["body", "amount"], &msg, "value_error.number.out_of_range")
        }
        D::UnknownPack
        | D::NotAOneOffPack
        | D::AmountMismatch
        | D::CurrencyMismatch
        | D::ReservedEventType
        | D::Overflow => ApiError::rule(StatusCode::UNPROCESSABLE_ENTITY, e.code(), &msg),
    }
}

impl From<&AppError> for ApiError {
    fn from(e: &AppError) -> ApiError {
        match e {
            AppError::Domain(d) => domain(d),
            AppError::UnknownAction(a) => {
                ApiError::message(StatusCode::BAD_REQUEST, &format!("Unknown action: {a}"))
            }
            AppError::IdempotencyKeyReused => ApiError::rule(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This idempotency key was already used with another request",
            ),
            AppError::Contended => {
                tracing::warn!("stream too contended, retries exhausted");
                ApiError::message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service temporarily unavailable, retry",
                )
            }
            AppError::Infrastructure(inner) if e.is_unavailable() => {
                tracing::error!(error = %inner, "database unavailable");
                ApiError::message(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
            }
            AppError::Infrastructure(inner) => {
                tracing::error!(error = %inner, "storage failure");
                ApiError::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError::from(&e)
    }
}

impl From<luna_ports::StoreError> for ApiError {
    fn from(e: luna_ports::StoreError) -> ApiError {
        ApiError::from(&AppError::Infrastructure(e))
    }
}
