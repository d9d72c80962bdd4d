//! The state of a user's energy stream and `evolve`.
//!
//! State is split in two so that the hot path never reads a whole history:
//! - [`Summary`]: small and bounded (balance, open holds, totals, subscriptions). Stores keep it
//!   as a projection written in the same transaction as the append.
//! - entities ([`TxEntity`], [`PurchaseEntity`]): what one transaction or one payment went
//!   through. A decision about a refund, a commit or a credit folds only that entity's events.
//!
//! A full fold of every event gives both; `Wallet::restore` rebuilds the same state from a
//! stored summary plus the events of the entities a command names.

use std::collections::BTreeMap;

use crate::event::{
    EnergyConsumed, EnergyReserved, Event, EventKind, SubscriptionChanged, SubscriptionStatus,
};
use crate::policy::USER_REFUND_QUOTA;
use crate::units::{Balance, Energy, Id, Money, PackId, PaymentRef, SubscriptionRef, Timestamp};

/// A hold still counted against available energy (until `expires_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenHold {
    /// Energy held.
    pub amount: Energy,
    /// First instant it no longer counts.
    pub expires_at: Timestamp,
}

/// A subscription as last reported by the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Status.
    pub status: SubscriptionStatus,
    /// End of the current period.
    pub current_period_end: Option<Timestamp>,
    /// Whether it ends at the period end.
    pub cancel_at_period_end: bool,
    /// Whether it includes the Unlimited price.
    pub unlimited_plan: bool,
    /// Provider time of the last applied change (older changes are ignored).
    pub provider_created: Timestamp,
    /// When the hub applied it (orders subscriptions for display).
    pub applied_at: Timestamp,
}

impl SubscriptionState {
    /// Whether the subscription makes the user Unlimited at `now`.
    pub fn grants_unlimited(&self, now: Timestamp) -> bool {
        self.unlimited_plan
            && self.status.is_live()
            && self.current_period_end.is_some_and(|end| now < end)
    }
}

/// The bounded projection of a stream: everything the hot path decides on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// When the account opened (`None`: not opened yet).
    pub opened_at: Option<Timestamp>,
    /// The balance (negative only after a clawback).
    pub balance: Balance,
    /// Holds not yet resolved and not expired as of the last event.
    pub holds: BTreeMap<Id, OpenHold>,
    /// Whether a one-off pack was ever credited (the first-purchase bonus is gone).
    pub has_purchased: bool,
    /// Gross energy consumed (refunds not deducted).
    pub total_consumed: u64,
    /// Pack energy plus bonuses credited.
    pub total_purchased: u64,
    /// Energy refunded.
    pub total_refunded: u64,
    /// Time of the last purchase or grant.
    pub last_recharge: Option<Timestamp>,
    /// Subscriptions by id.
    pub subscriptions: BTreeMap<SubscriptionRef, SubscriptionState>,
    /// When the user refunded their own consumes, newest last (at most the quota's size: only
    /// the oldest of those decides whether the quota is used up).
    pub user_refunds: Vec<Timestamp>,
}

impl Summary {
    /// Whether the account has opened.
    pub fn is_open(&self) -> bool {
        self.opened_at.is_some()
    }

    /// Energy on hold at `now`.
    pub fn reserved(&self, now: Timestamp) -> u64 {
        self.holds
            .values()
            .filter(|h| now < h.expires_at)
            .map(|h| u64::from(h.amount.units()))
            .sum()
    }

    /// Balance minus the holds active at `now`.
    pub fn available(&self, now: Timestamp) -> i64 {
        // Holds are bounded by the balance they were taken from, so this cannot overflow in
        // practice; saturate rather than panic on a corrupted projection.
        self.balance
            .units()
            .saturating_sub(i64::try_from(self.reserved(now)).unwrap_or(i64::MAX))
    }

