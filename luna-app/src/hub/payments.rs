//! Payments through the provider: a PaymentIntent for a pack, the one credit procedure shared by
//! confirm-payment, `/luna/energy/purchase`, the webhook and reconciliation, the Unlimited
//! subscription through a hosted checkout, cancellation (spec §3.6, §6 "Payments").

use luna_core::{
    ClawbackCause, Currency, DomainError, Money, PackId, PackKind, PaymentRef, Span, UserId,
};
use luna_ports::{
    CheckoutView, EventMetadata, NewCheckout, NewPayment, OpenCheckout, PaymentGateway,
    PaymentView, Return, UnmatchedPayment,
};

use super::{CreditRequest, Hub};
use crate::engine::Reply;
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

/// Whether `url` is under one of `origins` (scheme, host and port equal; path below).
pub fn allowed_return(url: &str, origins: &[String]) -> bool {
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

    /// The key a provider call is sent with: derived from the client's idempotency key (so a
    /// retried request creates nothing twice), else fresh.
    pub(super) fn provider_key(&self, what: &str, client_key: Option<&str>) -> String {
        match client_key {
            Some(k) => format!("luna-{what}-{}", &super::hash_secret(k)[..40]),
            None => format!("luna-{what}-{:032x}", self.ids.next_id().as_u128()),
        }
    }

    /// Creates a PaymentIntent for a one-off pack, refusing before payment while Unlimited.
    pub async fn create_intent(
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
        let key = self.provider_key(&format!("intent-{user}"), client_key);
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
    ) -> Result<PurchaseOutcome, AppError> {
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
        match self.credit_purchase(request, meta, None).await? {
            Reply::Fresh(o) => Ok(o),
            Reply::Replayed(_) | Reply::Duplicate => {
                unreachable!("no idempotency key and no provider event")
            }
        }
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
        let Some(c) = self
            .gateway()?
            .charge(charge)
            .await
            .map_err(BillingError::from)?
        else {
            return Ok(None);
        };
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
        Ok(match self.credit_purchase(request, meta, None).await {
            Ok(Reply::Fresh(o)) => CreditResult::Credited(o),
            Ok(Reply::Replayed(_) | Reply::Duplicate) => CreditResult::Duplicate,
            Err(e) => return Err(e),
        })
    }

    /// Opens (or reuses) a hosted checkout for Luna Unlimited.
    pub async fn create_subscription(
        &self,
        user: &UserId,
        plan: &str,
        back: Option<Return>,
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
        if let Some(open) = self.reusable_checkout(user).await? {
            return Ok(open);
        }
        let customer = self.customer(user).await?;
        let checkout = NewCheckout::Subscription {
            user: user.clone(),
            price,
            customer: Some(customer),
        };
        let key = self.provider_key(&format!("checkout-{user}"), client_key);
        let view = gateway
            .create_checkout(&checkout, &back, &key)
            .await
            .map_err(BillingError::from)?;
        if let Some(url) = &view.url {
            let kept = OpenCheckout {
                id: view.id.clone(),
                url: url.clone(),
                expires_at: self.clock.now().plus(CHECKOUT_REUSE),
            };
            self.billing.keep_checkout(user, &kept).await?;
        }
        Ok(view)
    }

    /// The return pages of a checkout: the defaults, or the client's when they point under the
    /// hub's public URL or a CORS origin (no open redirect).
    fn return_urls(&self, back: Option<Return>) -> Result<Return, AppError> {
        let s = &self.billing_settings;
        let Some(back) = back else {
            return Ok(Return {
                success_url: s.success_url.clone(),
                cancel_url: s.cancel_url.clone(),
            });
        };
        if !allowed_return(&back.success_url, &s.allowed_origins) {
            return Err(BillingError::ReturnUrl("success_url").into());
        }
        if !allowed_return(&back.cancel_url, &s.allowed_origins) {
            return Err(BillingError::ReturnUrl("cancel_url").into());
        }
        Ok(back)
    }

    /// The user's subscription checkout, if still open at the provider.
    async fn reusable_checkout(&self, user: &UserId) -> Result<Option<CheckoutView>, AppError> {
        let Some(kept) = self.billing.open_checkout(user).await? else {
            return Ok(None);
        };
        if kept.expires_at <= self.clock.now() {
            return Ok(None);
        }
        let view = self
            .gateway()?
            .checkout(&kept.id)
            .await
            .map_err(BillingError::from)?;
        Ok(view.filter(|v| v.open && v.url.is_some()))
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
    }
}
