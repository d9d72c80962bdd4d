//! Request extraction: JSON bodies (size limit, content type, 422 list shape), the principal
//! behind a bearer token, the user a request acts for, and idempotency keys.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use luna_app::SERVICE_KEY_PREFIX;
use luna_core::UserId;
use luna_ports::{EventMetadata, Scope, ServiceKey};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::canonical::{CanonicalError, canonicalize};
use crate::error::ApiError;
use crate::limits::{MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LEN};

/// A request body not read yet: a route reads it once the principal's scope is checked, so a
/// caller without the scope never has its body read.
pub struct Body {
    json: bool,
    body: axum::body::Body,
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        Ok(Body {
            json,
            body: req.into_body(),
        })
    }
}

fn malformed(e: &impl std::fmt::Display) -> ApiError {
    ApiError::validation(
        &["body"],
        &format!("Malformed JSON: {e}"),
        "value_error.jsondecode",
    )
}

impl Body {
    /// Reads the body (≤ 64 KiB, else 413), checks it is JSON within the structural limits
    /// (nesting, duplicate keys; else 422) and computes its canonical form, in one pass.
    pub async fn read(self) -> Result<JsonBody, ApiError> {
        let mut bytes = axum::body::to_bytes(self.body, MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::body_too_large())?;
        if bytes.is_empty() {
            // Bodiless calls (a release, an old client's commit) read as `{}`.
            bytes = axum::body::Bytes::from_static(b"{}");
        } else if !self.json {
            return Err(ApiError::validation(
                &["header", "content-type"],
                "Expected application/json",
                "value_error.content_type",
            ));
        }
        let canonical = canonicalize(&bytes).map_err(|e| match e {
            CanonicalError::Syntax { .. } => malformed(&e),
            CanonicalError::TooDeep => {
                ApiError::validation(&["body"], &format!("JSON {e}"), "value_error.jsondepth")
            }
            CanonicalError::DuplicateKey(_) => {
                ApiError::validation(&["body"], &format!("JSON {e}"), "value_error.duplicate_key")
            }
        })?;
        Ok(JsonBody { bytes, canonical })
    }
}

/// A body as received, bytes untouched (the webhook's signature is over these), within the
/// route's limit (else 413).
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let limit = crate::limits::body_limit(req.uri().path());
        axum::body::to_bytes(req.into_body(), limit)
            .await
            .map(RawBody)
            .map_err(|_| ApiError::body_too_large())
    }
}

/// A JSON body that passed the structural checks: its bytes and canonical text.
pub struct JsonBody {
    bytes: axum::body::Bytes,
    canonical: String,
}

fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

impl JsonBody {
    /// The canonical text (spec §6): what idempotency fingerprints are computed from.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The typed request, deserialised from the bytes (not via a `Value`, so embedded client
    /// JSON stays verbatim); missing or mistyped fields → 422 in the list shape.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let mut de = serde_json::Deserializer::from_slice(&self.bytes);
        let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            if e.inner().is_syntax() || e.inner().is_eof() {
                return malformed(e.inner());
            }
            let inner = e.inner().to_string();
            let mut loc: Vec<String> = vec!["body".to_owned()];
            let path = e.path().to_string();
            if path != "." {
                loc.extend(path.split('.').map(str::to_owned));
            }
            if let Some(field) = missing_field(&inner) {
                loc.push(field.to_owned());
                let refs: Vec<&str> = loc.iter().map(String::as_str).collect();
                return ApiError::validation(&refs, "field required", "value_error.missing");
            }
            let refs: Vec<&str> = loc.iter().map(String::as_str).collect();
            ApiError::validation(&refs, &inner, "type_error")
        })?;
        de.end().map_err(|e| malformed(&e))?;
        Ok(parsed)
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A satellite service, by its key.
    Service(ServiceKey),
    /// A user, by an access token of a live session.
    User {
        /// The user.
        user: UserId,
        /// The session the token belongs to.
        session: luna_core::Id,
    },
}

/// The bearer token of a request, or 401.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("Not authenticated"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Not authenticated"))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?;
        if token.starts_with(SERVICE_KEY_PREFIX) {
            let key = state.hub.authenticate_key(token).await?;
            return key
                .map(Principal::Service)
                .ok_or_else(|| ApiError::unauthorized("Invalid or revoked key"));
        }
        let (user, session) = state.hub.authenticate_user(token).await?;
        Ok(Principal::User { user, session })
    }
}

