//! The provider's notifications (spec §6 "Webhooks"), subscriptions, cancellation, purchase
//! history, reconciliation and the configuration check. Every effect of a notification and its
//! "processed" mark commit in one append; a failure leaves it unprocessed for redelivery.

use luna_core::{
    ClawbackCause, DomainError, EventKind, PaymentRef, SubscriptionChanged, SubscriptionRef,
    Timestamp, UserId,
};
use luna_ports::{
    EventMetadata, PageQuery, ProviderChange, ProviderEvent, SubscriptionView, UnmatchedPayment,
};

use super::Hub;
use super::payments::{BillingError, CreditResult};
use crate::engine::{Idempotency, Reply};
use crate::error::AppError;

/// What the hub did with a notification (logged and counted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// It changed a stream.
    Applied,
    /// It was applied before (a redelivery).
    Duplicate,
    /// Acknowledged without effect, and why.
    Ignored(String),
    /// A succeeded payment that cannot be credited (recorded).
    Unmatched(String),
}

/// One purchase of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseLine {
    /// Position of its event (the cursor).
    pub position: u64,
    /// The purchase.
    pub purchase: luna_core::wallet::PurchaseEntity,
    /// Its payment.
    pub payment: PaymentRef,
    /// Its event id.
    pub event_id: luna_core::Id,
}

/// A page of a user's purchases, newest first, with totals over every purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseHistory {
    /// The page.
    pub lines: Vec<PurchaseLine>,
    /// Credited (not revoked) purchases.
    pub total_purchases: u64,
    /// What they cost.
    pub total_spent_cents: u64,
    /// Their energy, bonuses included.
    pub total_energy: u64,
    /// The cursor of the next page.
    pub next_before: Option<u64>,
    /// The latest subscription.
    pub subscription: Option<luna_core::wallet::SubscriptionState>,
}

/// What `luna billing reconcile` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Succeeded payments seen.
    pub seen: u64,
    /// Credited now (a notification was lost).
    pub credited: Vec<PaymentRef>,
    /// Credited before.
    pub already: u64,
    /// Paid but not creditable: payment and why.
    pub unmatched: Vec<(PaymentRef, String)>,
    /// Not ours (no user or pack in their metadata).
    pub foreign: u64,
}

impl Hub {
    fn meta_of(event: &ProviderEvent) -> EventMetadata {
        EventMetadata {
            actor: Some("provider".into()),
            correlation_id: Some(event.id.clone()),
            idempotency_key: None,
        }
    }

    /// Verifies and applies a notification.
    pub async fn webhook(&self, signature: &str, body: &[u8]) -> Result<WebhookOutcome, AppError> {
        let verifier = self
            .verifier
            .as_deref()
            .ok_or(BillingError::WebhookNotConfigured)?;
        let event = verifier.verify_event(signature, body, self.clock.now())?;
        self.apply_event(&event).await
    }

    /// Applies a verified notification.
    pub async fn apply_event(&self, event: &ProviderEvent) -> Result<WebhookOutcome, AppError> {
        let meta = Self::meta_of(event);
        let id = Some(event.id.as_str());
        match &event.what {
            ProviderChange::PaymentSucceeded(view) => {
                Ok(match self.credit_from_provider(view, &meta, id).await? {
                    CreditResult::Credited(_) => WebhookOutcome::Applied,
                    CreditResult::Duplicate => WebhookOutcome::Duplicate,
                    CreditResult::Unmatched(why) => WebhookOutcome::Unmatched(why),
                    CreditResult::NotSucceeded => WebhookOutcome::Ignored("not succeeded".into()),
                })
            }
            ProviderChange::Refunded(charge) => match &charge.payment {
                Some(p) => {
                    let cause = ClawbackCause::Refunded {
                        amount_refunded: charge.amount_refunded,
                    };
                    self.claw_back(p, cause, &meta, id).await
                }
                None => Ok(WebhookOutcome::Ignored("refund of no payment".into())),
            },
            ProviderChange::Disputed { charge, payment } => {
                let payment = match payment {
                    Some(p) => Some(p.clone()),
                    None => self
                        .gateway()?
                        .charge(charge)
                        .await
                        .map_err(BillingError::from)?
                        .and_then(|c| c.payment),
                };
                match payment {
                    Some(p) => self.claw_back(&p, ClawbackCause::Disputed, &meta, id).await,
                    None => Ok(WebhookOutcome::Ignored("dispute of no payment".into())),
                }
            }
            ProviderChange::CheckoutCompleted(c) => self.checkout_completed(c, event).await,
            ProviderChange::Subscription(view) => self.subscription_changed(&view.id, event).await,
            ProviderChange::InvoicePaid {
                subscription,
                period_end,
                ..
            } => self.invoice_paid(subscription, *period_end, event).await,
            ProviderChange::Other => Ok(WebhookOutcome::Ignored(format!(
                "{} is not acted on",
                event.kind
            ))),
        }
    }

