//! Folds for reading: the transaction history (one row per energy event) and analytics.

use std::collections::BTreeMap;

use crate::event::{Event, EventKind, RevocationCause};
use crate::json::Context;
use crate::units::{ActionName, Balance, Date, Energy, Id, PackId, Timestamp};
use crate::view::SubscriptionType;
use crate::wallet::Summary;

/// The kind of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxKind {
    /// Welcome energy.
    Welcome,
    /// A consume (commits included; Unlimited consumes have amount 0).
    Consume,
    /// A refund of a consume.
    Refund,
    /// Paid pack energy.
    Purchase,
    /// First-purchase bonus.
    Bonus,
    /// Administrative grant.
    Grant,
    /// Clawback of a pack or its bonus.
    Revoke,
}

impl TxKind {
    /// Every kind.
    pub const ALL: [TxKind; 7] = [
        TxKind::Welcome,
        TxKind::Consume,
        TxKind::Refund,
        TxKind::Purchase,
        TxKind::Bonus,
        TxKind::Grant,
        TxKind::Revoke,
    ];

    /// The kind of a wire name.
    pub fn parse(name: &str) -> Option<TxKind> {
        TxKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The wire name (`action_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            TxKind::Welcome => "welcome",
            TxKind::Consume => "consume",
            TxKind::Refund => "refund",
            TxKind::Purchase => "purchase",
            TxKind::Bonus => "bonus",
            TxKind::Grant => "grant",
            TxKind::Revoke => "revoke",
        }
    }
}

/// Why a history row happened (the wire renders it as the row's `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxReason {
    /// The welcome energy.
    Welcome,
    /// A consume: its action.
    Action(ActionName),
    /// A refund or a grant: the free text given.
    Text(String),
    /// A purchase: its pack.
    Pack(PackId),
    /// A first-purchase bonus: its pack.
    Bonus(PackId),
    /// A clawback.
    Revocation(RevocationCause),
}

impl std::fmt::Display for TxReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxReason::Welcome => f.write_str("welcome"),
            TxReason::Action(a) => write!(f, "{a}"),
            TxReason::Text(t) => f.write_str(t),
            TxReason::Pack(p) => write!(f, "{p}"),
            TxReason::Bonus(p) => write!(f, "first-purchase bonus ({p})"),
            TxReason::Revocation(RevocationCause::Refunded) => f.write_str("payment refunded"),
            TxReason::Revocation(RevocationCause::Disputed) => f.write_str("payment disputed"),
        }
    }
}

/// One row of the transaction history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRow<'a> {
    /// Index of the event in the folded slice.
    pub index: usize,
    /// The transaction id.
    pub tx: Id,
    /// The kind.
    pub kind: TxKind,
    /// Non-negative amount; `after − before` is the signed change.
    pub amount: Energy,
    /// Why.
    pub reason: TxReason,
    /// The consume's `context.app_source` (None on non-consumes).
    pub app_source: Option<&'a str>,
    /// The consume's action (None on non-consumes).
    pub feature_used: Option<&'a ActionName>,
    /// Balance before.
    pub energy_before: Balance,
    /// Balance after.
    pub energy_after: Balance,
    /// When.
    pub at: Timestamp,
    /// The consume's context.
    pub context: Option<&'a Context>,
    /// Whether the consume was Unlimited (notional cost in `notional`).
    pub unlimited: bool,
    /// The notional cost of a consume.
    pub notional: Energy,
}

/// The row an event makes, without its balances (`None`: not an energy row).
fn row_of(e: &Event) -> Option<(Id, TxKind, Energy, TxReason)> {
    Some(match &e.kind {
        EventKind::AccountOpened(o) => (o.tx, TxKind::Welcome, o.welcome, TxReason::Welcome),
        EventKind::EnergyConsumed(c) => (
            c.tx,
            TxKind::Consume,
            c.cost,
            TxReason::Action(c.action.clone()),
        ),
        EventKind::EnergyRefunded(r) => (
            r.tx,
            TxKind::Refund,
            r.amount,
            TxReason::Text(r.reason.clone()),
        ),
        EventKind::PackPurchased(p) => (
            p.tx,
            TxKind::Purchase,
            p.energy,
            TxReason::Pack(p.pack.clone()),
        ),
        EventKind::BonusGranted(b) => (
            b.tx,
            TxKind::Bonus,
            b.energy,
            TxReason::Bonus(b.pack.clone()),
        ),
        EventKind::EnergyGranted(g) => (
            g.tx,
            TxKind::Grant,
            g.amount,
            TxReason::Text(g.reason.clone()),
        ),
        EventKind::PackRevoked(r) | EventKind::BonusRevoked(r) => (
            r.tx,
            TxKind::Revoke,
            r.energy,
            TxReason::Revocation(r.cause),
        ),
        EventKind::EnergyReserved(_)
        | EventKind::ReservationReleased(_)
        | EventKind::SubscriptionChanged(_)
        | EventKind::AppEvent(_)
        | EventKind::Audit(_) => return None,
    })
}

