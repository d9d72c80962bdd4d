//! The cryptography and limits of user accounts: Argon2id password hashes computed off the
//! async runtime with a bound on concurrent hashes, HS256 access tokens, opaque refresh tokens
//! and the fixed-window buckets of the brute-force limits (spec §3.5, §6 "Auth details").

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use luna_core::{Email, Id, Span, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Access tokens live 15 minutes.
pub const ACCESS_TTL_SECONDS: i64 = 15 * 60;
/// Refresh tokens live 30 days (each rotation starts a new 30 days).
pub const REFRESH_TTL_DAYS: i64 = 30;
/// The `iss` of every access token.
pub const ISSUER: &str = "luna-hub";
/// The prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "luna_rt_";
/// Argon2id memory in KiB (OWASP: m=19 MiB, t=2, p=1).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id iterations.
pub const ARGON2_ITERATIONS: u32 = 2;
/// How long a caller waits for a hashing slot before the hub answers 503.
pub const HASH_SLOT_WAIT: Duration = Duration::from_secs(2);
/// Failed logins per email in a window before 429.
pub const EMAIL_FAILURES: u32 = 5;
/// Failed logins per client address in a window before 429.
pub const ADDRESS_FAILURES: u32 = 50;
/// The login window, in seconds.
pub const LOGIN_WINDOW_SECONDS: i64 = 15 * 60;
/// Registrations per client address per window.
pub const REGISTRATIONS: u32 = 20;
/// The registration window, in seconds.
pub const REGISTRATION_WINDOW_SECONDS: i64 = 3600;

/// Why an auth step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown email or wrong password (the same answer for both).
    #[error("Invalid email or password")]
    InvalidCredentials,
    /// A missing, malformed, expired, forged or revoked token.
    #[error("Invalid token")]
    InvalidToken,
    /// The email is registered already.
    #[error("Email already registered")]
    EmailTaken,
    /// Too many attempts in the window; retry after this many seconds.
    #[error("Too many attempts, retry in {retry_after} s")]
    TooManyAttempts {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// Every hashing slot stayed busy for `HASH_SLOT_WAIT`.
    #[error("Too many logins at once, retry")]
    Busy,
}

/// Hashes and verifies passwords with Argon2id, at most `slots` at a time, off the runtime.
pub(crate) struct Passwords {
    argon: Argon2<'static>,
    slots: Arc<Semaphore>,
    /// A hash of a random password, verified against for unknown emails so that they cost the
    /// same work as a wrong password.
    dummy: String,
}

impl Passwords {
    pub(crate) fn new(slots: usize, dummy_salt: [u8; 16]) -> Passwords {
        // The parameters are constants within Argon2's bounds.
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, None)
            .expect("valid Argon2 parameters");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = hash_with(&argon, "not a password anyone has", dummy_salt)
            .expect("hashing a constant cannot fail");
        Passwords {
            argon,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            dummy,
        }
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        tokio::time::timeout(HASH_SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AuthError::Busy)?
            .map_err(|_| AuthError::Busy)
    }

    /// The PHC string of a password.
    pub(crate) async fn hash(&self, password: &str, salt: [u8; 16]) -> Result<String, AuthError> {
        let permit = self.slot().await?;
        let argon = self.argon.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_with(&argon, &password, salt)
        })
        .await
        .map_err(|_| AuthError::Busy)?
        .ok_or(AuthError::Busy)
    }

    /// Whether `password` matches `hash` (`None`: an unknown email, checked against the dummy
    /// hash so it takes as long, and always false).
    pub(crate) async fn verify(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, AuthError> {
        let permit = self.slot().await?;
        let argon = self.argon.clone();
        let known = hash.is_some();
        let stored = hash.unwrap_or(&self.dummy).to_owned();
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&stored)
                .is_ok_and(|h| argon.verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .map_err(|_| AuthError::Busy)?;
        Ok(known && matches)
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str, salt: [u8; 16]) -> Option<String> {
    let salt = SaltString::encode_b64(&salt).ok()?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
    iss: String,
    typ: String,
}

/// Signs and checks HS256 access tokens.
pub(crate) struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Tokens {
    pub(crate) fn new(secret: &[u8]) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// An access token for a session, valid `ACCESS_TTL_SECONDS` from `now`.
    pub(crate) fn access(&self, user: &UserId, session: Id, now: Timestamp) -> Option<String> {
        let iat = now.millis() / 1000;
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            iat,
            exp: iat + ACCESS_TTL_SECONDS,
            iss: ISSUER.to_owned(),
            typ: "access".to_owned(),
        };
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .ok()
    }

    /// The user and session of a valid access token: HS256 only (the allow-list refuses
    /// `none` and every other algorithm), signature, issuer, `typ: "access"`, required claims,
    /// not expired at `now` (the hub's clock).
    pub(crate) fn check(&self, token: &str, now: Timestamp) -> Result<(UserId, Id), AuthError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        // Expiry is checked below against the hub's clock, not the library's.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AuthError::InvalidToken)?;
        let c = data.claims;
        if c.typ != "access" || now.millis() / 1000 >= c.exp {
            return Err(AuthError::InvalidToken);
        }
        let user = UserId::parse(&c.sub).map_err(|_| AuthError::InvalidToken)?;
        let session = Id::parse(&c.sid).map_err(|_| AuthError::InvalidToken)?;
        Ok((user, session))
    }
}

