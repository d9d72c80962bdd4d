//! The hub's own pages for users (spec §3.8), under `/app`: server-rendered (askama templates
//! compiled into the binary), no framework, assets embedded, usable without JavaScript except
//! for the live gauge. Signed-in pages use an opaque `HttpOnly`, `SameSite=Lax` cookie holding
//! the auth session's refresh token (never rotated by pages; a revoked or logged-out session's
//! cookie is refused). Every response carries a strict Content-Security-Policy without inline
//! scripts; cross-site form posts are refused.

mod account;
mod pages;
mod shop;
pub mod texts;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use luna_core::{Id, UserId};

use crate::AppState;
use crate::error::ApiError;
use crate::live::{Recheck, stream};
use luna_api::{CheckResponse, ErrorBody};
use std::sync::Arc;

/// The session cookie.
pub const COOKIE: &str = "luna_session";

/// The pages' routes.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/app", get(|| async { Redirect::to("/app/dashboard") }))
        .route("/app/login", get(pages::login_page).post(pages::login))
        .route(
            "/app/register",
            get(pages::register_page).post(pages::register),
        )
        .route("/app/logout", post(pages::logout))
        .route("/app/dashboard", get(pages::dashboard))
        .route("/app/buy", get(shop::buy_page))
        .route("/app/buy/{pack}", post(shop::buy))
        .route("/app/subscribe", post(shop::subscribe))
        .route("/app/return", get(shop::return_page))
        .route("/app/history", get(account::history))
        .route("/app/narrative", get(account::narrative))
        .route("/app/sessions", get(account::sessions))
        .route("/app/sessions/{id}/revoke", post(account::revoke))
        .route("/app/assets/app.css", get(pages::css))
        .route("/app/assets/app.js", get(pages::js))
        .route_layer(middleware::from_fn_with_state(state, guard))
}

/// A signed-in page's user.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// The user.
    pub user: UserId,
    /// Their auth session.
    pub session: Id,
}

/// The cookie's value, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The signed-in user of a request, or the login page.
pub async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<WebUser, Response> {
    let Some(token) = cookie(headers) else {
        return Err(Redirect::to("/app/login").into_response());
    };
    match state.hub.authenticate_cookie(&token).await {
        Ok((user, session)) => {
            crate::log_user(&user);
            Ok(WebUser { user, session })
        }
        Err(_) => Err(Redirect::to("/app/login").into_response()),
    }
}

/// `Set-Cookie` for a session (`Secure` when the public URL is https).
pub fn set_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/app; HttpOnly; SameSite=Lax; Max-Age=2592000{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("luna_session=; Path=/app; Max-Age=0"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("luna_session=; Path=/app; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Whether a state-changing request comes from the hub's own pages: `Sec-Fetch-Site` must be
/// `same-origin` (or `none`: typed by the user); without it, an `Origin` must be the hub's;
/// without either (not a browser), it passes.
pub fn same_site(headers: &HeaderMap, public_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin == origin_of(public_url),
        None => true,
    }
}

/// The pages' Content-Security-Policy: nothing inline, nothing from elsewhere but the form
/// posts that redirect to Stripe's hosted Checkout.
pub fn content_security_policy(checkout_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {checkout_origin}; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

/// Refuses cross-site posts and adds the security headers to every page.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !same_site(req.headers(), &state.config.public_url) {
        return (StatusCode::FORBIDDEN, "Cross-site request refused").into_response();
    }
    let assets = req.uri().path().starts_with("/app/assets/");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let checkout = origin_of(&state.config.checkout_origin).to_owned();
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(&checkout)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !assets {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// The live stream's twin for the pages' cookie (spec §3.8).
#[utoipa::path(get, path = "/app/live", tag = "energy",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last version received")),
    responses(
        (status = 200, description = "text/event-stream of `balance` events", body = CheckResponse, content_type = "text/event-stream"),
        (status = 401, description = "No live session cookie", body = ErrorBody),
    ))]
pub async fn app_live(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = cookie(&headers).ok_or_else(|| ApiError::unauthorized("Not signed in"))?;
    let (user, _) = state
        .hub
        .authenticate_cookie(&token)
        .await
        .map_err(|_| ApiError::unauthorized("Not signed in"))?;
    crate::log_user(&user);
    let hub = state.hub.clone();
    let recheck: Recheck = Arc::new(move || {
        let (hub, token) = (hub.clone(), token.clone());
        Box::pin(async move { hub.authenticate_cookie(&token).await.is_ok() })
    });
    Ok(stream(
        state,
        user,
        crate::routes::live::last_event_id(&headers),
        recheck,
    )?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hubs_own_pages_may_post() {
        let mut h = HeaderMap::new();
        assert!(same_site(&h, "https://luna.example"));
        h.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(!same_site(&h, "https://luna.example"));
        h.insert("origin", HeaderValue::from_static("https://luna.example"));
        assert!(same_site(&h, "https://luna.example/"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_site(&h, "https://luna.example"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_site(&h, "https://luna.example"));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; luna_session=tok; b=2"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("tok"));
        assert_eq!(
            origin_of("http://127.0.0.1:8003/app/x"),
            "http://127.0.0.1:8003"
        );
    }
}
