//! The billing use cases with the payment provider mocked (`mockall`): what the hub asks
//! Stripe, and what it never asks — no PaymentIntent while Unlimited, nothing credited when
//! Stripe fails, one customer per user, a reversal read with the credit.

use std::sync::Arc;

use async_trait::async_trait;
use luna_app::{AppError, BillingError, BillingSettings, CreditStatus, Hub, Reply};
use luna_core::{
    Catalog, Cents, Currency, DomainError, PaymentRef, Policy, Span, SubscriptionChanged,
    SubscriptionRef, SubscriptionStatus, Timestamp, UserId,
};
use luna_ports::{
    ChargeView, CheckoutView, EventMetadata, EventVerifier, GatewayError, NewCheckout, NewPayment,
    PaymentGateway, PaymentPage, PaymentView, PriceView, ProviderChange, ProviderEvent, Return,
    SubscriptionView, WebhookError,
};
use luna_testkit::{FixedClock, MemoryStore, SequentialIds};
use mockall::mock;
use mockall::predicate::eq;

mock! {
    Gateway {}
    #[async_trait]
    impl PaymentGateway for Gateway {
        async fn create_payment(&self, p: &NewPayment, idempotency_key: &str) -> Result<PaymentView, GatewayError>;
        async fn payment(&self, id: &PaymentRef) -> Result<Option<PaymentView>, GatewayError>;
        async fn charge(&self, id: &str) -> Result<Option<ChargeView>, GatewayError>;
        async fn payments_since(&self, since: Timestamp, after: Option<String>) -> Result<PaymentPage, GatewayError>;
        async fn create_customer(&self, user: &UserId, idempotency_key: &str) -> Result<String, GatewayError>;
        async fn create_checkout(&self, checkout: &NewCheckout, back: &Return, idempotency_key: &str) -> Result<CheckoutView, GatewayError>;
        async fn checkout(&self, id: &str) -> Result<Option<CheckoutView>, GatewayError>;
        async fn subscription(&self, id: &str) -> Result<Option<SubscriptionView>, GatewayError>;
        async fn cancel_subscription(&self, id: &str, at_period_end: bool, idempotency_key: &str) -> Result<SubscriptionView, GatewayError>;
        async fn price(&self, id: &str) -> Result<Option<PriceView>, GatewayError>;
    }
}

mock! {
    Verifier {}
    impl EventVerifier for Verifier {
        fn verify_event(&self, signature: &str, body: &[u8], now: Timestamp) -> Result<ProviderEvent, WebhookError>;
    }
}

fn user(s: &str) -> UserId {
    UserId::parse(s).expect("user")
}

fn meta() -> EventMetadata {
    EventMetadata {
        actor: Some("user:test".into()),
        ..EventMetadata::default()
    }
}

fn hub(gateway: MockGateway, verifier: Option<MockVerifier>) -> Hub {
    let clock = Arc::new(FixedClock::default_start());
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let ports = luna_testkit::ports(store, clock, Arc::new(SequentialIds::new(1)));
    let settings = BillingSettings {
        price_unlimited: Some("price_u".into()),
        webhook_secret_set: true,
        success_url: "http://luna.test/ok".into(),
        cancel_url: "http://luna.test/cancel".into(),
        allowed_origins: vec!["http://luna.test".into()],
    };
    Hub::new(ports, Arc::new(Catalog::builtin()), Policy::default()).with_billing(
        settings,
        Some(Arc::new(gateway)),
        verifier.map(|v| Arc::new(v) as Arc<dyn EventVerifier>),
    )
}

fn paid(id: &str, owner: &str, charge: Option<&str>) -> PaymentView {
    PaymentView {
        id: PaymentRef::parse(id).expect("id"),
        status: "succeeded".into(),
        succeeded: true,
        amount: Cents::new(299),
        currency: Currency::EUR,
        user_id: Some(owner.into()),
        pack: Some("cafe_luna".into()),
        client_secret: None,
        charge: charge.map(str::to_owned),
        created: Timestamp::from_secs(1_700_000_000),
    }
}

fn charge(refunded: u64, disputed: bool) -> ChargeView {
    ChargeView {
        id: "ch_1".into(),
        payment: Some(PaymentRef::parse("pi_1").expect("id")),
        amount: Cents::new(299),
        amount_refunded: Cents::new(refunded),
        disputed,
    }
}

async fn balance(hub: &Hub, u: &str) -> i64 {
    hub.check(&user(u), &meta())
        .await
        .expect("check")
        .view
        .current_energy
}

