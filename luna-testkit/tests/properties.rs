//! Property tests for the invariants of spec §2.3, over histories `decide` produced from
//! random commands.

use std::collections::BTreeMap;

use luna_core::{Command, Event, EventKind, Id, Wallet};
use luna_testkit::strategies::{Sim, history, ops};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// welcome + purchased + bonus + granted + refunded − consumed − revoked, from the events.
fn ledger(events: &[Event]) -> i64 {
    events
        .iter()
        .map(|e| match &e.kind {
            EventKind::AccountOpened(o) => i64::from(o.welcome.units()),
            EventKind::PackPurchased(p) => i64::from(p.energy.units()),
            EventKind::BonusGranted(b) => i64::from(b.energy.units()),
            EventKind::EnergyGranted(g) => i64::from(g.amount.units()),
            EventKind::EnergyRefunded(r) => i64::from(r.amount.units()),
            EventKind::EnergyConsumed(c) => -i64::from(c.cost.units()),
            EventKind::PackRevoked(r) | EventKind::BonusRevoked(r) => -i64::from(r.energy.units()),
            _ => 0,
        })
        .sum()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn energy_is_conserved(events in history(60)) {
        let wallet = Wallet::fold(&events);
        prop_assert_eq!(wallet.summary.balance.units(), ledger(&events));
    }

    #[test]
    fn no_command_but_a_clawback_drives_a_balance_negative(ops in ops(60)) {
        let sim = Sim::run(&ops);
        for step in &sim.steps {
            let clawback = matches!(step.command, Some(Command::Clawback { .. }));
            if step.before >= 0 && !clawback {
                prop_assert!(step.after >= 0, "{:?} took {} to {}", step.command, step.before, step.after);
            }
        }
    }

    #[test]
    fn a_negative_balance_refuses_every_consume(ops in ops(60)) {
        let sim = Sim::run(&ops);
        for step in &sim.steps {
            if step.before < 0 && !step.unlimited {
                if let Some(Command::Consume { .. } | Command::Reserve { .. }) = step.command {
                    prop_assert!(step.result.is_err());
                }
            }
        }
    }

    #[test]
    fn unlimited_never_decrements(ops in ops(60)) {
        let sim = Sim::run(&ops);
        for step in &sim.steps {
            if step.unlimited && matches!(step.command, Some(Command::Consume { .. })) {
                let events = step.result.as_ref().expect("an Unlimited consume is never refused");
                let free = events.iter().all(|e| match &e.kind {
                    EventKind::EnergyConsumed(c) => c.cost.is_zero() && c.unlimited && !c.notional.is_zero(),
                    _ => true,
                });
                prop_assert!(free, "an Unlimited consume charged energy");
                prop_assert_eq!(step.before, step.after);
            }
        }
    }

    #[test]
    fn a_refund_never_exceeds_its_consume_and_happens_once(events in history(80)) {
        let mut costs: BTreeMap<Id, u32> = BTreeMap::new();
        let mut refunded: BTreeMap<Id, u32> = BTreeMap::new();
        for e in &events {
            match &e.kind {
                EventKind::EnergyConsumed(c) => { costs.insert(c.tx, c.cost.units()); }
                EventKind::EnergyRefunded(r) => {
                    let cost = costs.get(&r.refunded_tx).copied();
                    prop_assert!(cost.is_some(), "refund of an unknown consume");
                    prop_assert!(r.amount.units() >= 1 && r.amount.units() <= cost.unwrap_or(0));
                    prop_assert!(refunded.insert(r.refunded_tx, r.amount.units()).is_none(), "refunded twice");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn a_hold_is_committed_or_released_at_most_once(events in history(80)) {
        let mut resolutions: BTreeMap<Id, u32> = BTreeMap::new();
        for e in &events {
            match &e.kind {
                EventKind::EnergyConsumed(c) if c.from_reservation => *resolutions.entry(c.tx).or_default() += 1,
                EventKind::ReservationReleased(r) => *resolutions.entry(r.tx).or_default() += 1,
                _ => {}
            }
        }
        prop_assert!(resolutions.values().all(|n| *n == 1));
    }

    #[test]
    fn a_payment_is_credited_at_most_once(events in history(80)) {
        let mut seen = std::collections::BTreeSet::new();
        for e in &events {
            if let EventKind::PackPurchased(p) = &e.kind {
                prop_assert!(seen.insert(p.payment.clone()), "credited twice");
            }
        }
    }

    #[test]
    fn folding_is_deterministic_and_a_restored_wallet_equals_the_full_fold(events in history(60)) {
        let a = Wallet::fold(&events);
        let b = Wallet::fold(&events);
        prop_assert_eq!(&a, &b);
        let entity_events = events.iter().filter(|e| e.kind.entity_ref().is_some());
        prop_assert_eq!(Wallet::restore(a.summary.clone(), entity_events), a);
    }

    #[test]
    fn the_summary_fold_agrees_with_the_history_rows(events in history(60)) {
        let rows = luna_core::history::transactions(&events);
        let wallet = Wallet::fold(&events);
        if let Some(last) = rows.last() {
            prop_assert_eq!(last.energy_after, wallet.summary.balance);
        }
        prop_assert!(rows.windows(2).all(|w| w[0].energy_after == w[1].energy_before));
        // Each row moves the balance by its signed change (what the stores keep as "before").
        prop_assert!(rows.iter().all(|r| r.energy_after.units() - r.energy_before.units() == r.change()));
        // The row types are exactly the events that make rows (stores count rows by type).
        for (i, e) in events.iter().enumerate() {
            let is_row = rows.iter().any(|r| r.index == i);
            prop_assert_eq!(is_row, luna_core::history::ROW_EVENT_TYPES.contains(&e.kind.type_name()));
        }
        // Usage cells sum to the rows.
        let cells = luna_core::history::usage(&events, None, None);
        prop_assert_eq!(cells.iter().map(|c| c.rows).sum::<u64>(), rows.len() as u64);
    }

    #[test]
    fn evolve_never_panics_on_any_order_of_decided_events(mut events in history(60), seed in any::<u64>()) {
        // Shuffle deterministically: evolve must stay total even on orders decide never made.
        let n = events.len();
        for i in (1..n).rev() {
            let j = usize::try_from((seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) % (i as u64 + 1)).unwrap_or(0);
            events.swap(i, j);
        }
        let _ = Wallet::fold(&events);
        let _ = luna_core::history::transactions(&events);
        let _ = luna_core::narrative::narrative(&events, luna_core::Timestamp::EPOCH);
    }
}

/// The properties above are only as good as the histories: make sure the generator reaches
/// every kind of event and the interesting situations (Unlimited consumes, negative balances).
#[test]
fn the_generator_reaches_every_kind_of_event_and_situation() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut kinds = std::collections::BTreeSet::new();
    let (mut unlimited_consumes, mut negative, mut refused) = (0, 0, 0);
    for _ in 0..300 {
        let ops = ops(60).new_tree(&mut runner).expect("tree").current();
        let sim = Sim::run(&ops);
        for e in &sim.events {
            kinds.insert(e.kind.type_name().to_owned());
            if matches!(&e.kind, EventKind::EnergyConsumed(c) if c.unlimited) {
                unlimited_consumes += 1;
            }
        }
        negative += sim.steps.iter().filter(|s| s.after < 0).count();
        refused += sim.steps.iter().filter(|s| s.result.is_err()).count();
    }
    for k in luna_core::HUB_EVENT_TYPES {
        assert!(kinds.contains(k), "never generated {k}");
    }
    assert!(
        unlimited_consumes > 0 && negative > 0 && refused > 0,
        "{unlimited_consumes} {negative} {refused}"
    );
}
