//! Accounts: register, log in, refresh, profile, sessions and logout (spec §3.5), the
//! brute-force limits (spec §6 "Auth details"), and authenticating a user's access token.
//! Registration opens the energy account through the engine like any energy command, and the
//! audit trail (logins, reuse, revocations) goes to the user's stream.

use luna_core::view::CheckView;
use luna_core::{AuditEvent, Command, Email, Id, RevocationOfSession, Span, UserId};
use luna_ports::{Account, EventMetadata, Rotation, Session, StoreError};

use super::{Hub, unwrap_fresh};
use crate::auth::{
    ACCESS_TTL_SECONDS, ADDRESS_FAILURES, AuthError, EMAIL_FAILURES, LOGIN_WINDOW_SECONDS,
    REFRESH_TTL_DAYS, REGISTRATION_WINDOW_SECONDS, REGISTRATIONS, Tokens, email_prefix,
    parse_refresh, refresh_token, seconds_until, window,
};
use crate::engine::{Decided, Run};
use crate::error::AppError;

/// Who is asking, as the HTTP layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client address, as counted by the limits (IPv6 per /64).
    pub address: String,
    /// The `User-Agent`, bounded.
    pub user_agent: Option<String>,
}

/// Tokens handed to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    /// The user.
    pub user: UserId,
    /// Their email.
    pub email: Email,
    /// A 15-minute HS256 access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The session's new refresh token (shown once, stored hashed).
    pub refresh_token: String,
}

/// A user's profile: the account and the energy it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The account.
    pub account: Account,
    /// The balance view (the same as `/luna/energy/check`).
    pub energy: CheckView,
}

impl Hub {
    fn tokens(&self) -> Result<&Tokens, AppError> {
        self.tokens.get().ok_or_else(|| {
            AppError::Infrastructure(StoreError::backend(std::io::Error::other(
                "the token-signing secret is not loaded (Hub::load_signing_secret)",
            )))
        })
    }

    /// Loads the token-signing secret: the configured one, or the database's (generated and
    /// stored by the first instance that needs it). Call once at start.
    pub async fn load_signing_secret(&self, configured: Option<&str>) -> Result<(), AppError> {
        let secret = if let Some(s) = configured {
            s.to_owned()
        } else {
            let mut candidate = String::with_capacity(64);
            for b in self.secrets.secret() {
                use std::fmt::Write;
                let _ = write!(candidate, "{b:02x}");
            }
            self.accounts.signing_secret(&candidate).await?
        };
        let _ = self.tokens.set(Tokens::new(secret.as_bytes()));
        Ok(())
    }

    /// Counts an attempt in a fixed window; refuses (uncounted) past `limit`.
    async fn throttle(&self, prefix: &str, seconds: i64, limit: u32) -> Result<String, AppError> {
        let now = self.clock.now();
        let (bucket, end) = window(prefix, now, seconds);
        if self.throttle.hit(&bucket, end, limit).await? {
            Ok(bucket)
        } else {
            Err(AuthError::TooManyAttempts {
                retry_after: seconds_until(end, now),
            }
            .into())
        }
    }

