//! `decide`: a command and the current state in, the events it produces (or the rule it
//! breaks) out. Pure: the time, ids, prices and policy come in as arguments.

use crate::catalog::{Catalog, PackKind, PricedAction};
pub use crate::error::{DomainError, Shortfall};
use crate::event::{
    AccountOpened, AppEvent, AuditEvent, BonusGranted, EnergyConsumed, EnergyGranted,
    EnergyRefunded, EnergyReserved, Event, EventKind, PackPurchased, ReservationReleased,
    RevocationCause, Revoked, SubscriptionChanged, is_reserved_event_type,
};
use crate::json::Context;
use crate::policy::{
    DEFAULT_HOLD_TTL_SECONDS, MAX_GRANT, MAX_HOLD_TTL_SECONDS, Policy, USER_REFUND_QUOTA,
    USER_REFUND_QUOTA_DAYS,
};
use crate::units::{Cents, Energy, Money, PackId, PaymentRef, Span, Timestamp, TransactionId};
use crate::wallet::{HoldState, Wallet};

/// Everything a decision needs besides the state and the command.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The decision time.
    pub now: Timestamp,
    /// Grid and packs.
    pub catalog: &'a Catalog,
    /// Operator rules.
    pub policy: &'a Policy,
    /// The id the welcome row gets if this command opens the account.
    pub welcome_tx: TransactionId,
}

/// How a clawback was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClawbackCause {
    /// The payment was refunded, `amount_refunded` cumulative (proportional clawback).
    Refunded {
        /// Total refunded so far at the provider.
        amount_refunded: Cents,
    },
    /// The payment is disputed: everything left is revoked.
    Disputed,
}

/// A reversal of a payment known when it is credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reversal {
    /// Refunded (cumulative amount) or disputed.
    pub cause: ClawbackCause,
    /// Id of the pack revocation row.
    pub tx: TransactionId,
    /// Id of the bonus revocation row.
    pub bonus_tx: TransactionId,
}

/// What a client or the billing side asks of a user's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open the account if needed (check and can-perform do this).
    Open,
    /// Consume an action's cost.
    Consume {
        /// New transaction id.
        tx: TransactionId,
        /// The action, priced.
        action: PricedAction,
        /// Its context.
        context: Option<Context>,
    },
    /// Put an action's cost on hold.
    Reserve {
        /// New reservation id.
        tx: TransactionId,
        /// The action, priced.
        action: PricedAction,
        /// TTL in seconds (default 300, 1..=3600).
        ttl_seconds: Option<u32>,
        /// Its context.
        context: Option<Context>,
    },
    /// Turn a hold into a consume.
    Commit {
        /// The reservation.
        tx: TransactionId,
        /// Context to record instead of the reservation's.
        context: Option<Context>,
    },
    /// Give a hold back.
    Release {
        /// The reservation.
        tx: TransactionId,
    },
    /// Refund a consume.
    Refund {
        /// New refund transaction id.
        tx: TransactionId,
        /// The consume to refund.
        of: TransactionId,
        /// Energy to give back (default: all of it).
        amount: Option<Energy>,
        /// Why.
        reason: String,
        /// Whether the user asks (the refund policy applies) rather than a service.
        by_user: bool,
    },
    /// Grant energy (administrators).
    Grant {
        /// New transaction id.
        tx: TransactionId,
        /// Energy to grant (≥ 1).
        amount: Energy,
        /// Why.
        reason: String,
    },
    /// Credit a succeeded payment for a one-off pack.
    CreditPurchase {
        /// New purchase transaction id.
        tx: TransactionId,
        /// Id of the bonus row, if a bonus is due.
        bonus_tx: TransactionId,
        /// The pack paid for.
        pack: PackId,
        /// The payment.
        payment: PaymentRef,
        /// What was paid.
        paid: Money,
        /// What the provider already reversed of the payment (a refund or dispute that arrived
        /// before the credit), clawed back in the same decision.
        reversal: Option<Reversal>,
    },
    /// Take back a refunded or disputed pack's energy.
    Clawback {
        /// Id of the pack revocation row.
        tx: TransactionId,
        /// Id of the bonus revocation row.
        bonus_tx: TransactionId,
        /// The payment.
        payment: PaymentRef,
        /// Why.
        cause: ClawbackCause,
    },
    /// Record a subscription's new state.
    ChangeSubscription(SubscriptionChanged),
    /// Record an app event.
    RecordAppEvent(AppEvent),
    /// Record a fact of the account's audit trail.
    RecordAudit(AuditEvent),
}

