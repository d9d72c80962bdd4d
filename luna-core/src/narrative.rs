//! The Capital Narratif: a deterministic fold over every event of a user (spec §2.4).
//!
//! Recomputed on every request; nothing is stored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::event::{Event, EventKind};
use crate::history::DEFAULT_APP;
use crate::json::Context;
use crate::units::{Span, Timestamp};
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
    /// `"free"`, `"luna_unlimited"`, or None without an account.
    pub primary_subscription: Option<&'static str>,
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

/// Folds every event of a user, oldest first, as seen at `now`.
#[allow(
    clippy::too_many_lines,
    reason = "one pass over the events, then one block per output section"
)]
pub fn narrative(events: &[Event], now: Timestamp) -> Narrative<'_> {
    let mut summary = Summary::default();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut apps: BTreeSet<&str> = BTreeSet::new();
    let mut skills: BTreeSet<&str> = BTreeSet::new();
    let mut roles: Vec<&str> = Vec::new();
    let mut seen_roles: BTreeSet<&str> = BTreeSet::new();
    let mut recent: VecDeque<Occurrence<'_>> = VecDeque::with_capacity(TIMELINE_LEN + 1);
    let (mut consumed, mut refunded, mut paid, mut occurrences) = (0i64, 0i64, 0i64, 0u64);
    let (mut unlimited_actions, mut notional_unlimited, mut recent_paid) = (0u64, 0u64, 0u64);
    let window_start = now.minus(Span::days(30));

    for e in events {
        summary.apply(e);
        let occurrence = match &e.kind {
            EventKind::EnergyConsumed(c) => {
                consumed += i64::from(c.cost.units());
                if c.unlimited {
                    unlimited_actions += 1;
                    notional_unlimited += u64::from(c.notional.units());
                }
                if !c.cost.is_zero() {
                    paid += 1;
                    if e.occurred_at >= window_start && e.occurred_at <= now {
                        recent_paid += 1;
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
                refunded += i64::from(r.amount.units());
                None
            }
            EventKind::AppEvent(a) => a.action.as_deref().map(|action| Occurrence {
                action,
                app: a.app_source.as_str(),
                occurred_at: e.occurred_at,
                context: a.context.as_ref(),
            }),
            _ => None,
        };
        let Some(o) = occurrence else { continue };
        occurrences += 1;
        *counts.entry(o.action).or_default() += 1;
        apps.insert(o.app);
        if let Some(ctx) = o.context {
            if let Some(role) = ctx.target_role() {
                skills.insert(role);
                if seen_roles.insert(role) {
                    roles.push(role);
                }
            }
            if let Some(industry) = ctx.industry() {
                skills.insert(industry);
            }
        }
        if recent.len() == TIMELINE_LEN {
            recent.pop_front();
        }
        recent.push_back(o);
    }

    // max count, ties → alphabetical: BTreeMap iterates alphabetically, keep the first max.
    let most_frequent_action = counts
        .iter()
        .fold(None, |best: Option<(&str, u64)>, (k, v)| match best {
            Some((_, bv)) if bv >= *v => best,
            _ => Some((k, *v)),
        });

    let mut areas: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (action, n) in &counts {
        if let Some(area) = expertise_area(action) {
            *areas.entry(area).or_default() += n;
        }
    }
    let mut expertise_areas: Vec<(&'static str, u64)> = areas.into_iter().collect();
    expertise_areas.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));

    let distinct = counts.len() as u64;
    let engagement_score = (10 * distinct).min(50) + (2 * occurrences).min(50);

    let growth_trajectory = if occurrences < 3 {
        Trajectory::EarlyUser
    } else {
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
    };

    let count = |a: &str| counts.get(a).copied().unwrap_or(0);
    let mut recommendations = Vec::with_capacity(3);
    if count("lettre_motivation") > 3 {
        recommendations.push(TRY_STRATEGIE);
    }
    if count("analyse_cv_complete") > 2 {
        recommendations.push(TRY_MIRROR);
    }
    if distinct == 1 {
        recommendations.push(EXPLORE);
    }
    if recommendations.is_empty() {
        recommendations.push(KEEP_GOING);
    }
    recommendations.truncate(3);

    let unlimited_now = summary.is_unlimited(now);
    let primary_subscription = if unlimited_now {
        Some("luna_unlimited")
    } else if summary.is_open() {
        Some("free")
    } else {
        None
    };
    let total_energy_consumed = consumed - refunded;
    let total_events = events.len() as u64;

    Narrative {
        total_events,
        apps_mastered: apps.into_iter().collect(),
        skills_demonstrated: skills.into_iter().collect(),
        most_frequent_action: most_frequent_action.map(|(k, _)| k),
        actions_breakdown: counts,
        total_energy_consumed,
        average_energy_per_action: if paid == 0 {
            0
        } else {
            total_energy_consumed / paid
        },
        unlimited_actions,
        notional_energy_unlimited: notional_unlimited,
        primary_subscription,
        upgrade_candidate: !unlimited_now && recent_paid > UPGRADE_THRESHOLD,
        timeline: recent.into_iter().rev().collect(),
        career_progression: roles,
        expertise_areas,
        engagement_score,
        growth_trajectory,
        recommendations,
        generated_at: now,
        events_analyzed: total_events,
    }
}
