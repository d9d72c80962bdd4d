//! Error bodies: every error is `{"detail": …}`.

use serde::{Deserialize, Serialize};

/// `{"detail": "<message>"}` or `{"detail": {"error": "<code>", "message": "…"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"detail": {"error": "already_refunded", "message": "This transaction was already refunded"}})))]
pub struct ErrorBody {
    /// A message, or `{error, message}` for a refusal by a named rule.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
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

/// 422: `{"detail":[{"loc":[…],"msg":"…","type":"…"}]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"detail": [{"loc": ["body", "action_name"], "msg": "field required", "type": "value_error.missing"}]})))]
pub struct ValidationErrorBody {
    /// The problems.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
}
