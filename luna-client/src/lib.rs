//! An async client for the Luna energy hub, over the hub's own wire types (`luna-api`).
//!
//! - **Every endpoint typed**: requests and answers are `luna_api` types.
//! - **Auth**: a service key ([`LunaClient::with_service_key`]) or a user's tokens
//!   ([`LunaClient::login`], [`LunaClient::with_user_tokens`]). A user's access token lasts
//!   15 minutes; when the hub refuses it (401) the client refreshes it **once, for all
//!   concurrent calls** (single-flight) and retries. This matters: the hub rotates refresh tokens
//!   and treats a rotated token used again as theft, revoking the whole session — two calls
//!   refreshing at once would log the user out. A refresh is never retried on a network error
//!   for the same reason (if its answer was lost, the session has to sign in again).
//! - **Idempotent mutations**: every POST carries an `Idempotency-Key` — a fresh UUID unless
//!   the caller gives one ([`LunaClient::with_idempotency_key`]) — reused on every retry, so a
//!   retried consume is charged once.
//! - **Bounded retries** with exponential backoff on network errors and 503 only
//!   ([`ClientConfig`]); `/auth/*` calls (not idempotent at the hub) retry on 503 only.
//! - **Typed errors** ([`Error`]): `InsufficientEnergy { required_pack, deficit, .. }`,
//!   `Forbidden`, `NotFound`, `Conflict { code }`, `Validation(..)`…
//! - **Holds**: [`LunaClient::with_hold`] reserves an action's energy, runs the caller's work,
//!   commits on success, releases on failure — and releases when the future is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), luna_client::Error> {
//! use luna_client::{Error, LunaClient};
//!
//! let luna = LunaClient::with_service_key("http://127.0.0.1:8003", "luna_sk_…")?;
//! match luna.consume(Some("marie"), "lettre_motivation").await {
//!     Ok(done) => println!("{} left", done.energy_remaining),
//!     Err(Error::InsufficientEnergy { required_pack, .. }) => {
//!         println!("buy {required_pack:?}");
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```

mod endpoints;
mod error;
mod hold;
mod transport;

use std::sync::Arc;

pub use error::{Error, Invalid};
pub use hold::HoldError;
pub use luna_api as api;
pub use transport::{ClientConfig, Tokens};

use transport::{Credentials, Transport};

/// A client of one hub. Cheap to clone (clones share the connection pool and the session).
#[derive(Clone)]
pub struct LunaClient {
    transport: Arc<Transport>,
    credentials: Arc<Credentials>,
    /// The key of this handle's mutations, when the caller chose one.
    key: Option<String>,
}

impl std::fmt::Debug for LunaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LunaClient")
            .field("base", &self.transport.base)
            .finish_non_exhaustive()
    }
}

impl LunaClient {
    fn build(
        base: &str,
        credentials: Credentials,
        config: ClientConfig,
    ) -> Result<LunaClient, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(LunaClient {
            transport: Arc::new(Transport {
                http,
                base: base.trim_end_matches('/').to_owned(),
                config,
            }),
            credentials: Arc::new(credentials),
            key: None,
        })
    }

    /// A client acting with a service key (a satellite's backend).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), luna_client::Error> {
    /// let luna = luna_client::LunaClient::with_service_key("http://127.0.0.1:8003", "luna_sk_…")?;
    /// # Ok(()) }
    /// ```
    pub fn with_service_key(base: &str, key: &str) -> Result<LunaClient, Error> {
        LunaClient::build(
            base,
            Credentials::Service(key.to_owned()),
            ClientConfig::default(),
        )
    }

    /// A client acting for a user whose tokens you kept (refreshed as needed; read them back
    /// with [`LunaClient::tokens`] to store the rotated ones).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), luna_client::Error> {
    /// use luna_client::{LunaClient, Tokens};
    /// let luna = LunaClient::with_user_tokens(
    ///     "http://127.0.0.1:8003",
    ///     Tokens { access_token: "eyJ…".into(), refresh_token: "luna_rt_…".into() },
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn with_user_tokens(base: &str, tokens: Tokens) -> Result<LunaClient, Error> {
        LunaClient::build(base, Credentials::user(tokens), ClientConfig::default())
    }

    /// A client without credentials (public routes: packs, costs, health).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), luna_client::Error> {
    /// let packs = luna_client::LunaClient::anonymous("http://127.0.0.1:8003")?.packs().await?;
    /// # Ok(()) }
    /// ```
    pub fn anonymous(base: &str) -> Result<LunaClient, Error> {
        LunaClient::build(base, Credentials::Anonymous, ClientConfig::default())
    }

    /// The same client with other retry and timeout settings.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), luna_client::Error> {
    /// use luna_client::{ClientConfig, LunaClient};
    /// let luna = LunaClient::anonymous("http://127.0.0.1:8003")?
    ///     .with_config(ClientConfig { max_retries: 1, ..ClientConfig::default() })?;
    /// # Ok(()) }
    /// ```
    pub fn with_config(&self, config: ClientConfig) -> Result<LunaClient, Error> {
        let mut c = self.clone();
        c.transport = Arc::new(Transport {
            http: self.transport.http.clone(),
            base: self.transport.base.clone(),
            config,
        });
        Ok(c)
    }

    /// A handle whose mutations use `key` as their idempotency key (for one logical operation:
    /// sending the same key again replays the first answer; another body with it is refused
    /// with `idempotency_key_reused`).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let order = "order-42-letter";
    /// luna.with_idempotency_key(order).consume(Some("marie"), "lettre_motivation").await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_idempotency_key(&self, key: impl Into<String>) -> LunaClient {
        LunaClient {
            key: Some(key.into()),
            ..self.clone()
        }
    }

    /// The user's current tokens (after refreshes), to store; `None` for a service key.
    ///
    /// ```no_run
    /// # fn demo(luna: luna_client::LunaClient) {
    /// if let Some(t) = luna.tokens() { /* keep t.refresh_token somewhere safe */ }
    /// # }
    /// ```
    pub fn tokens(&self) -> Option<Tokens> {
        self.credentials.tokens()
    }

    fn mutation_key(&self) -> String {
        self.key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }
}
