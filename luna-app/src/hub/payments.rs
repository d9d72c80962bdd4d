//! Payments through the provider: a PaymentIntent for a pack, the one credit procedure shared by
//! confirm-payment, `/luna/energy/purchase`, the webhook and reconciliation, the Unlimited
//! subscription through a hosted checkout, cancellation (spec §3.6, §6 "Payments").

use luna_core::{
    ClawbackCause, Currency, DomainError, Money, PackId, PackKind, PaymentRef, Span, UserId,
};
use luna_ports::{
    CheckoutView, EventMetadata, GatewayError, NewCheckout, NewPayment, OpenCheckout,
    PaymentGateway, PaymentView, Return, UnmatchedPayment,
};

use super::{CreditRequest, Hub};
use crate::engine::{Idempotency, Reply};
use crate::error::AppError;
pub use crate::error::BillingError;
use crate::outcome::PurchaseOutcome;

/// How long a kept subscription checkout is offered again (the provider expires them in 24 h).
const CHECKOUT_REUSE: Span = Span::seconds(23 * 3600);

/// The billing settings of a hub.
#[derive(Debug, Clone, Default)]
pub struct BillingSettings {
    /// The provider price of Luna Unlimited.
    pub price_unlimited: Option<String>,
    /// Whether a webhook signing secret is configured (for `billing check`).
    pub webhook_secret_set: bool,
    /// Default checkout return pages.
    pub success_url: String,
    /// Default checkout cancel page.
    pub cancel_url: String,
    /// Origins a client-given return URL may point to (the public URL, CORS origins).
    pub allowed_origins: Vec<String>,
}

/// A payment created for a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentOutcome {
    /// The payment.
    pub payment: PaymentView,
    /// The pack.
    pub pack: PackId,
    /// Its energy.
    pub energy_units: u32,
}

/// Where a checkout stands, for the page the user returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutStatus {
    /// Not this user's, or unknown.
    Unknown,
    /// Paid or not yet; its notification not applied yet.
    Pending,
    /// Credited (a pack) or active (Unlimited).
    Done,
}

/// The outcome of a credit attempt by the provider's word alone (webhook, reconciliation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditResult {
    /// Credited now, or before.
    Credited(PurchaseOutcome),
    /// The same provider event was applied before.
    Duplicate,
    /// Somebody paid but the payment cannot be credited (recorded for reconciliation).
    Unmatched(String),
    /// The payment has not succeeded.
    NotSucceeded,
}

/// Return pages a client asked for (each defaults to the hub's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnUrls {
    /// After paying.
    pub success_url: Option<String>,
    /// After giving up.
    pub cancel_url: Option<String>,
}

/// The longest return URL accepted.
const MAX_RETURN_URL: usize = 2048;

/// Whether `url` is under one of `origins` (scheme, host and port equal; path below), in
/// visible ASCII and at most 2 KiB.
pub fn allowed_return(url: &str, origins: &[String]) -> bool {
    if url.len() > MAX_RETURN_URL || !url.bytes().all(|c| (0x21..=0x7e).contains(&c)) {
        return false;
    }
    origins.iter().any(|o| {
        let o = o.trim_end_matches('/');
        url == o || url.starts_with(&format!("{o}/")) || url.starts_with(&format!("{o}?"))
    })
}

impl Hub {
    pub(super) fn gateway(&self) -> Result<&dyn PaymentGateway, AppError> {
        self.gateway
            .as_deref()
            .ok_or(AppError::Billing(BillingError::NotConfigured))
    }

    /// The key a provider call is sent with: derived from the user and the client's
    /// idempotency key (so a retried request creates nothing twice), else fresh.
    pub(super) fn provider_key(
        &self,
        what: &str,
        user: &UserId,
        client_key: Option<&str>,
    ) -> String {
        match client_key {
            Some(k) => format!(
                "luna-{what}-{}",
                &super::hash_secret(&format!("{user}|{k}"))[..40]
            ),
            None => format!("luna-{what}-{:032x}", self.ids.next_id().as_u128()),
        }
    }

