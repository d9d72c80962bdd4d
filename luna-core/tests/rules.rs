//! Table tests for every rule of the energy stream (spec §2.3), through one `check` helper.
#![allow(
    clippy::needless_pass_by_value,
    clippy::manual_let_else,
    reason = "table tests take their inputs by value and unwrap fixtures by match"
)]

use luna_core::{
    AccountOpened, ActionName, BonusGranted, Catalog, Cents, ClawbackCause, Command, Context,
    Currency, DomainError, EnergyConsumed, EnergyGranted, EnergyRefunded, EnergyReserved, Env,
    Event, EventKind, Id, Money, PackId, PackPurchased, PaymentRef, Policy, RawJson,
    ReservationReleased, RevocationCause, Revoked, Shortfall, SubscriptionChanged, SubscriptionRef,
    SubscriptionStatus, Timestamp, Wallet, decide, ensure_not_unlimited,
};
use luna_core::{Energy, history, view::CanPerformView, view::CheckView};

const T0: i64 = 1_700_000_000;
const WELCOME_TX: u128 = 0xAAAA;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0 + secs)
}

fn id(n: u128) -> Id {
    Id::from_u128(n)
}

fn ev(secs: i64, kind: EventKind) -> Event {
    Event {
        occurred_at: at(secs),
        kind,
    }
}

fn opened(secs: i64) -> Event {
    ev(
        secs,
        EventKind::AccountOpened(AccountOpened {
            tx: id(WELCOME_TX),
            welcome: Energy::new(85),
        }),
    )
}

fn priced(name: &str) -> luna_core::PricedAction {
    Catalog::builtin().grid.price(name).unwrap()
}

fn consumed(secs: i64, tx: u128, action: &str, cost: u32) -> Event {
    ev(
        secs,
        EventKind::EnergyConsumed(EnergyConsumed {
            tx: id(tx),
            action: ActionName::parse(action).unwrap(),
            cost: Energy::new(cost),
            notional: priced(action).cost,
            unlimited: cost == 0,
            grid_version: "2024-01".into(),
            context: None,
            from_reservation: false,
        }),
    )
}

fn reserved(secs: i64, tx: u128, action: &str, amount: u32, ttl: i64) -> Event {
    ev(
        secs,
        EventKind::EnergyReserved(EnergyReserved {
            tx: id(tx),
            action: ActionName::parse(action).unwrap(),
            amount: Energy::new(amount),
            notional: priced(action).cost,
            unlimited: amount == 0,
            grid_version: "2024-01".into(),
            expires_at: at(secs + ttl),
            context: None,
        }),
    )
}

fn pi(s: &str) -> PaymentRef {
    PaymentRef::parse(s).unwrap()
}

fn pack(s: &str) -> PackId {
    PackId::parse(s).unwrap()
}

fn eur(c: u64) -> Money {
    Money::new(Cents::new(c), Currency::EUR)
}

fn purchased(secs: i64, tx: u128, pack_id: &str, payment: &str, energy: u32, cents: u64) -> Event {
    ev(
        secs,
        EventKind::PackPurchased(PackPurchased {
            tx: id(tx),
            pack: pack(pack_id),
            payment: pi(payment),
            energy: Energy::new(energy),
            price: eur(cents),
        }),
    )
}

fn bonus(secs: i64, tx: u128, pack_id: &str, payment: &str, energy: u32) -> Event {
    ev(
        secs,
        EventKind::BonusGranted(BonusGranted {
            tx: id(tx),
            pack: pack(pack_id),
            payment: pi(payment),
            energy: Energy::new(energy),
        }),
    )
}

fn subscription(secs: i64, status: SubscriptionStatus, period_end: i64, created: i64) -> Event {
    ev(
        secs,
        EventKind::SubscriptionChanged(sub_change(status, period_end, created)),
    )
}

fn sub_change(status: SubscriptionStatus, period_end: i64, created: i64) -> SubscriptionChanged {
    SubscriptionChanged {
        subscription: SubscriptionRef::parse("sub_1").unwrap(),
        status,
        current_period_end: Some(at(period_end)),
        cancel_at_period_end: false,
        unlimited_plan: true,
        provider_created: at(created),
    }
}

/// Decides `command` at `now` on the fold of `given` and compares the produced event kinds (or
/// the refusal) with `expected`.
fn check(
    given: &[Event],
    command: Command,
    now: i64,
    expected: Result<Vec<EventKind>, DomainError>,
) {
    let catalog = Catalog::builtin();
    let policy = Policy::default();
    let env = Env {
        now: at(now),
        catalog: &catalog,
        policy: &policy,
        welcome_tx: id(WELCOME_TX),
    };
    let wallet = Wallet::fold(given);
    let got = decide(&wallet, &command, &env).map(|events| {
        assert!(
            events.iter().all(|e| e.occurred_at == at(now)),
            "events carry the decision time"
        );
        events.into_iter().map(|e| e.kind).collect::<Vec<_>>()
    });
    assert_eq!(got, expected);
}

fn balance_after(given: &[Event]) -> i64 {
    Wallet::fold(given).summary.balance.units()
}

