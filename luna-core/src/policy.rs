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
