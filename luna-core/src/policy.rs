//! Operator-tunable rules: welcome energy, refund policy, hold TTLs.

use crate::units::{ActionName, Energy, Span};

/// The default welcome energy of a new account.
pub const DEFAULT_WELCOME_ENERGY: u32 = 85;
/// The default refund window.
pub const DEFAULT_REFUND_WINDOW_DAYS: u32 = 7;
/// The default hold TTL in seconds.
pub const DEFAULT_HOLD_TTL_SECONDS: u32 = 300;
/// The longest hold TTL in seconds.
pub const MAX_HOLD_TTL_SECONDS: u32 = 3600;
/// The energy a "basic action" needs (`can_perform_basic_action`).
pub const BASIC_ACTION_ENERGY: i64 = 5;
/// The tank size reported as `max_energy` (100 units = 100 %).
pub const TANK_SIZE: i64 = 100;

/// The largest administrative grant.
pub const MAX_GRANT: u32 = 1_000_000;
/// The longest free-text reason (refunds, grants), in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A client JSON object the hub keeps verbatim, and its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonPart {
    /// An action's `context` (8 KiB).
    Context,
    /// An app event's `event_data` (16 KiB).
    EventData,
    /// An app event's `metadata` (16 KiB).
    Metadata,
}

impl JsonPart {
    /// The largest serialised size.
    pub fn max_bytes(self) -> usize {
        match self {
            JsonPart::Context => 8 * 1024,
            JsonPart::EventData | JsonPart::Metadata => 16 * 1024,
        }
    }
}

/// The shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password, in characters (Argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// How many of their own consumes a user may refund per rolling window.
pub const USER_REFUND_QUOTA: usize = 3;
/// The rolling window of the user refund quota, in days.
pub const USER_REFUND_QUOTA_DAYS: i64 = 30;

/// The rules an operator may tune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Energy of a new account.
    pub welcome_energy: Energy,
    /// How long after a consume it may be refunded.
    pub refund_window_days: u32,
    /// Actions a user may not refund themselves.
    pub ineligible_refund_actions: Vec<ActionName>,
}

impl Policy {
    /// The refund window as a span.
    pub fn refund_window(&self) -> Span {
        Span::days(i64::from(self.refund_window_days))
    }

    /// Whether a user may refund this action themselves.
    pub fn user_may_refund(&self, action: &ActionName) -> bool {
        !self.ineligible_refund_actions.contains(action)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            welcome_energy: Energy::new(DEFAULT_WELCOME_ENERGY),
            refund_window_days: DEFAULT_REFUND_WINDOW_DAYS,
            ineligible_refund_actions: ["conseil_rapide", "correction_ponctuelle"]
                .iter()
                .map(|a| ActionName::parse(a).expect("valid"))
                .collect(),
        }
    }
}
