//! Test support for Luna (a dev-dependency only, never a normal one of a production crate):
//! an in-memory store, a steppable clock, deterministic ids, proptest strategies for commands
//! and histories, the port contract suite every store adapter runs, and a fake Stripe.

pub mod clock;
pub mod contract;
pub mod memory;
pub mod pg;
pub mod storm;
pub mod strategies;
pub mod stripe;

pub use clock::{FixedClock, SequentialIds};
pub use memory::MemoryStore;

/// The hub's ports over one store that holds events, idempotency records and keys, with the
/// given clock and deterministic ids and secrets.
pub fn ports<S>(
    store: std::sync::Arc<S>,
    clock: std::sync::Arc<dyn luna_ports::Clock>,
    ids: std::sync::Arc<SequentialIds>,
) -> luna_app::Ports
where
    S: luna_ports::Store
        + luna_ports::KeyStore
        + luna_ports::AccountStore
        + luna_ports::ThrottleStore
        + luna_ports::BillingStore
        + 'static,
{
    luna_app::Ports {
        store: store.clone(),
        keys: store.clone(),
        accounts: store.clone(),
        throttle: store.clone(),
        billing: store,
        clock,
        ids: ids.clone(),
        secrets: ids,
    }
}
