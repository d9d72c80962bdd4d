//! How a usage query over a time range is split between the data a store keeps with each
//! append: rollups per span of [`USAGE_SPAN_DAYS`] days, rollups per UTC day, and the rows of
//! the partial days at the range's edges (ADR 0007, ADR 0011). Both SQL stores answer from
//! the same split: the totals per key of a range cost O(range / span + 2 spans of days + the
//! rows of 2 partial days), never O(history); analytics' daily series costs O(days in the
//! range) — the size of the answer, all of the history's days for an all-time range.

use luna_core::Timestamp;

/// Days in a usage span: stores keep usage summed per (stream, span, kind, action, app) beside
/// the daily rollups, so the totals of a long range read one cell per key and span.
pub const USAGE_SPAN_DAYS: i64 = 32;

/// The span of a UTC day (days since 1970-01-01): span `s` holds the days
/// `[s × USAGE_SPAN_DAYS, (s + 1) × USAGE_SPAN_DAYS)`.
pub const fn usage_span(day: i64) -> i64 {
    day.div_euclid(USAGE_SPAN_DAYS)
}

/// How a usage query over `[from, to)` is answered: the UTC days wholly inside the range
/// from the daily rollups (and, for totals per key, the spans wholly inside those days from
/// the span rollups), and the rows of the partial days at its edges one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSplit {
    /// Whole days `[first, end)` read from the rollups (`None` bound: unbounded; `None`: no
    /// whole day).
    pub days: Option<Bounds>,
    /// The spans `[first, end)` wholly inside `days` (`None` bound: unbounded; `None`: no
    /// whole span): totals per key read them instead of their days.
    pub spans: Option<Bounds>,
    /// The whole days `[first, end)` of `days` outside `spans` (at most two ranges, fewer than
    /// two spans' days in all): totals per key read their daily rollups.
    pub loose_days: Vec<(i64, i64)>,
    /// Time ranges whose rows are read one by one (at most two).
    pub edges: Vec<UsageEdge>,
}

/// A range `[first, end)` of days or spans, either bound optional (unbounded).
pub type Bounds = (Option<i64>, Option<i64>);

/// A partial-day range `[from, to)` of a usage query (always bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageEdge {
    /// From (inclusive).
    pub from: Timestamp,
    /// To (exclusive).
    pub to: Timestamp,
}

impl UsageEdge {
    /// The first and last UTC day the range touches (a stored row of the range lies between
    /// the first and last positions those days' rollups keep).
    pub fn days(&self) -> (i64, i64) {
        (
            self.from.day_number(),
            Timestamp::from_millis(self.to.millis().saturating_sub(1)).day_number(),
        )
    }
}

impl UsageSplit {
    /// Splits `[from, to)`.
    pub fn of(from: Option<Timestamp>, to: Option<Timestamp>) -> UsageSplit {
        // The first whole day starts at or after `from`; the whole days end at or before `to`.
        let first = from.map(|f| {
            let d = f.day_number();
            if Timestamp::start_of_day(d) == f {
                d
            } else {
                d.saturating_add(1)
            }
        });
        let end = to.map(Timestamp::day_number);
        if let (Some(from), Some(to), Some(f), Some(e)) = (from, to, first, end) {
            if f >= e {
                // No whole day: the range lies within at most two partial days.
                return UsageSplit {
                    days: None,
                    spans: None,
                    loose_days: Vec::new(),
                    edges: vec![UsageEdge { from, to }],
                };
            }
        }
        let mut edges = Vec::with_capacity(2);
        if let (Some(f), Some(d)) = (from, first) {
            let start = Timestamp::start_of_day(d);
            if f < start {
                edges.push(UsageEdge { from: f, to: start });
            }
        }
        if let (Some(t), Some(e)) = (to, end) {
            let start = Timestamp::start_of_day(e);
            if start < t {
                edges.push(UsageEdge { from: start, to: t });
            }
        }
        let (spans, loose_days) = spans_of(first, end);
        UsageSplit {
            days: Some((first, end)),
            spans,
            loose_days,
            edges,
        }
    }

    /// The ranges a store sums per key from its rollups, as it binds them: the whole spans,
    /// then the two runs of loose days; a part the range does not have is the empty `[0, 0)`.
    pub fn key_ranges(&self) -> [(i64, i64); 3] {
        let loose = |i: usize| self.loose_days.get(i).copied().unwrap_or((0, 0));
        [self.spans.map_or((0, 0), bounded), loose(0), loose(1)]
    }
}

/// `[first, end)` as a store binds it: an unbounded side as `i64::MIN` / `i64::MAX`.
pub fn bounded((first, end): Bounds) -> (i64, i64) {
    (first.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX))
}