#[tokio::test]
async fn no_payment_intent_is_created_while_the_user_is_unlimited() {
    let mut gateway = MockGateway::new();
    gateway.expect_create_payment().never();
    let hub = hub(gateway, None);
    let now = Timestamp::from_secs(0);
    let change = SubscriptionChanged {
        subscription: SubscriptionRef::parse("sub_1").expect("sub"),
        status: SubscriptionStatus::Active,
        current_period_end: Some(Timestamp::from_secs(4_000_000_000)),
        cancel_at_period_end: false,
        unlimited_plan: true,
        provider_created: now.plus(Span::seconds(1)),
    };
    hub.change_subscription(&user("alice"), change, &meta(), None)
        .await
        .expect("subscribed");
    let err = hub
        .create_intent(&user("alice"), "cafe_luna", None, &meta(), None)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, AppError::Domain(DomainError::AlreadyUnlimited)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_stripe_failure_credits_nothing() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_payment()
        .times(1)
        .returning(|_| Err(GatewayError::Unreachable("connection refused".into())));
    let hub = hub(gateway, None);
    let pi = PaymentRef::parse("pi_1").expect("id");
    let err = hub
        .confirm_payment(&user("alice"), &pi, None, &meta(), None)
        .await
        .expect_err("502");
    assert!(
        matches!(err, AppError::Billing(BillingError::Gateway(_))),
        "{err:?}"
    );
    assert_eq!(balance(&hub, "alice").await, 85);
}

#[tokio::test]
async fn another_users_payment_is_refused_before_any_credit_or_charge_lookup() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_payment()
        .returning(|id| Ok(Some(paid(id.as_str(), "bob", Some("ch_1")))));
    gateway.expect_charge().never();
    let hub = hub(gateway, None);
    let pi = PaymentRef::parse("pi_1").expect("id");
    let err = hub
        .confirm_payment(&user("alice"), &pi, None, &meta(), None)
        .await
        .expect_err("403");
    assert!(
        matches!(err, AppError::Billing(BillingError::OtherUser)),
        "{err:?}"
    );
    assert_eq!(balance(&hub, "bob").await, 85);
}

#[tokio::test]
async fn a_refund_stripe_already_recorded_is_clawed_back_with_the_credit() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_payment()
        .returning(|id| Ok(Some(paid(id.as_str(), "alice", Some("ch_1")))));
    gateway.expect_charge().with(eq("ch_1")).returning(|_| {
        Ok(Some(ChargeView {
            id: "ch_1".into(),
            payment: Some(PaymentRef::parse("pi_1").expect("id")),
            amount: Cents::new(299),
            amount_refunded: Cents::new(299),
            disputed: false,
        }))
    });
    let hub = hub(gateway, None);
    let pi = PaymentRef::parse("pi_1").expect("id");
    let out = hub
        .confirm_payment(&user("alice"), &pi, None, &meta(), None)
        .await
        .expect("credited")
        .fresh()
        .expect("fresh");
    assert_eq!(out.status, CreditStatus::Credited);
    assert_eq!(
        balance(&hub, "alice").await,
        85,
        "credited and revoked in one append"
    );
}

#[tokio::test]
async fn one_customer_per_user_with_a_key_derived_from_the_user() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_create_customer()
        .times(1)
        .withf(|u, key| u.as_str() == "alice" && key == "luna-customer-alice")
        .returning(|_, _| Ok("cus_1".into()));
    gateway
        .expect_create_checkout()
        .times(2)
        .withf(|c, _, _| matches!(c, NewCheckout::Subscription { customer: Some(c), price, .. } if c == "cus_1" && price == "price_u"))
        .returning(|_, _, _| {
            Ok(CheckoutView {
                id: "cs_1".into(),
                url: Some("https://pay/cs_1".into()),
                open: true,
                complete: false,
                subscription_mode: true,
                payment: None,
                subscription: None,
                customer: Some("cus_1".into()),
                user_id: Some("alice".into()),
                expires_at: None,
            })
        });
    // The kept checkout is no longer open: a second request opens another.
    gateway.expect_checkout().times(1).returning(|_| Ok(None));
    let hub = hub(gateway, None);
    for _ in 0..2 {
        let r = hub
            .create_subscription(
                &user("alice"),
                "luna_unlimited",
                luna_app::ReturnUrls::default(),
                &meta(),
                None,
            )
            .await
            .expect("checkout");
        assert!(matches!(r, Reply::Fresh(ref v) if v.id == "cs_1"));
    }
}

