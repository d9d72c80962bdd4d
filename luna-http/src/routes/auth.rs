//! `/auth/*`: register, log in, refresh, profile, sessions, logout (spec §3.5). These routes
//! take no idempotency key (a kept answer would keep raw tokens).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use luna_api::{
    ErrorBody, LoginBody, LogoutResponse, MessageResponse, ProfileResponse, RefreshBody,
    RefreshResponse, RegisterBody, SessionDto, SessionsResponse, TokenResponse,
    ValidationErrorBody,
};
use luna_app::{Client, TokenPair, address_key};
use luna_core::{Email, Id, RevocationOfSession, UserId, input};

use crate::AppState;
use crate::client::{client_ip, device_label, user_agent};
use crate::error::ApiError;
use crate::extract::{Body, Principal};
use crate::wire::rfc3339;

/// The longest display name.
const MAX_NAME_CHARS: usize = 100;

/// The client of a request: its address (behind trusted proxies, the forwarded one) and agent.
pub struct ClientInfo(pub Client);

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The server always records the peer; only in-process router tests lack it, and they
        // then share one counting bucket (never zero counting).
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let ip = client_ip(peer, &parts.headers, &state.config.trusted_proxies);
        Ok(ClientInfo(Client {
            address: address_key(ip),
            user_agent: user_agent(&parts.headers),
        }))
    }
}

fn tokens_dto(t: TokenPair) -> TokenResponse {
    TokenResponse {
        access_token: t.access_token,
        token_type: "bearer".to_owned(),
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
        user_id: t.user.to_string(),
        email: t.email.to_string(),
    }
}

/// The user of a user token (a service key → 403).
fn signed_in(principal: &Principal) -> Result<(UserId, Id), ApiError> {
    match principal {
        Principal::User { user, session } => {
            crate::log_user(user);
            Ok((user.clone(), *session))
        }
        Principal::Service(_) => Err(ApiError::forbidden()),
    }
}

/// Create an account (its energy opens with the welcome energy) and a first session.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered and signed in", body = TokenResponse),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 422, description = "Invalid email, password length or name", body = ValidationErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
        (status = 503, description = "Too many password hashes at once", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ClientInfo(client): ClientInfo,
    body: Body,
) -> Result<Response, ApiError> {
    let b: RegisterBody = body.read().await?.parse()?;
    let email = Email::parse(&b.email)
        .map_err(|e| ApiError::validation(&["body", "email"], e.why, "value_error.email"))?;
    let password = input::password(&b.password)?;
    let name = b
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(ApiError::validation(
            &["body", "name"],
            "must be at most 100 characters",
            "value_error.too_long",
        ));
    }
    let tokens = state.hub.register(email, password, name, &client).await?;
    crate::log_user(&tokens.user);
    Ok((StatusCode::CREATED, axum::Json(tokens_dto(tokens))).into_response())
}

/// Log in (an unknown email and a wrong password get the same answer, after the same work).
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Invalid email or password", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ValidationErrorBody),
        (status = 429, description = "Too many failed attempts for this email or address", body = ErrorBody),
        (status = 503, description = "Too many password checks at once", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientInfo(client): ClientInfo,
    body: Body,
) -> Result<Response, ApiError> {
    let b: LoginBody = body.read().await?.parse()?;
    let tokens = state
        .hub
        .login(Email::parse(&b.email).ok(), &b.password, &client)
        .await?;
    crate::log_user(&tokens.user);
    Ok(axum::Json(tokens_dto(tokens)).into_response())
}

/// Rotate a refresh token (a rotated token used again revokes its whole session).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = RefreshResponse),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 422, description = "Malformed request", body = ValidationErrorBody),
    ))]
pub async fn refresh(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let b: RefreshBody = body.read().await?.parse()?;
    let t = state.hub.refresh(&b.refresh_token).await?;
    crate::log_user(&t.user);
    Ok(axum::Json(RefreshResponse {
        access_token: t.access_token,
        token_type: "bearer".to_owned(),
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
    })
    .into_response())
}

