//! The hub: use cases over the ports.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use luna_core::history::{self, TxKind};
use luna_core::view::{CanPerformView, CheckView, SubscriptionType};
use luna_core::{
    AppEvent, Catalog, ClawbackCause, Command, Context, DomainError, Energy, EntityRef, Env,
    EventKind, Id, Money, PackId, PaymentRef, Policy, PricedAction, SubscriptionChanged, Timestamp,
    UserId, Wallet, ensure_not_unlimited,
};
use luna_ports::{Clock, EventMetadata, IdGenerator, PageQuery, Store, StreamPage};
use tokio::sync::{Mutex, MutexGuard};

use crate::engine::{Decided, Idempotency, Reply};
use crate::error::AppError;
use crate::outcome::{
    AnalyticsOutcome, AppEventOutcome, CanPerformOutcome, CheckOutcome, ClawbackOutcome,
    ConsumeOutcome, CreditStatus, GrantOutcome, NarrativeInput, PurchaseOutcome, RefundOutcome,
    ReleaseOutcome, ReserveOutcome, TransactionsPage, TxLine,
};

/// The largest page a list returns.
pub const MAX_PAGE: usize = 200;
/// The page size when none is asked.
pub const DEFAULT_PAGE: usize = 50;
/// Lock stripes serialising one instance's commands per user.
const STRIPES: usize = 256;

/// Per-user lock stripes. They only spare wasted work inside one instance: correctness across
/// instances comes from the store's expected-version check.
pub(crate) struct Locks(Vec<Mutex<()>>);

impl Locks {
    fn new() -> Self {
        Locks((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    pub(crate) async fn lock(&self, user: &UserId) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        user.hash(&mut h);
        let i = usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0);
        self.0[i].lock().await
    }
}

/// Counters the hub exposes for metrics.
#[derive(Debug, Default)]
pub struct HubStats {
    conflicts: AtomicU64,
}

impl HubStats {
    pub(crate) fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Version conflicts (and busy errors) retried so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
}

/// The use cases, over a store, a clock and an id generator.
pub struct Hub {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) policy: Policy,
    pub(crate) locks: Locks,
    pub(crate) metrics: HubStats,
}

/// A consume to perform.
#[derive(Debug, Clone)]
pub struct ConsumeRequest {
    /// The user.
    pub user: UserId,
    /// The action name (checked against the grid).
    pub action: String,
    /// Its context.
    pub context: Option<Context>,
}

/// A hold to take.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// The user.
    pub user: UserId,
    /// The action name.
    pub action: String,
    /// TTL in seconds.
    pub ttl_seconds: Option<u32>,
    /// Its context.
    pub context: Option<Context>,
}

/// A refund to perform.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// The user.
    pub user: UserId,
    /// The consume to refund.
    pub transaction_id: Id,
    /// Energy (default all).
    pub amount: Option<Energy>,
    /// Why.
    pub reason: String,
    /// Whether the user asks (refund policy applies).
    pub by_user: bool,
}

/// A succeeded payment to credit.
#[derive(Debug, Clone)]
pub struct CreditRequest {
    /// The user.
    pub user: UserId,
    /// The pack.
    pub pack: PackId,
    /// The payment.
    pub payment: PaymentRef,
    /// What was paid.
    pub paid: Money,
}

