//! `/luna/events` and `/luna/narrative`: app events in, every event and the Capital Narratif
//! out.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// An app event to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"user_id": "user_42", "event_type": "letter.generated", "app_source": "letters", "event_data": {"action": "lettre_motivation", "context": {"target_role": "Data Analyst"}}, "metadata": {"client": "letters-web"}})))]
pub struct PostEventBody {
    /// The user.
    pub user_id: Option<String>,
    /// `^[A-Za-z][A-Za-z0-9_.-]{0,99}$`, not one of the hub's reserved prefixes.
    pub event_type: String,
    /// `^[a-z0-9_-]{1,50}$`.
    pub app_source: String,
    /// A JSON object ≤ 16 KiB, stored verbatim.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub event_data: Box<RawValue>,
    /// A JSON object ≤ 16 KiB, stored verbatim.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Box<RawValue>>,
}

/// A recorded event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "event_id": "0190c7a2-0000-7000-8000-000000000006", "stream_version": 3, "position": 17, "recorded_at": "2026-11-25T10:00:00.000Z"})))]
pub struct PostEventResponse {
    pub success: bool,
    pub event_id: String,
    pub stream_version: u64,
    pub position: u64,
    pub recorded_at: String,
}

/// One stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventDto {
    pub event_id: String,
    pub event_type: String,
    pub app_source: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub event_data: Box<RawValue>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Box<RawValue>,
    pub stream_version: u64,
    pub position: u64,
    pub occurred_at: String,
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "events": [{"event_id": "0190c7a2-0000-7000-8000-000000000006", "event_type": "letter.generated", "app_source": "letters", "event_data": {"action": "lettre_motivation"}, "metadata": {}, "stream_version": 3, "position": 17, "occurred_at": "2026-11-25T10:00:00.000Z"}], "total_count": 3, "event_type_filter": null, "next_cursor": null})))]
pub struct EventsResponse {
    pub success: bool,
    pub user_id: String,
    pub events: Vec<EventDto>,
    pub total_count: u64,
    pub event_type_filter: Option<String>,
    pub next_cursor: Option<String>,
}

/// The Capital Narratif of a user, recomputed now.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"success": true, "user_id": "user_42", "capital_narratif": {
    "user_profile": {"user_id": "user_42", "total_events": 3, "apps_mastered": ["letters"], "skills_demonstrated": ["Data Analyst"], "most_frequent_action": "lettre_motivation"},
    "usage_analytics": {"actions_breakdown": {"lettre_motivation": 1}, "total_energy_consumed": 15, "average_energy_per_action": 15, "unlimited_actions": 0, "notional_energy_unlimited": 0, "subscription_insights": {"primary_subscription": "free", "upgrade_candidate": false}},
    "professional_journey": {"timeline": [{"action": "lettre_motivation", "app": "letters", "occurred_at": "2026-11-25T10:00:00.000Z", "context": {"target_role": "Data Analyst"}}], "career_progression": ["Data Analyst"], "expertise_areas": [{"area": "cover_letters", "count": 1}]},
    "ai_insights": {"engagement_score": 12, "growth_trajectory": "early_user", "recommendations": [{"code": "explore_features", "message": "Découvrez les autres fonctionnalités de Luna pour enrichir votre parcours."}]},
    "metadata": {"generated_at": "2026-11-25T10:00:01.000Z", "events_analyzed": 3, "last_position": 17, "reconstruction_version": "2.0"}},
    "last_updated": "2026-11-25T10:00:01.000Z", "source": "event_store_real_time"})))]
pub struct NarrativeResponse {
    pub success: bool,
    pub user_id: String,
    /// The five sections of spec §2.4.
    pub capital_narratif: CapitalNarratif,
    pub last_updated: String,
    pub source: String,
}

/// The Capital Narratif (spec §2.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CapitalNarratif {
    pub user_profile: UserProfile,
    pub usage_analytics: UsageAnalytics,
    pub professional_journey: ProfessionalJourney,
    pub ai_insights: AiInsights,
    pub metadata: NarrativeMetadata,
}

/// Who the user is, from what they did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    pub user_id: String,
    /// Every event of the user, the hub's own included.
    pub total_events: u64,
    pub apps_mastered: Vec<String>,
    pub skills_demonstrated: Vec<String>,
    pub most_frequent_action: Option<String>,
}

/// How the user spends energy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageAnalytics {
    pub actions_breakdown: std::collections::BTreeMap<String, u64>,
    /// Consumed minus refunded.
    pub total_energy_consumed: i64,
    pub average_energy_per_action: i64,
    pub unlimited_actions: u64,
    pub notional_energy_unlimited: u64,
    pub subscription_insights: SubscriptionInsights,
}

/// The user's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionInsights {
    /// `free`, `luna_unlimited`, or null without an account.
    pub primary_subscription: Option<String>,
    pub upgrade_candidate: bool,
}

/// The user's path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfessionalJourney {
    /// The 10 newest action occurrences, newest first.
    pub timeline: Vec<TimelineEntry>,
    pub career_progression: Vec<String>,
    pub expertise_areas: Vec<ExpertiseArea>,
}

/// One action occurrence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub action: String,
    pub app: String,
    pub occurred_at: String,
    /// The action's context, verbatim (null when none).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context: Option<Box<RawValue>>,
}

/// Occurrences per area.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExpertiseArea {
    pub area: String,
    pub count: u64,
}

/// Scores and advice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AiInsights {
    pub engagement_score: u64,
    /// `early_user`, `beginner`, `progressing` or `advanced_user`.
    pub growth_trajectory: String,
    pub recommendations: Vec<RecommendationDto>,
}

/// A recommendation, with a French message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecommendationDto {
    pub code: String,
    pub message: String,
}

/// How the narrative was computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NarrativeMetadata {
    pub generated_at: String,
    pub events_analyzed: u64,
    pub last_position: Option<u64>,
    pub reconstruction_version: String,
}

/// Listing parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct EventsParams {
    /// Page size (default 50, at most 200).
    pub limit: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
}
