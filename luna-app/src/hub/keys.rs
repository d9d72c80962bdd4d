//! Service keys: creating one (its secret shown once, only its hash stored), authenticating a
//! bearer secret, listing and revoking.

use std::fmt::Write;

use luna_core::Id;
use luna_ports::{Scope, ServiceKey};
use sha2::{Digest, Sha256};

use super::Hub;
use crate::error::AppError;

/// The prefix of every service key secret.
pub const SERVICE_KEY_PREFIX: &str = "luna_sk_";

/// The SHA-256 of a secret, hex: how secrets are stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

impl Hub {
    /// Creates a service key; returns it and its secret (`luna_sk_` + 256 random bits, hex),
    /// shown once and stored only hashed.
    pub async fn create_key(
        &self,
        name: &str,
        scopes: Vec<Scope>,
    ) -> Result<(ServiceKey, String), AppError> {
        let mut secret = String::from(SERVICE_KEY_PREFIX);
        for b in self.secrets.secret() {
            let _ = write!(secret, "{b:02x}");
        }
        let key = ServiceKey {
            id: self.ids.next_id(),
            name: name.to_owned(),
            scopes,
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.keys.create_key(&key, &hash_secret(&secret)).await?;
        Ok((key, secret))
    }

    /// The active key a bearer secret names (cached for 1 s), or `None`.
    pub async fn authenticate_key(&self, secret: &str) -> Result<Option<ServiceKey>, AppError> {
        Ok(self
            .key_cache
            .find(self.keys.as_ref(), &hash_secret(secret))
            .await?)
    }

    /// Every key, revoked ones included, oldest first (never their secrets).
    pub async fn list_keys(&self) -> Result<Vec<ServiceKey>, AppError> {
        Ok(self.keys.list_keys().await?)
    }

    /// Revokes a key; false if no such active key.
    pub async fn revoke_key(&self, id: Id) -> Result<bool, AppError> {
        let revoked = self.keys.revoke_key(id, self.clock.now()).await?;
        self.key_cache.forget(id);
        Ok(revoked)
    }
}