    /// Claws back a payment; one not credited yet is left to its credit, which reads the
    /// reversal from the provider (spec §6: events are not ordered).
    async fn claw_back(
        &self,
        payment: &PaymentRef,
        cause: ClawbackCause,
        meta: &EventMetadata,
        processed: Option<&str>,
    ) -> Result<WebhookOutcome, AppError> {
        match self.clawback(payment, cause, meta, processed).await {
            Ok(Reply::Fresh(_)) => Ok(WebhookOutcome::Applied),
            Ok(Reply::Replayed(_) | Reply::Duplicate) => Ok(WebhookOutcome::Duplicate),
            Err(AppError::Domain(DomainError::PurchaseNotFound)) => Ok(WebhookOutcome::Ignored(
                "not credited yet: its credit will read the reversal".into(),
            )),
            Err(e) => Err(e),
        }
    }

    async fn checkout_completed(
        &self,
        c: &luna_ports::CheckoutView,
        event: &ProviderEvent,
    ) -> Result<WebhookOutcome, AppError> {
        let user = c.user_id.as_deref().and_then(|u| UserId::parse(u).ok());
        if let (Some(u), Some(customer)) = (&user, &c.customer) {
            self.billing.link_customer(u, customer).await?;
        }
        if let Some(sub) = &c.subscription {
            let view = self
                .gateway()?
                .subscription(sub)
                .await
                .map_err(BillingError::from)?;
            return match view {
                Some(v) => self.apply_subscription(&v, event.created, event).await,
                None => Ok(WebhookOutcome::Ignored("unknown subscription".into())),
            };
        }
        if let Some(payment) = &c.payment {
            let view = self
                .gateway()?
                .payment(payment)
                .await
                .map_err(BillingError::from)?;
            if let Some(v) = view {
                let meta = Self::meta_of(event);
                return Ok(
                    match self
                        .credit_from_provider(&v, &meta, Some(&event.id))
                        .await?
                    {
                        CreditResult::Credited(_) => WebhookOutcome::Applied,
                        CreditResult::Duplicate => WebhookOutcome::Duplicate,
                        CreditResult::Unmatched(why) => WebhookOutcome::Unmatched(why),
                        CreditResult::NotSucceeded => {
                            WebhookOutcome::Ignored("payment not succeeded yet".into())
                        }
                    },
                );
            }
        }
        Ok(WebhookOutcome::Ignored("checkout linked".into()))
    }

    async fn invoice_paid(
        &self,
        subscription: &str,
        period_end: Option<Timestamp>,
        event: &ProviderEvent,
    ) -> Result<WebhookOutcome, AppError> {
        let view = self
            .gateway()?
            .subscription(subscription)
            .await
            .map_err(BillingError::from)?;
        let Some(mut view) = view else {
            return Ok(WebhookOutcome::Ignored("unknown subscription".into()));
        };
        if period_end > view.current_period_end {
            view.current_period_end = period_end;
        }
        self.apply_subscription(&view, event.created, event).await
    }

    /// The user a subscription belongs to: its metadata, else the linked customer.
    async fn subscriber(&self, view: &SubscriptionView) -> Result<Option<UserId>, AppError> {
        if let Some(u) = view.user_id.as_deref().and_then(|u| UserId::parse(u).ok()) {
            return Ok(Some(u));
        }
        match &view.customer {
            Some(c) => Ok(self.billing.user_of_customer(c).await?),
            None => Ok(None),
        }
    }

    /// A subscription changed: its state is read from the provider (never the event's copy),
    /// so two events of one second processed at once both record the current state.
    async fn subscription_changed(
        &self,
        subscription: &str,
        event: &ProviderEvent,
    ) -> Result<WebhookOutcome, AppError> {
        let view = self
            .gateway()?
            .subscription(subscription)
            .await
            .map_err(BillingError::from)?;
        match view {
            Some(v) => self.apply_subscription(&v, event.created, event).await,
            None => Ok(WebhookOutcome::Ignored("unknown subscription".into())),
        }
    }

