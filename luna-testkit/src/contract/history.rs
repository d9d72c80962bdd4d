//! Contract cases of the derived history data: the transaction history's rows with their
//! balances, the usage of a time range, the event counts per type — each equal to the fold
//! of the stream's events, however the history was appended.

use std::collections::BTreeMap;

use luna_core::history::{self, TxRow};
use luna_core::{Balance, Event, Timestamp, UserId};
use luna_ports::{PageQuery, Store, USAGE_SPAN_DAYS, UsageSplit, usage_span};

use super::{append_on, unique_user};
use crate::strategies::{Op, Sim};

/// A history over several days: consumes (one Unlimited), a hold committed, a purchase, a
/// grant, a refund, a clawback and an audit fact.
fn days_of_history() -> Vec<Event> {
    Sim::run(&[
        Op::Consume(3),
        Op::Advance(40_000),
        Op::Consume(1),
        Op::Reserve(0, 60),
        Op::Commit(0),
        Op::Advance(50_000),
        Op::Purchase(0, 0),
        Op::Grant(10),
        Op::Advance(90_000),
        Op::Refund(0, None, false),
        Op::Consume(2),
        Op::Subscription(true, 1_000_000, 0),
        Op::Consume(4),
        Op::Consume(4),
        Op::Advance(30_000),
        Op::Clawback(0, Some(150)),
        Op::Consume(5),
        Op::Audit(0),
    ])
    .events
}

/// Appends `events` in three batches.
async fn append_in_batches<S: Store + ?Sized>(store: &S, u: &UserId, events: &[Event]) {
    let cuts = [0, 5, 6, events.len()];
    for w in cuts.windows(2) {
        append_on(store, u, &events[..w[0]], &events[w[0]..w[1]])
            .await
            .expect("append");
    }
}

