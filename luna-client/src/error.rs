//! Typed errors: every `{"detail": …}` answer of the hub mapped to a variant a caller can match.

use serde_json::Value;

/// One entry of a 422 validation list (`{"loc": [...], "msg": ..., "type": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where: `["body", "amount"]`.
    pub loc: Vec<String>,
    /// What.
    pub msg: String,
    /// The kind (`value_error.missing`…).
    pub kind: String,
}

/// What a call to the hub can end with, other than its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// 402: not enough energy; `required_pack` is the pack that covers the deficit.
    #[error("insufficient energy: {required} required, {available} available")]
    InsufficientEnergy {
        /// The pack to buy (None when the user is Unlimited or no pack covers it).
        required_pack: Option<String>,
        /// What the action costs.
        required: u64,
        /// The balance.
        current: i64,
        /// Balance minus holds.
        available: i64,
        /// What is missing.
        deficit: i64,
    },
    /// 401: missing, wrong, expired or revoked credentials (a user session that could not be
    /// refreshed ends here).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: the credentials lack the scope, or act for another user.
    #[error("forbidden")]
    Forbidden,
    /// 400: an invalid user id, an unknown action…
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404, with the rule's code when there is one (`reservation_not_found`).
    #[error("not found: {message}")]
    NotFound {
        /// The rule's code.
        code: Option<String>,
        /// The message.
        message: String,
    },
    /// 409: a rule refused (`already_refunded`, `already_unlimited`, "Payment not completed").
    #[error("conflict ({code:?}): {message}")]
    Conflict {
        /// The rule's code.
        code: Option<String>,
        /// The message.
        message: String,
    },
    /// 410: the hold expired.
    #[error("gone: {message}")]
    Gone {
        /// The rule's code.
        code: Option<String>,
        /// The message.
        message: String,
    },
    /// 422 with a rule's code (`idempotency_key_reused`, `amount_mismatch`…).
    #[error("refused ({code}): {message}")]
    Refused {
        /// The rule's code.
        code: String,
        /// The message.
        message: String,
    },
    /// 422 in the validation list shape.
    #[error("invalid request: {0:?}")]
    Validation(Vec<Invalid>),
    /// 429: too many attempts; retry after that many seconds.
    #[error("too many requests, retry in {retry_after:?} s")]
    TooManyRequests {
        /// `Retry-After`.
        retry_after: Option<u64>,
    },
    /// 503 after the client's retries (storage down, billing not configured, busy).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Any other status.
    #[error("HTTP {status}: {detail}")]
    Http {
        /// The status.
        status: u16,
        /// The `detail`, as text.
        detail: String,
    },
    /// The hub could not be reached (after the client's retries).
    #[error("transport: {0}")]
    Transport(String),
    /// The hub answered something this client cannot read.
    #[error("unreadable answer: {0}")]
    Decode(String),
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rule(detail: &Value) -> (Option<String>, String) {
    match detail {
        Value::Object(o) => (
            o.get("error").and_then(Value::as_str).map(str::to_owned),
            o.get("message").map_or_else(|| detail.to_string(), text),
        ),
        other => (None, text(other)),
    }
}

fn invalid(detail: &Value) -> Option<Vec<Invalid>> {
    detail.as_array().map(|items| {
        items
            .iter()
            .map(|i| Invalid {
                loc: i["loc"]
                    .as_array()
                    .map(|l| l.iter().map(text).collect())
                    .unwrap_or_default(),
                msg: text(&i["msg"]),
                kind: text(&i["type"]),
            })
            .collect()
    })
}

impl Error {
    /// The error of a non-2xx answer: its status, its `Retry-After`, its body.
    pub fn from_answer(status: u16, retry_after: Option<u64>, body: &[u8]) -> Error {
        let detail = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("detail").cloned())
            .unwrap_or_else(|| Value::String(String::from_utf8_lossy(body).into_owned()));
        let (code, message) = rule(&detail);
        match status {
            402 => Error::InsufficientEnergy {
                required_pack: detail["required_pack"].as_str().map(str::to_owned),
                required: detail["energy_required"].as_u64().unwrap_or(0),
                current: detail["current_energy"].as_i64().unwrap_or(0),
                available: detail["available_energy"].as_i64().unwrap_or(0),
                deficit: detail["deficit"].as_i64().unwrap_or(0),
            },
            400 => Error::BadRequest(message),
            401 => Error::Unauthorized(message),
            403 => Error::Forbidden,
            404 => Error::NotFound { code, message },
            409 => Error::Conflict { code, message },
            410 => Error::Gone { code, message },
            422 => match (invalid(&detail), code) {
                (Some(list), _) => Error::Validation(list),
                (None, Some(code)) => Error::Refused { code, message },
                (None, None) => Error::Validation(Vec::new()),
            },
            429 => Error::TooManyRequests { retry_after },
            503 => Error::Unavailable(message),
            _ => Error::Http {
                status,
                detail: message,
            },
        }
    }

    /// The rule's code of a refusal, if it has one (`already_refunded`, `pack_mismatch`…).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::InsufficientEnergy { .. } => Some("insufficient_energy"),
            Error::NotFound { code, .. }
            | Error::Conflict { code, .. }
            | Error::Gone { code, .. } => code.as_deref(),
            Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hubs_answers_map_to_variants() {
        let e = Error::from_answer(
            402,
            None,
            br#"{"detail":{"error":"insufficient_energy","required_pack":"cafe_luna","energy_required":30,"current_energy":20,"available_energy":20,"deficit":10}}"#,
        );
        assert_eq!(
            e,
            Error::InsufficientEnergy {
                required_pack: Some("cafe_luna".into()),
                required: 30,
                current: 20,
                available: 20,
                deficit: 10
            }
        );
        let e = Error::from_answer(
            409,
            None,
            br#"{"detail":{"error":"already_refunded","message":"m"}}"#,
        );
        assert_eq!(e.code(), Some("already_refunded"));
        let e = Error::from_answer(
            409,
            None,
            br#"{"detail":"Payment not completed. Status: processing"}"#,
        );
        assert!(
            matches!(e, Error::Conflict { code: None, ref message } if message.contains("processing"))
        );
        let e = Error::from_answer(
            422,
            None,
            br#"{"detail":[{"loc":["body","amount"],"msg":"too big","type":"value_error"}]}"#,
        );
        assert!(matches!(e, Error::Validation(ref v) if v[0].loc == ["body", "amount"]));
        let e = Error::from_answer(
            422,
            None,
            br#"{"detail":{"error":"idempotency_key_reused","message":"m"}}"#,
        );
        assert_eq!(e.code(), Some("idempotency_key_reused"));
        assert_eq!(
            Error::from_answer(403, None, br#"{"detail":"forbidden"}"#),
            Error::Forbidden
        );
        assert_eq!(
            Error::from_answer(429, Some(60), b"{}"),
            Error::TooManyRequests {
                retry_after: Some(60)
            }
        );
        assert!(matches!(
            Error::from_answer(502, None, b"<html>"),
            Error::Http { status: 502, .. }
        ));
    }
}