impl Principal {
    /// Refuses with 403 unless the principal holds `scope` (a user holds every scope but
    /// `admin`, for their own data).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match self {
            Principal::Service(k) if k.grants(scope) => Ok(()),
            Principal::User { .. } if scope != Scope::Admin => Ok(()),
            Principal::Service(_) | Principal::User { .. } => Err(ApiError::forbidden()),
        }
    }

    /// A stable id for event metadata and logs.
    pub fn id(&self) -> String {
        match self {
            Principal::Service(k) => format!("service:{}", k.id),
            Principal::User { user, .. } => format!("user:{user}"),
        }
    }

    /// The principal's idempotency scope (ADR 0005): a user's own stream, a service's id (a
    /// key is scoped by principal and route, across the users a service acts for).
    pub fn scope(&self) -> String {
        match self {
            Principal::Service(_) => self.id(),
            Principal::User { user, .. } => user.to_string(),
        }
    }

    /// The user a request acts for, from an optional `user_id` in the body: a service must
    /// name one; a user may omit it (self) and may name only themself (another → 403).
    pub fn user_for(&self, user_id: Option<&str>) -> Result<UserId, ApiError> {
        let user = self.resolve_user(user_id)?;
        crate::log_user(&user);
        Ok(user)
    }

    fn resolve_user(&self, user_id: Option<&str>) -> Result<UserId, ApiError> {
        match (self, user_id) {
            (Principal::Service(_), None) => Err(ApiError::validation(
                &["body", "user_id"],
                "field required",
                "value_error.missing",
            )),
            (Principal::Service(_), Some(u)) => {
                UserId::parse(u).map_err(|_| ApiError::invalid_user_id())
            }
            (Principal::User { user, .. }, None) => Ok(user.clone()),
            (Principal::User { user, .. }, Some(u)) => {
                let named = UserId::parse(u).map_err(|_| ApiError::invalid_user_id())?;
                if &named == user {
                    Ok(named)
                } else {
                    Err(ApiError::forbidden())
                }
            }
        }
    }

    /// The user of a path segment, if the principal holds `scope` and may read that user.
    pub fn reader_of(&self, scope: Scope, user_id: &str) -> Result<UserId, ApiError> {
        self.require(scope)?;
        self.user_for(Some(user_id))
    }

    /// Whether the principal is a user (refund policy and quota apply) rather than a service.
    pub fn is_user(&self) -> bool {
        matches!(self, Principal::User { .. })
    }

    /// The owner constraint on reservations: a user may touch only their own.
    pub fn owner(&self) -> Option<UserId> {
        match self {
            Principal::Service(_) => None,
            Principal::User { user, .. } => Some(user.clone()),
        }
    }
}

/// The request id the `x-request-id` layer set.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The metadata a request's events record: the principal, the request id and the client's
/// idempotency key.
pub fn metadata(principal: &Principal, headers: &HeaderMap, key: Option<String>) -> EventMetadata {
    EventMetadata {
        actor: Some(principal.id()),
        correlation_id: request_id(headers),
        idempotency_key: key,
    }
}

/// The client's idempotency key (`Idempotency-Key` or `X-Idempotency-Key`).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let raw = headers
        .get("idempotency-key")
        .or_else(|| headers.get("x-idempotency-key"));
    let Some(raw) = raw else { return Ok(None) };
    let key = raw.to_str().map_err(|_| bad_key())?.trim().to_owned();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(bad_key());
    }
    Ok(Some(key))
}

fn bad_key() -> ApiError {
    ApiError::validation(
        &["header", "idempotency-key"],
        "must be 1 to 255 visible characters",
        "value_error.idempotency_key",
    )
}

/// The fingerprint of a request under an idempotency key: SHA-256 of the route and the
/// canonical body.
pub fn fingerprint(route: &str, canonical: &str) -> String {
    luna_app::hash_secret(&format!("{route}\n{canonical}"))
}

/// A user id from a path segment; a segment that does not decode is an invalid user id (400).
pub struct UserPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(u)| UserPath(u))
            .map_err(|_| ApiError::invalid_user_id())
    }
}

/// An id from a path segment, as sent: `None` when the segment does not decode (the route
/// then answers its own "not found", kept under the idempotency key like any answer).
pub struct IdPath(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(IdPath(
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .ok()
                .map(|axum::extract::Path(id)| id),
        ))
    }
}