impl Command {
    /// Whether the command opens an unknown account first (every energy command and credit).
    pub fn opens_account(&self) -> bool {
        !matches!(self, Command::RecordAppEvent(_) | Command::RecordAudit(_))
    }
}

/// Decides a command against a wallet. If the command opens the account and it is not open,
/// the welcome event comes first, in the same decision.
pub fn decide(
    wallet: &Wallet,
    command: &Command,
    env: &Env<'_>,
) -> Result<Vec<Event>, DomainError> {
    let mut out = Vec::with_capacity(2);
    if command.opens_account() && !wallet.summary.is_open() {
        let opened = Event {
            occurred_at: env.now,
            kind: EventKind::AccountOpened(AccountOpened {
                tx: env.welcome_tx,
                welcome: env.policy.welcome_energy,
            }),
        };
        let mut opened_wallet = wallet.clone();
        opened_wallet.apply(&opened);
        out.push(opened);
        decide_open(&opened_wallet, command, env, &mut out)?;
    } else {
        decide_open(wallet, command, env, &mut out)?;
    }
    Ok(out)
}

fn push(out: &mut Vec<Event>, env: &Env<'_>, kind: EventKind) {
    out.push(Event {
        occurred_at: env.now,
        kind,
    });
}

/// The shortfall of `cost` against the wallet at `now`, if any.
pub fn shortfall(wallet: &Wallet, cost: Energy, env: &Env<'_>) -> Option<Shortfall> {
    let s = &wallet.summary;
    let available = s.available(env.now);
    let balance = s.balance.units();
    let needed = i64::from(cost.units());
    if balance >= 0 && available >= needed {
        return None;
    }
    let deficit = u64::try_from(needed.saturating_sub(available)).unwrap_or(0);
    Some(shortfall_of(wallet, cost, deficit, env))
}

fn shortfall_of(wallet: &Wallet, cost: Energy, deficit: u64, env: &Env<'_>) -> Shortfall {
    let s = &wallet.summary;
    Shortfall {
        required: cost,
        current: s.balance.units(),
        available: s.available(env.now),
        deficit,
        required_pack: env
            .catalog
            .packs
            .required_pack(deficit, !s.has_purchased)
            .map(|p| p.id.clone()),
    }
}

fn decide_open(
    w: &Wallet,
    command: &Command,
    env: &Env<'_>,
    out: &mut Vec<Event>,
) -> Result<(), DomainError> {
    let kinds = match command {
        Command::Open => vec![],
        Command::Consume {
            tx,
            action,
            context,
        } => vec![consume(w, *tx, action, context.as_ref(), env)?],
        Command::Reserve {
            tx,
            action,
            ttl_seconds,
            context,
        } => {
            vec![reserve(
                w,
                *tx,
                action,
                *ttl_seconds,
                context.as_ref(),
                env,
            )?]
        }
        Command::Commit { tx, context } => {
            commit(w, *tx, context.as_ref(), env)?.into_iter().collect()
        }
        Command::Release { tx } => release(w, *tx, env)?.into_iter().collect(),
        Command::Refund {
            tx,
            of,
            amount,
            reason,
            by_user,
        } => vec![refund(w, *tx, *of, *amount, reason, *by_user, env)?],
        Command::Grant { tx, amount, reason } => vec![grant(w, *tx, *amount, reason)?],
        Command::CreditPurchase {
            tx,
            bonus_tx,
            pack,
            payment,
            paid,
            reversal,
        } => {
            let mut kinds = credit_purchase(w, *tx, *bonus_tx, pack, payment, *paid, env)?;
            if let Some(r) = reversal {
                kinds.extend(reverse_on_credit(w, &kinds, payment, r, env)?);
            }
            kinds
        }
        Command::Clawback {
            tx,
            bonus_tx,
            payment,
            cause,
        } => clawback(w, *tx, *bonus_tx, payment, *cause)?,
        Command::ChangeSubscription(change) => change_subscription(w, change).into_iter().collect(),
        Command::RecordAppEvent(app) => vec![record_app_event(app)?],
        Command::RecordAudit(audit) => vec![EventKind::Audit(audit.clone())],
    };
    for kind in kinds {
        push(out, env, kind);
    }
    Ok(())
}

