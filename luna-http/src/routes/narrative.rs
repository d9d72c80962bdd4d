//! `/luna/narrative`: the Capital Narratif, recomputed from every event of the user.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use luna_api::{
    AiInsights, CapitalNarratif, ErrorBody, ExpertiseArea, NarrativeMetadata, NarrativeResponse,
    ProfessionalJourney, RecommendationDto, SubscriptionInsights, TimelineEntry, UsageAnalytics,
    UserProfile,
};
use luna_core::narrative::{Narrative, RECONSTRUCTION_VERSION};
use luna_ports::Scope;
use serde_json::value::RawValue;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Principal, UserPath};
use crate::wire::rfc3339;

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The wire form of the narrative.
pub(crate) fn capital(
    user: &str,
    n: &Narrative<'_>,
    last_position: Option<u64>,
) -> CapitalNarratif {
    CapitalNarratif {
        user_profile: UserProfile {
            user_id: user.to_owned(),
            total_events: n.total_events,
            apps_mastered: owned(&n.apps_mastered),
            skills_demonstrated: owned(&n.skills_demonstrated),
            most_frequent_action: n.most_frequent_action.map(str::to_owned),
        },
        usage_analytics: UsageAnalytics {
            actions_breakdown: n
                .actions_breakdown
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            total_energy_consumed: n.total_energy_consumed,
            average_energy_per_action: n.average_energy_per_action,
            unlimited_actions: n.unlimited_actions,
            notional_energy_unlimited: n.notional_energy_unlimited,
            subscription_insights: SubscriptionInsights {
                primary_subscription: n.primary_subscription.map(|s| s.as_str().to_owned()),
                upgrade_candidate: n.upgrade_candidate,
            },
        },
        professional_journey: ProfessionalJourney {
            timeline: n
                .timeline
                .iter()
                .map(|o| TimelineEntry {
                    action: o.action.to_owned(),
                    app: o.app.to_owned(),
                    occurred_at: rfc3339(o.occurred_at),
                    context: o
                        .context
                        .and_then(|c| RawValue::from_string(c.raw().as_str().to_owned()).ok()),
                })
                .collect(),
            career_progression: owned(&n.career_progression),
            expertise_areas: n
                .expertise_areas
                .iter()
                .map(|(area, count)| ExpertiseArea {
                    area: (*area).to_owned(),
                    count: *count,
                })
                .collect(),
        },
        ai_insights: AiInsights {
            engagement_score: n.engagement_score,
            growth_trajectory: n.growth_trajectory.as_str().to_owned(),
            recommendations: n
                .recommendations
                .iter()
                .map(|r| RecommendationDto {
                    code: r.code.to_owned(),
                    message: r.message.to_owned(),
                })
                .collect(),
        },
        metadata: NarrativeMetadata {
            generated_at: rfc3339(n.generated_at),
            events_analyzed: n.events_analyzed,
            last_position,
            reconstruction_version: RECONSTRUCTION_VERSION.to_owned(),
        },
    }
}

/// The Capital Narratif, recomputed from every event of the user.
#[utoipa::path(get, path = "/luna/narrative/{user_id}", tag = "events",
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "The Capital Narratif", body = NarrativeResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
    ),
    security(("bearer" = ["events:read"])))]
pub async fn narrative(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::EventsRead, &user_id)?;
    let input = state.hub.narrative(&user).await?;
    let n = input.narrative();
    Ok(axum::Json(NarrativeResponse {
        success: true,
        user_id: user.to_string(),
        capital_narratif: capital(user.as_str(), &n, input.last_position),
        last_updated: rfc3339(n.generated_at),
        source: "event_store_real_time".to_owned(),
    })
    .into_response())
}
