//! One call to the hub: credentials, the idempotency key, bounded retries (network errors and
//! 503 only, the same key on every attempt), a single-flight refresh of a user session on 401.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use luna_api::{RefreshBody, RefreshResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// A user's tokens (keep the refresh token secret; store both to resume a session).
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The short-lived access token (15 minutes).
    pub access_token: String,
    /// The refresh token (rotated on every use; a rotated one used again revokes the session).
    pub refresh_token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(***)")
    }
}

/// A user session: its tokens, and the lock that makes refreshing single-flight.
pub(crate) struct UserSession {
    tokens: RwLock<Tokens>,
    refreshing: tokio::sync::Mutex<()>,
}

/// How the client authenticates.
pub(crate) enum Credentials {
    /// A service key (`luna_sk_…`).
    Service(String),
    /// A user's tokens, refreshed when the access token is refused.
    User(Arc<UserSession>),
    /// None (public routes, register, login).
    Anonymous,
}

impl Credentials {
    pub(crate) fn user(tokens: Tokens) -> Credentials {
        Credentials::User(Arc::new(UserSession {
            tokens: RwLock::new(tokens),
            refreshing: tokio::sync::Mutex::new(()),
        }))
    }

    fn bearer(&self) -> Option<String> {
        match self {
            Credentials::Service(k) => Some(k.clone()),
            Credentials::User(s) => Some(s.read().access_token),
            Credentials::Anonymous => None,
        }
    }

    pub(crate) fn tokens(&self) -> Option<Tokens> {
        match self {
            Credentials::User(s) => Some(s.read()),
            _ => None,
        }
    }
}

impl UserSession {
    fn read(&self) -> Tokens {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn write(&self, t: Tokens) {
        *self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }
}

/// Retry and timeout settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Retries after the first attempt (network errors and 503 only).
    pub max_retries: u32,
    /// Pause before the first retry (doubled each time; a 503's `Retry-After` is honoured up to
    /// `max_backoff`).
    pub first_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            max_retries: 3,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Which failures a call may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read, or a mutation with an idempotency key: network errors and 503.
    Safe,
    /// Not idempotent (`/auth/*`): 503 only (the hub did not act).
    UnavailableOnly,
    /// Never (a refresh: a retried refresh token may be a reused one).
    Never,
}

/// What one attempt got.
enum Outcome {
    Answer(u16, Option<u64>, Vec<u8>),
    Network(String),
}

pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) config: ClientConfig,
}

/// A request to make.
pub(crate) struct Call<'a> {
    pub(crate) method: reqwest::Method,
    pub(crate) path: &'a str,
    pub(crate) query: &'a [(&'a str, String)],
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) retry: Retry,
}

impl<'a> Call<'a> {
    pub(crate) fn get(path: &'a str, query: &'a [(&'a str, String)]) -> Call<'a> {
        Call {
            method: reqwest::Method::GET,
            path,
            query,
            body: None,
            idempotency_key: None,
            retry: Retry::Safe,
        }
    }

    pub(crate) fn post(
        path: &'a str,
        body: &impl Serialize,
        key: String,
    ) -> Result<Call<'a>, Error> {
        Ok(Call {
            method: reqwest::Method::POST,
            path,
            query: &[],
            body: Some(serde_json::to_vec(body).map_err(|e| Error::Decode(e.to_string()))?),
            idempotency_key: Some(key),
            retry: Retry::Safe,
        })
    }
}

impl Transport {
    async fn attempt(&self, call: &Call<'_>, bearer: Option<&str>) -> Outcome {
        let mut r = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path))
            .timeout(self.config.timeout);
        if !call.query.is_empty() {
            r = r.query(call.query);
        }
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        if let Some(k) = &call.idempotency_key {
            r = r.header("Idempotency-Key", k);
        }
        if let Some(body) = &call.body {
            r = r
                .header("content-type", "application/json")
                .body(body.clone());
        }
        match r.send().await {
            Err(e) => Outcome::Network(e.to_string()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match resp.bytes().await {
                    Ok(b) => Outcome::Answer(status, retry_after, b.to_vec()),
                    Err(e) => Outcome::Network(e.to_string()),
                }
            }
        }
    }

    fn pause(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        let doubled = self
            .config
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt.min(16)));
        retry_after
            .map_or(doubled, Duration::from_secs)
            .min(self.config.max_backoff)
    }

    /// One call with its retries: the status and body of the last answer.
    async fn with_retries(
        &self,
        call: &Call<'_>,
        bearer: Option<&str>,
    ) -> Result<(u16, Option<u64>, Vec<u8>), Error> {
        let mut attempt = 0;
        loop {
            let outcome = self.attempt(call, bearer).await;
            let retryable = matches!(
                (&outcome, call.retry),
                (Outcome::Network(_), Retry::Safe)
                    | (
                        Outcome::Answer(503, _, _),
                        Retry::Safe | Retry::UnavailableOnly
                    )
            );
            if !retryable || attempt >= self.config.max_retries {
                return match outcome {
                    Outcome::Answer(s, ra, b) => Ok((s, ra, b)),
                    Outcome::Network(e) => Err(Error::Transport(e)),
                };
            }
            let retry_after = match &outcome {
                Outcome::Answer(_, ra, _) => *ra,
                Outcome::Network(_) => None,
            };
            tokio::time::sleep(self.pause(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// Makes the call as `credentials`, refreshing a user session once on 401; decodes a 2xx.
    pub(crate) async fn call<R: DeserializeOwned>(
        &self,
        credentials: &Credentials,
        call: &Call<'_>,
    ) -> Result<R, Error> {
        let mut refreshed = false;
        loop {
            let bearer = credentials.bearer();
            let (status, retry_after, body) = self.with_retries(call, bearer.as_deref()).await?;
            if (200..300).contains(&status) {
                return serde_json::from_slice(&body).map_err(|e| Error::Decode(e.to_string()));
            }
            match (status, credentials) {
                (401, Credentials::User(session)) if !refreshed => {
                    self.refresh(session, bearer.as_deref().unwrap_or_default())
                        .await?;
                    refreshed = true;
                }
                _ => return Err(Error::from_answer(status, retry_after, &body)),
            }
        }
    }

    /// Refreshes a session unless another call already did since `seen` was read: one refresh
    /// at a time per session (a refresh token used twice revokes the session, spec §3.5).
    async fn refresh(&self, session: &UserSession, seen: &str) -> Result<(), Error> {
        let _one_at_a_time = session.refreshing.lock().await;
        let current = session.read();
        if current.access_token != seen {
            return Ok(());
        }
        let body = RefreshBody {
            refresh_token: current.refresh_token.clone(),
        };
        let call = Call {
            method: reqwest::Method::POST,
            path: "/auth/refresh",
            query: &[],
            body: Some(serde_json::to_vec(&body).map_err(|e| Error::Decode(e.to_string()))?),
            idempotency_key: None,
            retry: Retry::Never,
        };
        let (status, retry_after, answer) = self.with_retries(&call, None).await?;
        if status != 200 {
            return Err(Error::from_answer(status, retry_after, &answer));
        }
        let fresh: RefreshResponse =
            serde_json::from_slice(&answer).map_err(|e| Error::Decode(e.to_string()))?;
        session.write(Tokens {
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token,
        });
        Ok(())
    }
}