fn grant(
    w: &Wallet,
    tx: TransactionId,
    amount: Energy,
    reason: &str,
) -> Result<EventKind, DomainError> {
    if amount.is_zero() || amount.units() > MAX_GRANT {
        return Err(DomainError::InvalidGrantAmount);
    }
    w.summary
        .balance
        .credit(amount)
        .ok_or(DomainError::Overflow)?;
    Ok(EventKind::EnergyGranted(EnergyGranted {
        tx,
        amount,
        reason: reason.to_owned(),
    }))
}

/// A subscription change, unless it is older than the state last applied.
fn change_subscription(w: &Wallet, change: &SubscriptionChanged) -> Option<EventKind> {
    let stale = w
        .summary
        .subscriptions
        .get(&change.subscription)
        .is_some_and(|s| change.provider_created < s.provider_created);
    (!stale).then(|| EventKind::SubscriptionChanged(change.clone()))
}

fn record_app_event(app: &AppEvent) -> Result<EventKind, DomainError> {
    if is_reserved_event_type(app.event_type.as_str()) {
        return Err(DomainError::ReservedEventType);
    }
    Ok(EventKind::AppEvent(app.clone()))
}

/// Refuses when the user is not Unlimited and `cost` does not fit; returns whether Unlimited.
fn afford(w: &Wallet, cost: Energy, env: &Env<'_>) -> Result<bool, DomainError> {
    if w.summary.is_unlimited(env.now) {
        return Ok(true);
    }
    match shortfall(w, cost, env) {
        Some(s) => Err(DomainError::InsufficientEnergy(s)),
        None => Ok(false),
    }
}

fn consume(
    w: &Wallet,
    tx: TransactionId,
    action: &PricedAction,
    context: Option<&Context>,
    env: &Env<'_>,
) -> Result<EventKind, DomainError> {
    let unlimited = afford(w, action.cost, env)?;
    Ok(EventKind::EnergyConsumed(EnergyConsumed {
        tx,
        action: action.name.clone(),
        cost: if unlimited { Energy::ZERO } else { action.cost },
        notional: action.cost,
        unlimited,
        grid_version: action.grid_version.clone(),
        context: context.cloned(),
        from_reservation: false,
    }))
}

fn reserve(
    w: &Wallet,
    tx: TransactionId,
    action: &PricedAction,
    ttl_seconds: Option<u32>,
    context: Option<&Context>,
    env: &Env<'_>,
) -> Result<EventKind, DomainError> {
    let ttl = ttl_seconds.unwrap_or(DEFAULT_HOLD_TTL_SECONDS);
    if !(1..=MAX_HOLD_TTL_SECONDS).contains(&ttl) {
        return Err(DomainError::TtlOutOfRange);
    }
    let unlimited = afford(w, action.cost, env)?;
    Ok(EventKind::EnergyReserved(EnergyReserved {
        tx,
        action: action.name.clone(),
        amount: if unlimited { Energy::ZERO } else { action.cost },
        notional: action.cost,
        unlimited,
        grid_version: action.grid_version.clone(),
        expires_at: env.now.plus(Span::seconds(i64::from(ttl))),
        context: context.cloned(),
    }))
}