async fn profile_of(state: &AppState, principal: &Principal) -> Result<Response, ApiError> {
    let (user, _) = signed_in(principal)?;
    let p = state.hub.profile(&user).await?;
    Ok(axum::Json(ProfileResponse {
        id: p.account.user.to_string(),
        user_id: p.account.user.to_string(),
        email: p.account.email.to_string(),
        name: p.account.name,
        created_at: rfc3339(p.account.created_at),
        subscription_type: p.energy.subscription_type.as_str().to_owned(),
        is_unlimited: p.energy.unlimited(),
        luna_energy: p.energy.current_energy,
    })
    .into_response())
}

/// The signed-in user and their energy.
#[utoipa::path(get, path = "/auth/profile", tag = "auth",
    responses(
        (status = 200, description = "The profile", body = ProfileResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a user token", body = ErrorBody),
    ),
    security(("bearer" = ["user"])))]
pub async fn profile(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    profile_of(&state, &principal).await
}

/// The same as `/auth/profile`.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses(
        (status = 200, description = "The profile", body = ProfileResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a user token", body = ErrorBody),
    ),
    security(("bearer" = ["user"])))]
pub async fn me(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    profile_of(&state, &principal).await
}

/// The user's live sessions, newest first.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth",
    responses(
        (status = 200, description = "Sessions", body = SessionsResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a user token", body = ErrorBody),
    ),
    security(("bearer" = ["user"])))]
pub async fn sessions(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let (user, current) = signed_in(&principal)?;
    let now = state.hub.now();
    let sessions = state
        .hub
        .sessions(&user)
        .await?
        .into_iter()
        .filter(|s| s.is_live(now))
        .map(|s| SessionDto {
            id: s.id.to_string(),
            device_label: device_label(s.user_agent.as_deref()),
            user_agent: s.user_agent,
            ip: s.address,
            created_at: rfc3339(s.created_at),
            last_seen: rfc3339(s.last_seen),
            current: s.id == current,
        })
        .collect();
    Ok(axum::Json(SessionsResponse { sessions }).into_response())
}

/// Revoke one of the user's sessions (its refresh token dies, its access tokens are refused).
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "Revoked", body = MessageResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a user token", body = ErrorBody),
        (status = 404, description = "No such live session of yours", body = ErrorBody),
    ),
    security(("bearer" = ["user"])))]
pub async fn delete_session(
    State(state): State<AppState>,
    principal: Principal,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let (user, _) = signed_in(&principal)?;
    let not_found = || {
        ApiError::rule(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "No such live session",
        )
    };
    let id = id
        .ok()
        .and_then(|Path(id)| Id::parse(&id).ok())
        .ok_or_else(not_found)?;
    if !state
        .hub
        .revoke_session(&user, id, RevocationOfSession::Deleted)
        .await?
    {
        return Err(not_found());
    }
    Ok(axum::Json(MessageResponse {
        message: "Session revoked".to_owned(),
    })
    .into_response())
}

/// End the current session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses(
        (status = 200, description = "Logged out", body = LogoutResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a user token", body = ErrorBody),
    ),
    security(("bearer" = ["user"])))]
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let (user, session) = signed_in(&principal)?;
    let revoked = state
        .hub
        .revoke_session(&user, session, RevocationOfSession::Logout)
        .await?;
    Ok(axum::Json(LogoutResponse {
        message: "Logged out".to_owned(),
        sessions_revoked: u64::from(revoked),
    })
    .into_response())
}

/// End every session of the user.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    responses(
        (status = 200, description = "Logged out everywhere", body = LogoutResponse),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a user token", body = ErrorBody),
    ),
    security(("bearer" = ["user"])))]
pub async fn logout_all(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let (user, session) = signed_in(&principal)?;
    let n = state.hub.logout_all(&user, session).await?;
    Ok(axum::Json(LogoutResponse {
        message: "Logged out of every session".to_owned(),
        sessions_revoked: n,
    })
    .into_response())
}