/// The rows the fold gives: (position, before, after), newest first.
fn folded(rows: &[TxRow<'_>], positions: &[u64]) -> Vec<(u64, i64, i64)> {
    rows.iter()
        .rev()
        .map(|r| {
            (
                positions[r.index],
                r.energy_before.units(),
                r.energy_after.units(),
            )
        })
        .collect()
}

/// The history pages (newest first, by cursor) give every energy event with the balances of
/// the fold, the same total on every page, and events equal to those appended.
pub async fn history_pages_give_every_row_with_its_balances<S: Store + ?Sized>(store: &S) {
    let u = unique_user("ledger");
    let events = days_of_history();
    append_in_batches(store, &u, &events).await;
    let positions: Vec<u64> = store
        .read_stream(&u)
        .await
        .expect("read")
        .iter()
        .map(|r| r.position)
        .collect();
    let rows = history::transactions(&events);
    assert!(rows.len() >= 10, "the history has {} rows", rows.len());
    assert_eq!(
        store.read_events(&u).await.expect("fold input"),
        events,
        "the fold's input is the stream's events"
    );
    let mut kept = Vec::new();
    let mut before = None;
    loop {
        let page = store.history_page(&u, before, 3).await.expect("page");
        assert_eq!(page.total_count, rows.len() as u64);
        assert!(page.entries.len() <= 3);
        for e in &page.entries {
            assert_eq!(e.event.stream, u);
            assert!(
                history::row(
                    0,
                    &e.event.event,
                    Balance::new(e.balance_before),
                    Balance::new(e.balance_after)
                )
                .is_some()
            );
            kept.push((e.event.position, e.balance_before, e.balance_after));
        }
        before = page.entries.last().map(|e| e.event.position);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(kept, folded(&rows, &positions));
    let empty = store
        .history_page(&unique_user("ledger-none"), None, 10)
        .await
        .expect("page");
    assert_eq!(
        (empty.entries.len(), empty.total_count, empty.has_more),
        (0, 0, false)
    );
}

/// The usage of any range — whole days, partial days, within one day, empty, unbounded —
/// equals the fold of the rows in it; and every type's count is its number of events.
pub async fn usage_of_any_range_equals_the_fold<S: Store + ?Sized>(store: &S) {
    let u = unique_user("usage");
    let events = days_of_history();
    append_in_batches(store, &u, &events).await;
    let (first, last) = (events[0].occurred_at, events[events.len() - 1].occurred_at);
    let day = 86_400_000;
    let day_start = Timestamp::start_of_day(first.day_number() + 1);
    let mid = Timestamp::from_millis(first.millis() + (last.millis() - first.millis()) / 2);
    let at = |ms: i64| Some(Timestamp::from_millis(ms));
    let ranges = [
        (None, None),
        (Some(mid), None),
        (None, Some(mid)),
        (Some(day_start), None),
        (Some(day_start), at(day_start.millis() + day)),
        (Some(first), at(first.millis() + 1)),
        (at(first.millis() + 1), Some(mid)),
        (Some(mid), Some(first)),
        (at(first.millis() - 3 * day), at(last.millis() + 3 * day)),
        (Some(mid), at(mid.millis() + 2 * day + 7)),
    ];
    for (from, to) in ranges {
        let got = store.usage(&u, from, to).await.expect("usage");
        let expected = history::usage(&events, from, to);
        assert_eq!(got, expected, "range {from:?}..{to:?}");
        // Analytics reads the totals: summed by the store, equal to the fold's cells summed.
        let totals = store
            .usage_totals(&u, from, to)
            .await
            .expect("usage totals");
        assert_eq!(
            totals,
            history::UsageTotals::of(&expected),
            "totals of {from:?}..{to:?}"
        );
    }
    assert!(
        !history::UsageTotals::of(&history::usage(&events, None, None))
            .consumed_daily
            .is_empty(),
        "the history has consumes on several days"
    );
    assert!(
        history::usage(&events, None, None)
            .iter()
            .any(|c| c.unlimited > 0),
        "the history has an Unlimited consume"
    );
    totals_per_type_match(store, &u, &events).await;
    let split = UsageSplit::of(Some(mid), at(mid.millis() + 2 * day + 7));
    assert_eq!(
        split.edges.len(),
        2,
        "a range over partial days has two edges"
    );
}

/// Days before and after 1970 around span edges, for the span migration's tests: a rollup on
/// each of them must land in the floored span (`luna_ports::usage_span`).
pub const DAYS_AROUND_SPAN_EDGES: [i64; 6] = [-33, -32, -1, 0, 31, 32];

/// The (span, days) pairs that one daily rollup on each of `days` (in order) sums to.
pub fn span_counts(days: &[i64]) -> Vec<(i64, i64)> {
    let mut counts: Vec<(i64, i64)> = Vec::new();
    for &day in days {
        let span = luna_ports::usage_span(day);
        match counts.last_mut() {
            Some((s, n)) if *s == span => *n += 1,
            _ => counts.push((span, 1)),
        }
    }
    counts
}

/// A history over about a hundred days: consumes of several actions, a purchase, grants,
/// a refund, spread over several usage spans.
pub fn months_of_history() -> Vec<Event> {
    let mut ops = vec![Op::Purchase(1, 0)];
    for k in 0..14 {
        ops.extend([
            Op::Consume(k % 5),
            Op::Advance(7 * 86_400 + 3_600 * i64::try_from(k).expect("small")),
        ]);
        if k % 3 == 0 {
            ops.extend([Op::Grant(5), Op::Consume(k % 2)]);
        }
        if k == 6 {
            ops.push(Op::Refund(2, None, false));
        }
    }
    Sim::run(&ops).events
}

/// The usage totals analytics reads over ranges that cover whole spans, part of one, span
/// boundaries and partial days equal the fold's cells summed (spans and daily rollups never
/// count a row twice or miss one).
pub async fn usage_totals_over_spans_equal_the_fold<S: Store + ?Sized>(store: &S) {
    let u = unique_user("spans");
    let events = months_of_history();
    append_in_batches(store, &u, &events).await;
    let (first, last) = (events[0].occurred_at, events[events.len() - 1].occurred_at);
    let first_span = usage_span(first.day_number());
    assert!(
        usage_span(last.day_number()) >= first_span + 2,
        "the history covers a whole span"
    );
    let span_start = |s: i64| Timestamp::start_of_day(s * USAGE_SPAN_DAYS);
    let hour = 3_600_000;
    let at = |t: Timestamp, ms: i64| Some(Timestamp::from_millis(t.millis() + ms));
    let ranges = [
        (None, None),
        (Some(span_start(first_span + 1)), None),
        (None, Some(span_start(first_span + 2))),
        (
            Some(span_start(first_span + 1)),
            Some(span_start(first_span + 2)),
        ),
        (
            at(span_start(first_span + 1), -5 * 24 * hour),
            at(span_start(first_span + 2), 3 * 24 * hour),
        ),
        (
            at(span_start(first_span + 1), 7 * hour),
            at(span_start(first_span + 3), -7 * hour),
        ),
        (at(first, 1), at(last, -1)),
        (at(first, 40 * 24 * hour), None),
        (None, at(last, -40 * 24 * hour)),
    ];
    for (i, &(from, to)) in ranges.iter().enumerate() {
        let expected = history::UsageTotals::of(&history::usage(&events, from, to));
        let got = store
            .usage_totals(&u, from, to)
            .await
            .expect("usage totals");
        assert_eq!(got, expected, "totals of {from:?}..{to:?}");
        if i < 4 {
            // These ranges read span rollups (the path under test), not only daily ones.
            assert!(
                UsageSplit::of(from, to).spans.is_some(),
                "{from:?}..{to:?} covers a whole span"
            );
        }
    }
    assert!(
        UsageSplit::of(ranges[4].0, ranges[4].1).loose_days.len() == 2,
        "a range over part of two spans reads loose days on both sides"
    );
}

/// Each event type's filtered page total equals its count in the history.
async fn totals_per_type_match<S: Store + ?Sized>(store: &S, u: &UserId, events: &[Event]) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        *counts.entry(e.kind.type_name()).or_default() += 1;
    }
    for (event_type, n) in counts {
        let page = store
            .read_page(
                u,
                PageQuery {
                    before_position: None,
                    limit: 1,
                    event_type: Some(event_type),
                },
            )
            .await
            .expect("page");
        assert_eq!(page.total_count, n, "{event_type}");
    }
}

/// The store's history rows, usage and counts of `u` equal the fold of `events` (its whole
/// stream): what a store rebuilt from its events must give.
pub async fn assert_history_matches_the_fold<S: Store + ?Sized>(
    store: &S,
    u: &UserId,
    events: &[Event],
) {
    let positions: Vec<u64> = store
        .read_stream(u)
        .await
        .expect("read")
        .iter()
        .map(|r| r.position)
        .collect();
    let rows = history::transactions(events);
    let page = store.history_page(u, None, 1000).await.expect("page");
    assert_eq!(page.total_count, rows.len() as u64);
    let kept: Vec<(u64, i64, i64)> = page
        .entries
        .iter()
        .map(|e| (e.event.position, e.balance_before, e.balance_after))
        .collect();
    assert_eq!(kept, folded(&rows, &positions));
    assert_eq!(
        store.usage(u, None, None).await.expect("usage"),
        history::usage(events, None, None)
    );
    assert_eq!(
        store
            .usage_totals(u, None, None)
            .await
            .expect("usage totals"),
        history::UsageTotals::of(&history::usage(events, None, None)),
        "the span rollups hold every row"
    );
}
