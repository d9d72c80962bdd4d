//! The Capital Narratif: a deterministic fold over every event of a user (spec §2.4).
//!
//! Recomputed on every request; nothing is stored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::event::{Event, EventKind};
use crate::history::DEFAULT_APP;
use crate::json::Context;
use crate::units::{Span, Timestamp};
use crate::view::SubscriptionType;
use crate::wallet::Summary;

/// The version of the reconstruction rules, reported in `metadata`.
pub const RECONSTRUCTION_VERSION: &str = "2.0";
/// How many occurrences the timeline keeps.
pub const TIMELINE_LEN: usize = 10;
/// Paid actions in 30 days above which a free user is an upgrade candidate.
pub const UPGRADE_THRESHOLD: u64 = 10;

/// One action occurrence on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence<'a> {
    /// The action.
    pub action: &'a str,
    /// The app it happened in.
    pub app: &'a str,
    /// When.
    pub occurred_at: Timestamp,
    /// Its context, verbatim.
    pub context: Option<&'a Context>,
}

/// A French recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    /// Stable code.
    pub code: &'static str,
    /// French message.
    pub message: &'static str,
}

const TRY_STRATEGIE: Recommendation = Recommendation {
    code: "try_strategie_candidature",
    message: "Vous avez rédigé plusieurs lettres : essayez la Stratégie candidature pour cibler vos candidatures.",
};
const TRY_MIRROR: Recommendation = Recommendation {
    code: "try_mirror_match",
    message: "Votre CV est bien analysé : essayez le Mirror Match pour le confronter aux offres.",
};
const EXPLORE: Recommendation = Recommendation {
    code: "explore_features",
    message: "Découvrez les autres fonctionnalités de Luna pour enrichir votre parcours.",
};
const KEEP_GOING: Recommendation = Recommendation {
    code: "keep_going",
    message: "Continuez ainsi : chaque action enrichit votre Capital Narratif.",
};

/// Where the user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trajectory {
    /// Fewer than 3 occurrences.
    EarlyUser,
    /// Mean complexity of the 5 newest below 2.5.
    Beginner,
    /// Mean complexity ≥ 2.5.
    Progressing,
    /// Mean complexity ≥ 4.
    AdvancedUser,
}

impl Trajectory {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trajectory::EarlyUser => "early_user",
            Trajectory::Beginner => "beginner",
            Trajectory::Progressing => "progressing",
            Trajectory::AdvancedUser => "advanced_user",
        }
    }
}

/// The Capital Narratif.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrative<'a> {
    // user_profile
    /// Every event of the user, the hub's own included.
    pub total_events: u64,
    /// Distinct apps of action occurrences, sorted.
    pub apps_mastered: Vec<&'a str>,
    /// Distinct `target_role` and `industry` strings, sorted.
    pub skills_demonstrated: Vec<&'a str>,
    /// The most frequent action (ties → alphabetical).
    pub most_frequent_action: Option<&'a str>,
    // usage_analytics
    /// Occurrences per action.
    pub actions_breakdown: BTreeMap<&'a str, u64>,
    /// Energy consumed minus refunded.
    pub total_energy_consumed: i64,
    /// `total_energy_consumed / paid occurrences` (0 if none).
    pub average_energy_per_action: i64,
    /// Unlimited consumes.
    pub unlimited_actions: u64,
    /// Their notional energy.
    pub notional_energy_unlimited: u64,
    /// Free or Unlimited now, or None without an account.
    pub primary_subscription: Option<SubscriptionType>,
    /// A free user with more than 10 paid consumes in the last 30 days.
    pub upgrade_candidate: bool,
    // professional_journey
    /// The newest occurrences, newest first.
    pub timeline: Vec<Occurrence<'a>>,
    /// Distinct target roles in first-seen order.
    pub career_progression: Vec<&'a str>,
    /// `(area, count)`, count desc then name.
    pub expertise_areas: Vec<(&'static str, u64)>,
    // ai_insights
    /// `min(10 × distinct, 50) + min(2 × occurrences, 50)`.
    pub engagement_score: u64,
    /// Growth trajectory.
    pub growth_trajectory: Trajectory,
    /// Up to three recommendations, in rule order.
    pub recommendations: Vec<Recommendation>,
    // metadata
    /// The request time.
    pub generated_at: Timestamp,
    /// Events analysed (= `total_events`).
    pub events_analyzed: u64,
}

