//! `/luna/events`: app events in, every event of a user (the hub's own included) out.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use luna_api::{
    ErrorBody, EventDto, EventsParams, EventsResponse, PostEventBody, PostEventResponse,
    ValidationErrorBody,
};
use luna_app::AppEventOutcome;
use luna_core::{EventKind, EventType};
use luna_ports::{RecordedEvent, Scope};
use serde_json::value::RawValue;

use crate::AppState;
use crate::command::Call;
use crate::error::ApiError;
use crate::extract::{Body, Principal, UserPath};
use crate::routes::{cursor, page_limit, parse_cursor, query_params};
use crate::wire::{self, rfc3339};

/// Record an app event (types the hub emits itself are refused).
#[utoipa::path(post, path = "/luna/events", tag = "events", request_body = PostEventBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Also accepted as X-Idempotency-Key")),
    responses(
        (status = 201, description = "Recorded", body = PostEventResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad pattern, size, or reserved_event_type", body = ValidationErrorBody),
    ),
    security(("bearer" = ["events:write"])))]
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
            |b: PostEventBody, p| {
                let user = p.user_for(b.user_id.as_deref())?;
                let event = wire::app_event(
                    &b.event_type,
                    &b.app_source,
                    &b.event_data,
                    b.metadata.as_deref(),
                )?;
                Ok((user, event))
            },
            |(user, event), meta, idem| async move {
                hub.record_app_event(&user, event, &meta, idem.as_ref())
                    .await
            },
        )
        .await)
}

/// The wire form of a stored event: app events show the client's data verbatim; the hub's own
/// show their wire shapes (`luna_api::hub_events`), mapped from the domain event.
pub fn event_dto(r: &RecordedEvent) -> EventDto {
    let (app_source, event_data, metadata) = match &r.event.kind {
        EventKind::AppEvent(a) => (
            a.app_source.to_string(),
            raw(a.data.as_str()),
            raw(a.metadata.as_ref().map_or("{}", |m| m.as_str())),
        ),
        kind => (
            "luna_hub".to_owned(),
            wire::to_raw(&wire::hub_event_data(kind)),
            wire::to_raw(&wire::hub_event_metadata(&r.metadata)),
        ),
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

fn raw(text: &str) -> Box<RawValue> {
    // Stored client JSON was validated on the way in; fall back to {} rather than panic.
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON"))
}

/// Every event of a user, newest first, the hub's own included.
#[utoipa::path(get, path = "/luna/events/{user_id}", tag = "events",
    params(("user_id" = String, Path, description = "The user"), EventsParams),
    responses(
        (status = 200, description = "A page of events", body = EventsResponse),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 422, description = "Bad limit, cursor or event type", body = ValidationErrorBody),
    ),
    security(("bearer" = ["events:read"])))]
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
        EventType::parse(t).map_err(|e| wire::pattern(&["query"], &e))?;
    }
    let page = state
        .hub
        .events(&user, before, limit, q.event_type.as_deref())
        .await?;
    let next_cursor = if page.has_more {
        page.events.last().map(|e| cursor(e.position))
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
