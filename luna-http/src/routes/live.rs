//! The live balance over Server-Sent Events (spec §3.8): `GET /luna/energy/live` for a bearer
//! (a user's own stream, or `user_id` for a service key); `GET /app/live`, the pages' twin, is in
//! the pages' module. See `crate::live` for the stream itself.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use luna_api::{CheckResponse, ErrorBody};
use luna_app::SERVICE_KEY_PREFIX;
use luna_ports::Scope;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Principal, bearer};
use crate::live::{Recheck, stream};
use crate::routes::query_params;

/// Who to follow.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiveParams {
    /// The user (service keys; a user follows themself).
    pub user_id: Option<String>,
}

pub(crate) fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The balance of a user as it changes: an event `balance` (the body of
/// `/luna/energy/check`, its `id` the stream version) at once, then on every change.
#[utoipa::path(get, path = "/luna/energy/live", tag = "energy", params(LiveParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last version received")),
    responses(
        (status = 200, description = "text/event-stream of `balance` events", body = CheckResponse, content_type = "text/event-stream"),
        (status = 401, description = "Missing or bad credentials", body = ErrorBody),
        (status = 403, description = "Scope or user not allowed", body = ErrorBody),
        (status = 503, description = "Too many live streams", body = ErrorBody),
    ),
    security(("bearer" = ["energy:read"])))]
pub async fn live(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    query: Result<Query<LiveParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    principal.require(Scope::EnergyRead)?;
    let q = query_params(query)?;
    let user = principal.user_for(q.user_id.as_deref())?;
    let token = bearer(&headers)?.to_owned();
    let hub = state.hub.clone();
    let recheck: Recheck = Arc::new(move || {
        let (hub, token) = (hub.clone(), token.clone());
        Box::pin(async move {
            if token.starts_with(SERVICE_KEY_PREFIX) {
                matches!(hub.authenticate_key(&token).await, Ok(Some(_)))
            } else {
                hub.authenticate_user(&token).await.is_ok()
            }
        })
    });
    Ok(stream(state, user, last_event_id(&headers), recheck)?.into_response())
}
