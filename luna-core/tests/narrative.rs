//! The Capital Narratif fold (spec §2.4 and §6 "Narrative details").

use luna_core::narrative::{Trajectory, narrative};
use luna_core::{
    AccountOpened, ActionName, AppEvent, AppSource, Context, Energy, EnergyConsumed,
    EnergyRefunded, Event, EventKind, EventType, Id, RawJson, SubscriptionChanged, SubscriptionRef,
    SubscriptionStatus, Timestamp,
};

const T0: i64 = 1_700_000_000;

fn at(s: i64) -> Timestamp {
    Timestamp::from_secs(T0 + s)
}

fn ctx(app: Option<&str>, role: Option<&str>, industry: Option<&str>) -> Context {
    Context::new(
        RawJson::new("{}"),
        app.map(Into::into),
        role.map(Into::into),
        industry.map(Into::into),
    )
}

fn consume(s: i64, action: &str, cost: u32, context: Option<Context>) -> Event {
    Event {
        occurred_at: at(s),
        kind: EventKind::EnergyConsumed(EnergyConsumed {
            tx: Id::from_u128(u128::try_from(s).unwrap() + 1),
            action: ActionName::parse(action).unwrap(),
            cost: Energy::new(cost),
            notional: Energy::new(cost.max(10)),
            unlimited: cost == 0,
            grid_version: "v".into(),
            context,
            from_reservation: false,
        }),
    }
}

fn app_event(s: i64, app: &str, action: Option<&str>, context: Option<Context>) -> Event {
    Event {
        occurred_at: at(s),
        kind: EventKind::AppEvent(AppEvent {
            event_type: EventType::parse("letter.generated").unwrap(),
            app_source: AppSource::parse(app).unwrap(),
            data: RawJson::new("{}"),
            metadata: None,
            action: action.map(Into::into),
            context,
        }),
    }
}

fn opened() -> Event {
    Event {
        occurred_at: at(0),
        kind: EventKind::AccountOpened(AccountOpened {
            tx: Id::from_u128(0),
            welcome: Energy::new(85),
        }),
    }
}

#[test]
fn an_empty_history_is_an_early_user_told_to_keep_going() {
    let n = narrative(&[], at(10));
    assert_eq!(n.total_events, 0);
    assert_eq!(n.most_frequent_action, None);
    assert_eq!(n.primary_subscription, None);
    assert_eq!(n.growth_trajectory, Trajectory::EarlyUser);
    assert_eq!(n.engagement_score, 0);
    assert_eq!(
        n.recommendations.iter().map(|r| r.code).collect::<Vec<_>>(),
        ["keep_going"]
    );
}

#[test]
fn consumes_and_app_actions_are_occurrences_with_their_apps() {
    let events = [
        opened(),
        consume(
            1,
            "lettre_motivation",
            15,
            Some(ctx(Some("letters"), Some("Data Analyst"), Some("Tech"))),
        ),
        consume(2, "mirror_match", 30, None),
        app_event(
            3,
            "cv",
            Some("optimisation_cv"),
            Some(ctx(None, Some("Product Manager"), None)),
        ),
        app_event(4, "cv", None, None),
    ];
    let n = narrative(&events, at(10));
    assert_eq!(n.total_events, 5);
    assert_eq!(n.events_analyzed, 5);
    assert_eq!(n.apps_mastered, ["cv", "letters", "luna_hub"]);
    assert_eq!(
        n.skills_demonstrated,
        ["Data Analyst", "Product Manager", "Tech"]
    );
    assert_eq!(n.career_progression, ["Data Analyst", "Product Manager"]);
    assert_eq!(n.actions_breakdown.len(), 3);
    // three actions once each: alphabetical tie-break
    assert_eq!(n.most_frequent_action, Some("lettre_motivation"));
    assert_eq!(
        n.timeline.iter().map(|o| o.action).collect::<Vec<_>>(),
        ["optimisation_cv", "mirror_match", "lettre_motivation"]
    );
    assert_eq!(n.engagement_score, 30 + 6);
    assert_eq!(
        n.primary_subscription
            .map(luna_core::SubscriptionType::as_str),
        Some("free")
    );
    let areas: Vec<(&str, u64)> = n.expertise_areas.clone();
    assert_eq!(
        areas,
        [
            ("cover_letters", 1),
            ("cv_optimization", 1),
            ("job_matching", 1)
        ]
    );
}