fn commit(
    w: &Wallet,
    tx: TransactionId,
    context: Option<&Context>,
    env: &Env<'_>,
) -> Result<Option<EventKind>, DomainError> {
    let hold = w.hold(tx).ok_or(DomainError::ReservationNotFound)?;
    match hold.state {
        HoldState::Committed => return Ok(None),
        HoldState::Released { .. } => return Err(DomainError::ReservationReleased),
        HoldState::Open => {}
    }
    let r = &hold.reserved;
    if env.now >= r.expires_at {
        return Err(DomainError::ReservationExpired);
    }
    // The hold guaranteed the energy unless a clawback took it since.
    if !r.unlimited && !w.summary.balance.covers(r.amount) {
        let deficit = i64::from(r.amount.units()).saturating_sub(w.summary.balance.units());
        let deficit = u64::try_from(deficit).unwrap_or(0);
        return Err(DomainError::InsufficientEnergy(shortfall_of(
            w, r.amount, deficit, env,
        )));
    }
    Ok(Some(EventKind::EnergyConsumed(EnergyConsumed {
        tx,
        action: r.action.clone(),
        cost: r.amount,
        notional: r.notional,
        unlimited: r.unlimited,
        grid_version: r.grid_version.clone(),
        context: context.cloned().or_else(|| r.context.clone()),
        from_reservation: true,
    })))
}

fn release(w: &Wallet, tx: TransactionId, env: &Env<'_>) -> Result<Option<EventKind>, DomainError> {
    let hold = w.hold(tx).ok_or(DomainError::ReservationNotFound)?;
    match hold.state {
        HoldState::Committed => Err(DomainError::ReservationCommitted),
        HoldState::Released { .. } => Ok(None),
        // Expired: nothing is held any more, nothing to give back.
        HoldState::Open if env.now >= hold.reserved.expires_at => Ok(None),
        HoldState::Open => Ok(Some(EventKind::ReservationReleased(ReservationReleased {
            tx,
            amount: hold.reserved.amount,
        }))),
    }
}

fn refund(
    w: &Wallet,
    tx: TransactionId,
    of: TransactionId,
    amount: Option<Energy>,
    reason: &str,
    by_user: bool,
    env: &Env<'_>,
) -> Result<EventKind, DomainError> {
    let entity = w.transactions.get(&of);
    let consume = entity
        .and_then(|t| t.consume.as_ref())
        .ok_or(DomainError::TransactionNotFound)?;
    if entity.is_some_and(|t| t.refund.is_some()) {
        return Err(DomainError::AlreadyRefunded);
    }
    let cost = consume.consumed.cost;
    if cost.is_zero() {
        return Err(DomainError::NothingToRefund);
    }
    let amount = amount.unwrap_or(cost);
    if amount.is_zero() || amount > cost {
        return Err(DomainError::RefundAmountOutOfRange { max: Some(cost) });
    }
    if env.now > consume.at.plus(env.policy.refund_window()) {
        return Err(DomainError::RefundWindowExpired);
    }
    if by_user && !env.policy.user_may_refund(&consume.consumed.action) {
        return Err(DomainError::RefundNotEligible);
    }
    if by_user && quota_used_up(&w.summary.user_refunds, env.now) {
        return Err(DomainError::RefundQuotaExceeded);
    }
    w.summary
        .balance
        .credit(amount)
        .ok_or(DomainError::Overflow)?;
    Ok(EventKind::EnergyRefunded(EnergyRefunded {
        tx,
        refunded_tx: of,
        amount,
        reason: reason.to_owned(),
        by_user,
    }))
}

/// Whether `USER_REFUND_QUOTA` self-refunds happened in the rolling window ending at `now`.
fn quota_used_up(user_refunds: &[Timestamp], now: Timestamp) -> bool {
    let window_start = now.minus(Span::days(USER_REFUND_QUOTA_DAYS));
    user_refunds.iter().filter(|t| **t > window_start).count() >= USER_REFUND_QUOTA
}

