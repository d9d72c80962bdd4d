//! The page handlers: each reads what it shows through the same use cases as the API, and
//! renders a template (auto-escaped: a stored `<script>` shows as text).

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use luna_app::{AppError, AuthError, CheckoutStatus, ReturnUrls};
use luna_core::{DomainError, Email, Id, PackKind, RevocationOfSession, UserId, input};
use serde::Deserialize;

use super::texts::{Texts, for_request};
use super::{WebUser, clear_cookie, set_cookie, signed_in};
use crate::AppState;
use crate::routes::auth::ClientInfo;
use crate::wire::rfc3339;

/// The energy gauge's figures.
pub struct Gauge {
    version: u64,
    current: i64,
    reserved: u64,
    unlimited: bool,
    until: Option<String>,
    fill_width: i64,
    hold_width: i64,
}

fn day(t: luna_core::Timestamp) -> String {
    rfc3339(t).chars().take(10).collect()
}

async fn gauge(state: &AppState, user: &UserId) -> Result<Gauge, AppError> {
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

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response()
        }
    }
}

fn failed(e: &AppError) -> Response {
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

// ---- buying -------------------------------------------------------------------------------

struct PackRow {
    code: String,
    name: String,
    description: String,
    price: String,
    energy: u32,
    bonus: u32,
    popular: bool,
}

#[derive(Template)]
#[template(path = "buy.html")]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a template's flags, each one shown or hidden"
)]
struct BuyPage {
    t: &'static Texts,
    signed_in: bool,
    g: Gauge,
    notice: Option<String>,
    billing: bool,
    unlimited: bool,
    unlimited_available: bool,
    unlimited_price: String,
    packs: Vec<PackRow>,
}

#[derive(Deserialize)]
pub struct BuyQuery {
    cancelled: Option<String>,
    error: Option<String>,
}

pub async fn buy_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BuyQuery>,
) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = for_request(&headers);
    match buy_view(&state, &u, t, q).await {
        Ok(r) => r,
        Err(e) => failed(&e),
    }
}

async fn buy_view(
    state: &AppState,
    who: &WebUser,
    t: &'static Texts,
    query: BuyQuery,
) -> Result<Response, AppError> {
    let g = gauge(state, &who.user).await?;
    let first = !state.hub.has_purchased(&who.user).await?;
    let catalog = &state.hub.catalog().packs;
    let packs = catalog
        .packs()
        .iter()
        .filter_map(|p| match p.kind {
            PackKind::OneOff { energy, .. } => Some(PackRow {
                code: p.id.to_string(),
                name: p.name.clone(),
                description: p.description.clone(),
                price: p.price.amount.decimal_string(),
                energy: energy.units(),
                bonus: if first {
                    p.first_purchase_bonus().units()
                } else {
                    0
                },
                popular: p.popular,
            }),
            PackKind::Subscription { .. } => None,
        })
        .collect();
    let unlimited_price = catalog
        .packs()
        .iter()
        .find(|p| p.is_subscription())
        .map_or_else(String::new, |p| p.price.amount.decimal_string());
    let notice = match (query.cancelled, query.error) {
        (Some(_), _) => Some(t.cancelled.to_owned()),
        (None, Some(e)) => Some(e.chars().take(200).collect()),
        (None, None) => None,
    };
    Ok(render(&BuyPage {
        t,
        signed_in: true,
        unlimited: g.unlimited,
        g,
        notice,
        billing: state.hub.billing_configured(),
        unlimited_available: state.hub.unlimited_available(),
        unlimited_price,
        packs,
    }))
}

fn return_urls(state: &AppState) -> ReturnUrls {
    let base = state.config.public_url.trim_end_matches('/');
    ReturnUrls {
        success_url: Some(format!(
            "{base}/app/return?session_id={{CHECKOUT_SESSION_ID}}"
        )),
        cancel_url: Some(format!("{base}/app/buy?cancelled=1")),
    }
}

/// Sends the browser to the checkout, or back to the packs with the refusal.
fn to_checkout(result: Result<luna_ports::CheckoutView, AppError>) -> Response {
    match result {
        Ok(view) => match view.url {
            Some(url) => Redirect::to(&url).into_response(),
            None => Redirect::to("/app/buy?error=checkout").into_response(),
        },
        Err(AppError::Domain(DomainError::AlreadyUnlimited)) => {
            Redirect::to("/app/buy").into_response()
        }
        Err(e @ (AppError::Domain(_) | AppError::Billing(_))) => {
            let why: String = e.to_string().chars().take(120).collect();
            let encoded: String = why
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            Redirect::to(&format!("/app/buy?error={encoded}")).into_response()
        }
        Err(e) => failed(&e),
    }
}

pub async fn buy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pack): Path<String>,
) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = state
        .hub
        .create_pack_checkout(&u.user, &pack, return_urls(&state), None)
        .await;
    to_checkout(result)
}

pub async fn subscribe(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let meta = luna_ports::EventMetadata {
        actor: Some(format!("user:{}", u.user)),
        ..luna_ports::EventMetadata::default()
    };
    let result = state
        .hub
        .create_subscription(&u.user, "luna_unlimited", return_urls(&state), &meta, None)
        .await
        .and_then(|r| match r {
            luna_app::Reply::Fresh(v) => Ok(v),
            _ => Err(AppError::Contended),
        });
    to_checkout(result)
}

#[derive(Template)]
#[template(path = "return.html")]
struct ReturnPage {
    t: &'static Texts,
    signed_in: bool,
    g: Gauge,
    state: &'static str,
    message: &'static str,
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    session_id: Option<String>,
}

pub async fn return_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReturnQuery>,
) -> Response {
    let u = match signed_in(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = for_request(&headers);
    let status = match q.session_id.as_deref().filter(|s| s.len() <= 255) {
        Some(id) => state.hub.checkout_status(&u.user, id).await,
        None => Ok(CheckoutStatus::Unknown),
    };
    let (st, message) = match status {
        Ok(CheckoutStatus::Done) => ("done", t.credited),
        Ok(CheckoutStatus::Pending) => ("pending", t.pending),
        Ok(CheckoutStatus::Unknown) => ("unknown", t.unknown_payment),
        Err(e) => return failed(&e),
    };
    match gauge(&state, &u.user).await {
        Ok(g) => render(&ReturnPage {
            t,
            signed_in: true,
            g,
            state: st,
            message,
        }),
        Err(e) => failed(&e),
    }
}

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
