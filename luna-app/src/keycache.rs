//! A short-lived cache of service-key lookups, so a request costs no extra query per call.
//!
//! Only found (active) keys are cached, for [`KEY_CACHE_TTL`]: a key revoked on another
//! instance stops working there within that time (spec §6 allows it); an unknown token always
//! reaches the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use luna_ports::{KeyStore, ServiceKey, StoreError};

/// How long a found service key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most service keys cached at once.
pub const KEY_CACHE_MAX: usize = 10_000;

/// Service keys by secret hash, with the time they were read.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, (ServiceKey, Instant)>>,
}

impl KeyCache {
    /// The active key with this secret hash, from the cache or the store.
    pub(crate) async fn find(
        &self,
        store: &dyn KeyStore,
        hash: &str,
    ) -> Result<Option<ServiceKey>, StoreError> {
        if let Some((key, at)) = self.lock().get(hash) {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(Some(key.clone()));
            }
        }
        let found = store.find_key(hash).await?;
        let mut entries = self.lock();
        match &found {
            Some(key) => {
                if entries.len() >= KEY_CACHE_MAX {
                    entries.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
                }
                if entries.len() < KEY_CACHE_MAX {
                    entries.insert(hash.to_owned(), (key.clone(), Instant::now()));
                }
            }
            None => {
                entries.remove(hash);
            }
        }
        Ok(found)
    }

    /// Forgets a key (revoked by this instance: effective here at once).
    pub(crate) fn forget(&self, id: luna_core::Id) {
        self.lock().retain(|_, (k, _)| k.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ServiceKey, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