fn credit_purchase(
    w: &Wallet,
    tx: TransactionId,
    bonus_tx: TransactionId,
    pack: &PackId,
    payment: &PaymentRef,
    paid: Money,
    env: &Env<'_>,
) -> Result<Vec<EventKind>, DomainError> {
    let p = env
        .catalog
        .packs
        .get(pack.as_str())
        .ok_or(DomainError::UnknownPack)?;
    let PackKind::OneOff {
        energy,
        first_purchase_bonus,
    } = p.kind
    else {
        return Err(DomainError::NotAOneOffPack);
    };
    if paid.currency != p.price.currency {
        return Err(DomainError::CurrencyMismatch);
    }
    if paid.amount != p.price.amount {
        return Err(DomainError::AmountMismatch);
    }
    if w.purchases.contains_key(payment) {
        return Ok(vec![]);
    }
    let bonus = if w.summary.has_purchased {
        Energy::ZERO
    } else {
        first_purchase_bonus
    };
    let total = energy.checked_add(bonus).ok_or(DomainError::Overflow)?;
    w.summary
        .balance
        .credit(total)
        .ok_or(DomainError::Overflow)?;
    let mut kinds = vec![EventKind::PackPurchased(PackPurchased {
        tx,
        pack: pack.clone(),
        payment: payment.clone(),
        energy,
        price: paid,
    })];
    if !bonus.is_zero() {
        kinds.push(EventKind::BonusGranted(BonusGranted {
            tx: bonus_tx,
            pack: pack.clone(),
            payment: payment.clone(),
            energy: bonus,
        }));
    }
    Ok(kinds)
}

/// The clawback of a reversal known at credit time, decided on the wallet after the credit.
fn reverse_on_credit(
    w: &Wallet,
    credited: &[EventKind],
    payment: &PaymentRef,
    r: &Reversal,
    env: &Env<'_>,
) -> Result<Vec<EventKind>, DomainError> {
    let mut after = w.clone();
    for kind in credited {
        after.apply(&Event {
            occurred_at: env.now,
            kind: kind.clone(),
        });
    }
    clawback(&after, r.tx, r.bonus_tx, payment, r.cause)
}

fn clawback(
    w: &Wallet,
    tx: TransactionId,
    bonus_tx: TransactionId,
    payment: &PaymentRef,
    cause: ClawbackCause,
) -> Result<Vec<EventKind>, DomainError> {
    let p = w
        .purchases
        .get(payment)
        .ok_or(DomainError::PurchaseNotFound)?;
    let (pack_target, bonus_target, revocation) = match cause {
        ClawbackCause::Disputed => (p.energy, p.bonus, RevocationCause::Disputed),
        ClawbackCause::Refunded { amount_refunded } => {
            // floor((energy + bonus) × refunded / paid), split so the pack part is
            // floor(energy × refunded / paid) and the bonus takes the rest.
            let (e, b) = (u128::from(p.energy.units()), u128::from(p.bonus.units()));
            let paid = u128::from(p.price.amount.minor()).max(1);
            let refunded = u128::from(amount_refunded.minor()).min(paid);
            let total = (e + b) * refunded / paid;
            let pack_part = (e * refunded / paid).min(e);
            let bonus_part = total.saturating_sub(pack_part).min(b);
            (
                to_energy(pack_part),
                to_energy(bonus_part),
                RevocationCause::Refunded,
            )
        }
    };
    let revoked = |tx, energy| Revoked {
        tx,
        payment: payment.clone(),
        energy,
        cause: revocation,
    };
    let mut kinds = Vec::new();
    let pack_delta = pack_target.saturating_sub(p.pack_revoked);
    if !pack_delta.is_zero() {
        kinds.push(EventKind::PackRevoked(revoked(tx, pack_delta)));
    }
    let bonus_delta = bonus_target.saturating_sub(p.bonus_revoked);
    if !bonus_delta.is_zero() {
        kinds.push(EventKind::BonusRevoked(revoked(bonus_tx, bonus_delta)));
    }
    Ok(kinds)
}

fn to_energy(v: u128) -> Energy {
    Energy::new(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Refuses a one-off purchase or a new subscription while the user is Unlimited (checked
/// before payment; a payment that already succeeded is always credited).
pub fn ensure_not_unlimited(wallet: &Wallet, now: Timestamp) -> Result<(), DomainError> {
    if wallet.summary.is_unlimited(now) {
        Err(DomainError::AlreadyUnlimited)
    } else {
        Ok(())
    }
}