#[tokio::test]
async fn a_redelivered_event_is_applied_once_and_an_unsigned_one_not_at_all() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_charge()
        .returning(|_| Ok(Some(charge(0, false))));
    let mut verifier = MockVerifier::new();
    verifier
        .expect_verify_event()
        .withf(|sig, _, _| sig == "good")
        .returning(|_, _, _| {
            Ok(ProviderEvent {
                id: "evt_1".into(),
                created: Timestamp::from_secs(1_700_000_000),
                kind: "payment_intent.succeeded".into(),
                what: ProviderChange::PaymentSucceeded(paid("pi_1", "alice", Some("ch_1"))),
            })
        });
    verifier
        .expect_verify_event()
        .withf(|sig, _, _| sig != "good")
        .returning(|_, _, _| Err(WebhookError::InvalidSignature));
    let hub = hub(gateway, Some(verifier));
    let err = hub.webhook("forged", b"{}").await.expect_err("refused");
    assert!(matches!(
        err,
        AppError::Webhook(WebhookError::InvalidSignature)
    ));
    assert_eq!(balance(&hub, "alice").await, 85);
    let first = hub.webhook("good", b"{}").await.expect("applied");
    assert_eq!(first, luna_app::WebhookOutcome::Applied);
    for _ in 0..3 {
        let again = hub.webhook("good", b"{}").await.expect("duplicate");
        assert_eq!(again, luna_app::WebhookOutcome::Duplicate);
    }
    assert_eq!(balance(&hub, "alice").await, 85 + 110);
}

#[tokio::test]
async fn a_refund_made_while_the_credit_was_deciding_is_clawed_back_after_it() {
    // The credit reads the charge (nothing refunded), then Stripe refunds and the refund's
    // notification finds no purchase yet; the read after the credit's append sees the refund.
    let mut gateway = MockGateway::new();
    gateway
        .expect_payment()
        .returning(|id| Ok(Some(paid(id.as_str(), "alice", Some("ch_1")))));
    let mut reads = mockall::Sequence::new();
    gateway
        .expect_charge()
        .times(1)
        .in_sequence(&mut reads)
        .returning(|_| Ok(Some(charge(0, false))));
    gateway
        .expect_charge()
        .times(1)
        .in_sequence(&mut reads)
        .returning(|_| Ok(Some(charge(299, false))));
    let hub = hub(gateway, None);
    let pi = PaymentRef::parse("pi_1").expect("id");
    hub.confirm_payment(&user("alice"), &pi, None, &meta(), None)
        .await
        .expect("credited");
    assert_eq!(
        balance(&hub, "alice").await,
        85,
        "credited, then clawed back whole"
    );
}

#[tokio::test]
async fn a_payment_whose_charge_stripe_cannot_find_is_not_credited() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_payment()
        .returning(|id| Ok(Some(paid(id.as_str(), "alice", Some("ch_1")))));
    gateway.expect_charge().returning(|_| Ok(None));
    let hub = hub(gateway, None);
    let pi = PaymentRef::parse("pi_1").expect("id");
    let err = hub
        .confirm_payment(&user("alice"), &pi, None, &meta(), None)
        .await
        .expect_err("502");
    assert!(
        matches!(err, AppError::Billing(BillingError::Gateway(_))),
        "{err:?}"
    );
    assert_eq!(balance(&hub, "alice").await, 85);
}

#[tokio::test]
async fn a_subscription_event_records_stripes_current_state_not_the_events_copy() {
    let mut gateway = MockGateway::new();
    gateway
        .expect_subscription()
        .with(eq("sub_1"))
        .returning(|_| {
            Ok(Some(SubscriptionView {
                id: "sub_1".into(),
                status: SubscriptionStatus::Active,
                customer: Some("cus_1".into()),
                user_id: Some("alice".into()),
                current_period_end: Some(Timestamp::from_secs(4_000_000_000)),
                cancel_at_period_end: false,
                prices: vec!["price_u".into()],
            }))
        });
    let mut verifier = MockVerifier::new();
    verifier.expect_verify_event().returning(|_, _, _| {
        // The event's copy says `incomplete` (created, then updated in the same second).
        Ok(ProviderEvent {
            id: "evt_created".into(),
            created: Timestamp::from_secs(1_700_000_000),
            kind: "customer.subscription.created".into(),
            what: ProviderChange::Subscription(SubscriptionView {
                id: "sub_1".into(),
                status: SubscriptionStatus::Incomplete,
                customer: Some("cus_1".into()),
                user_id: Some("alice".into()),
                current_period_end: None,
                cancel_at_period_end: false,
                prices: vec!["price_u".into()],
            }),
        })
    });
    let hub = hub(gateway, Some(verifier));
    assert_eq!(
        hub.webhook("sig", b"{}").await.expect("applied"),
        luna_app::WebhookOutcome::Applied
    );
    let err = hub
        .create_intent(&user("alice"), "cafe_luna", None, &meta(), None)
        .await
        .expect_err("Unlimited");
    assert!(
        matches!(err, AppError::Domain(DomainError::AlreadyUnlimited)),
        "{err:?}"
    );
}