    /// Records a subscription's state as read from the provider, labelled with the event's
    /// time. Only subscriptions to the Unlimited price make a user Unlimited; a state labelled
    /// strictly earlier than the one applied is ignored (the core's rule). Every caller reads
    /// the subscription from the provider first: a label tie (the provider's clock has 1 s
    /// resolution) then records a state at least as fresh as the event.
    async fn apply_subscription(
        &self,
        view: &SubscriptionView,
        created: Timestamp,
        event: &ProviderEvent,
    ) -> Result<WebhookOutcome, AppError> {
        let Some(user) = self.subscriber(view).await? else {
            return Ok(WebhookOutcome::Ignored(
                "subscription of no known user".into(),
            ));
        };
        let Ok(sub) = SubscriptionRef::parse(&view.id) else {
            return Ok(WebhookOutcome::Ignored(format!(
                "unusable subscription id {:?}",
                view.id.chars().take(64).collect::<String>()
            )));
        };
        let change = self.change_of(&sub, view, created);
        let meta = Self::meta_of(event);
        if self
            .change_subscription(&user, change, &meta, Some(&event.id))
            .await?
        {
            Ok(WebhookOutcome::Applied)
        } else {
            Ok(WebhookOutcome::Ignored(
                "older than the state applied".into(),
            ))
        }
    }

    pub(super) fn change_of(
        &self,
        sub: &SubscriptionRef,
        view: &SubscriptionView,
        created: Timestamp,
    ) -> SubscriptionChanged {
        let price = self.billing_settings.price_unlimited.as_deref();
        SubscriptionChanged {
            subscription: sub.clone(),
            status: view.status,
            current_period_end: view.current_period_end,
            cancel_at_period_end: view.cancel_at_period_end,
            unlimited_plan: price.is_some_and(|p| view.prices.iter().any(|x| x == p)),
            provider_created: created,
        }
    }

    /// Cancels the user's live subscription now or at the end of its period.
    pub async fn cancel_subscription(
        &self,
        user: &UserId,
        at_period_end: bool,
        meta: &EventMetadata,
        idem: Option<&Idempotency<SubscriptionView>>,
    ) -> Result<Reply<SubscriptionView>, AppError> {
        let client_key = meta.idempotency_key.as_deref();
        self.engine
            .answered(idem, self.cancel(user, at_period_end, meta, client_key))
            .await
    }

    async fn cancel(
        &self,
        user: &UserId,
        at_period_end: bool,
        meta: &EventMetadata,
        client_key: Option<&str>,
    ) -> Result<SubscriptionView, AppError> {
        let gateway = self.gateway()?;
        let summary = self.engine.current_summary(user).await?;
        let (sub, state) = summary
            .subscriptions
            .iter()
            .filter(|(_, s)| s.status.is_live())
            .max_by_key(|(_, s)| s.current_period_end)
            .ok_or(BillingError::NoSubscription)?;
        let key = self.provider_key("cancel", user, client_key);
        let view = gateway
            .cancel_subscription(sub.as_str(), at_period_end, &key)
            .await
            .map_err(BillingError::from)?;
        // Recorded at the provider time of the state it replaces: the provider's own event
        // for this change (created later, or at the same second: re-read) still applies, and
        // the hub's clock never outranks the provider's.
        let change = self.change_of(sub, &view, state.provider_created);
        self.change_subscription(user, change, meta, None).await?;
        Ok(view)
    }

