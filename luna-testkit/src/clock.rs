//! A steppable clock and deterministic ids.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use luna_core::{Id, Span, Timestamp};
use luna_ports::{Clock, IdGenerator, SecretSource};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock at `t`.
    pub fn at(t: Timestamp) -> Self {
        FixedClock(AtomicI64::new(t.millis()))
    }

    /// 2026-01-01T00:00:00Z.
    pub fn default_start() -> Self {
        FixedClock::at(Timestamp::from_secs(1_767_225_600))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Span) {
        self.0.fetch_add(by.millis(), Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.millis(), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Ids 1, 2, 3… with a fixed prefix, so they are deterministic and still unique per generator.
#[derive(Debug)]
pub struct SequentialIds {
    prefix: u64,
    next: AtomicU64,
}

impl SequentialIds {
    /// A generator whose ids start with `prefix` in their high 64 bits.
    pub fn new(prefix: u64) -> Self {
        SequentialIds {
            prefix,
            next: AtomicU64::new(1),
        }
    }
}

impl Default for SequentialIds {
    fn default() -> Self {
        SequentialIds::new(0x1a7a)
    }
}

impl IdGenerator for SequentialIds {
    fn next_id(&self) -> Id {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Id::from_u128((u128::from(self.prefix) << 64) | u128::from(n))
    }
}

/// Deterministic "secrets": the next id's bytes, twice (tests only; never random).
impl SecretSource for SequentialIds {
    fn secret(&self) -> [u8; 32] {
        let a = self.next_id().as_u128().to_be_bytes();
        let b = self.next_id().as_u128().to_be_bytes();
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&a);
        out[16..].copy_from_slice(&b);
        out
    }
}
