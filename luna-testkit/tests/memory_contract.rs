//! The port contract suite on the in-memory store.

use std::sync::Arc;

use luna_testkit::{FixedClock, MemoryStore};

#[allow(
    clippy::unused_async,
    reason = "the contract macro awaits every store factory"
)]
async fn memory() -> Option<MemoryStore> {
    Some(MemoryStore::new(Arc::new(FixedClock::default_start())))
}

luna_testkit::store_contract_tests!(memory);
