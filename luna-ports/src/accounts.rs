//! Accounts: people who register and log in, their sessions (refresh tokens stored only as
//! hashes), and the counters that slow password guessing down across every instance.

use async_trait::async_trait;
use luna_core::{Email, Id, Timestamp, UserId};

use crate::error::StoreError;

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its user id (the id every satellite uses for this person).
    pub user: UserId,
    /// The normalised email.
    pub email: Email,
    /// A display name.
    pub name: Option<String>,
    /// The Argon2id hash of the password (PHC string).
    pub password_hash: String,
    /// When registered.
    pub created_at: Timestamp,
}

/// A login session: one refresh token at a time, rotated on every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub user: UserId,
    /// The session id (the `sid` claim of its access tokens).
    pub id: Id,
    /// The SHA-256 of the current refresh token.
    pub refresh_hash: String,
    /// When opened.
    pub created_at: Timestamp,
    /// When its refresh token was last used (or the login).
    pub last_seen: Timestamp,
    /// When the current refresh token stops working.
    pub expires_at: Timestamp,
    /// When revoked, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The client's `User-Agent`, bounded.
    pub user_agent: Option<String>,
    /// The client address at login.
    pub address: String,
}

impl Session {
    /// Whether the session may still be used at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// It was the session's current token: replaced by the new one.
    Rotated,
    /// It was one of the session's rotated tokens: someone replays it.
    Reused,
    /// No live session holds it.
    Invalid,
}

/// Accounts and sessions. An implementation MUST enforce the uniqueness of the normalised email
/// in the database (concurrent registrations of one email: one succeeds, the others get
/// `Conflict`), and MUST make `rotate_refresh` atomic (of two rotations of one token at most
/// one is `Rotated`).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account; `Conflict` when the email (or the user id) is taken.
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;

    /// The account with this email.
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, StoreError>;

    /// The account of a user.
    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError>;

    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// A session of a user, read from the database (never cached: a revocation on any
    /// instance is seen by the next request).
    async fn session(&self, user: &UserId, id: Id) -> Result<Option<Session>, StoreError>;

    /// Every session of a user, newest first.
    async fn sessions(&self, user: &UserId) -> Result<Vec<Session>, StoreError>;

    /// Replaces a live session's refresh hash `old` by `new` (valid until `expires_at`);
    /// answers `Reused` when `old` is one of the session's rotated hashes.
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: Id,
        hashes: (&str, &str),
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Rotation, StoreError>;

    /// Revokes a live session; false when there is none.
    async fn revoke_session(
        &self,
        user: &UserId,
        id: Id,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Revokes every live session of a user; returns how many.
    async fn revoke_all_sessions(&self, user: &UserId, now: Timestamp) -> Result<u64, StoreError>;

    /// The token-signing secret of this database: the stored one, or `candidate` stored first
    /// (every instance sharing the database signs alike, and tokens survive a restart).
    async fn signing_secret(&self, candidate: &str) -> Result<String, StoreError>;
}

/// Fixed-window attempt counters (login guesses, registrations), shared by every instance.
/// An implementation MUST count atomically: of concurrent `hit`s on one bucket at its limit,
/// none is counted.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Counts one attempt in `bucket` (which expires at `expires_at`) unless it already holds
    /// `limit`: true when counted, false when refused (and not counted).
    async fn hit(
        &self,
        bucket: &str,
        expires_at: Timestamp,
        limit: u32,
    ) -> Result<bool, StoreError>;

    /// Gives one counted attempt back (a login that succeeded).
    async fn undo(&self, bucket: &str) -> Result<(), StoreError>;

    /// Deletes every bucket whose key starts with `prefix`; returns how many.
    async fn clear(&self, prefix: &str) -> Result<u64, StoreError>;

    /// Deletes buckets expired at `now`; returns how many.
    async fn purge(&self, now: Timestamp) -> Result<u64, StoreError>;
}