    /// The subscription that makes the user Unlimited at `now`, if any.
    pub fn unlimited_subscription(
        &self,
        now: Timestamp,
    ) -> Option<(&SubscriptionRef, &SubscriptionState)> {
        self.subscriptions
            .iter()
            .filter(|(_, s)| s.grants_unlimited(now))
            .max_by_key(|(_, s)| s.current_period_end)
    }

    /// Whether the user is Unlimited at `now`.
    pub fn is_unlimited(&self, now: Timestamp) -> bool {
        self.unlimited_subscription(now).is_some()
    }

    /// The most recently applied subscription (for display).
    pub fn latest_subscription(&self) -> Option<(&SubscriptionRef, &SubscriptionState)> {
        self.subscriptions
            .iter()
            .max_by_key(|(_, s)| (s.applied_at, s.provider_created))
    }

    /// Applies one event. Arithmetic that only a corrupted history could overflow (decisions
    /// refuse overflow before emitting) asserts in debug builds and saturates in release.
    pub fn apply(&mut self, event: &Event) {
        let at = event.occurred_at;
        if !self.holds.is_empty() {
            self.holds.retain(|_, h| at < h.expires_at);
        }
        match &event.kind {
            EventKind::AccountOpened(e) => {
                if self.opened_at.is_none() {
                    self.opened_at = Some(at);
                }
                self.balance = credit(self.balance, e.welcome);
            }
            EventKind::EnergyConsumed(e) => {
                self.balance = debit(self.balance, e.cost);
                self.total_consumed = add_total(self.total_consumed, e.cost);
                if e.from_reservation {
                    self.holds.remove(&e.tx);
                }
            }
            EventKind::EnergyReserved(e) => {
                if !e.amount.is_zero() && at < e.expires_at {
                    self.holds.insert(
                        e.tx,
                        OpenHold {
                            amount: e.amount,
                            expires_at: e.expires_at,
                        },
                    );
                }
            }
            EventKind::ReservationReleased(e) => {
                self.holds.remove(&e.tx);
            }
            EventKind::EnergyRefunded(e) => {
                self.balance = credit(self.balance, e.amount);
                self.total_refunded = add_total(self.total_refunded, e.amount);
                if e.by_user {
                    self.user_refunds.push(at);
                    let excess = self.user_refunds.len().saturating_sub(USER_REFUND_QUOTA);
                    self.user_refunds.drain(..excess);
                }
            }
            EventKind::PackPurchased(e) => {
                self.balance = credit(self.balance, e.energy);
                self.total_purchased = add_total(self.total_purchased, e.energy);
                self.has_purchased = true;
                self.last_recharge = Some(at);
            }
            EventKind::BonusGranted(e) => {
                self.balance = credit(self.balance, e.energy);
                self.total_purchased = add_total(self.total_purchased, e.energy);
            }
            EventKind::EnergyGranted(e) => {
                self.balance = credit(self.balance, e.amount);
                self.last_recharge = Some(at);
            }
            EventKind::PackRevoked(e) | EventKind::BonusRevoked(e) => {
                self.balance = debit(self.balance, e.energy);
            }
            EventKind::SubscriptionChanged(e) => self.apply_subscription(e, at),
            EventKind::AppEvent(_) | EventKind::Audit(_) => {}
        }
    }

    fn apply_subscription(&mut self, e: &SubscriptionChanged, at: Timestamp) {
        self.subscriptions.insert(
            e.subscription.clone(),
            SubscriptionState {
                status: e.status,
                current_period_end: e.current_period_end,
                cancel_at_period_end: e.cancel_at_period_end,
                unlimited_plan: e.unlimited_plan,
                provider_created: e.provider_created,
                applied_at: at,
            },
        );
    }
}

// Decisions refuse a credit that would overflow before emitting it, so only a corrupted
// history reaches the saturation below: loud in debug builds, total in release.
fn credit(b: Balance, e: Energy) -> Balance {
    let credited = b.credit(e);
    debug_assert!(credited.is_some(), "balance overflow: {b} + {e}");
    credited.unwrap_or(Balance::new(i64::MAX))
}