/// The event types whose every event is a history row (the others never are): a stream's
/// number of rows is the sum of their counts.
pub const ROW_EVENT_TYPES: [&str; 8] = [
    "AccountOpened",
    "EnergyConsumed",
    "EnergyRefunded",
    "PackPurchased",
    "BonusGranted",
    "EnergyGranted",
    "PackRevoked",
    "BonusRevoked",
];

/// The row one event makes, with the balances around it (`None`: not an energy row).
/// `before` is the balance before the event, `after` the balance after it.
pub fn row(index: usize, e: &Event, before: Balance, after: Balance) -> Option<TxRow<'_>> {
    let (tx, kind, amount, reason) = row_of(e)?;
    let consumed = match &e.kind {
        EventKind::EnergyConsumed(c) => Some(c),
        _ => None,
    };
    let context = consumed.and_then(|c| c.context.as_ref());
    Some(TxRow {
        index,
        tx,
        kind,
        amount,
        reason,
        app_source: context.and_then(Context::app_source),
        feature_used: consumed.map(|c| &c.action),
        energy_before: before,
        energy_after: after,
        at: e.occurred_at,
        context,
        unlimited: consumed.is_some_and(|c| c.unlimited),
        notional: consumed.map_or(Energy::ZERO, |c| c.notional),
    })
}

/// Every history row of a stream, oldest first, with balances before and after.
pub fn transactions(events: &[Event]) -> Vec<TxRow<'_>> {
    let mut balance = Summary::default();
    let mut rows = Vec::new();
    for (index, e) in events.iter().enumerate() {
        let before = balance.balance;
        balance.apply(e);
        rows.extend(row(index, e, before, balance.balance));
    }
    rows
}

impl TxRow<'_> {
    /// The signed change of the balance: `energy_after − energy_before`.
    pub fn change(&self) -> i64 {
        let amount = i64::from(self.amount.units());
        match self.kind {
            TxKind::Consume | TxKind::Revoke => -amount,
            TxKind::Welcome | TxKind::Refund | TxKind::Purchase | TxKind::Bonus | TxKind::Grant => {
                amount
            }
        }
    }

    /// This row as a usage cell of its own (one row, on its UTC day). Only consumes have an
    /// action and an app, and only Unlimited ones a counted notional energy.
    pub fn cell(&self) -> UsageCell {
        UsageCell {
            day: self.at.day_number(),
            kind: self.kind,
            action: self
                .feature_used
                .map_or_else(String::new, |a| a.as_str().to_owned()),
            app: if self.kind == TxKind::Consume {
                self.app_source.unwrap_or(DEFAULT_APP).to_owned()
            } else {
                String::new()
            },
            rows: 1,
            energy: u64::from(self.amount.units()),
            unlimited: u64::from(self.unlimited),
            notional: if self.unlimited {
                u64::from(self.notional.units())
            } else {
                0
            },
        }
    }
}

/// History rows summed per (UTC day, kind, action, app): what analytics folds. Stores keep
/// them per day as the rows are appended, so analytics over a range reads the days in it
/// (and the rows of at most two partial days at its edges), never the whole history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageCell {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The rows' kind.
    pub kind: TxKind,
    /// The consumes' action (empty on other kinds).
    pub action: String,
    /// The consumes' app, [`DEFAULT_APP`] when their context names none (empty on other kinds).
    pub app: String,
    /// Number of rows.
    pub rows: u64,
    /// Their energy (gross amounts).
    pub energy: u64,
    /// How many were Unlimited consumes.
    pub unlimited: u64,
    /// The notional energy of those.
    pub notional: u64,
}

/// The usage cells of a stream's rows in `[from, to)`, summed per key, in key order.
pub fn usage(events: &[Event], from: Option<Timestamp>, to: Option<Timestamp>) -> Vec<UsageCell> {
    let in_range = |t: Timestamp| from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u);
    sum_cells(
        transactions(events)
            .iter()
            .filter(|r| in_range(r.at))
            .map(TxRow::cell),
    )
}

/// Sums cells with the same key, in key order (saturating: counts of a real history are far
/// below `u64::MAX`).
pub fn sum_cells(cells: impl IntoIterator<Item = UsageCell>) -> Vec<UsageCell> {
    let mut summed: BTreeMap<(i64, TxKind, String, String), UsageCell> = BTreeMap::new();
    for c in cells {
        let key = (c.day, c.kind, c.action.clone(), c.app.clone());
        match summed.get_mut(&key) {
            Some(s) => {
                s.rows = s.rows.saturating_add(c.rows);
                s.energy = s.energy.saturating_add(c.energy);
                s.unlimited = s.unlimited.saturating_add(c.unlimited);
                s.notional = s.notional.saturating_add(c.notional);
            }
            None => {
                summed.insert(key, c);
            }
        }
    }
    summed.into_values().collect()
}

/// Usage over a range as analytics reads it: summed per (kind, action, app) over the whole
/// range, and the energy consumed per day. Stores compute it in the database from their daily
/// rollups (O(keys + days), not O(cells)); [`UsageTotals::of`] computes it from cells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageTotals {
    /// Per (kind, action, app), in key order (`day` is 0).
    pub keys: Vec<UsageCell>,
    /// Energy consumed per day (days since 1970-01-01), in day order, for every day with a
    /// consume.
    pub consumed_daily: Vec<(i64, u64)>,
}