fn consume_cmd(tx: u128, action: &str) -> Command {
    Command::Consume {
        tx: id(tx),
        action: priced(action),
        context: None,
    }
}

fn shortfall(required: u32, current: i64, available: i64, deficit: u64) -> DomainError {
    DomainError::InsufficientEnergy(Shortfall {
        required: Energy::new(required),
        current,
        available,
        deficit,
        required_pack: Some(pack("cafe_luna")),
    })
}

// ---- account opening -------------------------------------------------------------------

#[test]
fn a_first_command_opens_the_account_with_the_welcome_energy() {
    let consume = match consumed(0, 1, "lettre_motivation", 15).kind {
        EventKind::EnergyConsumed(c) => c,
        _ => unreachable!(),
    };
    check(
        &[],
        consume_cmd(1, "lettre_motivation"),
        0,
        Ok(vec![opened(0).kind, EventKind::EnergyConsumed(consume)]),
    );
}

#[test]
fn open_on_an_open_account_produces_nothing() {
    check(&[opened(0)], Command::Open, 5, Ok(vec![]));
    check(&[], Command::Open, 5, Ok(vec![opened(5).kind]));
}

#[test]
fn an_app_event_does_not_open_the_account() {
    let app = luna_core::AppEvent {
        event_type: luna_core::EventType::parse("letter.generated").unwrap(),
        app_source: luna_core::AppSource::parse("letters").unwrap(),
        data: RawJson::new("{}"),
        metadata: None,
        action: None,
        context: None,
    };
    check(
        &[],
        Command::RecordAppEvent(app.clone()),
        0,
        Ok(vec![EventKind::AppEvent(app)]),
    );
}

#[test]
fn a_client_cannot_post_a_hub_event_type() {
    let app = luna_core::AppEvent {
        event_type: luna_core::EventType::parse("energyConsumed").unwrap(),
        app_source: luna_core::AppSource::parse("letters").unwrap(),
        data: RawJson::new("{}"),
        metadata: None,
        action: None,
        context: None,
    };
    check(
        &[],
        Command::RecordAppEvent(app),
        0,
        Err(DomainError::ReservedEventType),
    );
}

// ---- consume ----------------------------------------------------------------------------