impl Hub {
    /// Builds a hub.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        catalog: Arc<Catalog>,
        policy: Policy,
    ) -> Hub {
        Hub {
            store,
            clock,
            ids,
            catalog,
            policy,
            locks: Locks::new(),
            metrics: HubStats::default(),
        }
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Counters.
    pub fn stats(&self) -> &HubStats {
        &self.metrics
    }

    fn price(&self, action: &str) -> Result<PricedAction, AppError> {
        self.catalog
            .grid
            .price(action)
            .map_err(|u| AppError::UnknownAction(u.0))
    }

    fn env(&self, now: Timestamp) -> Env<'_> {
        Env {
            now,
            catalog: &self.catalog,
            policy: &self.policy,
            welcome_tx: Id::from_u128(0),
        }
    }

    /// Balance check (opens an unknown account).
    pub async fn check(
        &self,
        user: &UserId,
        meta: &EventMetadata,
    ) -> Result<CheckOutcome, AppError> {
        let outcome = |d: &Decided<'_>| {
            Ok(CheckOutcome {
                user: user.clone(),
                view: CheckView::of(&d.wallet.summary, d.now),
                stream_version: d.version,
            })
        };
        self.run(user, &[], &Command::Open, meta, None, &outcome)
            .await
            .map(unwrap_fresh)
    }

    /// Whether an action can be performed (opens an unknown account; "cannot" is an answer).
    pub async fn can_perform(
        &self,
        user: &UserId,
        action: &str,
        meta: &EventMetadata,
    ) -> Result<CanPerformOutcome, AppError> {
        let priced = self.price(action)?;
        let outcome = |d: &Decided<'_>| {
            Ok(CanPerformOutcome {
                user: user.clone(),
                view: CanPerformView::of(d.wallet, priced.clone(), &self.env(d.now)),
            })
        };
        self.run(user, &[], &Command::Open, meta, None, &outcome)
            .await
            .map(unwrap_fresh)
    }

    /// Consumes an action's cost.
    pub async fn consume(
        &self,
        req: ConsumeRequest,
        meta: &EventMetadata,
        idem: Option<&Idempotency<ConsumeOutcome>>,
    ) -> Result<Reply<ConsumeOutcome>, AppError> {
        let action = match self.price(&req.action) {
            Ok(a) => a,
            Err(e) => return self.refuse(idem, e).await,
        };
        let tx = self.ids.next_id();
        let command = Command::Consume {
            tx,
            action,
            context: req.context,
        };
        let outcome = |d: &Decided<'_>| consume_outcome(d, &req.user, tx);
        self.run(&req.user, &[], &command, meta, idem, &outcome)
            .await
    }

    /// Puts an action's cost on hold.
    pub async fn reserve(
        &self,
        req: ReserveRequest,
        meta: &EventMetadata,
        idem: Option<&Idempotency<ReserveOutcome>>,
    ) -> Result<Reply<ReserveOutcome>, AppError> {
        let action = match self.price(&req.action) {
            Ok(a) => a,
            Err(e) => return self.refuse(idem, e).await,
        };
        let tx = self.ids.next_id();
        let command = Command::Reserve {
            tx,
            action,
            ttl_seconds: req.ttl_seconds,
            context: req.context,
        };
        let outcome = |d: &Decided<'_>| {
            let hold = d.wallet.hold(tx).ok_or(DomainError::ReservationNotFound)?;
            Ok(ReserveOutcome {
                user: req.user.clone(),
                reservation_id: tx,
                action: hold.reserved.action.clone(),
                energy_reserved: hold.reserved.amount,
                available_energy: d.wallet.summary.available(d.now),
                expires_at: hold.reserved.expires_at,
            })
        };
        self.run(&req.user, &[], &command, meta, idem, &outcome)
            .await
    }

    /// The owner of a reservation; `owner` (a user principal) must be it, else not found.
    async fn reservation_owner(
        &self,
        reservation: Id,
        owner: Option<&UserId>,
    ) -> Result<UserId, AppError> {
        let found = self
            .store
            .find_stream(&EntityRef::Transaction(reservation))
            .await?;
        match (found, owner) {
            (Some(u), Some(o)) if &u == o => Ok(u),
            (Some(u), None) => Ok(u),
            _ => Err(DomainError::ReservationNotFound.into()),
        }
    }

    /// Commits a hold into a consume. `owner`: the user principal, who must own it.
    pub async fn commit(
        &self,
        reservation: Id,
        owner: Option<&UserId>,
        context: Option<Context>,
        meta: &EventMetadata,
        idem: Option<&Idempotency<ConsumeOutcome>>,
    ) -> Result<Reply<ConsumeOutcome>, AppError> {
        let user = match self.reservation_owner(reservation, owner).await {
            Ok(u) => u,
            Err(e) => return self.refuse(idem, e).await,
        };
        let command = Command::Commit {
            tx: reservation,
            context,
        };
        let outcome = |d: &Decided<'_>| consume_outcome(d, &user, reservation);
        self.run(
            &user,
            &[EntityRef::Transaction(reservation)],
            &command,
            meta,
            idem,
            &outcome,
        )
        .await
    }

    /// Releases a hold. `owner`: the user principal, who must own it.
    pub async fn release(
        &self,
        reservation: Id,
        owner: Option<&UserId>,
        meta: &EventMetadata,
        idem: Option<&Idempotency<ReleaseOutcome>>,
    ) -> Result<Reply<ReleaseOutcome>, AppError> {
        let user = match self.reservation_owner(reservation, owner).await {
            Ok(u) => u,
            Err(e) => return self.refuse(idem, e).await,
        };
        let command = Command::Release { tx: reservation };
        let outcome = |d: &Decided<'_>| {
            let hold = d
                .wallet
                .hold(reservation)
                .ok_or(DomainError::ReservationNotFound)?;
            let released = match hold.state {
                luna_core::wallet::HoldState::Released { amount } => amount,
                _ => Energy::ZERO,
            };
            // Released again: the figures of the release; after expiry nothing was recorded.
            let available = d
                .after(|k| matches!(k, EventKind::ReservationReleased(e) if e.tx == reservation))
                .map_or_else(|| d.wallet.summary.available(d.now), |a| a.available);
            Ok(ReleaseOutcome {
                user: user.clone(),
                reservation_id: reservation,
                energy_released: released,
                available_energy: available,
            })
        };
        self.run(
            &user,
            &[EntityRef::Transaction(reservation)],
            &command,
            meta,
            idem,
            &outcome,
        )
        .await
    }

    /// Refunds a consume.
    pub async fn refund(
        &self,
        req: RefundRequest,
        meta: &EventMetadata,
        idem: Option<&Idempotency<RefundOutcome>>,
    ) -> Result<Reply<RefundOutcome>, AppError> {
        let tx = self.ids.next_id();
        let command = Command::Refund {
            tx,
            of: req.transaction_id,
            amount: req.amount,
            reason: req.reason.clone(),
            by_user: req.by_user,
        };
        let outcome = |d: &Decided<'_>| {
            let refund = d
                .wallet
                .transactions
                .get(&req.transaction_id)
                .and_then(|t| t.refund.as_ref())
                .ok_or(DomainError::TransactionNotFound)?;
            Ok(RefundOutcome {
                user: req.user.clone(),
                transaction_id: refund.tx,
                refunded_transaction_id: req.transaction_id,
                energy_refunded: refund.amount,
                new_energy_balance: d.wallet.summary.balance.units(),
                reason: req.reason.clone(),
            })
        };
        self.run(
            &req.user,
            &[EntityRef::Transaction(req.transaction_id)],
            &command,
            meta,
            idem,
            &outcome,
        )
        .await
    }

    /// Grants energy (administrators).
    pub async fn grant(
        &self,
        user: &UserId,
        amount: Energy,
        reason: &str,
        meta: &EventMetadata,
        idem: Option<&Idempotency<GrantOutcome>>,
    ) -> Result<Reply<GrantOutcome>, AppError> {
        let tx = self.ids.next_id();
        let command = Command::Grant {
            tx,
            amount,
            reason: reason.to_owned(),
        };
        let outcome = |d: &Decided<'_>| {
            Ok(GrantOutcome {
                user: user.clone(),
                transaction_id: tx,
                energy_granted: amount,
                new_energy_balance: d.wallet.summary.balance.units(),
            })
        };
        self.run(user, &[], &command, meta, idem, &outcome).await
    }

    /// Refuses a one-off pack or a new subscription while Unlimited (before payment).
    pub async fn ensure_can_buy(&self, user: &UserId) -> Result<(), AppError> {
        let loaded = self.store.load(user, &[]).await?;
        let wallet = Wallet::restore(loaded.summary, []);
        ensure_not_unlimited(&wallet, self.clock.now()).map_err(AppError::from)
    }

    /// Credits a succeeded payment exactly once.
    pub async fn credit_purchase(
        &self,
        req: CreditRequest,
        meta: &EventMetadata,
        idem: Option<&Idempotency<PurchaseOutcome>>,
    ) -> Result<Reply<PurchaseOutcome>, AppError> {
        let command = Command::CreditPurchase {
            tx: self.ids.next_id(),
            bonus_tx: self.ids.next_id(),
            pack: req.pack.clone(),
            payment: req.payment.clone(),
            paid: req.paid,
        };
        let outcome = |d: &Decided<'_>| {
            let p = d
                .wallet
                .purchases
                .get(&req.payment)
                .ok_or(DomainError::PurchaseNotFound)?;
            let purchase_tx = p.tx;
            Ok(PurchaseOutcome {
                user: req.user.clone(),
                status: if d.new_events.is_empty() {
                    CreditStatus::AlreadyCredited
                } else {
                    CreditStatus::Credited
                },
                purchase_id: p.tx,
                event_id: d
                    .event_id(|k| matches!(k, EventKind::PackPurchased(e) if e.tx == purchase_tx))
                    .unwrap_or(purchase_tx),
                pack: p.pack.clone(),
                energy_added: p.energy,
                bonus_energy: p.bonus,
                current_energy: d.wallet.summary.balance.units(),
                amount_paid_cents: p.price.amount.minor(),
                currency: p.price.currency,
            })
        };
        self.run(
            &req.user,
            &[EntityRef::Payment(req.payment.clone())],
            &command,
            meta,
            idem,
            &outcome,
        )
        .await
    }

    /// Takes back a refunded or disputed pack's energy. Finds the user by the payment.
    pub async fn clawback(
        &self,
        payment: &PaymentRef,
        cause: ClawbackCause,
        meta: &EventMetadata,
    ) -> Result<ClawbackOutcome, AppError> {
        let entity = EntityRef::Payment(payment.clone());
        let user = self
            .store
            .find_stream(&entity)
            .await?
            .ok_or(DomainError::PurchaseNotFound)?;
        let command = Command::Clawback {
            tx: self.ids.next_id(),
            bonus_tx: self.ids.next_id(),
            payment: payment.clone(),
            cause,
        };
        let outcome = |d: &Decided<'_>| {
            let revoked = d
                .new_events
                .iter()
                .filter_map(|e| match &e.event.kind {
                    EventKind::PackRevoked(r) | EventKind::BonusRevoked(r) => {
                        Some(r.energy.units())
                    }
                    _ => None,
                })
                .sum::<u32>();
            Ok(ClawbackOutcome {
                user: user.clone(),
                energy_revoked: Energy::new(revoked),
                new_energy_balance: d.wallet.summary.balance.units(),
            })
        };
        self.run(
            &user,
            std::slice::from_ref(&entity),
            &command,
            meta,
            None,
            &outcome,
        )
        .await
        .map(unwrap_fresh)
    }

    /// Records a subscription's new state (ignored if older than the last applied one).
    /// Returns whether it was applied.
    pub async fn change_subscription(
        &self,
        user: &UserId,
        change: SubscriptionChanged,
        meta: &EventMetadata,
    ) -> Result<bool, AppError> {
        let outcome = |d: &Decided<'_>| {
            Ok(!d
                .new_events
                .iter()
                .all(|e| matches!(e.event.kind, EventKind::AccountOpened(_))))
        };
        self.run(
            user,
            &[],
            &Command::ChangeSubscription(change),
            meta,
            None,
            &outcome,
        )
        .await
        .map(unwrap_fresh)
    }

    /// Records an app event.
    pub async fn record_app_event(
        &self,
        user: &UserId,
        event: AppEvent,
        meta: &EventMetadata,
        idem: Option<&Idempotency<AppEventOutcome>>,
    ) -> Result<Reply<AppEventOutcome>, AppError> {
        let outcome = |d: &Decided<'_>| {
            let r = d.receipts.last().copied().unwrap_or(luna_ports::Receipt {
                event_id: d.new_events.last().map_or(Id::from_u128(0), |e| e.event_id),
                version: d.version,
                position: 0,
                recorded_at: d.now,
            });
            Ok(AppEventOutcome {
                user: user.clone(),
                event_id: r.event_id,
                stream_version: r.version,
                position: r.position,
                recorded_at: r.recorded_at,
            })
        };
        self.run(
            user,
            &[],
            &Command::RecordAppEvent(event),
            meta,
            idem,
            &outcome,
        )
        .await
    }

    /// A page of a user's events, newest first.
    pub async fn events(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: usize,
        event_type: Option<&str>,
    ) -> Result<StreamPage, AppError> {
        let query = PageQuery {
            before_position: before,
            limit: limit.clamp(1, MAX_PAGE),
            event_type,
        };
        Ok(self.store.read_page(user, query).await?)
    }

    /// Everything the narrative needs.
    pub async fn narrative(&self, user: &UserId) -> Result<NarrativeInput, AppError> {
        let recorded = self.store.read_stream(user).await?;
        let last_position = recorded.last().map(|r| r.position);
        Ok(NarrativeInput {
            user: user.clone(),
            events: recorded.into_iter().map(|r| r.event).collect(),
            last_position,
            now: self.clock.now(),
        })
    }

    /// A page of the transaction history, newest first.
    pub async fn transactions(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<TransactionsPage, AppError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let recorded = self.store.read_stream(user).await?;
        let events: Vec<luna_core::Event> = recorded.iter().map(|r| r.event.clone()).collect();
        let rows = history::transactions(&events);
        let total_count = rows.len() as u64;
        let mut page: Vec<TxLine> = rows
            .iter()
            .rev()
            .filter(|r| before.is_none_or(|b| recorded[r.index].position < b))
            .take(limit + 1)
            .map(|r| TxLine {
                position: recorded[r.index].position,
                transaction_id: r.tx,
                kind: r.kind,
                amount: r.amount,
                reason: r.reason.clone(),
                app_source: if r.kind == TxKind::Consume {
                    r.app_source.map(str::to_owned)
                } else {
                    None
                },
                feature_used: r.feature_used.map(|a| a.as_str().to_owned()),
                energy_before: r.energy_before,
                energy_after: r.energy_after,
                created_at: r.at,
                context: r.context.map(|c| c.raw().clone()),
            })
            .collect();
        let next_before = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|l| l.position)
        } else {
            None
        };
        Ok(TransactionsPage {
            user: user.clone(),
            lines: page,
            total_count,
            next_before,
        })
    }

    /// Analytics over `[from, to)`.
    pub async fn analytics(
        &self,
        user: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<AnalyticsOutcome, AppError> {
        let recorded = self.store.read_stream(user).await?;
        let events: Vec<luna_core::Event> = recorded.into_iter().map(|r| r.event).collect();
        Ok(AnalyticsOutcome {
            user: user.clone(),
            analytics: history::analytics(&events, from, to, self.clock.now()),
        })
    }
}

