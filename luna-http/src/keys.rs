//! A short-lived cache of service-key lookups, so a request costs no extra query per call.
//!
//! Only found (active) keys are cached, for `KEY_CACHE_TTL`: a key revoked with `luna keys
//! revoke` (another process) stops working within that time; an unknown token always reaches
//! the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use luna_ports::{ServiceKey, Store, StoreError};

use crate::limits::{KEY_CACHE_MAX, KEY_CACHE_TTL};

/// Service keys by secret hash, with the time they were read.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (ServiceKey, Instant)>>,
}

impl KeyCache {
    /// The active key with this secret hash, from the cache or the store.
    pub async fn find(
        &self,
        store: &dyn Store,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ServiceKey, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
