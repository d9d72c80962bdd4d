//! The cryptography and limits of user accounts: Argon2id password hashes computed off the
//! async runtime with a bound on concurrent hashes, HS256 access tokens, opaque refresh tokens
//! and the fixed-window buckets of the brute-force limits (spec §3.5, §6 "Auth details").

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
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
///
/// Each hash needs `ARGON2_MEMORY_KIB` of working memory. It is allocated once per slot and
/// reused: allocating 19 MiB per login made the allocator keep such blocks in every thread's
/// arena (the soak saw the process swing between 45 and 290 MiB); now hashing holds at most
/// `slots` × 19 MiB, always the same.
pub(crate) struct Passwords {
    argon: Argon2<'static>,
    params: Params,
    slots: Arc<Semaphore>,
    /// Working memory, one buffer per slot in use (a permit guarantees one is free or may be
    /// made).
    memory: Arc<std::sync::Mutex<Vec<Box<[Block]>>>>,
    /// A hash of a random password, verified against for unknown emails so that they cost the
    /// same work as a wrong password.
    dummy: String,
}

impl Passwords {
    pub(crate) fn new(slots: usize, dummy_salt: [u8; 16]) -> Passwords {
        // The parameters are constants within Argon2's bounds.
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, None)
            .expect("valid Argon2 parameters");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy = hash_with(&argon, "not a password anyone has", dummy_salt)
            .expect("hashing a constant cannot fail");
        Passwords {
            argon,
            params,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            memory: Arc::default(),
            dummy,
        }
    }

    /// Runs `work` on a blocking thread with a slot's working memory.
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>, &Params, &mut [Block]) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = self.slot().await?;
        let (argon, params, pool) = (self.argon.clone(), self.params.clone(), self.memory.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = pool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let mut memory = taken
                .unwrap_or_else(|| vec![Block::new(); params.block_count()].into_boxed_slice());
            let out = work(&argon, &params, &mut memory);
            pool.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(memory);
            out
        })
        .await
        .map_err(|_| AuthError::Busy)
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        tokio::time::timeout(HASH_SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AuthError::Busy)?
            .map_err(|_| AuthError::Busy)
    }

    /// The PHC string of a password.
    pub(crate) async fn hash(&self, password: &str, salt: [u8; 16]) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.with_memory(move |argon, params, memory| {
            hash_in(argon, params, &password, salt, memory)
        })
        .await?
        .ok_or(AuthError::Busy)
    }

    /// Whether `password` matches `hash` (`None`: an unknown email, checked against the dummy
    /// hash so it takes as long, and always false).
    pub(crate) async fn verify(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, AuthError> {
        let known = hash.is_some();
        let stored = hash.unwrap_or(&self.dummy).to_owned();
        let password = password.to_owned();
        let matches = self
            .with_memory(move |argon, params, memory| {
                verify_in(argon, params, &password, &stored, memory)
            })
            .await?;
        Ok(known && matches)
    }
}

/// Argon2id of `password` in `memory`, as the PHC string `hash_password` would give.
fn hash_in(
    argon: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: [u8; 16],
    memory: &mut [Block],
) -> Option<String> {
    let salt_string = SaltString::encode_b64(&salt).ok()?;
    let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        .ok()?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).ok()?,
        salt: Some(salt_string.as_salt()),
        hash: Some(Output::new(&out).ok()?),
    };
    Some(phc.to_string())
}

/// Whether `password` matches the PHC string `stored`: in `memory` when `stored` has our
/// parameters, else (a hash made under other parameters) the allocating verifier.
fn verify_in(
    argon: &Argon2<'_>,
    params: &Params,
    password: &str,
    stored: &str,
    memory: &mut [Block],
) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let ours = phc.algorithm == ARGON2ID_IDENT
        && phc.version == Some(Version::V0x13.into())
        && Params::try_from(&phc).is_ok_and(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                == (params.m_cost(), params.t_cost(), params.p_cost())
        });
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    if !ours || expected.len() != Params::DEFAULT_OUTPUT_LEN {
        return argon.verify_password(password.as_bytes(), &phc).is_ok();
    }
    let mut salt_bytes = [0_u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(&out).is_ok_and(|o| o == expected)
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

    #[test]
    fn hashes_made_in_reused_memory_are_the_standard_phc_strings() {
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut memory = vec![Block::new(); params.block_count()];
        let ours = hash_in(&argon, &params, "mot de passe", [7; 16], &mut memory).unwrap();
        assert_eq!(
            Some(ours.clone()),
            hash_with(&argon, "mot de passe", [7; 16])
        );
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // The same buffer, reused, verifies right and wrong passwords.
        assert!(verify_in(
            &argon,
            &params,
            "mot de passe",
            &ours,
            &mut memory
        ));
        assert!(!verify_in(
            &argon,
            &params,
            "mot de passe!",
            &ours,
            &mut memory
        ));
        assert!(!verify_in(
            &argon,
            &params,
            "mot de passe",
            "not a hash",
            &mut memory
        ));
        // A hash made under other parameters still verifies (the allocating path).
        let small = Params::new(8 * 1024, 1, 1, None).unwrap();
        let other = hash_with(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, small),
            "ancien",
            [3; 16],
        )
        .unwrap();
        assert!(verify_in(&argon, &params, "ancien", &other, &mut memory));
        assert!(!verify_in(&argon, &params, "nouveau", &other, &mut memory));
    }
}
