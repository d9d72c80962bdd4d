//! `/auth/*`: accounts, tokens and sessions.

use serde::{Deserialize, Serialize};

/// Register an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"email": "marie@example.com", "password": "correct horse battery", "name": "Marie"})))]
pub struct RegisterBody {
    /// Trimmed and compared case-insensitively.
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    pub name: Option<String>,
}

/// Log in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"email": "marie@example.com", "password": "correct horse battery"})))]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

/// Rotate a refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"refresh_token": "luna_rt_usr_…"})))]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Tokens of a new session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "token_type": "bearer", "expires_in": 900, "refresh_token": "luna_rt_usr_…", "user_id": "usr_0190c7a2000070008000000000000001", "email": "marie@example.com"})))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    pub user_id: String,
    pub email: String,
}

/// Rotated tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "token_type": "bearer", "expires_in": 900, "refresh_token": "luna_rt_usr_…"})))]
pub struct RefreshResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

/// The signed-in user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"id": "usr_0190c7a2000070008000000000000001", "user_id": "usr_0190c7a2000070008000000000000001", "email": "marie@example.com", "name": "Marie", "created_at": "2026-11-25T10:00:00.000Z", "subscription_type": "free", "is_unlimited": false, "luna_energy": 85})))]
pub struct ProfileResponse {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: String,
    pub subscription_type: String,
    pub is_unlimited: bool,
    /// The balance.
    pub luna_energy: i64,
}

/// One session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionDto {
    pub id: String,
    pub device_label: String,
    pub user_agent: Option<String>,
    pub ip: String,
    pub created_at: String,
    pub last_seen: String,
    /// Whether this is the session of the token asking.
    pub current: bool,
}

/// The user's live sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"sessions": [{"id": "0190c7a2-0000-7000-8000-000000000009", "device_label": "Firefox on Linux", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", "ip": "203.0.113.7", "created_at": "2026-11-25T10:00:00.000Z", "last_seen": "2026-11-25T10:14:00.000Z", "current": true}]})))]
pub struct SessionsResponse {
    pub sessions: Vec<SessionDto>,
}

/// A message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"message": "Session revoked"})))]
pub struct MessageResponse {
    pub message: String,
}

/// A logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"message": "Logged out", "sessions_revoked": 1})))]
pub struct LogoutResponse {
    pub message: String,
    pub sessions_revoked: u64,
}
