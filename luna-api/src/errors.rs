//! Error bodies: every error is `{"detail": …}` — a message, a refusal by a named rule
//! (`{"error": code, "message": …}`), or the 422 validation list.

use serde::{Deserialize, Serialize};

/// A refusal by a named rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleDetail {
    /// The rule's stable code (`already_refunded`, `too_many_attempts`…).
    pub error: String,
    /// A message for people.
    pub message: String,
}

/// One problem of a request (FastAPI's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvalidItem {
    /// Where: `["body", "amount"]`.
    pub loc: Vec<String>,
    /// What.
    pub msg: String,
    /// The kind (`value_error.missing`…).
    #[serde(rename = "type")]
    pub kind: String,
}

/// What an error's `detail` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Detail {
    /// A message (`"forbidden"`, `"Not authenticated"`).
    Message(String),
    /// A refusal by a named rule.
    Rule(RuleDetail),
    /// The validation list (422).
    Invalid(Vec<InvalidItem>),
}

/// `{"detail": "<message>"}`, `{"detail": {"error": "<code>", "message": "…"}}` or, for a 422,
/// the validation list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"detail": {"error": "already_refunded", "message": "This transaction was already refunded"}})))]
pub struct ErrorBody {
    /// A message, `{error, message}` for a refusal by a named rule, or the validation list.
    pub detail: Detail,
}

/// The 402 body the satellites parse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"detail": {"error": "insufficient_energy", "message": "Énergie insuffisante : 30 requis, 15 disponible", "action": "recharge_energy", "required_pack": "cafe_luna", "energy_required": 30, "current_energy": 15, "available_energy": 15, "deficit": 15}})))]
pub struct InsufficientEnergyBody {
    /// `{error, message, action, required_pack, energy_required, current_energy, deficit}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

/// 422: `{"detail":[{"loc":[…],"msg":"…","type":"…"}]}`, or a rule's
/// `{"detail": {"error", "message"}}` (`idempotency_key_reused`, `amount_mismatch`…).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"detail": [{"loc": ["body", "action_name"], "msg": "field required", "type": "value_error.missing"}]})))]
pub struct ValidationErrorBody {
    /// The problems, or the rule that refused.
    pub detail: Detail,
}