    /// Creates a PaymentIntent for a one-off pack, refusing before payment while Unlimited.
    pub async fn create_intent(
        &self,
        user: &UserId,
        pack: &str,
        currency: Option<&str>,
        meta: &EventMetadata,
        idem: Option<&Idempotency<IntentOutcome>>,
    ) -> Result<Reply<IntentOutcome>, AppError> {
        let client_key = meta.idempotency_key.as_deref();
        self.engine
            .answered(idem, self.intent(user, pack, currency, client_key))
            .await
    }

    async fn intent(
        &self,
        user: &UserId,
        pack: &str,
        currency: Option<&str>,
        client_key: Option<&str>,
    ) -> Result<IntentOutcome, AppError> {
        let gateway = self.gateway()?;
        let p = self
            .catalog
            .packs
            .get(pack)
            .ok_or(DomainError::UnknownPack)?;
        let PackKind::OneOff { energy, .. } = p.kind else {
            return Err(DomainError::NotAOneOffPack.into());
        };
        if let Some(c) = currency {
            let asked = Currency::parse(c).map_err(|_| DomainError::CurrencyMismatch)?;
            if asked != p.price.currency {
                return Err(DomainError::CurrencyMismatch.into());
            }
        }
        self.ensure_can_buy(user).await?;
        let new = NewPayment {
            user: user.clone(),
            pack: p.id.clone(),
            pack_name: p.name.clone(),
            amount: p.price.amount,
            currency: p.price.currency,
        };
        let key = self.provider_key("intent", user, client_key);
        let payment = gateway
            .create_payment(&new, &key)
            .await
            .map_err(BillingError::from)?;
        Ok(IntentOutcome {
            payment,
            pack: p.id.clone(),
            energy_units: energy.units(),
        })
    }

    /// The one credit procedure (spec §6 "Payments"): the payment is read from the provider;
    /// its user must be `owner` (when a principal asks), checked before anything else; its pack,
    /// amount and currency must be the catalogue's; it must have succeeded; a refund or dispute
    /// the provider already recorded is clawed back in the same append.
    pub async fn confirm_payment(
        &self,
        owner: &UserId,
        payment: &PaymentRef,
        expected_pack: Option<&str>,
        meta: &EventMetadata,
        idem: Option<&Idempotency<PurchaseOutcome>>,
    ) -> Result<Reply<PurchaseOutcome>, AppError> {
        if let Some(r) = self.engine.replay(idem).await? {
            return Ok(Reply::Replayed(r));
        }
        let (view, request) = match self.checked_credit(owner, payment, expected_pack).await {
            Ok(checked) => checked,
            Err(e) => return self.engine.refuse(idem, e).await,
        };
        let reply = self.credit_purchase(request, meta, idem).await?;
        self.follow_reversal(&view, meta).await?;
        Ok(reply)
    }

    /// The payment read from the provider and checked for `owner`.
    async fn checked_credit(
        &self,
        owner: &UserId,
        payment: &PaymentRef,
        expected_pack: Option<&str>,
    ) -> Result<(PaymentView, CreditRequest), AppError> {
        let view = self
            .gateway()?
            .payment(payment)
            .await
            .map_err(BillingError::from)?
            .ok_or(BillingError::PaymentNotFound)?;
        if view.user_id.as_deref() != Some(owner.as_str()) {
            return Err(BillingError::OtherUser.into());
        }
        if let Some(pack) = expected_pack {
            if view.pack.as_deref() != Some(pack) {
                return Err(BillingError::PackMismatch.into());
            }
        }
        let request = self.credit_request(owner, &view, None).await?;
        Ok((view, request))
    }

    /// The checks of a succeeded payment and the reversal to apply with its credit.
    async fn credit_request(
        &self,
        user: &UserId,
        view: &PaymentView,
        processed: Option<&str>,
    ) -> Result<CreditRequest, AppError> {
        let pack = view
            .pack
            .as_deref()
            .and_then(|p| self.catalog.packs.get(p))
            .ok_or(BillingError::PackMismatch)?;
        if !matches!(pack.kind, PackKind::OneOff { .. }) {
            return Err(DomainError::NotAOneOffPack.into());
        }
        if view.currency != pack.price.currency {
            return Err(DomainError::CurrencyMismatch.into());
        }
        if view.amount != pack.price.amount {
            return Err(DomainError::AmountMismatch.into());
        }
        if !view.succeeded {
            return Err(BillingError::NotCompleted(view.status.clone()).into());
        }
        Ok(CreditRequest {
            user: user.clone(),
            pack: pack.id.clone(),
            payment: view.id.clone(),
            paid: Money::new(view.amount, view.currency),
            reversal: self.reversal_of(view).await?,
            processed: processed.map(str::to_owned),
        })
    }