/// A refresh token: `luna_rt_<user>.<session>.<256 random bits, hex>`, so a refresh finds its
/// session without a search (ADR 0005). Only its SHA-256 is stored.
pub(crate) fn refresh_token(user: &UserId, session: Id, secret: [u8; 32]) -> String {
    let mut hex = String::with_capacity(64);
    for b in secret {
        use std::fmt::Write;
        let _ = write!(hex, "{b:02x}");
    }
    format!("{REFRESH_PREFIX}{user}.{session}.{hex}")
}

/// The user and session a refresh token names.
pub(crate) fn parse_refresh(token: &str) -> Option<(UserId, Id)> {
    let mut parts = token.strip_prefix(REFRESH_PREFIX)?.split('.');
    let (user, session, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || secret.len() != 64 {
        return None;
    }
    Some((UserId::parse(user).ok()?, Id::parse(session).ok()?))
}

/// A client address as counted: IPv4 whole, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                v4.to_string()
            } else {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

/// A fixed window: the bucket key for `now` and the end of its window.
pub(crate) fn window(prefix: &str, now: Timestamp, seconds: i64) -> (String, Timestamp) {
    let len = seconds * 1000;
    let start = now.millis().div_euclid(len) * len;
    (
        format!("{prefix}{start}"),
        Timestamp::from_millis(start).plus(Span::seconds(seconds)),
    )
}

/// Seconds until `end`, at least 1.
pub(crate) fn seconds_until(end: Timestamp, now: Timestamp) -> i64 {
    ((end.millis() - now.millis() + 999) / 1000).max(1)
}

/// The bucket prefix of an email's failed logins.
pub(crate) fn email_prefix(email: &Email) -> String {
    format!("login-email:{email}:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_session() {
        let u = UserId::parse("usr_1").unwrap();
        let t = refresh_token(&u, Id::from_u128(7), [9; 32]);
        assert_eq!(parse_refresh(&t), Some((u, Id::from_u128(7))));
        assert_eq!(parse_refresh("luna_rt_usr_1.x.y"), None);
        assert_eq!(parse_refresh(&t.replace("luna_rt_", "")), None);
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let v4: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(v4), "10.0.0.1");
    }

    #[test]
    fn windows_are_fixed_buckets() {
        let t = Timestamp::from_secs(1_000_000);
        let (k1, end) = window("x:", t, 900);
        let (k2, _) = window("x:", t.plus(Span::seconds(10)), 900);
        assert_eq!(k1, k2);
        assert!(end > t && seconds_until(end, t) <= 900);
    }

    #[test]
    fn access_tokens_are_refused_when_forged_expired_or_of_another_type() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let u = UserId::parse("usr_1").unwrap();
        let now = Timestamp::from_secs(1_800_000_000);
        let t = tokens.access(&u, Id::from_u128(3), now).unwrap();
        assert_eq!(tokens.check(&t, now), Ok((u.clone(), Id::from_u128(3))));
        assert!(
            tokens
                .check(&t, now.plus(Span::seconds(ACCESS_TTL_SECONDS)))
                .is_err()
        );
        let other = Tokens::new(b"another secret of thirty-two bytes!");
        assert!(other.check(&t, now).is_err());
        let mut parts: Vec<&str> = t.split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        parts[0] = none_header;
        assert!(
            tokens
                .check(&format!("{}.{}.", parts[0], parts[1]), now)
                .is_err()
        );
    }
}
