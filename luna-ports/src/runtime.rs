//! What the use cases take from the machine: the time, fresh ids and random secrets (core
//! reads none of them).

use luna_core::{Id, Timestamp};

/// The time, from outside (core never reads a clock).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// Fresh ids.
pub trait IdGenerator: Send + Sync {
    /// A new unique id.
    fn next_id(&self) -> Id;
}

/// Random secrets (service keys, refresh tokens): 256 bits from a cryptographic source.
pub trait SecretSource: Send + Sync {
    /// 32 random bytes.
    fn secret(&self) -> [u8; 32];
}