fn debit(b: Balance, e: Energy) -> Balance {
    let debited = b.debit(e);
    debug_assert!(debited.is_some(), "balance underflow: {b} - {e}");
    debited.unwrap_or(Balance::new(i64::MIN))
}

fn add_energy(a: Energy, b: Energy) -> Energy {
    let sum = a.checked_add(b);
    debug_assert!(sum.is_some(), "energy overflow: {a} + {b}");
    sum.unwrap_or(a)
}

fn add_total(total: u64, e: Energy) -> u64 {
    let sum = total.checked_add(u64::from(e.units()));
    debug_assert!(sum.is_some(), "total overflow: {total} + {e}");
    sum.unwrap_or(u64::MAX)
}

/// What happened to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// Not resolved (it may still have expired: compare `expires_at` with now).
    Open,
    /// Released, giving back `amount`.
    Released {
        /// Energy given back.
        amount: Energy,
    },
    /// Committed into the consume of the same id.
    Committed,
}

/// A hold as reserved, and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    /// The reservation as recorded.
    pub reserved: EnergyReserved,
    /// When it was taken.
    pub reserved_at: Timestamp,
    /// Its fate.
    pub state: HoldState,
}

/// A consume as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeRecord {
    /// The consume.
    pub consumed: EnergyConsumed,
    /// When it happened.
    pub at: Timestamp,
}

/// A refund of a consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// The refund's own transaction id.
    pub tx: Id,
    /// Energy given back.
    pub amount: Energy,
    /// When.
    pub at: Timestamp,
}

/// Everything that happened under one transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxEntity {
    /// The hold, if it was reserved first.
    pub hold: Option<HoldRecord>,
    /// The consume, once consumed or committed.
    pub consume: Option<ConsumeRecord>,
    /// The refund, if refunded.
    pub refund: Option<RefundRecord>,
}

/// A credited purchase and what was revoked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseEntity {
    /// The purchase row's id.
    pub tx: Id,
    /// The pack bought.
    pub pack: PackId,
    /// Paid energy credited.
    pub energy: Energy,
    /// Bonus credited with it (zero if none).
    pub bonus: Energy,
    /// The bonus row's id, if a bonus was granted.
    pub bonus_tx: Option<Id>,
    /// Amount paid.
    pub price: Money,
    /// When credited.
    pub at: Timestamp,
    /// Paid energy revoked so far.
    pub pack_revoked: Energy,
    /// Bonus revoked so far.
    pub bonus_revoked: Energy,
}

impl PurchaseEntity {
    /// Whether any of it was revoked.
    pub fn is_revoked(&self) -> bool {
        !self.pack_revoked.is_zero() || !self.bonus_revoked.is_zero()
    }
}

/// A user's state: the summary plus the entities loaded for a decision (all of them after a
/// full fold).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wallet {
    /// The bounded projection.
    pub summary: Summary,
    /// Consumes, holds and refunds by transaction id.
    pub transactions: BTreeMap<Id, TxEntity>,
    /// Purchases by payment reference.
    pub purchases: BTreeMap<PaymentRef, PurchaseEntity>,
}