/// The whole spans of the days `[first, end)` (not empty), and the days outside them.
fn spans_of(first: Option<i64>, end: Option<i64>) -> (Option<Bounds>, Vec<(i64, i64)>) {
    // The first whole span starts at or after `first`; the whole spans end at or before `end`.
    let first_span = first.map(|f| {
        let s = usage_span(f);
        if s * USAGE_SPAN_DAYS == f { s } else { s + 1 }
    });
    let end_span = end.map(usage_span);
    if let (Some(f), Some(e), Some(fs), Some(es)) = (first, end, first_span, end_span) {
        if fs >= es {
            return (None, vec![(f, e)]);
        }
    }
    let mut loose = Vec::with_capacity(2);
    if let (Some(f), Some(fs)) = (first, first_span) {
        if f < fs * USAGE_SPAN_DAYS {
            loose.push((f, fs * USAGE_SPAN_DAYS));
        }
    }
    if let (Some(e), Some(es)) = (end, end_span) {
        if es * USAGE_SPAN_DAYS < e {
            loose.push((es * USAGE_SPAN_DAYS, e));
        }
    }
    (Some((first_span, end_span)), loose)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days (in a window around `0`) of an optional-bounded range.
    fn days_in(range: Bounds, window: i64) -> Vec<i64> {
        (-window..window)
            .filter(|d| range.0.is_none_or(|f| *d >= f) && range.1.is_none_or(|e| *d < e))
            .collect()
    }

    /// Over every pair of bounds around span boundaries (and unbounded ones), the whole spans
    /// and the loose days are disjoint, cover exactly the whole days, and the loose days are
    /// fewer than two spans' days.
    #[test]
    fn spans_and_loose_days_partition_the_whole_days() {
        const W: i64 = 4 * USAGE_SPAN_DAYS;
        let bounds: Vec<Option<i64>> = std::iter::once(None)
            .chain(
                (-3 * USAGE_SPAN_DAYS..3 * USAGE_SPAN_DAYS)
                    .step_by(3)
                    .map(Some),
            )
            .chain([Some(-USAGE_SPAN_DAYS - 1), Some(0), Some(USAGE_SPAN_DAYS)])
            .collect();
        for &from in &bounds {
            for &to in &bounds {
                let day_ms = |d: i64| Timestamp::start_of_day(d);
                let split = UsageSplit::of(from.map(day_ms), to.map(day_ms));
                let Some(days) = split.days else {
                    assert!(days_in((from, to), W).is_empty(), "{from:?}..{to:?}");
                    continue;
                };
                assert!(split.edges.is_empty(), "bounds at midnight have no edge");
                let mut covered: Vec<i64> = split
                    .spans
                    .map(|(f, e)| {
                        days_in(
                            (
                                f.map(|s| s * USAGE_SPAN_DAYS),
                                e.map(|s| s * USAGE_SPAN_DAYS),
                            ),
                            W,
                        )
                    })
                    .unwrap_or_default();
                let mut loose = 0;
                for &(f, e) in &split.loose_days {
                    assert!(f < e, "{from:?}..{to:?}: {f}..{e}");
                    loose += e - f;
                    covered.extend(f..e);
                }
                assert!(
                    loose < 2 * USAGE_SPAN_DAYS,
                    "{from:?}..{to:?}: {loose} loose days"
                );
                assert!(split.loose_days.len() <= 2);
                covered.sort_unstable();
                let n = covered.len();
                covered.dedup();
                assert_eq!(n, covered.len(), "{from:?}..{to:?}: a day counted twice");
                assert_eq!(covered, days_in(days, W), "{from:?}..{to:?}");
            }
        }
    }

    #[test]
    fn a_day_belongs_to_the_span_that_holds_it() {
        assert_eq!(usage_span(0), 0);
        assert_eq!(usage_span(USAGE_SPAN_DAYS - 1), 0);
        assert_eq!(usage_span(USAGE_SPAN_DAYS), 1);
        assert_eq!(usage_span(-1), -1);
        assert_eq!(usage_span(-USAGE_SPAN_DAYS), -1);
        assert_eq!(usage_span(-USAGE_SPAN_DAYS - 1), -2);
    }

    #[test]
    fn a_range_within_a_day_is_one_edge() {
        let at = |ms| Some(Timestamp::from_millis(ms));
        let split = UsageSplit::of(at(1_000), at(2_000));
        assert_eq!(split.days, None);
        assert_eq!(split.spans, None);
        assert_eq!(split.edges.len(), 1);
        let split = UsageSplit::of(at(1_000), at(86_400_000 * 3 + 5));
        assert_eq!(split.days, Some((Some(1), Some(3))));
        assert_eq!(split.loose_days, vec![(1, 3)]);
        assert_eq!(split.edges.len(), 2);
    }
}
