//! The real clock, random ids and secrets, the stores chosen by URL, and the hub built from a
//! config: the composition root (the only place that names concrete adapters).

use std::sync::Arc;

use luna_adapters_postgres::PgStore;
use luna_adapters_sqlite::{Durability, SqliteStore};
use luna_adapters_stripe::{StripeConfig, StripeGateway, StripeWebhooks};
use luna_app::{BillingSettings, Hub, Ports};
use luna_core::{Catalog, Energy, Id, Policy, Timestamp};
use luna_ports::{
    AccountStore, BillingStore, Clock, EventVerifier, IdGenerator, KeyStore, PaymentGateway,
    SecretSource, Store, ThrottleStore,
};

use crate::config::Config;

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

/// Time-ordered ids (UUID v7: 48 bits of Unix milliseconds, a 42-bit counter with a random
/// start each millisecond, 32 random bits). Ordered by time, a new id lands at the end of an
/// index on ids (the events' `event_id`) instead of on a random page: one page fewer written
/// per event (ADR 0012). Ids are not secrets and are partly predictable (secrets come from
/// [`OsSecrets`]); an id tells its creation time.
pub struct UuidIds;

impl IdGenerator for UuidIds {
    fn next_id(&self) -> Id {
        Id::from_u128(uuid::Uuid::now_v7().as_u128())
    }
}

/// 256 bits from the operating system's random source.
pub struct OsSecrets;

impl SecretSource for OsSecrets {
    fn secret(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // No secret is better than a predictable one: a failing OS source stops the request.
        getrandom::fill(&mut out).expect("the operating system's random source failed");
        out
    }
}

/// The stores of one database.
#[derive(Clone)]
pub struct Stores {
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
}

impl Stores {
    fn of<S>(s: Arc<S>) -> Stores
    where
        S: Store + KeyStore + AccountStore + ThrottleStore + BillingStore + 'static,
    {
        Stores {
            store: s.clone(),
            keys: s.clone(),
            accounts: s.clone(),
            throttle: s.clone(),
            billing: s,
        }
    }

    /// The hub's ports over these stores, with the real clock, ids and secrets.
    pub fn ports(&self) -> Ports {
        Ports {
            store: self.store.clone(),
            keys: self.keys.clone(),
            accounts: self.accounts.clone(),
            throttle: self.throttle.clone(),
            billing: self.billing.clone(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidIds),
            secrets: Arc::new(OsSecrets),
        }
    }
}

/// Opens (and migrates) the database named by a URL.
pub async fn open_stores(url: &str) -> anyhow::Result<Stores> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if url.starts_with("sqlite:") {
        Ok(Stores::of(Arc::new(
            SqliteStore::connect(url, clock, Durability::Full).await?,
        )))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Stores::of(Arc::new(
            PgStore::connect(url, None, luna_adapters_postgres::POOL_SIZE, clock).await?,
        )))
    } else {
        anyhow::bail!("LUNA_DATABASE_URL must start with sqlite: or postgres://")
    }
}

/// The catalogue of a config (the built-in one unless a file is named).
pub fn catalog(config: &Config) -> anyhow::Result<Catalog> {
    match &config.catalog {
        Some(path) => crate::catalog::load(path),
        None => Ok(Catalog::builtin()),
    }
}

/// The hub of a config over a database's stores.
pub fn hub(config: &Config, stores: &Stores) -> anyhow::Result<Hub> {
    let policy = Policy {
        welcome_energy: Energy::new(config.welcome_energy),
        ..Policy::default()
    };
    let (settings, gateway, verifier) = billing(config)?;
    Ok(Hub::new(stores.ports(), Arc::new(catalog(config)?), policy)
        .with_billing(settings, gateway, verifier))
}

/// The payment provider of a config: Stripe when a secret key is set, the webhook verifier when
/// a signing secret is; return URLs may point under the public URL or a CORS origin.
#[allow(
    clippy::type_complexity,
    reason = "the three parts Hub::with_billing takes"
)]
pub fn billing(
    config: &Config,
) -> anyhow::Result<(
    BillingSettings,
    Option<Arc<dyn PaymentGateway>>,
    Option<Arc<dyn EventVerifier>>,
)> {
    let stripe = &config.stripe;
    let gateway: Option<Arc<dyn PaymentGateway>> = match &stripe.secret_key {
        Some(key) => Some(Arc::new(
            StripeGateway::new(StripeConfig::new(&stripe.api_base, key.expose()))
                .map_err(|e| anyhow::anyhow!("Stripe client: {e}"))?,
        )),
        None => None,
    };
    let verifier: Option<Arc<dyn EventVerifier>> = stripe
        .webhook_secret
        .as_ref()
        .map(|s| Arc::new(StripeWebhooks::new(s.expose())) as Arc<dyn EventVerifier>);
    let mut allowed_origins = vec![config.public_url.clone()];
    allowed_origins.extend(config.cors_origins.iter().cloned());
    let settings = BillingSettings {
        price_unlimited: stripe.price_unlimited.clone(),
        webhook_secret_set: stripe.webhook_secret.is_some(),
        success_url: stripe.success_url.clone(),
        cancel_url: stripe.cancel_url.clone(),
        allowed_origins,
    };
    Ok((settings, gateway, verifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_random_uuids() {
        let ids: Vec<u128> = (0..1000).map(|_| UuidIds.next_id().as_u128()).collect();
        // Each id is a UUID v7 (RFC 9562 variant) whose first 48 bits are the Unix time in ms.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        for id in &ids {
            let u = uuid::Uuid::from_u128(*id);
            assert_eq!(u.get_version_num(), 7);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
            let ms = id >> 80;
            // A second of slack: the wall clock may step back after an earlier id was made.
            assert!(
                ms <= now_ms + 1_000 && now_ms < ms + 60_000,
                "{ms} vs {now_ms}"
            );
        }
        // Ordered: a new id goes at the end of an index on ids (ADR 0012).
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
        // The low bits stay random (the engine's backoff jitter takes them): not a counter.
        let low: std::collections::HashSet<u128> = ids.iter().map(|id| id & 0xffff).collect();
        assert!(
            low.len() > 900,
            "{} distinct low halves of 1 000",
            low.len()
        );
        assert!(
            ids.windows(2).filter(|w| w[1] - w[0] == 1).count() < 10,
            "consecutive ids are not one apart"
        );
    }
}
