//! The page handlers: each reads what it shows through the same use cases as the API, and
//! renders a template (auto-escaped: a stored `<script>` shows as text).

use askama::Template;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use luna_app::{AppError, AuthError};
use luna_core::{Email, RevocationOfSession, UserId, input};
use serde::Deserialize;

use super::texts::{Texts, for_request};
use super::{WebUser, clear_cookie, set_cookie, signed_in};
use crate::AppState;
use crate::routes::auth::ClientInfo;
use crate::wire::rfc3339;

/// The energy gauge's figures.
pub(super) struct Gauge {
    pub(super) version: u64,
    pub(super) current: i64,
    pub(super) reserved: u64,
    pub(super) unlimited: bool,
    pub(super) until: Option<String>,
    pub(super) fill_width: i64,
    pub(super) hold_width: i64,
}

pub(super) fn day(t: luna_core::Timestamp) -> String {
    rfc3339(t).chars().take(10).collect()
}

pub(super) async fn gauge(state: &AppState, user: &UserId) -> Result<Gauge, AppError> {
    let (version, v) = state.hub.peek(user).await?;
    let fill = v.current_energy.clamp(0, 100) * 2;
    let reserved = i64::try_from(v.reserved_energy).unwrap_or(i64::MAX);
    Ok(Gauge {
        version,
        current: v.current_energy,
        reserved: v.reserved_energy,
        unlimited: v.unlimited(),
        until: v.unlimited_until.map(day),
        fill_width: fill,
        hold_width: reserved.saturating_mul(2).clamp(0, 200 - fill),
    })
}

pub(super) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response()
        }
    }
}

pub(super) fn failed(e: &AppError) -> Response {
    crate::error::ApiError::from(e).into_response()
}

// ---- sign in and out ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage {
    t: &'static Texts,
    signed_in: bool,
    registering: bool,
    error: Option<String>,
    email: String,
}

fn auth_page(
    t: &'static Texts,
    registering: bool,
    error: Option<String>,
    email: String,
) -> Response {
    render(&AuthPage {
        t,
        signed_in: false,
        registering,
        error,
        email,
    })
}

pub async fn login_page(headers: HeaderMap) -> Response {
    auth_page(for_request(&headers), false, None, String::new())
}

pub async fn register_page(headers: HeaderMap) -> Response {
    auth_page(for_request(&headers), true, None, String::new())
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    name: Option<String>,
}

fn signed_in_as(state: &AppState, refresh_token: &str) -> Response {
    let mut r = Redirect::to("/app/dashboard").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(state, refresh_token));
    r
}

fn auth_error(t: &'static Texts, e: &AppError) -> String {
    match e {
        AppError::Auth(AuthError::InvalidCredentials) => t.error_credentials.to_owned(),
        AppError::Auth(a) => a.to_string(),
        AppError::Domain(d) => d.to_string(),
        _ => t.error_generic.to_owned(),
    }
}

pub async fn login(
    State(state): State<AppState>,
    ClientInfo(client): ClientInfo,
    headers: HeaderMap,
    Form(f): Form<Credentials>,
) -> Response {
    let t = for_request(&headers);
    match state
        .hub
        .login(Email::parse(&f.email).ok(), &f.password, &client)
        .await
    {
        Ok(tokens) => signed_in_as(&state, &tokens.refresh_token),
        Err(e) => auth_page(t, false, Some(auth_error(t, &e)), f.email),
    }
}

pub async fn register(
    State(state): State<AppState>,
    ClientInfo(client): ClientInfo,
    headers: HeaderMap,
    Form(f): Form<Credentials>,
) -> Response {
    let t = for_request(&headers);
    let email = match Email::parse(&f.email) {
        Ok(e) => e,
        Err(e) => return auth_page(t, true, Some(e.why.to_owned()), f.email),
    };
    let password = match input::password(&f.password) {
        Ok(p) => p,
        Err(e) => return auth_page(t, true, Some(e.to_string()), f.email),
    };
    let name = f
        .name
        .map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty());
    match state.hub.register(email, password, name, &client).await {
        Ok(tokens) => signed_in_as(&state, &tokens.refresh_token),
        Err(e) => auth_page(t, true, Some(auth_error(t, &e)), f.email),
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Ok(u) = signed_in(&state, &headers).await {
        if let Err(e) = state
            .hub
            .revoke_session(&u.user, u.session, RevocationOfSession::Logout)
            .await
        {
            return failed(&e);
        }
    }
    let mut r = Redirect::to("/app/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    r
}

// ---- dashboard ----------------------------------------------------------------------------

struct ActionRow {
    name: String,
    cost: u32,
    times: String,
}

struct TxRow {
    date: String,
    label: String,
    change: String,
    after: i64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    t: &'static Texts,
    signed_in: bool,
    g: Gauge,
    actions: Vec<ActionRow>,
    rows: Vec<TxRow>,
}

pub async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match dashboard_page(&state, &u, for_request(&headers)).await {
        Ok(r) => r,
        Err(e) => failed(&e),
    }
}

async fn dashboard_page(
    state: &AppState,
    u: &WebUser,
    t: &'static Texts,
) -> Result<Response, AppError> {
    let g = gauge(state, &u.user).await?;
    let available = state.hub.peek(&u.user).await?.1.available_energy;
    let actions = state
        .hub
        .catalog()
        .grid
        .actions()
        .map(|a| {
            let cost = a.cost.units();
            let times = if g.unlimited {
                "∞".to_owned()
            } else if cost == 0 {
                "—".to_owned()
            } else {
                (available.max(0) / i64::from(cost)).to_string()
            };
            ActionRow {
                name: a.name.to_string(),
                cost,
                times,
            }
        })
        .collect();
    let page = state.hub.transactions(&u.user, None, 10).await?;
    let rows = page
        .lines
        .iter()
        .map(|l| TxRow {
            date: day(l.created_at),
            label: l
                .feature_used
                .clone()
                .unwrap_or_else(|| l.kind.as_str().to_owned()),
            change: format!("{:+}", l.energy_after.units() - l.energy_before.units()),
            after: l.energy_after.units(),
        })
        .collect();
    Ok(render(&Dashboard {
        t,
        signed_in: true,
        g,
        actions,
        rows,
    }))
}

// ---- assets -------------------------------------------------------------------------------

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/app.css"),
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/app.js"),
    )
        .into_response()
}
