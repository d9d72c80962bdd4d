//! The account's pages: purchase history, the Capital Narratif, signed-in devices.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{day, failed, render};
use super::texts::{Texts, for_request};
use super::{clear_cookie, signed_in};
use crate::AppState;
use luna_core::{Id, RevocationOfSession};

// ---- history, narrative, sessions ---------------------------------------------------------

struct PurchaseRow {
    date: String,
    pack: String,
    energy: u32,
    amount: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    t: &'static Texts,
    signed_in: bool,
    rows: Vec<PurchaseRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct Page {
    before: Option<String>,
}

pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Page>,
) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(before) = crate::routes::parse_cursor(q.before.as_deref()) else {
        return Redirect::to("/app/history").into_response();
    };
    match state.hub.billing_history(&u.user, before, 20).await {
        Ok(h) => render(&HistoryPage {
            t: for_request(&headers),
            signed_in: true,
            rows: h
                .lines
                .iter()
                .map(|l| PurchaseRow {
                    date: day(l.purchase.at),
                    pack: l.purchase.pack.to_string(),
                    energy: l.purchase.energy.units() + l.purchase.bonus.units(),
                    amount: format!(
                        "{} {}",
                        l.purchase.price.amount.decimal_string(),
                        l.purchase.price.currency.upper()
                    ),
                    status: if l.purchase.is_revoked() {
                        "revoked"
                    } else {
                        "credited"
                    },
                })
                .collect(),
            next: h.next_before.map(crate::routes::cursor),
        }),
        Err(e) => failed(&e),
    }
}

struct TimelineRow {
    date: String,
    action: String,
    app: String,
    context: Option<String>,
}

#[derive(Template)]
#[template(path = "narrative.html")]
struct NarrativePage {
    t: &'static Texts,
    signed_in: bool,
    engagement: u64,
    trajectory: String,
    recommendations: Vec<String>,
    timeline: Vec<TimelineRow>,
}

pub async fn narrative(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let input = match state.hub.narrative(&u.user).await {
        Ok(i) => i,
        Err(e) => return failed(&e),
    };
    let n = input.narrative();
    let c = crate::routes::narrative::capital(u.user.as_str(), &n, input.last_position);
    render(&NarrativePage {
        t: for_request(&headers),
        signed_in: true,
        engagement: c.ai_insights.engagement_score,
        trajectory: c.ai_insights.growth_trajectory.clone(),
        recommendations: c
            .ai_insights
            .recommendations
            .iter()
            .map(|r| r.message.clone())
            .collect(),
        timeline: c
            .professional_journey
            .timeline
            .iter()
            .rev()
            .take(100)
            .map(|e| TimelineRow {
                date: e
                    .occurred_at
                    .chars()
                    .take(16)
                    .collect::<String>()
                    .replace('T', " "),
                action: e.action.clone(),
                app: e.app.clone(),
                context: e.context.as_ref().map(|c| c.get().to_owned()),
            })
            .collect(),
    })
}

struct SessionRow {
    id: String,
    device: String,
    address: String,
    last_seen: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    t: &'static Texts,
    signed_in: bool,
    sessions: Vec<SessionRow>,
}

pub async fn sessions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let now = luna_core::Timestamp::from_millis(chrono::Utc::now().timestamp_millis());
    match state.hub.sessions(&u.user).await {
        Ok(list) => render(&SessionsPage {
            t: for_request(&headers),
            signed_in: true,
            sessions: list
                .iter()
                .filter(|s| s.is_live(now))
                .map(|s| SessionRow {
                    id: s.id.to_string(),
                    device: crate::client::device_label(s.user_agent.as_deref()),
                    address: s.address.clone(),
                    last_seen: day(s.last_seen),
                    current: s.id == u.session,
                })
                .collect(),
        }),
        Err(e) => failed(&e),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(session) = Id::parse(&id) else {
        return Redirect::to("/app/sessions").into_response();
    };
    if let Err(e) = state
        .hub
        .revoke_session(&u.user, session, RevocationOfSession::Deleted)
        .await
    {
        return failed(&e);
    }
    if session == u.session {
        let mut r = Redirect::to("/app/login").into_response();
        r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
        return r;
    }
    Redirect::to("/app/sessions").into_response()
}