#[test]
fn a_consume_debits_the_cost_and_records_the_grid_version() {
    let given = [opened(0)];
    let ctx = Context::new(
        RawJson::new(r#"{"app_source":"letters"}"#),
        Some("letters".into()),
        None,
        None,
    );
    let command = Command::Consume {
        tx: id(7),
        action: priced("lettre_motivation"),
        context: Some(ctx.clone()),
    };
    check(
        &given,
        command,
        10,
        Ok(vec![EventKind::EnergyConsumed(EnergyConsumed {
            tx: id(7),
            action: ActionName::parse("lettre_motivation").unwrap(),
            cost: Energy::new(15),
            notional: Energy::new(15),
            unlimited: false,
            grid_version: "2024-01".into(),
            context: Some(ctx),
            from_reservation: false,
        })]),
    );
    assert_eq!(
        balance_after(&[opened(0), consumed(10, 7, "lettre_motivation", 15)]),
        70
    );
}

#[test]
fn a_consume_beyond_the_balance_is_refused_with_the_pack_to_buy() {
    let given = [
        opened(0),
        consumed(1, 1, "plan_reconversion", 50),
        consumed(2, 2, "mirror_match", 30),
    ];
    assert_eq!(balance_after(&given), 5);
    check(
        &given,
        consume_cmd(3, "mirror_match"),
        3,
        Err(shortfall(30, 5, 5, 25)),
    );
}

#[test]
fn a_consume_may_spend_the_balance_exactly_to_zero() {
    let given = [
        opened(0),
        consumed(1, 1, "plan_reconversion", 50),
        consumed(2, 2, "mirror_match", 30),
    ];
    check(
        &given,
        consume_cmd(3, "conseil_rapide"),
        3,
        Ok(vec![consumed(3, 3, "conseil_rapide", 5).kind]),
    );
}

#[test]
fn active_holds_reduce_what_a_consume_may_spend() {
    let given = [opened(0), reserved(1, 9, "plan_reconversion", 50, 300)];
    // 85 - 50 held = 35 available: 45 is refused, 35 fits exactly
    check(
        &given,
        consume_cmd(3, "audit_complet_profil"),
        2,
        Err(shortfall(45, 85, 35, 10)),
    );
    check(
        &given,
        consume_cmd(3, "strategie_candidature"),
        2,
        Ok(vec![consumed(2, 3, "strategie_candidature", 35).kind]),
    );
}

#[test]
fn an_expired_hold_no_longer_counts() {
    let given = [opened(0), reserved(1, 9, "plan_reconversion", 50, 60)];
    check(
        &given,
        consume_cmd(3, "audit_complet_profil"),
        61,
        Ok(vec![consumed(61, 3, "audit_complet_profil", 45).kind]),
    );
}

#[test]
fn a_negative_balance_refuses_every_consume() {
    let given = [
        opened(0),
        purchased(1, 2, "cafe_luna", "pi_1", 100, 299),
        consumed(2, 3, "plan_reconversion", 50),
        consumed(3, 4, "plan_reconversion", 50),
        consumed(4, 5, "plan_reconversion", 50),
        ev(
            5,
            EventKind::PackRevoked(Revoked {
                tx: id(6),
                payment: pi("pi_1"),
                energy: Energy::new(100),
                cause: RevocationCause::Refunded,
            }),
        ),
    ];
    assert_eq!(balance_after(&given), -65);
    check(
        &given,
        consume_cmd(7, "conseil_rapide"),
        6,
        Err(shortfall(5, -65, -65, 70)),
    );
}

// ---- Unlimited --------------------------------------------------------------------------

#[test]
fn an_unlimited_consume_charges_nothing_and_records_the_notional_cost() {
    let given = [
        opened(0),
        subscription(1, SubscriptionStatus::Active, 1000, 1),
    ];
    check(
        &given,
        consume_cmd(3, "plan_reconversion"),
        2,
        Ok(vec![consumed(2, 3, "plan_reconversion", 0).kind]),
    );
}

#[test]
fn unlimited_ends_at_the_period_end() {
    let given = [
        opened(0),
        subscription(1, SubscriptionStatus::Active, 1000, 1),
    ];
    check(
        &given,
        consume_cmd(3, "conseil_rapide"),
        1000,
        Ok(vec![consumed(1000, 3, "conseil_rapide", 5).kind]),
    );
}

#[test]
fn only_active_or_trialing_subscriptions_are_unlimited() {
    for (status, unlimited) in [
        (SubscriptionStatus::Trialing, true),
        (SubscriptionStatus::PastDue, false),
        (SubscriptionStatus::Canceled, false),
        (SubscriptionStatus::Incomplete, false),
    ] {
        let w = Wallet::fold(&[opened(0), subscription(1, status, 1000, 1)]);
        assert_eq!(w.summary.is_unlimited(at(2)), unlimited, "{status:?}");
    }
}

#[test]
fn an_older_subscription_update_never_overrides_a_newer_one() {
    let given = [
        opened(0),
        subscription(1, SubscriptionStatus::Canceled, 1000, 50),
    ];
    check(
        &given,
        Command::ChangeSubscription(sub_change(SubscriptionStatus::Active, 2000, 40)),
        2,
        Ok(vec![]),
    );
    // Same provider time is not older: applied.
    let same = sub_change(SubscriptionStatus::Active, 2000, 50);
    check(
        &given,
        Command::ChangeSubscription(same.clone()),
        2,
        Ok(vec![EventKind::SubscriptionChanged(same)]),
    );
}

#[test]
fn a_one_off_pack_is_refused_before_payment_while_unlimited() {
    let w = Wallet::fold(&[
        opened(0),
        subscription(1, SubscriptionStatus::Active, 1000, 1),
    ]);
    assert_eq!(
        ensure_not_unlimited(&w, at(2)),
        Err(DomainError::AlreadyUnlimited)
    );
    assert_eq!(ensure_not_unlimited(&w, at(1000)), Ok(()));
}

#[test]
fn a_succeeded_payment_is_credited_even_while_unlimited() {
    let given = [
        opened(0),
        subscription(1, SubscriptionStatus::Active, 1000, 1),
    ];
    check(
        &given,
        Command::CreditPurchase {
            tx: id(5),
            bonus_tx: id(6),
            pack: pack("repas_luna"),
            payment: pi("pi_9"),
            paid: eur(999),
            reversal: None,
        },
        2,
        Ok(vec![purchased(2, 5, "repas_luna", "pi_9", 100, 999).kind]),
    );
}

// ---- holds ------------------------------------------------------------------------------

#[test]
fn a_reserve_holds_the_cost_for_its_ttl() {
    check(
        &[opened(0)],
        Command::Reserve {
            tx: id(9),
            action: priced("mirror_match"),
            ttl_seconds: Some(60),
            context: None,
        },
        5,
        Ok(vec![reserved(5, 9, "mirror_match", 30, 60).kind]),
    );
    check(
        &[opened(0)],
        Command::Reserve {
            tx: id(9),
            action: priced("mirror_match"),
            ttl_seconds: None,
            context: None,
        },
        5,
        Ok(vec![reserved(5, 9, "mirror_match", 30, 300).kind]),
    );
}

#[test]
fn a_reserve_ttl_must_be_between_one_second_and_an_hour() {
    for ttl in [0, 3601] {
        check(
            &[opened(0)],
            Command::Reserve {
                tx: id(9),
                action: priced("mirror_match"),
                ttl_seconds: Some(ttl),
                context: None,
            },
            5,
            Err(DomainError::TtlOutOfRange),
        );
    }
}

#[test]
fn a_reserve_beyond_available_energy_is_refused() {
    let given = [opened(0), reserved(1, 8, "plan_reconversion", 50, 300)];
    check(
        &given,
        Command::Reserve {
            tx: id(9),
            action: priced("audit_complet_profil"),
            ttl_seconds: None,
            context: None,
        },
        5,
        Err(shortfall(45, 85, 35, 10)),
    );
}

#[test]
fn a_reserve_while_unlimited_holds_nothing() {
    let given = [
        opened(0),
        subscription(1, SubscriptionStatus::Active, 1000, 1),
    ];
    check(
        &given,
        Command::Reserve {
            tx: id(9),
            action: priced("mirror_match"),
            ttl_seconds: Some(60),
            context: None,
        },
        5,
        Ok(vec![reserved(5, 9, "mirror_match", 0, 60).kind]),
    );
}

fn committed(secs: i64, tx: u128, action: &str, amount: u32) -> EventKind {
    let mut e = match consumed(secs, tx, action, amount).kind {
        EventKind::EnergyConsumed(c) => c,
        _ => unreachable!(),
    };
    e.from_reservation = true;
    EventKind::EnergyConsumed(e)
}

#[test]
fn a_commit_turns_the_hold_into_a_consume_of_the_same_id() {
    let given = [opened(0), reserved(1, 9, "mirror_match", 30, 300)];
    check(
        &given,
        Command::Commit {
            tx: id(9),
            context: None,
        },
        10,
        Ok(vec![committed(10, 9, "mirror_match", 30)]),
    );
    let after = [
        opened(0),
        reserved(1, 9, "mirror_match", 30, 300),
        ev(10, committed(10, 9, "mirror_match", 30)),
    ];
    let w = Wallet::fold(&after);
    assert_eq!(w.summary.balance.units(), 55);
    assert_eq!(w.summary.reserved(at(11)), 0);
}

#[test]
fn a_hold_resolves_at_most_once() {
    let base = [opened(0), reserved(1, 9, "mirror_match", 30, 300)];
    let mut after_commit = base.to_vec();
    after_commit.push(ev(10, committed(10, 9, "mirror_match", 30)));
    check(
        &after_commit,
        Command::Commit {
            tx: id(9),
            context: None,
        },
        11,
        Ok(vec![]),
    );
    check(
        &after_commit,
        Command::Release { tx: id(9) },
        11,
        Err(DomainError::ReservationCommitted),
    );

    let mut after_release = base.to_vec();
    after_release.push(ev(
        10,
        EventKind::ReservationReleased(ReservationReleased {
            tx: id(9),
            amount: Energy::new(30),
        }),
    ));
    check(
        &after_release,
        Command::Release { tx: id(9) },
        11,
        Ok(vec![]),
    );
    check(
        &after_release,
        Command::Commit {
            tx: id(9),
            context: None,
        },
        11,
        Err(DomainError::ReservationReleased),
    );
}

#[test]
fn a_commit_after_expiry_is_refused_and_a_release_after_expiry_gives_nothing_back() {
    let given = [opened(0), reserved(1, 9, "mirror_match", 30, 60)];
    check(
        &given,
        Command::Commit {
            tx: id(9),
            context: None,
        },
        61,
        Err(DomainError::ReservationExpired),
    );
    check(&given, Command::Release { tx: id(9) }, 61, Ok(vec![]));
}

#[test]
fn a_release_returns_the_hold() {
    let given = [opened(0), reserved(1, 9, "mirror_match", 30, 60)];
    check(
        &given,
        Command::Release { tx: id(9) },
        10,
        Ok(vec![EventKind::ReservationReleased(ReservationReleased {
            tx: id(9),
            amount: Energy::new(30),
        })]),
    );
}

#[test]
fn an_unknown_reservation_is_not_found() {
    check(
        &[opened(0)],
        Command::Commit {
            tx: id(9),
            context: None,
        },
        1,
        Err(DomainError::ReservationNotFound),
    );
    check(
        &[opened(0), consumed(1, 9, "conseil_rapide", 5)],
        Command::Release { tx: id(9) },
        2,
        Err(DomainError::ReservationNotFound),
    );
}

#[test]
fn a_commit_of_an_unlimited_hold_records_an_unlimited_consume() {
    let given = [
        opened(0),
        subscription(1, SubscriptionStatus::Active, 100, 1),
        reserved(2, 9, "mirror_match", 0, 300),
    ];
    // the subscription ended at 100, the hold was Unlimited: still an Unlimited consume
    check(
        &given,
        Command::Commit {
            tx: id(9),
            context: None,
        },
        150,
        Ok(vec![committed(150, 9, "mirror_match", 0)]),
    );
}

#[test]
fn a_commit_context_replaces_the_reserved_one() {
    let given = [opened(0), reserved(1, 9, "mirror_match", 30, 300)];
    let ctx = Context::new(RawJson::new("{\"a\":1}"), None, None, None);
    let mut expected = match committed(10, 9, "mirror_match", 30) {
        EventKind::EnergyConsumed(c) => c,
        _ => unreachable!(),
    };
    expected.context = Some(ctx.clone());
    check(
        &given,
        Command::Commit {
            tx: id(9),
            context: Some(ctx),
        },
        10,
        Ok(vec![EventKind::EnergyConsumed(expected)]),
    );
}

#[test]
fn a_commit_after_a_clawback_took_the_held_energy_is_refused() {
    let given = [
        opened(0),
        purchased(1, 2, "cafe_luna", "pi_1", 100, 299),
        reserved(2, 9, "plan_reconversion", 50, 300),
        ev(
            3,
            EventKind::PackRevoked(Revoked {
                tx: id(6),
                payment: pi("pi_1"),
                energy: Energy::new(100),
                cause: RevocationCause::Refunded,
            }),
        ),
        consumed(4, 7, "conseil_rapide", 0), // zero-cost marker, no effect
    ];
    assert_eq!(balance_after(&given), 85);
    let given = [
        opened(0),
        purchased(1, 2, "cafe_luna", "pi_1", 100, 299),
        consumed(2, 3, "plan_reconversion", 50),
        consumed(2, 4, "plan_reconversion", 50),
        reserved(3, 9, "plan_reconversion", 50, 300),
        ev(
            4,
            EventKind::PackRevoked(Revoked {
                tx: id(6),
                payment: pi("pi_1"),
                energy: Energy::new(100),
                cause: RevocationCause::Refunded,
            }),
        ),
    ];
    assert_eq!(balance_after(&given), -15);
    let got = {
        let catalog = Catalog::builtin();
        let policy = Policy::default();
        let env = Env {
            now: at(5),
            catalog: &catalog,
            policy: &policy,
            welcome_tx: id(WELCOME_TX),
        };
        decide(
            &Wallet::fold(&given),
            &Command::Commit {
                tx: id(9),
                context: None,
            },
            &env,
        )
    };
    assert!(matches!(got, Err(DomainError::InsufficientEnergy(s)) if s.deficit == 65));
}

// ---- refunds ----------------------------------------------------------------------------

fn refund_cmd(of: u128, amount: Option<u32>, by_user: bool) -> Command {
    Command::Refund {
        tx: id(100),
        of: id(of),
        amount: amount.map(Energy::new),
        reason: "ai failed".into(),
        by_user,
    }
}

fn refunded(of: u128, amount: u32) -> EventKind {
    refunded_by(of, amount, false)
}

fn refunded_by(of: u128, amount: u32, by_user: bool) -> EventKind {
    EventKind::EnergyRefunded(EnergyRefunded {
        tx: id(100),
        refunded_tx: id(of),
        amount: Energy::new(amount),
        reason: "ai failed".into(),
        by_user,
    })
}

#[test]
fn a_refund_gives_back_all_of_a_consume_by_default() {
    let given = [opened(0), consumed(1, 5, "lettre_motivation", 15)];
    check(
        &given,
        refund_cmd(5, None, false),
        10,
        Ok(vec![refunded(5, 15)]),
    );
}

#[test]
fn a_partial_refund_gives_back_the_amount_asked() {
    let given = [opened(0), consumed(1, 5, "lettre_motivation", 15)];
    check(
        &given,
        refund_cmd(5, Some(4), false),
        10,
        Ok(vec![refunded(5, 4)]),
    );
}

#[test]
fn a_refund_never_exceeds_its_consume() {
    let given = [opened(0), consumed(1, 5, "lettre_motivation", 15)];
    for amount in [0, 16] {
        check(
            &given,
            refund_cmd(5, Some(amount), false),
            10,
            Err(DomainError::RefundAmountOutOfRange {
                max: Some(Energy::new(15)),
            }),
        );
    }
}

#[test]
fn a_consume_is_refunded_at_most_once() {
    let given = [
        opened(0),
        consumed(1, 5, "lettre_motivation", 15),
        ev(2, refunded(5, 4)),
    ];
    check(
        &given,
        refund_cmd(5, Some(1), false),
        10,
        Err(DomainError::AlreadyRefunded),
    );
}

#[test]
fn an_unlimited_consume_has_nothing_to_refund() {
    let given = [opened(0), consumed(1, 5, "lettre_motivation", 0)];
    check(
        &given,
        refund_cmd(5, None, false),
        10,
        Err(DomainError::NothingToRefund),
    );
}

#[test]
fn a_refund_after_the_window_is_refused() {
    let given = [opened(0), consumed(1, 5, "lettre_motivation", 15)];
    let week = 7 * 86_400;
    check(
        &given,
        refund_cmd(5, None, false),
        1 + week,
        Ok(vec![refunded(5, 15)]),
    );
    check(
        &given,
        refund_cmd(5, None, false),
        2 + week,
        Err(DomainError::RefundWindowExpired),
    );
}

#[test]
fn a_refund_of_an_unknown_or_non_consume_transaction_is_not_found() {
    let given = [opened(0), reserved(1, 9, "mirror_match", 30, 300)];
    check(
        &given,
        refund_cmd(42, None, false),
        2,
        Err(DomainError::TransactionNotFound),
    );
    check(
        &given,
        refund_cmd(9, None, false),
        2,
        Err(DomainError::TransactionNotFound),
    );
    check(
        &given,
        refund_cmd(WELCOME_TX, None, false),
        2,
        Err(DomainError::TransactionNotFound),
    );
}

#[test]
fn a_user_may_not_refund_an_ineligible_action_but_a_service_may() {
    let given = [opened(0), consumed(1, 5, "conseil_rapide", 5)];
    check(
        &given,
        refund_cmd(5, None, true),
        2,
        Err(DomainError::RefundNotEligible),
    );
    check(
        &given,
        refund_cmd(5, None, false),
        2,
        Ok(vec![refunded(5, 5)]),
    );
}

/// Three self-refunds at `days` days after the start, then a fourth consume to refund.
fn after_three_self_refunds(days: [i64; 3]) -> Vec<Event> {
    let mut given = vec![opened(0)];
    for (i, d) in days.iter().enumerate() {
        let tx = 10 + i as u128;
        given.push(consumed(d * 86_400, tx, "lettre_motivation", 15));
        given.push(ev(d * 86_400 + 1, refunded_by(tx, 15, true)));
    }
    given.push(consumed(40 * 86_400, 20, "lettre_motivation", 15));
    given
}

#[test]
fn a_user_may_refund_at_most_three_of_their_own_consumes_per_rolling_30_days() {
    let given = after_three_self_refunds([35, 36, 37]);
    check(
        &given,
        refund_cmd(20, None, true),
        40 * 86_400 + 5,
        Err(DomainError::RefundQuotaExceeded),
    );
    // a service is not limited
    check(
        &given,
        refund_cmd(20, None, false),
        40 * 86_400 + 5,
        Ok(vec![refunded(20, 15)]),
    );
}

#[test]
fn the_refund_quota_frees_up_as_refunds_leave_the_window() {
    // the oldest self-refund is 31 days old by then: only two count
    let given = after_three_self_refunds([9, 36, 37]);
    check(
        &given,
        refund_cmd(20, None, true),
        40 * 86_400 + 5,
        Ok(vec![refunded_by(20, 15, true)]),
    );
}

#[test]
fn service_refunds_do_not_count_against_the_users_quota() {
    let mut given = vec![opened(0)];
    for i in 0..3u128 {
        given.push(consumed(86_400, 10 + i, "lettre_motivation", 15));
        given.push(ev(86_400 + 1, refunded_by(10 + i, 15, false)));
    }
    given.push(consumed(86_400 * 2, 20, "lettre_motivation", 15));
    check(
        &given,
        refund_cmd(20, None, true),
        86_400 * 2 + 5,
        Ok(vec![refunded_by(20, 15, true)]),
    );
}

// ---- purchases, bonus, grants, clawback -------------------------------------------------

fn credit(payment: &str, pack_id: &str, cents: u64) -> Command {
    Command::CreditPurchase {
        tx: id(50),
        bonus_tx: id(51),
        pack: pack(pack_id),
        payment: pi(payment),
        paid: eur(cents),
        reversal: None,
    }
}

#[test]
fn a_first_purchase_of_a_pack_with_a_bonus_grants_the_bonus_apart() {
    check(
        &[opened(0)],
        credit("pi_1", "cafe_luna", 299),
        1,
        Ok(vec![
            purchased(1, 50, "cafe_luna", "pi_1", 100, 299).kind,
            bonus(1, 51, "cafe_luna", "pi_1", 10).kind,
        ]),
    );
    let w = Wallet::fold(&[
        opened(0),
        purchased(1, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(1, 51, "cafe_luna", "pi_1", 10),
    ]);
    assert_eq!(w.summary.balance.units(), 195);
    assert_eq!(w.summary.total_purchased, 110);
}

#[test]
fn only_the_first_pack_ever_credited_earns_the_bonus() {
    let given = [
        opened(0),
        purchased(1, 2, "petit_dej_luna", "pi_0", 100, 599),
    ];
    check(
        &given,
        credit("pi_1", "cafe_luna", 299),
        2,
        Ok(vec![purchased(2, 50, "cafe_luna", "pi_1", 100, 299).kind]),
    );
}

#[test]
fn a_payment_is_credited_exactly_once() {
    let given = [
        opened(0),
        purchased(1, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(1, 51, "cafe_luna", "pi_1", 10),
    ];
    check(&given, credit("pi_1", "cafe_luna", 299), 2, Ok(vec![]));
}

#[test]
fn a_credit_must_match_the_catalogue_price_currency_and_kind() {
    check(
        &[opened(0)],
        credit("pi_1", "cafe_luna", 298),
        1,
        Err(DomainError::AmountMismatch),
    );
    let usd = Command::CreditPurchase {
        tx: id(50),
        bonus_tx: id(51),
        pack: pack("cafe_luna"),
        payment: pi("pi_1"),
        paid: Money::new(Cents::new(299), Currency::parse("usd").unwrap()),
        reversal: None,
    };
    check(&[opened(0)], usd, 1, Err(DomainError::CurrencyMismatch));
    check(
        &[opened(0)],
        credit("pi_1", "luna_unlimited", 2999),
        1,
        Err(DomainError::NotAOneOffPack),
    );
    check(
        &[opened(0)],
        credit("pi_1", "nope", 2999),
        1,
        Err(DomainError::UnknownPack),
    );
}

#[test]
fn a_grant_credits_the_balance() {
    check(
        &[opened(0)],
        Command::Grant {
            tx: id(3),
            amount: Energy::new(40),
            reason: "support".into(),
        },
        1,
        Ok(vec![EventKind::EnergyGranted(EnergyGranted {
            tx: id(3),
            amount: Energy::new(40),
            reason: "support".into(),
        })]),
    );
    check(
        &[opened(0)],
        Command::Grant {
            tx: id(3),
            amount: Energy::ZERO,
            reason: "x".into(),
        },
        1,
        Err(DomainError::InvalidGrantAmount),
    );
}

fn revoked(kind: &str, tx: u128, energy: u32, cause: RevocationCause) -> EventKind {
    let r = Revoked {
        tx: id(tx),
        payment: pi("pi_1"),
        energy: Energy::new(energy),
        cause,
    };
    if kind == "pack" {
        EventKind::PackRevoked(r)
    } else {
        EventKind::BonusRevoked(r)
    }
}

fn clawback(cause: ClawbackCause) -> Command {
    Command::Clawback {
        tx: id(60),
        bonus_tx: id(61),
        payment: pi("pi_1"),
        cause,
    }
}

#[test]
fn a_dispute_revokes_the_pack_and_its_bonus_and_may_go_negative() {
    let given = [
        opened(0),
        purchased(1, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(1, 51, "cafe_luna", "pi_1", 10),
        consumed(2, 3, "plan_reconversion", 50),
        consumed(2, 4, "plan_reconversion", 50),
        consumed(2, 5, "plan_reconversion", 50),
    ];
    check(
        &given,
        clawback(ClawbackCause::Disputed),
        3,
        Ok(vec![
            revoked("pack", 60, 100, RevocationCause::Disputed),
            revoked("bonus", 61, 10, RevocationCause::Disputed),
        ]),
    );
    let mut after = given.to_vec();
    after.push(ev(3, revoked("pack", 60, 100, RevocationCause::Disputed)));
    after.push(ev(3, revoked("bonus", 61, 10, RevocationCause::Disputed)));
    assert_eq!(balance_after(&after), 85 + 110 - 150 - 110);
}

#[test]
fn a_partial_refund_revokes_proportionally_and_only_the_difference() {
    let given = [
        opened(0),
        purchased(1, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(1, 51, "cafe_luna", "pi_1", 10),
    ];
    // half refunded: floor(110 × 150 / 299) = 55 → pack floor(100×150/299)=50, bonus 5
    check(
        &given,
        clawback(ClawbackCause::Refunded {
            amount_refunded: Cents::new(150),
        }),
        2,
        Ok(vec![
            revoked("pack", 60, 50, RevocationCause::Refunded),
            revoked("bonus", 61, 5, RevocationCause::Refunded),
        ]),
    );
    let mut after = given.to_vec();
    after.push(ev(2, revoked("pack", 60, 50, RevocationCause::Refunded)));
    after.push(ev(2, revoked("bonus", 61, 5, RevocationCause::Refunded)));
    // the same cumulative amount again revokes nothing more
    check(
        &after,
        clawback(ClawbackCause::Refunded {
            amount_refunded: Cents::new(150),
        }),
        3,
        Ok(vec![]),
    );
    // fully refunded: only the rest
    check(
        &after,
        clawback(ClawbackCause::Refunded {
            amount_refunded: Cents::new(299),
        }),
        3,
        Ok(vec![
            revoked("pack", 60, 50, RevocationCause::Refunded),
            revoked("bonus", 61, 5, RevocationCause::Refunded),
        ]),
    );
}

#[test]
fn a_clawback_of_an_unknown_payment_is_refused() {
    check(
        &[opened(0)],
        clawback(ClawbackCause::Disputed),
        1,
        Err(DomainError::PurchaseNotFound),
    );
}

// ---- views ------------------------------------------------------------------------------

#[test]
fn the_check_view_reports_balance_holds_and_totals() {
    let given = [
        opened(0),
        purchased(1, 2, "petit_dej_luna", "pi_0", 100, 599),
        reserved(2, 9, "mirror_match", 30, 300),
        consumed(3, 4, "lettre_motivation", 15),
    ];
    let v = CheckView::of(&Wallet::fold(&given).summary, at(4));
    assert_eq!(v.current_energy, 170);
    assert_eq!(v.percentage, 170);
    assert_eq!(v.available_energy, 140);
    assert_eq!(v.reserved_energy, 30);
    assert!(v.can_perform_basic_action);
    assert_eq!(v.last_recharge, Some(at(1)));
    assert_eq!(v.total_consumed, 15);
    assert_eq!(v.total_purchased, 100);
    assert!(!v.unlimited());
    assert_eq!(v.unlimited_until, None);
}

#[test]
fn the_check_view_while_unlimited_reports_the_stored_balance_and_period_end() {
    let given = [
        opened(0),
        consumed(1, 1, "plan_reconversion", 50),
        consumed(1, 2, "mirror_match", 30),
        subscription(2, SubscriptionStatus::Active, 1000, 2),
    ];
    let v = CheckView::of(&Wallet::fold(&given).summary, at(3));
    assert_eq!(v.current_energy, 5);
    assert!(v.can_perform_basic_action);
    assert!(v.unlimited());
    assert_eq!(v.unlimited_until, Some(at(1000)));
}

#[test]
fn can_perform_answers_cannot_with_a_deficit_and_a_pack() {
    let catalog = Catalog::builtin();
    let policy = Policy::default();
    let env = Env {
        now: at(5),
        catalog: &catalog,
        policy: &policy,
        welcome_tx: id(1),
    };
    let w = Wallet::fold(&[
        opened(0),
        consumed(1, 1, "plan_reconversion", 50),
        consumed(1, 2, "mirror_match", 30),
    ]);
    let v = CanPerformView::of(&w, priced("mirror_match"), &env);
    assert!(!v.can_perform);
    assert_eq!(
        (v.current_energy, v.available_energy, v.deficit),
        (5, 5, 25)
    );
    assert_eq!(v.required_pack, Some(pack("cafe_luna")));
    let ok = CanPerformView::of(&w, priced("conseil_rapide"), &env);
    assert!(ok.can_perform);
    assert_eq!((ok.deficit, ok.required_pack), (0, None));
}

#[test]
fn can_perform_while_unlimited_requires_nothing() {
    let catalog = Catalog::builtin();
    let policy = Policy::default();
    let env = Env {
        now: at(5),
        catalog: &catalog,
        policy: &policy,
        welcome_tx: id(1),
    };
    let w = Wallet::fold(&[
        opened(0),
        consumed(1, 1, "plan_reconversion", 50),
        consumed(1, 2, "mirror_match", 30),
        subscription(2, SubscriptionStatus::Active, 1000, 2),
    ]);
    let v = CanPerformView::of(&w, priced("plan_reconversion"), &env);
    assert!(v.can_perform && v.unlimited());
    assert_eq!(
        (v.energy_required, v.deficit, v.required_pack),
        (Energy::ZERO, 0, None)
    );
}

#[test]
fn a_restored_wallet_decides_like_a_full_fold() {
    let events = [
        opened(0),
        reserved(1, 9, "mirror_match", 30, 300),
        consumed(2, 5, "lettre_motivation", 15),
        purchased(3, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(3, 51, "cafe_luna", "pi_1", 10),
    ];
    let full = Wallet::fold(&events);
    let entity_events: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind.entity_ref().is_some())
        .collect();
    let restored = Wallet::restore(full.summary.clone(), entity_events);
    assert_eq!(restored, full);
}

// ---- history and analytics ----------------------------------------------------------------

#[test]
fn the_history_has_one_row_per_energy_event_with_balances_before_and_after() {
    let events = [
        opened(0),
        purchased(1, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(1, 51, "cafe_luna", "pi_1", 10),
        reserved(2, 9, "mirror_match", 30, 300),
        ev(3, committed(3, 9, "mirror_match", 30)),
        ev(4, refunded(9, 10)),
        ev(5, revoked("pack", 60, 100, RevocationCause::Disputed)),
    ];
    let rows = history::transactions(&events);
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "welcome", "purchase", "bonus", "consume", "refund", "revoke"
        ]
    );
    let changes: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.energy_before.units(), r.energy_after.units()))
        .collect();
    assert_eq!(
        changes,
        [
            (0, 85),
            (85, 185),
            (185, 195),
            (195, 165),
            (165, 175),
            (175, 75)
        ]
    );
    assert_eq!(
        rows[3].feature_used.map(ActionName::as_str),
        Some("mirror_match")
    );
    assert_eq!(rows[0].feature_used, None);
}

#[test]
fn analytics_count_gross_consumes_refunds_and_purchases_in_range() {
    let day = 86_400;
    let events = [
        opened(0),
        purchased(1, 50, "cafe_luna", "pi_1", 100, 299),
        bonus(1, 51, "cafe_luna", "pi_1", 10),
        consumed(10, 1, "lettre_motivation", 15),
        consumed(day + 10, 2, "lettre_motivation", 15),
        consumed(day + 20, 3, "mirror_match", 30),
        ev(day + 30, refunded(3, 30)),
    ];
    let a = history::analytics(&events, None, None, at(2 * day));
    assert_eq!(a.current_energy, 85 + 110 - 60 + 30);
    assert_eq!(
        (
            a.total_consumed,
            a.total_purchased,
            a.total_refunded,
            a.total_transactions
        ),
        (60, 110, 30, 7)
    );
    assert_eq!(a.top_actions[0].0, "lettre_motivation");
    assert_eq!(a.top_actions[0].1.count, 2);
    assert_eq!(a.daily.len(), 2);
    assert_eq!(a.daily[1].1, 45);
    assert_eq!(a.member_since, Some(at(0)));
    let later = history::analytics(&events, Some(at(day)), None, at(2 * day));
    assert_eq!(
        (
            later.total_consumed,
            later.total_purchased,
            later.total_transactions
        ),
        (45, 0, 3)
    );
    assert_eq!(later.current_energy, a.current_energy);
    let earlier = history::analytics(&events, None, Some(at(day + 10)), at(2 * day));
    assert_eq!(earlier.total_consumed, 15);
}
