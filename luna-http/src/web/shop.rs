//! Buying: the packs, a hosted Checkout for a pack or for Unlimited, the page Checkout returns
//! to (pending until the verified webhook credits, then done).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{Gauge, failed, gauge, render};
use super::texts::{Texts, for_request};
use super::{WebUser, signed_in};
use crate::AppState;
use luna_app::{AppError, CheckoutStatus, ReturnUrls};
use luna_core::{DomainError, PackKind};

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
