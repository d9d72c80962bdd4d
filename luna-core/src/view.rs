//! Read views of the summary: the check answer and the can-perform answer.

use crate::catalog::PricedAction;
use crate::decide::{Env, shortfall};
use crate::policy::{BASIC_ACTION_ENERGY, TANK_SIZE};
use crate::units::{Energy, PackId, Timestamp};
use crate::wallet::{Summary, Wallet};

/// `"free"` or `"luna_unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionType {
    /// No active Unlimited plan.
    Free,
    /// Luna Unlimited is active.
    LunaUnlimited,
}

impl SubscriptionType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionType::Free => "free",
            SubscriptionType::LunaUnlimited => "luna_unlimited",
        }
    }

    /// The type at `now`.
    pub fn of(summary: &Summary, now: Timestamp) -> SubscriptionType {
        if summary.is_unlimited(now) {
            SubscriptionType::LunaUnlimited
        } else {
            SubscriptionType::Free
        }
    }
}

/// The answer of a balance check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckView {
    /// The balance.
    pub current_energy: i64,
    /// The tank size (100).
    pub max_energy: i64,
    /// `current × 100 / max`, toward zero (may exceed 100).
    pub percentage: i64,
    /// Balance minus active holds.
    pub available_energy: i64,
    /// Energy on hold.
    pub reserved_energy: u64,
    /// Whether a basic action (5 units) can be performed.
    pub can_perform_basic_action: bool,
    /// Time of the last purchase or grant.
    pub last_recharge: Option<Timestamp>,
    /// Gross energy consumed.
    pub total_consumed: u64,
    /// Pack energy plus bonuses.
    pub total_purchased: u64,
    /// Free or Unlimited.
    pub subscription_type: SubscriptionType,
    /// End of the Unlimited period, when Unlimited.
    pub unlimited_until: Option<Timestamp>,
}

impl CheckView {
    /// The view of a summary at `now`.
    pub fn of(summary: &Summary, now: Timestamp) -> CheckView {
        let current = summary.balance.units();
        let available = summary.available(now);
        let unlimited = summary.unlimited_subscription(now);
        CheckView {
            current_energy: current,
            max_energy: TANK_SIZE,
            percentage: current.saturating_mul(100) / TANK_SIZE,
            available_energy: available,
            reserved_energy: summary.reserved(now),
            can_perform_basic_action: unlimited.is_some() || available >= BASIC_ACTION_ENERGY,
            last_recharge: summary.last_recharge,
            total_consumed: summary.total_consumed,
            total_purchased: summary.total_purchased,
            subscription_type: if unlimited.is_some() {
                SubscriptionType::LunaUnlimited
            } else {
                SubscriptionType::Free
            },
            unlimited_until: unlimited.and_then(|(_, s)| s.current_period_end),
        }
    }

    /// Whether the user is Unlimited.
    pub fn unlimited(&self) -> bool {
        self.subscription_type == SubscriptionType::LunaUnlimited
    }
}

/// The answer of a can-perform question ("cannot" is an answer, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanPerformView {
    /// The action, priced.
    pub action: PricedAction,
    /// Energy the action would take (0 while Unlimited).
    pub energy_required: Energy,
    /// The balance.
    pub current_energy: i64,
    /// Balance minus active holds.
    pub available_energy: i64,
    /// Whether it can be performed now.
    pub can_perform: bool,
    /// `max(0, cost − available)` (0 while Unlimited).
    pub deficit: u64,
    /// Free or Unlimited.
    pub subscription_type: SubscriptionType,
    /// The pack to buy when it cannot.
    pub required_pack: Option<PackId>,
}

impl CanPerformView {
    /// Whether the user is Unlimited.
    pub fn unlimited(&self) -> bool {
        self.subscription_type == SubscriptionType::LunaUnlimited
    }

    /// Answers for `action` against a wallet.
    pub fn of(wallet: &Wallet, action: PricedAction, env: &Env<'_>) -> CanPerformView {
        let s = &wallet.summary;
        let subscription_type = SubscriptionType::of(s, env.now);
        let current = s.balance.units();
        let available = s.available(env.now);
        if subscription_type == SubscriptionType::LunaUnlimited {
            return CanPerformView {
                action,
                energy_required: Energy::ZERO,
                current_energy: current,
                available_energy: available,
                can_perform: true,
                deficit: 0,
                subscription_type,
                required_pack: None,
            };
        }
        let short = shortfall(wallet, action.cost, env);
        CanPerformView {
            energy_required: action.cost,
            current_energy: current,
            available_energy: available,
            can_perform: short.is_none(),
            deficit: short.as_ref().map_or(0, |s| s.deficit),
            subscription_type,
            required_pack: short.and_then(|s| s.required_pack),
            action,
        }
    }
}
