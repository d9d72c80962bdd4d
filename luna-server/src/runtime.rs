//! The real clock, random ids, the store chosen by URL, and the hub built from a config.

use std::sync::Arc;

use luna_adapters_postgres::PgStore;
use luna_adapters_sqlite::{Durability, SqliteStore};
use luna_app::Hub;
use luna_core::{Catalog, Energy, Id, Policy, Timestamp};
use luna_ports::{Clock, IdGenerator, Store};

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

/// Random (UUID v4) ids.
pub struct UuidIds;

impl IdGenerator for UuidIds {
    fn next_id(&self) -> Id {
        Id::from_u128(uuid::Uuid::new_v4().as_u128())
    }
}

/// Opens (and migrates) the store named by a URL.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(url, clock, Durability::Full).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::connect(url, None, luna_adapters_postgres::POOL_SIZE, clock).await?,
        ))
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

/// The hub of a config over a store.
pub fn hub(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Hub> {
    let policy = Policy {
        welcome_energy: Energy::new(config.welcome_energy),
        ..Policy::default()
    };
    Ok(Hub::new(
        store,
        Arc::new(SystemClock),
        Arc::new(UuidIds),
        Arc::new(catalog(config)?),
        policy,
    ))
}