impl UsageTotals {
    /// From usage cells.
    pub fn of(cells: &[UsageCell]) -> UsageTotals {
        UsageTotals::from_parts(Vec::new(), Vec::new(), cells)
    }

    /// Key totals and daily consumed energy already summed (by a store, over whole days), plus
    /// the cells of the range's partial days.
    pub fn from_parts(
        keys: Vec<UsageCell>,
        consumed_daily: Vec<(i64, u64)>,
        cells: &[UsageCell],
    ) -> UsageTotals {
        let mut daily: BTreeMap<i64, u64> = BTreeMap::new();
        for (day, energy) in consumed_daily.into_iter().chain(
            cells
                .iter()
                .filter(|c| c.kind == TxKind::Consume)
                .map(|c| (c.day, c.energy)),
        ) {
            let d = daily.entry(day).or_default();
            *d = d.saturating_add(energy);
        }
        let keys = sum_cells(
            keys.into_iter()
                .chain(cells.iter().cloned())
                .map(|c| UsageCell { day: 0, ..c }),
        );
        UsageTotals {
            keys,
            consumed_daily: daily.into_iter().collect(),
        }
    }
}

/// The app a consume is attributed to when its context names none.
pub const DEFAULT_APP: &str = "luna_hub";

/// Count and energy of one action or app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Number of consumes.
    pub count: u64,
    /// Gross energy charged.
    pub energy: u64,
}

/// Analytics over a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analytics {
    /// The balance now (not filtered).
    pub current_energy: i64,
    /// Gross energy consumed in range.
    pub total_consumed: u64,
    /// Pack energy and bonuses in range.
    pub total_purchased: u64,
    /// Energy refunded in range.
    pub total_refunded: u64,
    /// History rows in range.
    pub total_transactions: u64,
    /// Up to five actions, by count desc then name.
    pub top_actions: Vec<(String, Usage)>,
    /// Usage by app.
    pub by_app: BTreeMap<String, Usage>,
    /// Energy consumed per active UTC day, ascending.
    pub daily: Vec<(Date, u64)>,
    /// Unlimited consumes in range.
    pub unlimited_actions: u64,
    /// Their notional energy.
    pub notional_energy_unlimited: u64,
    /// Free or Unlimited now (not filtered).
    pub subscription_type: SubscriptionType,
    /// When the account opened (not filtered).
    pub member_since: Option<Timestamp>,
}

/// Analytics of a stream over `[from, to)` (either bound optional) as seen at `now`.
pub fn analytics(
    events: &[Event],
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    now: Timestamp,
) -> Analytics {
    let mut summary = Summary::default();
    for e in events {
        summary.apply(e);
    }
    analytics_of(&summary, &UsageTotals::of(&usage(events, from, to)), now)
}

/// Analytics from the stream's summary (the figures "now") and the usage of the range.
pub fn analytics_of(summary: &Summary, usage: &UsageTotals, now: Timestamp) -> Analytics {
    let mut a = Analytics {
        current_energy: summary.balance.units(),
        total_consumed: 0,
        total_purchased: 0,
        total_refunded: 0,
        total_transactions: 0,
        top_actions: Vec::new(),
        by_app: BTreeMap::new(),
        daily: Vec::new(),
        unlimited_actions: 0,
        notional_energy_unlimited: 0,
        subscription_type: SubscriptionType::of(summary, now),
        member_since: summary.opened_at,
    };
    let mut actions: BTreeMap<&str, Usage> = BTreeMap::new();
    for c in &usage.keys {
        a.total_transactions = a.total_transactions.saturating_add(c.rows);
        match c.kind {
            TxKind::Consume => {
                a.total_consumed = a.total_consumed.saturating_add(c.energy);
                actions.entry(&c.action).or_default().add(c);
                a.by_app.entry(c.app.clone()).or_default().add(c);
                a.unlimited_actions = a.unlimited_actions.saturating_add(c.unlimited);
                a.notional_energy_unlimited =
                    a.notional_energy_unlimited.saturating_add(c.notional);
            }
            TxKind::Purchase | TxKind::Bonus => {
                a.total_purchased = a.total_purchased.saturating_add(c.energy);
            }
            TxKind::Refund => a.total_refunded = a.total_refunded.saturating_add(c.energy),
            TxKind::Welcome | TxKind::Grant | TxKind::Revoke => {}
        }
    }
    let mut top: Vec<(String, Usage)> = actions
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    top.sort_by(|x, y| y.1.count.cmp(&x.1.count).then_with(|| x.0.cmp(&y.0)));
    top.truncate(5);
    a.top_actions = top;
    a.daily = usage
        .consumed_daily
        .iter()
        .map(|&(d, e)| (Date::from_days(d), e))
        .collect();
    a
}

impl Usage {
    fn add(&mut self, c: &UsageCell) {
        self.count = self.count.saturating_add(c.rows);
        self.energy = self.energy.saturating_add(c.energy);
    }
}
