//! Replays every stream and checks the invariants of spec §2.3 and the stored projections
//! against the events: the engine behind `luna verify`.

use std::collections::BTreeMap;

use luna_core::{Event, EventKind, Id, Span, Timestamp, UserId, Wallet, history};
use luna_ports::{PageQuery, RecordedEvent, Store, StoreError, USAGE_SPAN_DAYS, usage_span};

/// Streams read per page.
pub const VERIFY_PAGE: usize = 500;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The stream.
    pub stream: UserId,
    /// What is wrong.
    pub problem: String,
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Streams replayed.
    pub streams: u64,
    /// Events replayed.
    pub events: u64,
    /// Everything wrong.
    pub violations: Vec<Violation>,
}

impl VerifyReport {
    /// Whether everything holds.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What the ledger check carries from event to event.
#[derive(Default)]
struct Ledger {
    /// welcome + purchased + bonus + granted + refunded − consumed − revoked.
    sum: i64,
    costs: BTreeMap<Id, u32>,
    refunded: BTreeMap<Id, u32>,
    resolved: BTreeMap<Id, u32>,
}

impl Ledger {
    /// Adds one event; pushes what it breaks (`n`: its 1-based number).
    fn add(&mut self, n: usize, e: &Event, unlimited: bool, problems: &mut Vec<String>) {
        match &e.kind {
            EventKind::AccountOpened(o) => self.sum += i64::from(o.welcome.units()),
            EventKind::PackPurchased(p) => self.sum += i64::from(p.energy.units()),
            EventKind::BonusGranted(b) => self.sum += i64::from(b.energy.units()),
            EventKind::EnergyGranted(g) => self.sum += i64::from(g.amount.units()),
            EventKind::EnergyRefunded(r) => {
                self.sum += i64::from(r.amount.units());
                match self.costs.get(&r.refunded_tx) {
                    Some(cost) if r.amount.units() <= *cost => {}
                    Some(cost) => problems.push(format!(
                        "event {n}: refund of {} exceeds its consume of {cost}",
                        r.amount
                    )),
                    None => problems.push(format!("event {n}: refund of an unknown consume")),
                }
                if self
                    .refunded
                    .insert(r.refunded_tx, r.amount.units())
                    .is_some()
                {
                    problems.push(format!(
                        "event {n}: consume {} refunded twice",
                        r.refunded_tx
                    ));
                }
            }
            EventKind::EnergyConsumed(c) => {
                self.sum -= i64::from(c.cost.units());
                self.costs.insert(c.tx, c.cost.units());
                if c.from_reservation {
                    *self.resolved.entry(c.tx).or_default() += 1;
                }
                if unlimited && !c.from_reservation && !c.cost.is_zero() {
                    problems.push(format!("event {n}: an Unlimited user was charged"));
                }
            }
            EventKind::ReservationReleased(r) => *self.resolved.entry(r.tx).or_default() += 1,
            EventKind::PackRevoked(r) | EventKind::BonusRevoked(r) => {
                self.sum -= i64::from(r.energy.units());
            }
            EventKind::EnergyReserved(_)
            | EventKind::SubscriptionChanged(_)
            | EventKind::AppEvent(_)
            | EventKind::Audit(_) => {}
        }
    }
}

/// The problems of one stream's events (empty: all invariants hold).
pub fn check_stream(events: &[Event]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut wallet = Wallet::default();
    let mut ledger = Ledger::default();
    for (i, e) in events.iter().enumerate() {
        let before = wallet.summary.balance.units();
        let unlimited = wallet.summary.is_unlimited(e.occurred_at);
        wallet.apply(e);
        let after = wallet.summary.balance.units();
        ledger.add(i + 1, e, unlimited, &mut problems);
        let clawback = matches!(
            e.kind,
            EventKind::PackRevoked(_) | EventKind::BonusRevoked(_)
        );
        if before >= 0 && after < 0 && !clawback {
            problems.push(format!(
                "event {}: {} took the balance from {before} to {after}",
                i + 1,
                e.kind.type_name()
            ));
        }
    }
    if ledger.sum != wallet.summary.balance.units() {
        problems.push(format!(
            "balance {} differs from the ledger sum {}",
            wallet.summary.balance, ledger.sum
        ));
    }
    for (tx, n) in ledger.resolved {
        if n > 1 {
            problems.push(format!("hold {tx} resolved {n} times"));
        }
    }
    problems
}

/// The figures kept with each event (balance and available energy right after it) against
/// the fold of the stream up to it. Events stored before figures were kept have none.
pub fn check_figures(recorded: &[RecordedEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut wallet = Wallet::default();
    for r in recorded {
        wallet.apply(&r.event);
        let Some(after) = r.after else { continue };
        let (balance, available) = (
            wallet.summary.balance.units(),
            wallet.summary.available(r.event.occurred_at),
        );
        if (after.balance, after.available) != (balance, available) {
            problems.push(format!(
                "event {}: kept figures {}/{} but the fold gives {balance}/{available}",
                r.version, after.balance, after.available
            ));
        }
    }
    problems
}

/// The derived history data the store keeps with each append (ledger rows with their
/// balances, usage rollups per day and per span, event counts per type) against the fold of
/// the events.
pub async fn check_history(
    store: &dyn Store,
    stream: &UserId,
    recorded: &[RecordedEvent],
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let events: Vec<Event> = recorded.iter().map(|r| r.event.clone()).collect();
    let rows = history::transactions(&events);
    let mut kept = Vec::new();
    let mut before = None;
    loop {
        let page = store.history_page(stream, before, VERIFY_PAGE).await?;
        if page.total_count != rows.len() as u64 {
            problems.push(format!(
                "history counts {} rows but the events make {}",
                page.total_count,
                rows.len()
            ));
        }
        before = page.entries.last().map(|e| e.event.position);
        kept.extend(
            page.entries
                .into_iter()
                .map(|e| (e.event.position, e.balance_before, e.balance_after, e.cell)),
        );
        if !page.has_more || before.is_none() {
            break;
        }
    }
    kept.reverse();
    let folded: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                recorded[r.index].position,
                r.energy_before.units(),
                r.energy_after.units(),
                r.cell(),
            )
        })
        .collect();
    if kept != folded {
        let first = kept.iter().zip(&folded).position(|(k, f)| k != f);
        problems.push(format!(
            "history rows differ from the fold of the events (kept {}, folded {}, first difference at row {})",
            kept.len(),
            folded.len(),
            first.map_or_else(|| "past the shorter".to_owned(), |i| (i + 1).to_string())
        ));
    }
    if store.usage(stream, None, None).await?
        != history::sum_cells(rows.iter().map(history::TxRow::cell))
    {
        problems.push("daily usage rollups differ from the fold of the events".to_owned());
    }
    problems.extend(check_edges(store, stream, &rows).await?);
    problems.extend(check_spans(store, stream, &rows).await?);
    problems.extend(check_counts(store, stream, &events).await?);
    Ok(problems)
}