    /// What the provider already reversed of a payment's charge.
    async fn reversal_of(&self, view: &PaymentView) -> Result<Option<ClawbackCause>, AppError> {
        let Some(charge) = &view.charge else {
            return Ok(None);
        };
        // A payment naming a charge Stripe cannot find is a provider failure, not "no refund".
        let c = self
            .gateway()?
            .charge(charge)
            .await
            .map_err(BillingError::from)?
            .ok_or_else(|| {
                BillingError::Gateway(GatewayError::Refused {
                    status: 404,
                    code: "resource_missing".into(),
                    message: format!("charge {charge} of {} not found", view.id),
                })
            })?;
        Ok(if c.disputed {
            Some(ClawbackCause::Disputed)
        } else if c.amount_refunded.minor() > 0 {
            Some(ClawbackCause::Refunded {
                amount_refunded: c.amount_refunded,
            })
        } else {
            None
        })
    }

    /// Credits a payment on the provider's word (a webhook, reconciliation): the user is the
    /// payment's; what cannot be credited is recorded as unmatched.
    pub async fn credit_from_provider(
        &self,
        view: &PaymentView,
        meta: &EventMetadata,
        processed: Option<&str>,
    ) -> Result<CreditResult, AppError> {
        if !view.succeeded {
            return Ok(CreditResult::NotSucceeded);
        }
        let user = view.user_id.as_deref().and_then(|u| UserId::parse(u).ok());
        let request = match &user {
            None => Err("no valid metadata.user_id".to_owned()),
            Some(u) => match self.credit_request(u, view, processed).await {
                Ok(r) => Ok(r),
                Err(AppError::Domain(d)) => Err(d.code().to_owned()),
                Err(AppError::Billing(BillingError::PackMismatch)) => {
                    Err("pack_mismatch".to_owned())
                }
                Err(e) => return Err(e),
            },
        };
        let request = match request {
            Ok(r) => r,
            Err(reason) => {
                self.billing
                    .record_unmatched(&UnmatchedPayment {
                        payment: view.id.clone(),
                        reason: reason.clone(),
                        amount: view.amount,
                        currency: view.currency,
                        user_id: view.user_id.clone(),
                        pack: view.pack.clone(),
                        seen_at: self.clock.now(),
                    })
                    .await?;
                return Ok(CreditResult::Unmatched(reason));
            }
        };
        let result = match self.credit_purchase(request, meta, None).await? {
            Reply::Fresh(o) => CreditResult::Credited(o),
            Reply::Replayed(_) | Reply::Duplicate => CreditResult::Duplicate,
        };
        self.follow_reversal(view, meta).await?;
        Ok(result)
    }

