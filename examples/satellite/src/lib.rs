//! "Letters", a satellite of the Luna hub, as the seed describes it: a cover letter costs
//! `lettre_motivation`; the satellite reserves that energy, asks the model for the letter,
//! commits the hold when the letter is written and releases it when the model fails, and
//! answers its own client 402 with the pack to buy when energy is short.
//!
//! `POST /letters {user_id, job_title, company, highlights?}` →
//! 200 `{letter, energy_consumed, energy_remaining}` · 402 `{detail: {error:
//! "insufficient_energy", required_pack, deficit}}` · 502 `{detail: "generation failed"}`.

pub mod model;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use luna_client::{Error, HoldError, LunaClient};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use model::{FakeModel, Gemini, Model, ModelError, Prompt};

/// The action a letter costs (the hub's cost grid prices it).
pub const ACTION: &str = "lettre_motivation";

/// What the satellite needs.
#[derive(Clone)]
pub struct Letters {
    /// The hub, with this satellite's service key.
    pub luna: LunaClient,
    /// The model.
    pub model: Arc<dyn Model>,
}

/// A letter to write.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LetterRequest {
    /// The hub's user.
    pub user_id: String,
    /// The job applied for.
    pub job_title: String,
    /// The employer.
    pub company: String,
    /// What to stress.
    pub highlights: Option<String>,
}

/// A written letter.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LetterResponse {
    /// The letter.
    pub letter: String,
    /// What it cost.
    pub energy_consumed: u32,
    /// The balance after.
    pub energy_remaining: i64,
}

/// The satellite's routes.
pub fn app(letters: Letters) -> Router {
    Router::new()
        .route("/letters", post(write_letter))
        .with_state(letters)
}

fn prompt(r: &LetterRequest) -> Prompt {
    Prompt {
        system: "Tu écris des lettres de motivation en français, sobres, d'une page.".into(),
        text: format!(
            "Poste : {}\nEntreprise : {}\nPoints forts : {}",
            r.job_title,
            r.company,
            r.highlights.as_deref().unwrap_or("—")
        ),
    }
}

async fn write_letter(
    State(s): State<Letters>,
    axum::Json(r): axum::Json<LetterRequest>,
) -> Response {
    let context =
        json!({"app_source": "letters", "target_role": r.job_title, "company": r.company});
    let model = s.model.clone();
    let p = prompt(&r);
    let outcome = s
        .luna
        .with_hold(
            Some(&r.user_id),
            ACTION,
            Some(&context),
            |_hold| async move { model.generate(&p).await },
        )
        .await;
    match outcome {
        Ok((letter, charged)) => axum::Json(LetterResponse {
            letter,
            energy_consumed: charged.energy_consumed,
            energy_remaining: charged.energy_remaining,
        })
        .into_response(),
        Err(HoldError::Luna(Error::InsufficientEnergy {
            required_pack,
            deficit,
            required,
            ..
        })) => (
            StatusCode::PAYMENT_REQUIRED,
            axum::Json(json!({"detail": {
                "error": "insufficient_energy",
                "action": "recharge_energy",
                "required_pack": required_pack,
                "energy_required": required,
                "deficit": deficit,
            }})),
        )
            .into_response(),
        Err(HoldError::Work(e)) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"detail": "generation failed", "reason": e.to_string()})),
        )
            .into_response(),
        Err(HoldError::Luna(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"detail": "energy hub unavailable", "reason": e.to_string()})),
        )
            .into_response(),
    }
}