fn complexity(action: &str) -> u64 {
    match action {
        "format_lettre" => 2,
        "lettre_motivation" => 3,
        "analyse_cv_complete" => 4,
        "mirror_match" | "strategie_candidature" => 5,
        _ => 1,
    }
}

fn expertise_area(action: &str) -> Option<&'static str> {
    if action.contains("cv") {
        Some("cv_optimization")
    } else if action.contains("lettre") {
        Some("cover_letters")
    } else if action.contains("mirror") {
        Some("job_matching")
    } else if action.contains("analyse") {
        Some("strategic_analysis")
    } else {
        None
    }
}

/// What one pass over the events gathers.
#[derive(Default)]
struct Tally<'a> {
    summary: Summary,
    counts: BTreeMap<&'a str, u64>,
    apps: BTreeSet<&'a str>,
    skills: BTreeSet<&'a str>,
    roles: Vec<&'a str>,
    seen_roles: BTreeSet<&'a str>,
    recent: VecDeque<Occurrence<'a>>,
    consumed: i64,
    refunded: i64,
    paid: i64,
    occurrences: u64,
    unlimited_actions: u64,
    notional_unlimited: u64,
    recent_paid: u64,
}

impl<'a> Tally<'a> {
    fn fold(events: &'a [Event], now: Timestamp) -> Tally<'a> {
        let mut t = Tally::default();
        let window_start = now.minus(Span::days(30));
        for e in events {
            t.summary.apply(e);
            if let Some(o) = t.occurrence(e, window_start, now) {
                t.record(o);
            }
        }
        t
    }

    /// The action occurrence an event is, if any, counting what consumes and refunds add.
    fn occurrence(
        &mut self,
        e: &'a Event,
        window_start: Timestamp,
        now: Timestamp,
    ) -> Option<Occurrence<'a>> {
        match &e.kind {
            EventKind::EnergyConsumed(c) => {
                self.consumed += i64::from(c.cost.units());
                if c.unlimited {
                    self.unlimited_actions += 1;
                    self.notional_unlimited += u64::from(c.notional.units());
                }
                if !c.cost.is_zero() {
                    self.paid += 1;
                    if e.occurred_at >= window_start && e.occurred_at <= now {
                        self.recent_paid += 1;
                    }
                }
                let ctx = c.context.as_ref();
                Some(Occurrence {
                    action: c.action.as_str(),
                    app: ctx.and_then(Context::app_source).unwrap_or(DEFAULT_APP),
                    occurred_at: e.occurred_at,
                    context: ctx,
                })
            }
            EventKind::EnergyRefunded(r) => {
                self.refunded += i64::from(r.amount.units());
                None
            }
            EventKind::AppEvent(a) => a.action.as_deref().map(|action| Occurrence {
                action,
                app: a.app_source.as_str(),
                occurred_at: e.occurred_at,
                context: a.context.as_ref(),
            }),
            _ => None,
        }
    }

    fn record(&mut self, o: Occurrence<'a>) {
        self.occurrences += 1;
        *self.counts.entry(o.action).or_default() += 1;
        self.apps.insert(o.app);
        if let Some(ctx) = o.context {
            if let Some(role) = ctx.target_role() {
                self.skills.insert(role);
                if self.seen_roles.insert(role) {
                    self.roles.push(role);
                }
            }
            if let Some(industry) = ctx.industry() {
                self.skills.insert(industry);
            }
        }
        if self.recent.len() == TIMELINE_LEN {
            self.recent.pop_front();
        }
        self.recent.push_back(o);
    }
}