    /// A page of the user's purchases, newest first, and totals over every purchase.
    pub async fn billing_history(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<PurchaseHistory, AppError> {
        let all = self
            .store
            .read_page(
                user,
                PageQuery {
                    before_position: None,
                    limit: super::MAX_PURCHASES,
                    event_type: Some("PackPurchased"),
                },
            )
            .await?;
        let entities: Vec<luna_core::EntityRef> = all
            .events
            .iter()
            .filter_map(|e| e.event.kind.entity_ref())
            .collect();
        let loaded = self.store.load(user, &entities).await?;
        let wallet = luna_core::Wallet::restore(
            loaded.summary,
            loaded.entity_events.iter().map(|r| &r.event),
        );
        let mut lines = Vec::new();
        let (mut count, mut spent, mut energy) = (0u64, 0u64, 0u64);
        for r in &all.events {
            let EventKind::PackPurchased(p) = &r.event.kind else {
                continue;
            };
            let Some(purchase) = wallet.purchases.get(&p.payment) else {
                continue;
            };
            if !purchase.is_revoked() {
                count += 1;
                spent += purchase.price.amount.minor();
                energy += u64::from(purchase.energy.units()) + u64::from(purchase.bonus.units());
            }
            if before.is_none_or(|b| r.position < b) {
                lines.push(PurchaseLine {
                    position: r.position,
                    purchase: purchase.clone(),
                    payment: p.payment.clone(),
                    event_id: r.event_id,
                });
            }
        }
        let next_before = if lines.len() > limit {
            lines.truncate(limit);
            lines.last().map(|l| l.position)
        } else {
            None
        };
        Ok(PurchaseHistory {
            lines,
            total_purchases: count,
            total_spent_cents: spent,
            total_energy: energy,
            next_before,
            subscription: wallet.summary.latest_subscription().map(|(_, s)| s.clone()),
        })
    }

    /// Credits, exactly once, every succeeded payment of ours created since `since` that no
    /// path credited (a notification lost while the hub was down); safe to run again.
    pub async fn reconcile(&self, since: Timestamp) -> Result<ReconcileReport, AppError> {
        let gateway = self.gateway()?;
        let mut report = ReconcileReport::default();
        let mut after: Option<String> = None;
        let meta = EventMetadata {
            actor: Some("reconcile".into()),
            ..EventMetadata::default()
        };
        loop {
            let page = gateway
                .payments_since(since, after.take())
                .await
                .map_err(BillingError::from)?;
            for view in page.payments.iter().filter(|v| v.succeeded) {
                report.seen += 1;
                let ours = view.user_id.is_some()
                    && view
                        .pack
                        .as_deref()
                        .is_some_and(|p| self.catalog.packs.get(p).is_some());
                if !ours {
                    report.foreign += 1;
                    continue;
                }
                match self.credit_from_provider(view, &meta, None).await? {
                    CreditResult::Credited(o) if o.status == crate::CreditStatus::Credited => {
                        report.credited.push(view.id.clone());
                    }
                    CreditResult::Credited(_) | CreditResult::Duplicate => report.already += 1,
                    CreditResult::Unmatched(why) => report.unmatched.push((view.id.clone(), why)),
                    CreditResult::NotSucceeded => {}
                }
            }
            match (page.has_more, page.payments.last()) {
                (true, Some(last)) => after = Some(last.id.to_string()),
                _ => break,
            }
        }
        Ok(report)
    }

    /// Unmatched payments seen since `since`.
    pub async fn unmatched_payments(
        &self,
        since: Timestamp,
    ) -> Result<Vec<UnmatchedPayment>, AppError> {
        Ok(self.billing.unmatched_since(since).await?)
    }

    /// Checks the billing configuration against the provider: the key works, the Unlimited
    /// price exists and is a monthly recurring price in the catalogue's currency, the webhook
    /// secret is set. One line per check; `Err` lines are problems.
    pub async fn billing_check(&self) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        let Some(gateway) = self.gateway.as_deref() else {
            out.push(Err("LUNA_STRIPE_SECRET_KEY is not set".into()));
            return out;
        };
        out.push(if self.billing_settings.webhook_secret_set {
            Ok("webhook signing secret is set".into())
        } else {
            Err("LUNA_STRIPE_WEBHOOK_SECRET is not set: webhooks answer 503".into())
        });
        let Some(price) = self.billing_settings.price_unlimited.clone() else {
            out.push(Err("LUNA_STRIPE_PRICE_UNLIMITED is not set".into()));
            return out;
        };
        match gateway.price(&price).await {
            Err(e) => out.push(Err(format!("the provider refused the key or failed: {e}"))),
            Ok(None) => out.push(Err(format!("price {price} does not exist"))),
            Ok(Some(p)) => {
                out.push(Ok("the secret key works".into()));
                let currency = self.catalog.packs.currency();
                let monthly = p.interval.as_deref() == Some("month") && p.interval_count == 1;
                out.push(if !p.active {
                    Err(format!("price {price} is not active"))
                } else if !monthly {
                    Err(format!("price {price} is not a monthly recurring price"))
                } else if p.currency != currency {
                    Err(format!(
                        "price {price} is in {}, the catalogue in {currency}",
                        p.currency
                    ))
                } else {
                    Ok(format!("price {price}: monthly, {currency}, active"))
                });
            }
        }
        out
    }
}