fn unwrap_fresh<T>(r: Reply<T>) -> T {
    match r {
        Reply::Fresh(t) => t,
        // Only commands run without an idempotency key come here, and those never replay.
        Reply::Replayed(_) => unreachable!("no idempotency key, no replay"),
    }
}

fn consume_outcome(d: &Decided<'_>, user: &UserId, tx: Id) -> Result<ConsumeOutcome, AppError> {
    let c = d
        .wallet
        .consume(tx)
        .ok_or(DomainError::ReservationNotFound)?;
    let is_it = |k: &EventKind| matches!(k, EventKind::EnergyConsumed(e) if e.tx == tx);
    let event_id = d.event_id(is_it).ok_or(DomainError::ReservationNotFound)?;
    // Committed again: the balance right after the consume, as first answered (a consume
    // stored before figures were kept reports the current balance).
    let remaining = d
        .after(is_it)
        .map_or_else(|| d.wallet.summary.balance.units(), |a| a.balance);
    Ok(ConsumeOutcome {
        user: user.clone(),
        transaction_id: tx,
        event_id,
        action: c.consumed.action.clone(),
        energy_consumed: c.consumed.cost,
        notional_cost: c.consumed.notional,
        energy_remaining: remaining,
        unlimited: c.consumed.unlimited,
        subscription_type: if c.consumed.unlimited {
            SubscriptionType::LunaUnlimited
        } else {
            SubscriptionType::Free
        },
        timestamp: c.at,
    })
}
