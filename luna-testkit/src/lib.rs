//! Test support for Luna (a dev-dependency only, never a normal one of a production crate):
//! an in-memory store, a steppable clock, deterministic ids, proptest strategies for commands
//! and histories, and the port contract suite every store adapter runs.

pub mod clock;
pub mod contract;
pub mod memory;
pub mod pg;
pub mod storm;
pub mod strategies;

pub use clock::{FixedClock, SequentialIds};
pub use memory::MemoryStore;