/// The most frequent action: max count, ties → alphabetical (a `BTreeMap` iterates
/// alphabetically; the first max is kept).
fn most_frequent<'a>(counts: &BTreeMap<&'a str, u64>) -> Option<&'a str> {
    counts
        .iter()
        .fold(None, |best: Option<(&str, u64)>, (k, v)| match best {
            Some((_, bv)) if bv >= *v => best,
            _ => Some((k, *v)),
        })
        .map(|(k, _)| k)
}

/// `(area, count)` by count desc, then name; actions matching no rule left out.
fn expertise_areas(counts: &BTreeMap<&str, u64>) -> Vec<(&'static str, u64)> {
    let mut areas: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (action, n) in counts {
        if let Some(area) = expertise_area(action) {
            *areas.entry(area).or_default() += n;
        }
    }
    let mut areas: Vec<(&'static str, u64)> = areas.into_iter().collect();
    areas.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    areas
}

/// The trajectory from the mean complexity of the 5 newest occurrences (in integers:
/// `2·sum ≥ 5·n` for 2.5).
fn trajectory(occurrences: u64, recent: &VecDeque<Occurrence<'_>>) -> Trajectory {
    if occurrences < 3 {
        return Trajectory::EarlyUser;
    }
    let newest: Vec<&Occurrence<'_>> = recent.iter().rev().take(5).collect();
    let n = newest.len() as u64;
    let sum: u64 = newest.iter().map(|o| complexity(o.action)).sum();
    if sum >= 4 * n {
        Trajectory::AdvancedUser
    } else if 2 * sum >= 5 * n {
        Trajectory::Progressing
    } else {
        Trajectory::Beginner
    }
}

/// Up to three recommendations, in rule order; `keep_going` only when no other rule fired.
fn recommendations(counts: &BTreeMap<&str, u64>) -> Vec<Recommendation> {
    let count = |a: &str| counts.get(a).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(3);
    if count("lettre_motivation") > 3 {
        out.push(TRY_STRATEGIE);
    }
    if count("analyse_cv_complete") > 2 {
        out.push(TRY_MIRROR);
    }
    if counts.len() == 1 {
        out.push(EXPLORE);
    }
    if out.is_empty() {
        out.push(KEEP_GOING);
    }
    out.truncate(3);
    out
}

/// Folds every event of a user, oldest first, as seen at `now`.
pub fn narrative(events: &[Event], now: Timestamp) -> Narrative<'_> {
    let t = Tally::fold(events, now);
    let distinct = t.counts.len() as u64;
    let unlimited_now = t.summary.is_unlimited(now);
    let primary_subscription = t
        .summary
        .is_open()
        .then(|| SubscriptionType::of(&t.summary, now));
    let total_energy_consumed = t.consumed - t.refunded;
    let total_events = events.len() as u64;
    Narrative {
        total_events,
        apps_mastered: t.apps.into_iter().collect(),
        skills_demonstrated: t.skills.into_iter().collect(),
        most_frequent_action: most_frequent(&t.counts),
        total_energy_consumed,
        average_energy_per_action: if t.paid == 0 {
            0
        } else {
            total_energy_consumed / t.paid
        },
        unlimited_actions: t.unlimited_actions,
        notional_energy_unlimited: t.notional_unlimited,
        primary_subscription,
        upgrade_candidate: !unlimited_now && t.recent_paid > UPGRADE_THRESHOLD,
        career_progression: t.roles,
        expertise_areas: expertise_areas(&t.counts),
        engagement_score: (10 * distinct).min(50) + (2 * t.occurrences).min(50),
        growth_trajectory: trajectory(t.occurrences, &t.recent),
        recommendations: recommendations(&t.counts),
        timeline: t.recent.into_iter().rev().collect(),
        actions_breakdown: t.counts,
        generated_at: now,
        events_analyzed: total_events,
    }
}