    /// After any credit attempt, applies what Stripe reversed of the charge by now. The credit
    /// read the charge before its append; a refund or dispute acknowledged meanwhile as "not
    /// credited yet" (its handler found no purchase) happened at Stripe before that
    /// acknowledgement, so this read, after the append, sees it. Clawbacks are cumulative
    /// targets: applying one twice changes nothing.
    async fn follow_reversal(
        &self,
        view: &PaymentView,
        meta: &EventMetadata,
    ) -> Result<(), AppError> {
        let Some(cause) = self.reversal_of(view).await? else {
            return Ok(());
        };
        match self.clawback(&view.id, cause, meta, None).await {
            Ok(_) | Err(AppError::Domain(DomainError::PurchaseNotFound)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Opens a hosted checkout (`mode=payment`) for a one-off pack at its catalogue price; the
    /// payment carries the user and the pack, so its webhook credits it exactly once (the web
    /// page's way to buy). Refused while Unlimited, before any checkout is created.
    pub async fn create_pack_checkout(
        &self,
        user: &UserId,
        pack: &str,
        back: ReturnUrls,
        client_key: Option<&str>,
    ) -> Result<CheckoutView, AppError> {
        let gateway = self.gateway()?;
        let p = self
            .catalog
            .packs
            .get(pack)
            .ok_or(DomainError::UnknownPack)?;
        if !matches!(p.kind, PackKind::OneOff { .. }) {
            return Err(DomainError::NotAOneOffPack.into());
        }
        self.ensure_can_buy(user).await?;
        let back = self.return_urls(back)?;
        let checkout = NewCheckout::Payment(NewPayment {
            user: user.clone(),
            pack: p.id.clone(),
            pack_name: p.name.clone(),
            amount: p.price.amount,
            currency: p.price.currency,
        });
        let key = self.provider_key("pack-checkout", user, client_key);
        Ok(gateway
            .create_checkout(&checkout, &back, &key)
            .await
            .map_err(BillingError::from)?)
    }

    /// A checkout's payment and whether it is credited (the web page's return page).
    pub async fn checkout_status(
        &self,
        user: &UserId,
        checkout: &str,
    ) -> Result<CheckoutStatus, AppError> {
        let Some(view) = self
            .gateway()?
            .checkout(checkout)
            .await
            .map_err(BillingError::from)?
        else {
            return Ok(CheckoutStatus::Unknown);
        };
        if view.user_id.as_deref() != Some(user.as_str()) {
            return Ok(CheckoutStatus::Unknown);
        }
        if !view.complete {
            return Ok(CheckoutStatus::Pending);
        }
        let summary = self.engine.current_summary(user).await?;
        if view.subscription_mode {
            let now = self.clock.now();
            return Ok(if summary.unlimited_subscription(now).is_some() {
                CheckoutStatus::Done
            } else {
                CheckoutStatus::Pending
            });
        }
        let Some(payment) = view.payment else {
            return Ok(CheckoutStatus::Pending);
        };
        let entity = luna_core::EntityRef::Payment(payment);
        let credited = self.store.find_stream(&entity).await?.as_ref() == Some(user);
        Ok(if credited {
            CheckoutStatus::Done
        } else {
            CheckoutStatus::Pending
        })
    }

    /// Opens (or reuses) a hosted checkout for Luna Unlimited.
    pub async fn create_subscription(
        &self,
        user: &UserId,
        plan: &str,
        back: ReturnUrls,
        meta: &EventMetadata,
        idem: Option<&Idempotency<CheckoutView>>,
    ) -> Result<Reply<CheckoutView>, AppError> {
        let client_key = meta.idempotency_key.as_deref();
        self.engine
            .answered(
                idem,
                self.subscription_checkout(user, plan, back, client_key),
            )
            .await
    }

    async fn subscription_checkout(
        &self,
        user: &UserId,
        plan: &str,
        back: ReturnUrls,
        client_key: Option<&str>,
    ) -> Result<CheckoutView, AppError> {
        let gateway = self.gateway()?;
        let price = self
            .billing_settings
            .price_unlimited
            .clone()
            .ok_or(BillingError::NotConfigured)?;
        let known = self
            .catalog
            .packs
            .get(plan)
            .is_some_and(luna_core::Pack::is_subscription);
        if !known {
            return Err(BillingError::UnknownPlan.into());
        }
        self.ensure_can_buy(user).await?;
        let back = self.return_urls(back)?;
        let kept = self.billing.open_checkout(user).await?;
        if let Some(view) = self.kept_view(kept.as_ref()).await? {
            if view.open && view.url.is_some() {
                return Ok(view);
            }
            if let (true, Some(sub)) = (view.complete, &view.subscription) {
                // Paid, its notification not here yet: record it, and refuse a second one.
                self.record_paid_subscription(user, sub).await?;
                self.ensure_can_buy(user).await?;
            }
        }
        let customer = self.customer(user).await?;
        let checkout = NewCheckout::Subscription {
            user: user.clone(),
            price,
            customer: Some(customer),
        };
        let key = self.provider_key("checkout", user, client_key);
        let view = gateway
            .create_checkout(&checkout, &back, &key)
            .await
            .map_err(BillingError::from)?;
        let url = view.url.clone().ok_or_else(|| {
            BillingError::Gateway(GatewayError::Unreachable(
                "a checkout without a page".into(),
            ))
        })?;
        let new = OpenCheckout {
            id: view.id.clone(),
            url,
            expires_at: self.clock.now().plus(CHECKOUT_REUSE),
        };
        let previous = kept.as_ref().map(|k| k.id.as_str());
        if self.billing.keep_checkout(user, previous, &new).await? {
            return Ok(view);
        }
        // Another request opened one at the same time and kept it first: hand out that one
        // (the checkout made here is never shown and expires unused).
        let winner = self.billing.open_checkout(user).await?;
        match self.kept_view(winner.as_ref()).await? {
            Some(open) if open.open && open.url.is_some() => Ok(open),
            _ => Err(AppError::Contended),
        }
    }

    /// The return pages of a checkout: the defaults, or the client's when they point under the
    /// hub's public URL or a CORS origin (no open redirect).
    fn return_urls(&self, asked: ReturnUrls) -> Result<Return, AppError> {
        let s = &self.billing_settings;
        let pick = |url: Option<String>, default: &str, field| match url {
            None => Ok(default.to_owned()),
            Some(u) if allowed_return(&u, &s.allowed_origins) => Ok(u),
            Some(_) => Err(AppError::from(BillingError::ReturnUrl(field))),
        };
        Ok(Return {
            success_url: pick(asked.success_url, &s.success_url, "success_url")?,
            cancel_url: pick(asked.cancel_url, &s.cancel_url, "cancel_url")?,
        })
    }

    /// A kept subscription checkout as the provider sees it now (open, complete or expired),
    /// unless the hub's keeping of it lapsed.
    async fn kept_view(
        &self,
        kept: Option<&OpenCheckout>,
    ) -> Result<Option<CheckoutView>, AppError> {
        let Some(kept) = kept else {
            return Ok(None);
        };
        if kept.expires_at <= self.clock.now() {
            return Ok(None);
        }
        Ok(self
            .gateway()?
            .checkout(&kept.id)
            .await
            .map_err(BillingError::from)?)
    }

    /// Records a subscription a completed checkout made, read from the provider. Its label is
    /// the earliest time, so any notification of the provider's supersedes it, and it never
    /// overrides a state already recorded.
    async fn record_paid_subscription(
        &self,
        user: &UserId,
        subscription: &str,
    ) -> Result<(), AppError> {
        let Some(view) = self
            .gateway()?
            .subscription(subscription)
            .await
            .map_err(BillingError::from)?
        else {
            return Ok(());
        };
        let (Ok(sub), Some(owner)) = (
            luna_core::SubscriptionRef::parse(&view.id),
            view.user_id.as_deref(),
        ) else {
            return Ok(());
        };
        if owner != user.as_str() {
            return Ok(());
        }
        let change = self.change_of(&sub, &view, luna_core::Timestamp::from_secs(0));
        let meta = EventMetadata {
            actor: Some(format!("user:{user}")),
            ..EventMetadata::default()
        };
        self.change_subscription(user, change, &meta, None).await?;
        Ok(())
    }

    /// The user's provider customer: the stored link, else one created (with a key derived
    /// from the user, so two instances create one) and linked.
    async fn customer(&self, user: &UserId) -> Result<String, AppError> {
        if let Some(c) = self.billing.customer_of(user).await? {
            return Ok(c);
        }
        let key = format!("luna-customer-{user}");
        let created = self
            .gateway()?
            .create_customer(user, &key)
            .await
            .map_err(BillingError::from)?;
        self.billing.link_customer(user, &created).await?;
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::allowed_return;

    #[test]
    fn return_urls_stay_under_the_allowed_origins() {
        let origins = vec![
            "https://luna.example".to_owned(),
            "http://localhost:3000/".to_owned(),
        ];
        assert!(allowed_return(
            "https://luna.example/app/billing?x=1",
            &origins
        ));
        assert!(allowed_return(
            "http://localhost:3000/billing/success",
            &origins
        ));
        assert!(!allowed_return("https://luna.example.evil.com/x", &origins));
        assert!(!allowed_return(
            "https://evil.com/?https://luna.example",
            &origins
        ));
        assert!(!allowed_return("https://luna.exampleX", &origins));
        assert!(!allowed_return("https://luna.example@evil.com/", &origins));
        assert!(!allowed_return("https://luna.example/ x", &origins));
    }
}