/// The totals analytics reads over all time and over each active span (the span rollups:
/// a row counted in the wrong span shows in that span's totals) against the fold.
async fn check_spans(
    store: &dyn Store,
    stream: &UserId,
    rows: &[history::TxRow<'_>],
) -> Result<Vec<String>, StoreError> {
    let mut per_span: BTreeMap<i64, Vec<history::UsageCell>> = BTreeMap::new();
    for r in rows {
        per_span
            .entry(usage_span(r.at.day_number()))
            .or_default()
            .push(r.cell());
    }
    let mut problems = Vec::new();
    let all = history::sum_cells(rows.iter().map(history::TxRow::cell));
    if store.usage_totals(stream, None, None).await? != history::UsageTotals::of(&all) {
        problems.push("usage totals over all time differ from the fold of the events".to_owned());
    }
    for (span, cells) in per_span {
        let start = span.saturating_mul(USAGE_SPAN_DAYS);
        let (from, to) = (
            Timestamp::start_of_day(start),
            Timestamp::start_of_day(start.saturating_add(USAGE_SPAN_DAYS)),
        );
        let expected = history::UsageTotals::of(&history::sum_cells(cells));
        if store.usage_totals(stream, Some(from), Some(to)).await? != expected {
            problems.push(format!(
                "usage span rollup from {} differs from the fold of the events",
                luna_core::Date::from_days(start)
            ));
        }
    }
    Ok(problems)
}

/// Each active day read as two partial days (the path of ranges that start or end mid-day:
/// the ledger's rows between the day's first and last positions) against the fold. The
/// expected cells of every half-day come from one pass over the rows.
async fn check_edges(
    store: &dyn Store,
    stream: &UserId,
    rows: &[history::TxRow<'_>],
) -> Result<Vec<String>, StoreError> {
    const HALF_DAY: Span = Span::seconds(43_200);
    let mut halves: BTreeMap<(i64, bool), Vec<history::UsageCell>> = BTreeMap::new();
    for r in rows {
        let day = r.at.day_number();
        let afternoon = r.at >= Timestamp::start_of_day(day).plus(HALF_DAY);
        halves.entry((day, afternoon)).or_default().push(r.cell());
    }
    let days: std::collections::BTreeSet<i64> = halves.keys().map(|(day, _)| *day).collect();
    let mut problems = Vec::new();
    for day in days {
        let start = Timestamp::start_of_day(day);
        let noon = start.plus(HALF_DAY);
        let end = Timestamp::start_of_day(day.saturating_add(1));
        for (from, to, afternoon) in [(start, noon, false), (noon, end, true)] {
            let expected = history::sum_cells(halves.remove(&(day, afternoon)).unwrap_or_default());
            if store.usage(stream, Some(from), Some(to)).await? != expected {
                problems.push(format!(
                    "usage of part of {} differs from the fold of the events",
                    luna_core::Date::from_days(day)
                ));
            }
        }
    }
    Ok(problems)
}

/// The event counts kept per type against the events.
async fn check_counts(
    store: &dyn Store,
    stream: &UserId,
    events: &[Event],
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        *counts.entry(e.kind.type_name()).or_default() += 1;
    }
    for (event_type, n) in counts {
        let page = store
            .read_page(
                stream,
                PageQuery {
                    before_position: None,
                    limit: 1,
                    event_type: Some(event_type),
                },
            )
            .await?;
        if page.total_count != n {
            problems.push(format!(
                "{event_type}: {} events counted but {n} stored",
                page.total_count
            ));
        }
    }
    Ok(problems)
}

/// Replays every stream of the store: invariants of each stream, and the stored projection
/// against the one rebuilt from its events. `progress(done_streams)` is called after each.
pub async fn verify(
    store: &dyn Store,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let mut after: Option<UserId> = None;
    loop {
        let page = store.summaries(after.as_ref(), VERIFY_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.stream.clone());
        for stored in page {
            let recorded = store.read_stream(&stored.stream).await?;
            let mut problems = check_figures(&recorded);
            problems.extend(check_history(store, &stored.stream, &recorded).await?);
            let events: Vec<Event> = recorded.into_iter().map(|r| r.event).collect();
            report.streams += 1;
            report.events += events.len() as u64;
            problems.extend(check_stream(&events));
            if stored.version != events.len() as u64 {
                problems.push(format!(
                    "projection version {} but {} events",
                    stored.version,
                    events.len()
                ));
            }
            if Wallet::fold(&events).summary != stored.summary {
                problems
                    .push("stored projection differs from the one rebuilt from events".to_owned());
            }
            report
                .violations
                .extend(problems.into_iter().map(|problem| Violation {
                    stream: stored.stream.clone(),
                    problem,
                }));
            progress(report.streams);
        }
    }
    Ok(report)
}
