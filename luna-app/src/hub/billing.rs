//! Billing: crediting a succeeded payment exactly once, clawing back a refunded or disputed
//! one, and recording subscription changes. The payment gateway and webhook handling plug in
//! here (issue "Billing with Stripe").

use luna_core::{
    ClawbackCause, Command, DomainError, Energy, EntityRef, EventKind, PaymentRef, Reversal,
    SubscriptionChanged, UserId, Wallet, ensure_not_unlimited,
};
use luna_ports::EventMetadata;

use super::{CreditRequest, Hub};
use crate::engine::{Decided, Idempotency, Reply, Run};
use crate::error::AppError;
use crate::outcome::{ClawbackOutcome, CreditStatus, PurchaseOutcome};

impl Hub {
    /// Refuses a one-off pack or a new subscription while Unlimited (before payment),
    /// decided on the stream's current version.
    pub async fn ensure_can_buy(&self, user: &UserId) -> Result<(), AppError> {
        let summary = self.engine.current_summary(user).await?;
        let wallet = Wallet::restore(summary, []);
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
            reversal: req.reversal.map(|cause| Reversal {
                cause,
                tx: self.ids.next_id(),
                bonus_tx: self.ids.next_id(),
            }),
        };
        let outcome = |d: &Decided<'_>| purchase_outcome(d, &req);
        let run = Run {
            user: &req.user,
            entities: &[EntityRef::Payment(req.payment.clone())],
            command: &command,
            meta,
            idem,
            processed: req.processed.as_deref(),
        };
        self.engine.run(run, &outcome).await
    }

    /// Takes back a refunded or disputed pack's energy. Finds the user by the payment;
    /// `processed` marks the provider event applied with the append.
    pub async fn clawback(
        &self,
        payment: &PaymentRef,
        cause: ClawbackCause,
        meta: &EventMetadata,
        processed: Option<&str>,
    ) -> Result<Reply<ClawbackOutcome>, AppError> {
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
        let run = Run {
            user: &user,
            entities: std::slice::from_ref(&entity),
            command: &command,
            meta,
            idem: None,
            processed,
        };
        self.engine.run(run, &outcome).await
    }

    /// Records a subscription's new state (ignored if older than the last applied one).
    /// Returns whether it was applied.
    pub async fn change_subscription(
        &self,
        user: &UserId,
        change: SubscriptionChanged,
        meta: &EventMetadata,
        processed: Option<&str>,
    ) -> Result<bool, AppError> {
        let outcome = |d: &Decided<'_>| {
            Ok(!d
                .new_events
                .iter()
                .all(|e| matches!(e.event.kind, EventKind::AccountOpened(_))))
        };
        let command = Command::ChangeSubscription(change);
        let run = Run {
            user,
            entities: &[],
            command: &command,
            meta,
            idem: None,
            processed,
        };
        match self.engine.run(run, &outcome).await? {
            Reply::Fresh(applied) => Ok(applied),
            Reply::Replayed(_) | Reply::Duplicate => Ok(false),
        }
    }
}

fn purchase_outcome(d: &Decided<'_>, req: &CreditRequest) -> Result<PurchaseOutcome, AppError> {
    let p = d
        .wallet
        .purchases
        .get(&req.payment)
        .ok_or(DomainError::PurchaseNotFound)?;
    let purchase_tx = p.tx;
    let credited_now = d
        .new_events
        .iter()
        .any(|e| matches!(&e.event.kind, EventKind::PackPurchased(x) if x.tx == purchase_tx));
    Ok(PurchaseOutcome {
        user: req.user.clone(),
        status: if credited_now {
            CreditStatus::Credited
        } else {
            CreditStatus::AlreadyCredited
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
}