impl Wallet {
    /// Folds a whole stream, oldest first.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Wallet {
        events.into_iter().fold(Wallet::default(), evolve)
    }

    /// Rebuilds a wallet from a stored summary and the events of the entities a decision needs
    /// (oldest first). The summary already counts those events; only the entities are folded.
    pub fn restore<'a>(
        summary: Summary,
        entity_events: impl IntoIterator<Item = &'a Event>,
    ) -> Wallet {
        let mut w = Wallet {
            summary,
            ..Wallet::default()
        };
        for e in entity_events {
            w.apply_entities(e);
        }
        w
    }

    /// Applies one event to the summary and the entities.
    pub fn apply(&mut self, event: &Event) {
        self.summary.apply(event);
        self.apply_entities(event);
    }

    fn apply_entities(&mut self, event: &Event) {
        match &event.kind {
            EventKind::EnergyReserved(_)
            | EventKind::ReservationReleased(_)
            | EventKind::EnergyConsumed(_)
            | EventKind::EnergyRefunded(_) => self.apply_transaction(event),
            EventKind::PackPurchased(_)
            | EventKind::BonusGranted(_)
            | EventKind::PackRevoked(_)
            | EventKind::BonusRevoked(_) => self.apply_purchase(event),
            EventKind::AccountOpened(_)
            | EventKind::EnergyGranted(_)
            | EventKind::SubscriptionChanged(_)
            | EventKind::AppEvent(_)
            | EventKind::Audit(_) => {}
        }
    }

    /// Holds, consumes and refunds, by transaction id.
    fn apply_transaction(&mut self, event: &Event) {
        let at = event.occurred_at;
        match &event.kind {
            EventKind::EnergyReserved(e) => {
                self.transactions.entry(e.tx).or_default().hold = Some(HoldRecord {
                    reserved: e.clone(),
                    reserved_at: at,
                    state: HoldState::Open,
                });
            }
            EventKind::ReservationReleased(e) => {
                if let Some(h) = self.transactions.entry(e.tx).or_default().hold.as_mut() {
                    h.state = HoldState::Released { amount: e.amount };
                }
            }
            EventKind::EnergyConsumed(e) => {
                let entity = self.transactions.entry(e.tx).or_default();
                if e.from_reservation {
                    if let Some(h) = entity.hold.as_mut() {
                        h.state = HoldState::Committed;
                    }
                }
                entity.consume = Some(ConsumeRecord {
                    consumed: e.clone(),
                    at,
                });
            }
            EventKind::EnergyRefunded(e) => {
                self.transactions.entry(e.refunded_tx).or_default().refund = Some(RefundRecord {
                    tx: e.tx,
                    amount: e.amount,
                    at,
                });
            }
            _ => {}
        }
    }

    /// Purchases, their bonuses and revocations, by payment.
    fn apply_purchase(&mut self, event: &Event) {
        match &event.kind {
            EventKind::PackPurchased(e) => {
                self.purchases.insert(
                    e.payment.clone(),
                    PurchaseEntity {
                        tx: e.tx,
                        pack: e.pack.clone(),
                        energy: e.energy,
                        bonus: Energy::ZERO,
                        bonus_tx: None,
                        price: e.price,
                        at: event.occurred_at,
                        pack_revoked: Energy::ZERO,
                        bonus_revoked: Energy::ZERO,
                    },
                );
            }
            EventKind::BonusGranted(e) => {
                if let Some(p) = self.purchases.get_mut(&e.payment) {
                    p.bonus = add_energy(p.bonus, e.energy);
                    p.bonus_tx = Some(e.tx);
                }
            }
            EventKind::PackRevoked(e) => {
                if let Some(p) = self.purchases.get_mut(&e.payment) {
                    p.pack_revoked = add_energy(p.pack_revoked, e.energy);
                }
            }
            EventKind::BonusRevoked(e) => {
                if let Some(p) = self.purchases.get_mut(&e.payment) {
                    p.bonus_revoked = add_energy(p.bonus_revoked, e.energy);
                }
            }
            _ => {}
        }
    }

    /// The hold of a reservation, if known.
    pub fn hold(&self, tx: Id) -> Option<&HoldRecord> {
        self.transactions.get(&tx).and_then(|t| t.hold.as_ref())
    }

    /// The consume of a transaction, if known.
    pub fn consume(&self, tx: Id) -> Option<&ConsumeRecord> {
        self.transactions.get(&tx).and_then(|t| t.consume.as_ref())
    }
}

/// `evolve(state, event) -> state`: the fold step.
pub fn evolve(mut wallet: Wallet, event: &Event) -> Wallet {
    wallet.apply(event);
    wallet
}
