//! Service keys (satellites' credentials) and their scopes. Only the hash of a key's secret is
//! stored.

use async_trait::async_trait;
use luna_core::{Id, Timestamp};

use crate::error::StoreError;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// check, can-perform, transactions, analytics.
    EnergyRead,
    /// consume, reserve, commit, release, refund.
    EnergyWrite,
    /// read events and the narrative.
    EventsRead,
    /// post app events.
    EventsWrite,
    /// billing routes and purchase.
    BillingWrite,
    /// everything, including grants and metrics.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::EnergyRead,
        Scope::EnergyWrite,
        Scope::EventsRead,
        Scope::EventsWrite,
        Scope::BillingWrite,
        Scope::Admin,
    ];

    /// The wire name (`energy:read`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EnergyRead => "energy:read",
            Scope::EnergyWrite => "energy:write",
            Scope::EventsRead => "events:read",
            Scope::EventsWrite => "events:write",
            Scope::BillingWrite => "billing:write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A service key as stored (the secret itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// Its id.
    pub id: Id,
    /// A label.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When created.
    pub created_at: Timestamp,
    /// When revoked, if revoked.
    pub revoked_at: Option<Timestamp>,
}

impl ServiceKey {
    /// Whether the key grants `scope` (`admin` grants every scope).
    pub fn grants(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// Service keys, found by the hash of their secret.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key under the hash of its secret.
    async fn create_key(&self, key: &ServiceKey, secret_hash: &str) -> Result<(), StoreError>;

    /// The active (not revoked) key with this secret hash.
    async fn find_key(&self, secret_hash: &str) -> Result<Option<ServiceKey>, StoreError>;

    /// Every key, revoked ones included, oldest first.
    async fn list_keys(&self) -> Result<Vec<ServiceKey>, StoreError>;

    /// Revokes a key; false if no such active key.
    async fn revoke_key(&self, id: Id, at: Timestamp) -> Result<bool, StoreError>;
}
