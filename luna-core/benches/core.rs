//! Core benchmarks: the consume decision, folding 1M energy events, the narrative of 100k
//! events; each beside a baseline measured in the same run (the bare arithmetic the domain
//! function wraps), so the figures read as "cost of the domain over the floor".

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use luna_core::narrative::narrative;
use luna_core::{
    AccountOpened, ActionName, AppEvent, AppSource, Catalog, Command, Context, Energy,
    EnergyConsumed, EnergyGranted, Env, Event, EventKind, EventType, Id, Policy, RawJson, Summary,
    Timestamp, Wallet, decide,
};

fn history(n: usize, with_app_events: bool) -> Vec<Event> {
    let grid = Catalog::default_grid();
    let actions: Vec<_> = grid.actions().map(|a| (a.name.clone(), a.cost)).collect();
    let ctx = Context::new(
        RawJson::new(r#"{"app_source":"letters","target_role":"Data Analyst"}"#),
        Some("letters".into()),
        Some("Data Analyst".into()),
        Some("Tech".into()),
    );
    let mut events = Vec::with_capacity(n);
    events.push(Event {
        occurred_at: Timestamp::from_secs(1_700_000_000),
        kind: EventKind::AccountOpened(AccountOpened {
            tx: Id::from_u128(0),
            welcome: Energy::new(85),
        }),
    });
    let mut i = 1u128;
    while events.len() < n {
        let at = Timestamp::from_secs(1_700_000_000 + i64::try_from(i).unwrap_or(0));
        let kind = if i % 3 == 0 {
            EventKind::EnergyGranted(EnergyGranted {
                tx: Id::from_u128(i),
                amount: Energy::new(100),
                reason: "b".into(),
            })
        } else if with_app_events && i % 3 == 1 {
            EventKind::AppEvent(AppEvent {
                event_type: EventType::parse("letter.generated").unwrap(),
                app_source: AppSource::parse("letters").unwrap(),
                data: RawJson::new("{}"),
                metadata: None,
                action: Some("lettre_motivation".into()),
                context: Some(ctx.clone()),
            })
        } else {
            let (action, cost) = &actions[usize::try_from(i).unwrap_or(0) % actions.len()];
            EventKind::EnergyConsumed(EnergyConsumed {
                tx: Id::from_u128(i),
                action: ActionName::clone(action),
                cost: *cost,
                notional: *cost,
                unlimited: false,
                grid_version: "2024-01".into(),
                context: Some(ctx.clone()),
                from_reservation: false,
            })
        };
        events.push(Event {
            occurred_at: at,
            kind,
        });
        i += 1;
    }
    events
}

fn decision(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let policy = Policy::default();
    let wallet = Wallet::fold(&history(1000, false));
    let env = Env {
        now: Timestamp::from_secs(1_800_000_000),
        catalog: &catalog,
        policy: &policy,
        welcome_tx: Id::from_u128(1),
    };
    let action = catalog.grid.price("lettre_motivation").unwrap();
    let command = Command::Consume {
        tx: Id::from_u128(99),
        action,
        context: None,
    };
    let mut g = c.benchmark_group("consume_decision");
    g.bench_function("luna_core::decide", |b| {
        b.iter(|| decide(black_box(&wallet), black_box(&command), &env));
    });
    // Baseline: the bare comparison and subtraction a consume boils down to.
    let (balance, cost) = (wallet.summary.balance.units(), 15i64);
    g.bench_function("baseline: i64 compare and subtract", |b| {
        b.iter(|| {
            let bal = black_box(balance);
            if bal >= black_box(cost) {
                Some(bal - cost)
            } else {
                None
            }
        });
    });
    g.finish();
}

fn fold(c: &mut Criterion) {
    let events = history(1_000_000, false);
    let mut g = c.benchmark_group("fold_1M_energy_events");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    g.bench_function(
        BenchmarkId::new("Summary::apply (projection)", events.len()),
        |b| {
            b.iter(|| {
                let mut s = Summary::default();
                for e in black_box(&events) {
                    s.apply(e);
                }
                s
            });
        },
    );
    g.bench_function(
        BenchmarkId::new("Wallet::fold (with entities)", events.len()),
        |b| {
            b.iter(|| Wallet::fold(black_box(&events)));
        },
    );
    // Baseline: a match over the same events summing the signed amounts.
    g.bench_function(
        BenchmarkId::new("baseline: match-and-sum", events.len()),
        |b| {
            b.iter(|| {
                black_box(&events)
                    .iter()
                    .map(|e| match &e.kind {
                        EventKind::EnergyConsumed(c) => -i64::from(c.cost.units()),
                        EventKind::EnergyGranted(g) => i64::from(g.amount.units()),
                        EventKind::AccountOpened(o) => i64::from(o.welcome.units()),
                        _ => 0,
                    })
                    .sum::<i64>()
            });
        },
    );
    g.finish();
}

fn narrative_fold(c: &mut Criterion) {
    let events = history(100_000, true);
    let now = Timestamp::from_secs(1_700_200_000);
    let mut g = c.benchmark_group("narrative_100k_events");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("luna_core::narrative", |b| {
        b.iter(|| narrative(black_box(&events), now));
    });
    g.bench_function("baseline: count actions in a BTreeMap", |b| {
        b.iter(|| {
            let mut m = std::collections::BTreeMap::<&str, u64>::new();
            for e in black_box(&events) {
                if let EventKind::EnergyConsumed(c) = &e.kind {
                    *m.entry(c.action.as_str()).or_default() += 1;
                }
            }
            m
        });
    });
    g.finish();
}

criterion_group!(benches, decision, fold, narrative_fold);
criterion_main!(benches);
