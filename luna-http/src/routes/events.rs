//! `/luna/events` and `/luna/narrative`: app events in, every event and the Capital Narratif out.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use luna_app::AppEventOutcome;
use luna_core::{AppSource, EventKind, EventType};
use luna_ports::{RecordedEvent, Scope};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, Principal, UserPath};
use crate::limits::MAX_EVENT_DATA_BYTES;
use crate::render::rfc3339;
use crate::routes::{ErrorBody, ValidationErrorBody, page_limit, parse_cursor, query_params};

/// An app event to record.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "user_42", "event_type": "letter.generated", "app_source": "letters", "event_data": {"action": "lettre_motivation", "context": {"target_role": "Data Analyst"}}, "metadata": {"client": "letters-web"}}))]
pub struct PostEventBody {
    /// The user.
    pub user_id: Option<String>,
    /// `^[A-Za-z][A-Za-z0-9_.-]{0,99}$`, not one of the hub's reserved prefixes.
    pub event_type: String,
    /// `^[a-z0-9_-]{1,50}$`.
    pub app_source: String,
    /// A JSON object ≤ 16 KiB, stored verbatim.
    #[schema(value_type = Object)]
    pub event_data: Box<RawValue>,
    /// A JSON object ≤ 16 KiB, stored verbatim.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

/// A recorded event.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "event_id": "0190c7a2-0000-7000-8000-000000000006", "stream_version": 3, "position": 17, "recorded_at": "2026-11-25T10:00:00.000Z"}))]
pub struct PostEventResponse {
    success: bool,
    event_id: String,
    stream_version: u64,
    position: u64,
    recorded_at: String,
}

/// One stored event.
#[derive(Serialize, ToSchema)]
pub struct EventDto {
    event_id: String,
    event_type: String,
    app_source: String,
    #[schema(value_type = Object)]
    event_data: Box<RawValue>,
    #[schema(value_type = Object)]
    metadata: Box<RawValue>,
    stream_version: u64,
    position: u64,
    occurred_at: String,
}

/// A page of events, newest first.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "user_id": "user_42", "events": [{"event_id": "0190c7a2-0000-7000-8000-000000000006", "event_type": "letter.generated", "app_source": "letters", "event_data": {"action": "lettre_motivation"}, "metadata": {}, "stream_version": 3, "position": 17, "occurred_at": "2026-11-25T10:00:00.000Z"}], "total_count": 3, "event_type_filter": null, "next_cursor": null}))]
pub struct EventsResponse {
    success: bool,
    user_id: String,
    events: Vec<EventDto>,
    total_count: u64,
    event_type_filter: Option<String>,
    next_cursor: Option<String>,
}

/// The Capital Narratif of a user, recomputed now.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": true, "user_id": "user_42", "capital_narratif": {
    "user_profile": {"user_id": "user_42", "total_events": 3, "apps_mastered": ["letters"], "skills_demonstrated": ["Data Analyst"], "most_frequent_action": "lettre_motivation"},
    "usage_analytics": {"actions_breakdown": {"lettre_motivation": 1}, "total_energy_consumed": 15, "average_energy_per_action": 15, "unlimited_actions": 0, "notional_energy_unlimited": 0, "subscription_insights": {"primary_subscription": "free", "upgrade_candidate": false}},
    "professional_journey": {"timeline": [{"action": "lettre_motivation", "app": "letters", "occurred_at": "2026-11-25T10:00:00.000Z", "context": {"target_role": "Data Analyst"}}], "career_progression": ["Data Analyst"], "expertise_areas": [{"area": "cover_letters", "count": 1}]},
    "ai_insights": {"engagement_score": 12, "growth_trajectory": "early_user", "recommendations": [{"code": "explore_features", "message": "Découvrez les autres fonctionnalités de Luna pour enrichir votre parcours."}]},
    "metadata": {"generated_at": "2026-11-25T10:00:01.000Z", "events_analyzed": 3, "last_position": 17, "reconstruction_version": "2.0"}},
    "last_updated": "2026-11-25T10:00:01.000Z", "source": "event_store_real_time"}))]
