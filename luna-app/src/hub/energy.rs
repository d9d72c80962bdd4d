//! Energy: the balance check, can-perform, consumes, holds, refunds and grants.

use luna_core::view::{CanPerformView, CheckView, SubscriptionType};
use luna_core::{Command, DomainError, Energy, EntityRef, EventKind, Id, UserId};
use luna_ports::EventMetadata;

use super::{ConsumeRequest, Hub, RefundRequest, ReserveRequest, unwrap_fresh};
use crate::engine::{Decided, Idempotency, Reply, Run};
use crate::error::AppError;
use crate::outcome::{
    CanPerformOutcome, CheckOutcome, ConsumeOutcome, GrantOutcome, RefundOutcome, ReleaseOutcome,
    ReserveOutcome,
};

impl Hub {
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
        let run = Run {
            user,
            entities: &[],
            command: &Command::Open,
            meta,
            idem: None,
            processed: None,
        };
        self.engine.run(run, &outcome).await.map(unwrap_fresh)
    }

    /// The check view of a user and their stream version, read without writing: an unknown
    /// user is not opened, the would-be view (welcome energy) is given at version 0. For the
    /// live balance stream.
    pub async fn peek(&self, user: &UserId) -> Result<(u64, luna_core::view::CheckView), AppError> {
        let now = self.clock.now();
        let version = self.store.current_version(user).await?;
        let summary = if version == 0 {
            luna_core::Summary {
                opened_at: Some(now),
                balance: luna_core::Balance::new(i64::from(self.policy.welcome_energy.units())),
                ..luna_core::Summary::default()
            }
        } else {
            self.engine.current_summary(user).await?
        };
        Ok((version, luna_core::view::CheckView::of(&summary, now)))
    }

    /// Whether the user ever bought a one-off pack (the first-purchase bonus is gone).
    pub async fn has_purchased(&self, user: &UserId) -> Result<bool, AppError> {
        Ok(self.engine.current_summary(user).await?.has_purchased)
    }

    /// The stream version of a user (0: never opened).
    pub async fn stream_version(&self, user: &UserId) -> Result<u64, AppError> {
        Ok(self.store.current_version(user).await?)
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
                view: CanPerformView::of(d.wallet, priced.clone(), &self.engine.env(d.now)),
            })
        };
        let run = Run {
            user,
            entities: &[],
            command: &Command::Open,
            meta,
            idem: None,
            processed: None,
        };
        self.engine.run(run, &outcome).await.map(unwrap_fresh)
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
            Err(e) => return self.engine.refuse(idem, e).await,
        };
        let tx = self.ids.next_id();
        let command = Command::Consume {
            tx,
            action,
            context: req.context,
        };
        let outcome = |d: &Decided<'_>| consume_outcome(d, &req.user, tx);
        let run = Run {
            user: &req.user,
            entities: &[],
            command: &command,
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
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
            Err(e) => return self.engine.refuse(idem, e).await,
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
        let run = Run {
            user: &req.user,
            entities: &[],
            command: &command,
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
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
        context: Option<luna_core::Context>,
        meta: &EventMetadata,
        idem: Option<&Idempotency<ConsumeOutcome>>,
    ) -> Result<Reply<ConsumeOutcome>, AppError> {
        let user = match self.reservation_owner(reservation, owner).await {
            Ok(u) => u,
            Err(e) => return self.engine.refuse(idem, e).await,
        };
        let command = Command::Commit {
            tx: reservation,
            context,
        };
        let outcome = |d: &Decided<'_>| consume_outcome(d, &user, reservation);
        let run = Run {
            user: &user,
            entities: &[EntityRef::Transaction(reservation)],
            command: &command,
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
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
            Err(e) => return self.engine.refuse(idem, e).await,
        };
        let outcome = |d: &Decided<'_>| release_outcome(d, &user, reservation);
        let run = Run {
            user: &user,
            entities: &[EntityRef::Transaction(reservation)],
            command: &Command::Release { tx: reservation },
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
    }

    /// Refunds a consume.
    pub async fn refund(
        &self,
        req: RefundRequest,
        meta: &EventMetadata,
        idem: Option<&Idempotency<RefundOutcome>>,
    ) -> Result<Reply<RefundOutcome>, AppError> {
        let command = Command::Refund {
            tx: self.ids.next_id(),
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
        let run = Run {
            user: &req.user,
            entities: &[EntityRef::Transaction(req.transaction_id)],
            command: &command,
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
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
        let run = Run {
            user,
            entities: &[],
            command: &command,
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
    }
}

fn release_outcome(
    d: &Decided<'_>,
    user: &UserId,
    reservation: Id,
) -> Result<ReleaseOutcome, AppError> {
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