#[test]
fn energy_totals_deduct_refunds_and_average_over_paid_actions() {
    let refund = Event {
        occurred_at: at(5),
        kind: EventKind::EnergyRefunded(EnergyRefunded {
            tx: Id::from_u128(99),
            refunded_tx: Id::from_u128(2),
            amount: Energy::new(10),
            reason: "r".into(),
            by_user: false,
        }),
    };
    let events = [
        opened(),
        consume(1, "lettre_motivation", 15, None),
        consume(2, "mirror_match", 30, None),
        consume(3, "mirror_match", 0, None),
        refund,
    ];
    let n = narrative(&events, at(10));
    assert_eq!(n.total_energy_consumed, 35);
    assert_eq!(n.average_energy_per_action, 17);
    assert_eq!(n.unlimited_actions, 1);
    assert_eq!(n.notional_energy_unlimited, 10);
}

#[test]
fn growth_follows_the_mean_complexity_of_the_five_newest() {
    let simple: Vec<Event> = (1..=5)
        .map(|i| consume(i, "conseil_rapide", 5, None))
        .collect();
    assert_eq!(
        narrative(&simple, at(10)).growth_trajectory,
        Trajectory::Beginner
    );
    // weights 3,3,3,1,3 → 13/5 = 2.6 ≥ 2.5
    let mixed = [
        consume(1, "lettre_motivation", 15, None),
        consume(2, "lettre_motivation", 15, None),
        consume(3, "conseil_rapide", 5, None),
        consume(4, "lettre_motivation", 15, None),
        consume(5, "lettre_motivation", 15, None),
    ];
    assert_eq!(
        narrative(&mixed, at(10)).growth_trajectory,
        Trajectory::Progressing
    );
    let hard: Vec<Event> = (1..=6)
        .map(|i| consume(i, "mirror_match", 30, None))
        .collect();
    assert_eq!(
        narrative(&hard, at(10)).growth_trajectory,
        Trajectory::AdvancedUser
    );
    let two = [
        consume(1, "mirror_match", 30, None),
        consume(2, "mirror_match", 30, None),
    ];
    assert_eq!(
        narrative(&two, at(10)).growth_trajectory,
        Trajectory::EarlyUser
    );
}

#[test]
fn recommendations_follow_rule_order() {
    let mut events: Vec<Event> = (1..=4)
        .map(|i| consume(i, "lettre_motivation", 15, None))
        .collect();
    let codes = |evs: &[Event]| {
        narrative(evs, at(100))
            .recommendations
            .iter()
            .map(|r| r.code)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(&events),
        ["try_strategie_candidature", "explore_features"]
    );
    events.extend((5..=7).map(|i| consume(i, "analyse_cv_complete", 25, None)));
    assert_eq!(
        codes(&events),
        ["try_strategie_candidature", "try_mirror_match"]
    );
    assert_eq!(codes(&events[..2]), ["explore_features"]);
    let two_kinds = [
        consume(1, "mirror_match", 30, None),
        consume(2, "conseil_rapide", 5, None),
    ];
    assert_eq!(codes(&two_kinds), ["keep_going"]);
}

#[test]
fn the_timeline_keeps_the_ten_newest_newest_first() {
    let events: Vec<Event> = (1..=12)
        .map(|i| consume(i, "conseil_rapide", 5, None))
        .collect();
    let n = narrative(&events, at(100));
    assert_eq!(n.timeline.len(), 10);
    assert_eq!(n.timeline[0].occurred_at, at(12));
    assert_eq!(n.timeline[9].occurred_at, at(3));
    assert_eq!(n.engagement_score, 10 + 24);
}

#[test]
fn a_free_user_with_more_than_ten_paid_actions_in_thirty_days_is_an_upgrade_candidate() {
    let day = 86_400;
    let mut events = vec![opened()];
    events.extend((1..=11).map(|i| consume(i, "conseil_rapide", 5, None)));
    assert!(narrative(&events, at(100)).upgrade_candidate);
    assert!(!narrative(&events, at(31 * day)).upgrade_candidate);
    assert!(!narrative(&events[..11], at(100)).upgrade_candidate);
    events.push(Event {
        occurred_at: at(50),
        kind: EventKind::SubscriptionChanged(SubscriptionChanged {
            subscription: SubscriptionRef::parse("sub_1").unwrap(),
            status: SubscriptionStatus::Active,
            current_period_end: Some(at(10 * day)),
            cancel_at_period_end: false,
            unlimited_plan: true,
            provider_created: at(50),
        }),
    });
    let n = narrative(&events, at(100));
    assert!(!n.upgrade_candidate);
    assert_eq!(
        n.primary_subscription
            .map(luna_core::SubscriptionType::as_str),
        Some("luna_unlimited")
    );
}

#[test]
fn the_narrative_is_deterministic() {
    let events = [
        opened(),
        consume(
            1,
            "lettre_motivation",
            15,
            Some(ctx(Some("letters"), Some("Dev"), None)),
        ),
        app_event(2, "cv", Some("mirror_match"), None),
    ];
    assert_eq!(narrative(&events, at(10)), narrative(&events, at(10)));
}