    fn salt(&self) -> [u8; 16] {
        let s = self.secrets.secret();
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&s[..16]);
        salt
    }

    /// Opens a session and hands out its tokens.
    async fn open_session(
        &self,
        account: &Account,
        client: &Client,
    ) -> Result<TokenPair, AppError> {
        let now = self.clock.now();
        let id = self.ids.next_id();
        let refresh = refresh_token(&account.user, id, self.secrets.secret());
        let session = Session {
            user: account.user.clone(),
            id,
            refresh_hash: super::hash_secret(&refresh),
            created_at: now,
            last_seen: now,
            expires_at: now.plus(Span::days(REFRESH_TTL_DAYS)),
            revoked_at: None,
            user_agent: client.user_agent.clone(),
            address: client.address.clone(),
        };
        self.accounts.create_session(&session).await?;
        self.audit(
            &account.user,
            AuditEvent::LoginSucceeded {
                session: id,
                address: client.address.clone(),
            },
        )
        .await?;
        Ok(TokenPair {
            user: account.user.clone(),
            email: account.email.clone(),
            access_token: self.access(&account.user, id)?,
            expires_in: ACCESS_TTL_SECONDS,
            refresh_token: refresh,
        })
    }

    fn access(&self, user: &UserId, session: Id) -> Result<String, AppError> {
        self.tokens()?
            .access(user, session, self.clock.now())
            .ok_or_else(|| {
                AppError::Infrastructure(StoreError::backend(std::io::Error::other(
                    "an access token could not be signed",
                )))
            })
    }

    /// Appends a fact of the audit trail to the user's stream.
    async fn audit(&self, user: &UserId, event: AuditEvent) -> Result<(), AppError> {
        let meta = EventMetadata {
            actor: Some(format!("user:{user}")),
            ..EventMetadata::default()
        };
        let command = Command::RecordAudit(event);
        let run = Run {
            user,
            entities: &[],
            command: &command,
            meta: &meta,
            idem: None,
            processed: None,
        };
        self.engine
            .run(run, &|_: &Decided<'_>| Ok(()))
            .await
            .map(unwrap_fresh)
    }

    /// Registers an account (opening its energy with the welcome event) and logs it in.
    pub async fn register(
        &self,
        email: Email,
        password: &str,
        name: Option<String>,
        client: &Client,
    ) -> Result<TokenPair, AppError> {
        self.throttle(
            &format!("register-addr:{}:", client.address),
            REGISTRATION_WINDOW_SECONDS,
            REGISTRATIONS,
        )
        .await?;
        let password_hash = self.passwords.hash(password, self.salt()).await?;
        let account = Account {
            user: UserId::parse(&format!("usr_{:032x}", self.ids.next_id().as_u128()))
                .map_err(|e| AppError::Infrastructure(StoreError::backend(e)))?,
            email,
            name,
            password_hash,
            created_at: self.clock.now(),
        };
        match self.accounts.create_account(&account).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthError::EmailTaken.into()),
            Err(e) => return Err(e.into()),
        }
        self.check(&account.user, &EventMetadata::default()).await?;
        self.open_session(&account, client).await
    }

    /// Logs in: the email's and the address's attempts are counted before the password is
    /// checked; an unknown email costs the same work and gets the same answer as a wrong
    /// password; a success clears the email's failures.
    pub async fn login(
        &self,
        email: Option<Email>,
        password: &str,
        client: &Client,
    ) -> Result<TokenPair, AppError> {
        let email_bucket = match &email {
            Some(e) => Some(
                self.throttle(&email_prefix(e), LOGIN_WINDOW_SECONDS, EMAIL_FAILURES)
                    .await?,
            ),
            None => None,
        };
        let address = self
            .throttle(
                &format!("login-addr:{}:", client.address),
                LOGIN_WINDOW_SECONDS,
                ADDRESS_FAILURES,
            )
            .await;
        let address_bucket = match address {
            Ok(b) => b,
            Err(e) => {
                if let Some(b) = &email_bucket {
                    self.throttle.undo(b).await?;
                }
                return Err(e);
            }
        };
        let account = match &email {
            Some(e) => self.accounts.account_by_email(e).await?,
            None => None,
        };
        let hash = account.as_ref().map(|a| a.password_hash.as_str());
        if !self.passwords.verify(password, hash).await? {
            if let Some(a) = &account {
                let failed = AuditEvent::LoginFailed {
                    address: client.address.clone(),
                };
                self.audit(&a.user, failed).await?;
            }
            return Err(AuthError::InvalidCredentials.into());
        }
        let (Some(account), Some(email)) = (account, email) else {
            return Err(AuthError::InvalidCredentials.into());
        };
        self.throttle.clear(&email_prefix(&email)).await?;
        self.throttle.undo(&address_bucket).await?;
        self.open_session(&account, client).await
    }

    /// Rotates a refresh token. A rotated token presented again revokes its whole session.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AppError> {
        let (user, session) = parse_refresh(token).ok_or(AuthError::InvalidToken)?;
        let now = self.clock.now();
        let new = refresh_token(&user, session, self.secrets.secret());
        let rotation = self
            .accounts
            .rotate_refresh(
                &user,
                session,
                (&super::hash_secret(token), &super::hash_secret(&new)),
                now,
                now.plus(Span::days(REFRESH_TTL_DAYS)),
            )
            .await?;
        match rotation {
            Rotation::Rotated => {}
            Rotation::Reused => {
                self.accounts.revoke_session(&user, session, now).await?;
                self.audit(&user, AuditEvent::SessionRefreshReused { session })
                    .await?;
                return Err(AuthError::InvalidToken.into());
            }
            Rotation::Invalid => return Err(AuthError::InvalidToken.into()),
        }
        let account = self
            .accounts
            .account(&user)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        Ok(TokenPair {
            access_token: self.access(&user, session)?,
            user,
            email: account.email,
            expires_in: ACCESS_TTL_SECONDS,
            refresh_token: new,
        })
    }

    /// The user and session of an access token whose session is live — read from the
    /// database on every call, so a revocation on any instance counts from the next request.
    pub async fn authenticate_user(&self, token: &str) -> Result<(UserId, Id), AppError> {
        let now = self.clock.now();
        let (user, session) = self.tokens()?.check(token, now)?;
        match self.accounts.session(&user, session).await? {
            Some(s) if s.is_live(now) => Ok((user, session)),
            _ => Err(AuthError::InvalidToken.into()),
        }
    }

    /// The user and session of a web page's cookie (the session's refresh token, never
    /// rotated by pages): the session must be live and the token its current one. A logged-out
    /// or revoked session's cookie is refused.
    pub async fn authenticate_cookie(&self, token: &str) -> Result<(UserId, Id), AppError> {
        let (user, session) = parse_refresh(token).ok_or(AuthError::InvalidToken)?;
        let now = self.clock.now();
        match self.accounts.session(&user, session).await? {
            Some(s) if s.is_live(now) && s.refresh_hash == super::hash_secret(token) => {
                Ok((user, session))
            }
            _ => Err(AuthError::InvalidToken.into()),
        }
    }

    /// The account and its energy (opening the energy account if needed, like a check).
    pub async fn profile(&self, user: &UserId) -> Result<Profile, AppError> {
        let account = self
            .accounts
            .account(user)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let energy = self.check(user, &EventMetadata::default()).await?.view;
        Ok(Profile { account, energy })
    }

    /// A user's sessions, newest first.
    pub async fn sessions(&self, user: &UserId) -> Result<Vec<Session>, AppError> {
        Ok(self.accounts.sessions(user).await?)
    }

    /// Revokes one session of a user; false when it was not live.
    pub async fn revoke_session(
        &self,
        user: &UserId,
        session: Id,
        cause: RevocationOfSession,
    ) -> Result<bool, AppError> {
        let revoked = self
            .accounts
            .revoke_session(user, session, self.clock.now())
            .await?;
        if revoked {
            self.audit(user, AuditEvent::SessionRevoked { session, cause })
                .await?;
        }
        Ok(revoked)
    }

    /// Revokes every session of a user; returns how many.
    pub async fn logout_all(&self, user: &UserId, current: Id) -> Result<u64, AppError> {
        let n = self
            .accounts
            .revoke_all_sessions(user, self.clock.now())
            .await?;
        if n > 0 {
            let cause = RevocationOfSession::LogoutAll;
            self.audit(
                user,
                AuditEvent::SessionRevoked {
                    session: current,
                    cause,
                },
            )
            .await?;
        }
        Ok(n)
    }

    /// The account of an email (`luna users find`).
    pub async fn find_account(&self, email: &Email) -> Result<Option<Account>, AppError> {
        Ok(self.accounts.account_by_email(email).await?)
    }

    /// Clears an email's failed-login counters (`luna users unlock`); returns how many.
    pub async fn unlock(&self, email: &Email) -> Result<u64, AppError> {
        Ok(self.throttle.clear(&email_prefix(email)).await?)
    }

    /// Deletes counters whose window is over.
    pub async fn purge_counters(&self) -> Result<u64, AppError> {
        Ok(self.throttle.purge(self.clock.now()).await?)
    }
}
