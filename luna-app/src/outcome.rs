//! What each use case answers.

use luna_core::history::{Analytics, TxKind, TxReason};
use luna_core::view::{CanPerformView, CheckView, SubscriptionType};
use luna_core::{
    ActionName, Balance, Currency, Energy, Event, Id, PackId, RawJson, Timestamp, UserId,
};

/// The answer of a balance check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The user.
    pub user: UserId,
    /// The view.
    pub view: CheckView,
    /// The stream version after the check (a check may open the account).
    pub stream_version: u64,
}

/// The answer of a can-perform question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanPerformOutcome {
    /// The user.
    pub user: UserId,
    /// The view.
    pub view: CanPerformView,
}

/// A consume (direct or by commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOutcome {
    /// The user.
    pub user: UserId,
    /// The transaction id.
    pub transaction_id: Id,
    /// The consume event's id.
    pub event_id: Id,
    /// The action.
    pub action: ActionName,
    /// Energy taken (0 while Unlimited).
    pub energy_consumed: Energy,
    /// The grid cost.
    pub notional_cost: Energy,
    /// The balance after.
    pub energy_remaining: i64,
    /// Whether the consume was Unlimited.
    pub unlimited: bool,
    /// Free or Unlimited now.
    pub subscription_type: SubscriptionType,
    /// When it happened.
    pub timestamp: Timestamp,
}

/// A hold taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveOutcome {
    /// The user.
    pub user: UserId,
    /// The reservation id.
    pub reservation_id: Id,
    /// The action.
    pub action: ActionName,
    /// Energy held.
    pub energy_reserved: Energy,
    /// Available energy after the hold.
    pub available_energy: i64,
    /// When it stops counting.
    pub expires_at: Timestamp,
}

/// A hold released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOutcome {
    /// The user.
    pub user: UserId,
    /// The reservation id.
    pub reservation_id: Id,
    /// Energy given back (0 after expiry).
    pub energy_released: Energy,
    /// Available energy now.
    pub available_energy: i64,
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The user.
    pub user: UserId,
    /// The refund's transaction id.
    pub transaction_id: Id,
    /// The refunded consume.
    pub refunded_transaction_id: Id,
    /// Energy given back.
    pub energy_refunded: Energy,
    /// The balance after.
    pub new_energy_balance: i64,
    /// Why.
    pub reason: String,
}

/// A grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantOutcome {
    /// The user.
    pub user: UserId,
    /// The transaction id.
    pub transaction_id: Id,
    /// Energy granted.
    pub energy_granted: Energy,
    /// The balance after.
    pub new_energy_balance: i64,
}

/// Whether a payment was credited now or before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditStatus {
    /// Credited by this request.
    Credited,
    /// Credited earlier; the figures are the original credit's.
    AlreadyCredited,
}

impl CreditStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CreditStatus::Credited => "credited",
            CreditStatus::AlreadyCredited => "already_credited",
        }
    }
}

/// A credited purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOutcome {
    /// The user.
    pub user: UserId,
    /// Now or before.
    pub status: CreditStatus,
    /// The purchase transaction id.
    pub purchase_id: Id,
    /// The purchase event id.
    pub event_id: Id,
    /// The pack.
    pub pack: PackId,
    /// Paid energy.
    pub energy_added: Energy,
    /// Bonus energy.
    pub bonus_energy: Energy,
    /// The balance now.
    pub current_energy: i64,
    /// Amount paid.
    pub amount_paid_cents: u64,
    /// Its currency.
    pub currency: Currency,
}

/// A clawback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClawbackOutcome {
    /// The user.
    pub user: UserId,
    /// Energy removed by this request (pack + bonus).
    pub energy_revoked: Energy,
    /// The balance after.
    pub new_energy_balance: i64,
}

/// A recorded app event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEventOutcome {
    /// The user.
    pub user: UserId,
    /// Its id.
    pub event_id: Id,
    /// Its stream version.
    pub stream_version: u64,
    /// Its global position.
    pub position: u64,
    /// When recorded.
    pub recorded_at: Timestamp,
}

/// One history row, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxLine {
    /// Position of its event (the paging cursor).
    pub position: u64,
    /// The transaction id.
    pub transaction_id: Id,
    /// The kind.
    pub kind: TxKind,
    /// Non-negative amount.
    pub amount: Energy,
    /// Why.
    pub reason: TxReason,
    /// The consume's app source.
    pub app_source: Option<String>,
    /// The consume's action.
    pub feature_used: Option<String>,
    /// Balance before.
    pub energy_before: Balance,
    /// Balance after.
    pub energy_after: Balance,
    /// When.
    pub created_at: Timestamp,
    /// The consume's context.
    pub context: Option<RawJson>,
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsPage {
    /// The user.
    pub user: UserId,
    /// The rows.
    pub lines: Vec<TxLine>,
    /// Every row of the user.
    pub total_count: u64,
    /// The cursor of the next (older) page.
    pub next_before: Option<u64>,
}

/// Analytics of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsOutcome {
    /// The user.
    pub user: UserId,
    /// The figures.
    pub analytics: Analytics,
}

/// Everything the narrative fold needs (the fold borrows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarrativeInput {
    /// The user.
    pub user: UserId,
    /// Every event, oldest first.
    pub events: Vec<Event>,
    /// The position of the newest event.
    pub last_position: Option<u64>,
    /// The request time.
    pub now: Timestamp,
}

impl NarrativeInput {
    /// The Capital Narratif.
    pub fn narrative(&self) -> luna_core::narrative::Narrative<'_> {
        luna_core::narrative::narrative(&self.events, self.now)
    }
}