pub struct NarrativeResponse {
    success: bool,
    user_id: String,
    /// The five sections of spec §2.4.
    #[schema(value_type = Object)]
    capital_narratif: Value,
    last_updated: String,
    source: &'static str,
}

fn object(raw: &RawValue, loc: &str) -> Result<(), ApiError> {
    if !raw.get().trim_start().starts_with('{') {
        return Err(ApiError::validation(
            &["body", loc],
            "must be a JSON object",
            "type_error.dict",
        ));
    }
    if raw.get().len() > MAX_EVENT_DATA_BYTES {
        return Err(ApiError::validation(
            &["body", loc],
            "must be at most 16 KiB",
            "value_error.too_large",
        ));
    }
    Ok(())
}

/// Record an app event (types the hub emits itself are refused).
#[utoipa::path(post, path = "/luna/events", tag = "events", request_body = PostEventBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 201, description = "Recorded", body = PostEventResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad pattern, size, or reserved_event_type", body = ValidationErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn post_event(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let call = Call::begin(principal, Scope::EventsWrite, &headers, "events", body).await?;
    let hub = state.hub.clone();
    Ok(call
        .run(
            &state.hub,
            StatusCode::CREATED,
            |o: &AppEventOutcome| PostEventResponse {
                success: true,
                event_id: o.event_id.to_string(),
                stream_version: o.stream_version,
                position: o.position,
                recorded_at: rfc3339(o.recorded_at),
            },
            |b: PostEventBody, p| Ok((p.user_for(b.user_id.as_deref())?, app_event_of(&b)?)),
            |(user, event), meta, idem| async move {
                hub.record_app_event(&user, event, &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

fn app_event_of(b: &PostEventBody) -> Result<luna_core::AppEvent, ApiError> {
    let event_type = event_type_of(&b.event_type, "body")?;
    let app_source = AppSource::parse(&b.app_source).map_err(|_| {
        ApiError::validation(
            &["body", "app_source"],
            "must match ^[a-z0-9_-]{1,50}$",
            "value_error.str.regex",
        )
    })?;
    object(&b.event_data, "event_data")?;
    let metadata = b
        .metadata
        .as_deref()
        .map(RawValue::get)
        .filter(|m| *m != "null");
    if let Some(m) = &b.metadata {
        if m.get() != "null" {
            object(m, "metadata")?;
        }
    }
    luna_codec::app_event(event_type, app_source, b.event_data.get(), metadata).map_err(|_| {
        ApiError::validation(
            &["body", "event_data"],
            "must be a JSON object",
            "type_error.dict",
        )
    })
}

/// An event type (a body field or the listing's filter): the spec's pattern, else 422.
fn event_type_of(raw: &str, location: &str) -> Result<EventType, ApiError> {
    EventType::parse(raw).map_err(|_| {
        ApiError::validation(
            &[location, "event_type"],
            "must match ^[A-Za-z][A-Za-z0-9_.-]{0,99}$",
            "value_error.str.regex",
        )
    })
}

/// Listing parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Page size (default 50, at most 200).
    pub limit: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// The `next_cursor` of the previous page.
    pub before: Option<String>,
}

fn raw(text: String) -> Box<RawValue> {
    RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON"))
}

/// The wire form of a stored event: app events show the client's data; the hub's own show
/// their stored payload and metadata.
pub fn event_dto(r: &RecordedEvent) -> EventDto {
    let (app_source, event_data, metadata) = match &r.event.kind {
        EventKind::AppEvent(a) => (
            a.app_source.to_string(),
            raw(a.data.as_str().to_owned()),
            raw(a
                .metadata
                .as_ref()
                .map_or_else(|| "{}".to_owned(), |m| m.as_str().to_owned())),
        ),
        kind => {
            let encoded = luna_codec::encode(kind);
            let meta = luna_codec::encode_metadata(
                r.metadata.actor.as_deref(),
                r.metadata.correlation_id.as_deref(),
                r.metadata.idempotency_key.as_deref(),
            );
            ("luna_hub".to_owned(), raw(encoded.payload), raw(meta))
        }
    };
    EventDto {
        event_id: r.event_id.to_string(),
        event_type: r.event.kind.type_name().to_owned(),
        app_source,
        event_data,
        metadata,
        stream_version: r.version,
        position: r.position,
        occurred_at: rfc3339(r.event.occurred_at),
    }
}

/// Every event of a user, newest first, the hub's own included.
#[utoipa::path(get, path = "/luna/events/{user_id}", tag = "events",
    params(("user_id" = String, Path, description = "The user"), EventsParams),
    responses(
        (status = 200, description = "A page of events", body = EventsResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ValidationErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
    query: Result<Query<EventsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::EventsRead, &user_id)?;
    let q = query_params(query)?;
    let limit = page_limit(q.limit.as_deref())?;
    let before = parse_cursor(q.before.as_deref())?;
    if let Some(t) = q.event_type.as_deref() {
        event_type_of(t, "query")?;
    }
    let page = state
        .hub
        .events(&user, before, limit, q.event_type.as_deref())
        .await?;
    let next_cursor = if page.has_more {
        page.events.last().map(|e| format!("p{}", e.position))
    } else {
        None
    };
    Ok(axum::Json(EventsResponse {
        success: true,
        user_id: user.to_string(),
        events: page.events.iter().map(event_dto).collect(),
        total_count: page.total_count,
        event_type_filter: q.event_type,
        next_cursor,
    })
    .into_response())
}

fn raw_value(c: Option<&luna_core::Context>) -> Value {
    c.and_then(|c| serde_json::from_str(c.raw().as_str()).ok())
        .unwrap_or(Value::Null)
}

/// The Capital Narratif, recomputed from every event of the user.
#[utoipa::path(get, path = "/luna/narrative/{user_id}", tag = "events",
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "The Capital Narratif", body = NarrativeResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn narrative(
    State(state): State<AppState>,
    principal: Principal,
    UserPath(user_id): UserPath,
) -> Result<Response, ApiError> {
    let user = principal.reader_of(Scope::EventsRead, &user_id)?;
    let input = state.hub.narrative(&user).await?;
    let n = input.narrative();
    let generated = rfc3339(n.generated_at);
    let capital = json!({
        "user_profile": {
            "user_id": user.as_str(),
            "total_events": n.total_events,
            "apps_mastered": n.apps_mastered,
            "skills_demonstrated": n.skills_demonstrated,
            "most_frequent_action": n.most_frequent_action,
        },
        "usage_analytics": {
            "actions_breakdown": n.actions_breakdown,
            "total_energy_consumed": n.total_energy_consumed,
            "average_energy_per_action": n.average_energy_per_action,
            "unlimited_actions": n.unlimited_actions,
            "notional_energy_unlimited": n.notional_energy_unlimited,
            "subscription_insights": {
                "primary_subscription": n.primary_subscription,
                "upgrade_candidate": n.upgrade_candidate,
            },
        },
        "professional_journey": {
            "timeline": n.timeline.iter().map(|o| json!({
                "action": o.action,
                "app": o.app,
                "occurred_at": rfc3339(o.occurred_at),
                "context": raw_value(o.context),
            })).collect::<Vec<_>>(),
            "career_progression": n.career_progression,
            "expertise_areas": n.expertise_areas.iter().map(|(a, c)| json!({"area": a, "count": c})).collect::<Vec<_>>(),
        },
        "ai_insights": {
            "engagement_score": n.engagement_score,
            "growth_trajectory": n.growth_trajectory.as_str(),
            "recommendations": n.recommendations.iter().map(|r| json!({"code": r.code, "message": r.message})).collect::<Vec<_>>(),
        },
        "metadata": {
            "generated_at": generated,
            "events_analyzed": n.events_analyzed,
            "last_position": input.last_position,
            "reconstruction_version": luna_core::narrative::RECONSTRUCTION_VERSION,
        },
    });
    Ok(axum::Json(NarrativeResponse {
        success: true,
        user_id: user.to_string(),
        capital_narratif: capital,
        last_updated: generated,
        source: "event_store_real_time",
    })
    .into_response())
}
