//! The cache of projection rows this process wrote or read (ADR 0003).

use luna_core::UserId;

use crate::{PROJECTION_CACHE_MAX, PROJECTION_CACHE_TTL};

/// Projection rows this process wrote or read, so a decision costs no read when the row is warm.
///
/// Correctness never depends on it: an append still carries the expected version and the
/// database refuses a stale one; a failed append drops the row. Rows are trusted for reads for
/// `PROJECTION_CACHE_TTL`, so a write by another process on the same file is seen by reads
/// within that time, and by writes at once (their conflict drops the row).
#[derive(Default)]
pub(crate) struct ProjectionCache(
    std::sync::Mutex<
        std::collections::HashMap<UserId, (u64, luna_core::Summary, std::time::Instant)>,
    >,
);

impl ProjectionCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<UserId, (u64, luna_core::Summary, std::time::Instant)>,
    > {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, stream: &UserId) -> Option<(u64, luna_core::Summary)> {
        let map = self.lock();
        let (version, summary, at) = map.get(stream)?;
        (at.elapsed() < PROJECTION_CACHE_TTL).then(|| (*version, summary.clone()))
    }

    /// Keeps the newest version seen (a read racing a write must not bring back an older row).
    pub(crate) fn put(&self, stream: &UserId, version: u64, summary: &luna_core::Summary) {
        let mut map = self.lock();
        if map.len() >= PROJECTION_CACHE_MAX {
            map.clear();
        }
        match map.get(stream) {
            Some((v, _, at)) if *v > version && at.elapsed() < PROJECTION_CACHE_TTL => {}
            _ => {
                map.insert(
                    stream.clone(),
                    (version, summary.clone(), std::time::Instant::now()),
                );
            }
        }
    }

    pub(crate) fn drop_row(&self, stream: &UserId) {
        self.lock().remove(stream);
    }
}
