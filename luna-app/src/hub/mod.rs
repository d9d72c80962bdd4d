//! The hub: Luna's use cases over the ports, grouped by area — `energy` (balances, consumes,
//! holds, refunds, grants), `events` (app events, the events page, the narrative), `history`
//! (transactions, analytics), `billing` (credits, clawbacks, subscriptions), `keys` (service
//! keys) and `accounts` (users, to come). Every write goes through the [`Engine`].

mod accounts;
mod billing;
mod energy;
mod events;
mod history;
mod keys;
mod payments;
mod webhooks;

use std::sync::Arc;

use luna_core::{
    Catalog, Context, Energy, Id, Money, PackId, PaymentRef, Policy, PricedAction, Timestamp,
    UserId,
};
use luna_ports::{
    AccountStore, BillingStore, Clock, EventVerifier, IdGenerator, KeyStore, PaymentGateway,
    SecretSource, Store, ThrottleStore,
};

use crate::auth::{Passwords, Tokens};
use crate::engine::{Engine, EngineStats, Reply};
use crate::error::AppError;
use crate::keycache::KeyCache;

pub use accounts::{Client, Profile, TokenPair};
pub use keys::{SERVICE_KEY_PREFIX, hash_secret};
pub use payments::{
    BillingError, BillingSettings, CheckoutStatus, CreditResult, IntentOutcome, ReturnUrls,
    allowed_return,
};
pub use webhooks::{PurchaseHistory, PurchaseLine, ReconcileReport, WebhookOutcome};

/// Password hashes computed at once (each takes ~19 MiB and most of a core for tens of ms);
/// a login flood queues here instead of starving energy calls.
const HASH_SLOTS: usize = 2;

/// The most purchases a history reads for its totals.
const MAX_PURCHASES: usize = 10_000;

/// The largest page a list returns.
pub const MAX_PAGE: usize = 200;
/// The page size when none is asked.
pub const DEFAULT_PAGE: usize = 50;

/// What the hub runs on: the stores and the machine's clock, ids and randomness.
#[derive(Clone)]
pub struct Ports {
    /// Events, projections and idempotency records.
    pub store: Arc<dyn Store>,
    /// Service keys.
    pub keys: Arc<dyn KeyStore>,
    /// Accounts and sessions.
    pub accounts: Arc<dyn AccountStore>,
    /// Attempt counters.
    pub throttle: Arc<dyn ThrottleStore>,
    /// Billing records.
    pub billing: Arc<dyn BillingStore>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Fresh ids.
    pub ids: Arc<dyn IdGenerator>,
    /// Random secrets.
    pub secrets: Arc<dyn SecretSource>,
}

/// The use cases.
pub struct Hub {
    engine: Engine,
    store: Arc<dyn Store>,
    keys: Arc<dyn KeyStore>,
    key_cache: KeyCache,
    accounts: Arc<dyn AccountStore>,
    throttle: Arc<dyn ThrottleStore>,
    passwords: Passwords,
    tokens: std::sync::OnceLock<Tokens>,
    billing: Arc<dyn BillingStore>,
    gateway: Option<Arc<dyn PaymentGateway>>,
    verifier: Option<Arc<dyn EventVerifier>>,
    billing_settings: BillingSettings,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    secrets: Arc<dyn SecretSource>,
    catalog: Arc<Catalog>,
    policy: Policy,
}

/// A consume to perform.
#[derive(Debug, Clone)]
pub struct ConsumeRequest {
    /// The user.
    pub user: UserId,
    /// The action name (checked against the grid).
    pub action: String,
    /// Its context.
    pub context: Option<Context>,
}

/// A hold to take.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// The user.
    pub user: UserId,
    /// The action name.
    pub action: String,
    /// TTL in seconds (checked by `luna_core::input::hold_ttl`).
    pub ttl_seconds: Option<u32>,
    /// Its context.
    pub context: Option<Context>,
}

/// A refund to perform.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// The user.
    pub user: UserId,
    /// The consume to refund.
    pub transaction_id: Id,
    /// Energy (default all).
    pub amount: Option<Energy>,
    /// Why.
    pub reason: String,
    /// Whether the user asks (refund policy applies).
    pub by_user: bool,
}

/// A succeeded payment to credit.
#[derive(Debug, Clone)]
pub struct CreditRequest {
    /// The user.
    pub user: UserId,
    /// The pack.
    pub pack: PackId,
    /// The payment.
    pub payment: PaymentRef,
    /// What was paid.
    pub paid: Money,
    /// What the provider reversed already (clawed back in the same append).
    pub reversal: Option<luna_core::ClawbackCause>,
    /// The provider event being applied, if any (marked processed with the append).
    pub processed: Option<String>,
}

impl Hub {
    /// Builds a hub.
    pub fn new(ports: Ports, catalog: Arc<Catalog>, policy: Policy) -> Hub {
        Hub {
            engine: Engine::new(
                ports.store.clone(),
                ports.billing.clone(),
                ports.clock.clone(),
                ports.ids.clone(),
                catalog.clone(),
                policy.clone(),
            ),
            store: ports.store,
            keys: ports.keys,
            key_cache: KeyCache::default(),
            accounts: ports.accounts,
            throttle: ports.throttle,
            passwords: Passwords::new(HASH_SLOTS, {
                let mut salt = [0u8; 16];
                salt.copy_from_slice(&ports.secrets.secret()[..16]);
                salt
            }),
            tokens: std::sync::OnceLock::new(),
            billing: ports.billing,
            gateway: None,
            verifier: None,
            billing_settings: BillingSettings::default(),
            clock: ports.clock,
            ids: ports.ids,
            secrets: ports.secrets,
            catalog,
            policy,
        }
    }

    /// Configures billing: its settings, the payment provider (`None`: no secret key, billing
    /// writes answer 503) and the notification verifier (`None`: no signing secret, webhooks
    /// answer 503).
    #[must_use]
    pub fn with_billing(
        mut self,
        settings: BillingSettings,
        gateway: Option<Arc<dyn PaymentGateway>>,
        verifier: Option<Arc<dyn EventVerifier>>,
    ) -> Hub {
        self.billing_settings = settings;
        self.gateway = gateway;
        self.verifier = verifier;
        self
    }

    /// Whether billing is configured (a provider key is set).
    pub fn billing_configured(&self) -> bool {
        self.gateway.is_some()
    }

    /// Whether Luna Unlimited can be bought here (a provider key, its price, and a
    /// subscription in the catalogue).
    pub fn unlimited_available(&self) -> bool {
        self.gateway.is_some()
            && self.billing_settings.price_unlimited.is_some()
            && self
                .catalog
                .packs
                .packs()
                .iter()
                .any(luna_core::Pack::is_subscription)
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        self.engine.stats()
    }

    /// The command loop (for adapters that keep an answer under an idempotency key).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    fn price(&self, action: &str) -> Result<PricedAction, AppError> {
        self.catalog
            .grid
            .price(action)
            .map_err(AppError::UnknownAction)
    }
}

/// The outcome of a command run without an idempotency key (it cannot be a replay).
fn unwrap_fresh<T>(r: Reply<T>) -> T {
    match r {
        Reply::Fresh(t) => t,
        // Only commands run without an idempotency key or a provider event come here.
        Reply::Replayed(_) | Reply::Duplicate => {
            unreachable!("no idempotency key and no provider event: no replay")
        }
    }
}
