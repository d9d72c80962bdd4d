//! The concurrency storm every backend runs: many tasks consuming over a few users through
//! one or more hub instances, then checks that nothing was overdrawn, lost or applied twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use luna_app::{AppError, ConsumeOutcome, ConsumeRequest, Hub, Idempotency, Reply};
use luna_core::{Catalog, DomainError, Energy, EventKind, UserId, Wallet};
use luna_ports::{EventMetadata, Store, StoredResponse};

/// The shape of a storm.
#[derive(Debug, Clone, Copy)]
pub struct StormPlan {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Operations per task.
    pub ops_per_task: usize,
    /// Users the operations spread over.
    pub users: usize,
    /// Pause before checking, for stores whose reads may lag other instances' writes.
    pub settle: std::time::Duration,
}

impl StormPlan {
    /// 32 tasks × 200 operations over 5 users.
    pub const FULL: StormPlan = StormPlan {
        tasks: 32,
        ops_per_task: 200,
        users: 5,
        settle: std::time::Duration::ZERO,
    };
}

/// What a storm did.
#[derive(Debug, Default)]
pub struct StormReport {
    /// Successful consumes (distinct effects).
    pub consumes: u64,
    /// Refusals for insufficient energy.
    pub refusals: u64,
    /// Replays of an idempotency key, all equal to the first answer.
    pub replays: u64,
    /// Grants.
    pub grants: u64,
}

fn encode(r: &Result<ConsumeOutcome, AppError>) -> Option<StoredResponse> {
    match r {
        Ok(o) => Some(StoredResponse {
            status: 200,
            body: format!("{o:?}").into_bytes(),
        }),
        Err(AppError::Domain(d)) => Some(StoredResponse {
            status: 402,
            body: format!("{d:?}").into_bytes(),
        }),
        Err(_) => None,
    }
}

#[derive(Default)]
struct TaskTally {
    consumed: BTreeMap<String, (u64, u64)>,
    granted: BTreeMap<String, u64>,
    refusals: u64,
    replays: u64,
}

/// The previous consume of a task: its key, user, action and first answer.
type LastConsume = (String, UserId, String, StoredResponse);

/// Repeats a consume with its key: it must replay its first answer, not apply again.
async fn replay(
    hub: &Hub,
    (key, u, action, first): &LastConsume,
    meta: &EventMetadata,
    enc: &luna_app::Encoder<ConsumeOutcome>,
) {
    let idem = Idempotency {
        principal: "service:storm".into(),
        key: key.clone(),
        fingerprint: format!("{u}|{action}"),
        encode: enc.clone(),
    };
    let req = ConsumeRequest {
        user: u.clone(),
        action: action.clone(),
        context: None,
    };
    match hub.consume(req, meta, Some(&idem)).await.expect("replay") {
        Reply::Replayed(r) => {
            assert_eq!(&r, first, "a replay differs from the first answer");
        }
        Reply::Fresh(o) => panic!("a repeated key applied again: {o:?}"),
        Reply::Duplicate => panic!("no provider event was given"),
    }
}

async fn task(
    hub: Arc<Hub>,
    users: Vec<UserId>,
    t: usize,
    ops: usize,
    prefix: String,
) -> TaskTally {
    let actions: Vec<String> = Catalog::default_grid()
        .actions()
        .map(|a| a.name.to_string())
        .collect();
    let meta = EventMetadata {
        actor: Some(format!("storm-{t}")),
        ..EventMetadata::default()
    };
    let enc: luna_app::Encoder<ConsumeOutcome> = std::sync::Arc::new(encode);
    let mut tally = TaskTally::default();
    let mut last: Option<LastConsume> = None;
    for i in 0..ops {
        let n = t * 7919 + i * 104_729;
        let user = users[n % users.len()].clone();
        if i % 7 == 3 {
            hub.grant(&user, Energy::new(100), "storm top-up", &meta, None)
                .await
                .expect("grant");
            *tally.granted.entry(user.to_string()).or_default() += 100;
            continue;
        }
        if i % 10 == 9 {
            // Repeat the previous consume with its key: it must replay, not apply again.
            if let Some(last) = &last {
                replay(&hub, last, &meta, &enc).await;
                tally.replays += 1;
                continue;
            }
        }
        let action = actions[n % actions.len()].clone();
        let key = format!("{prefix}-{t}-{i}");
        let idem = Idempotency {
            principal: "service:storm".into(),
            key: key.clone(),
            fingerprint: format!("{user}|{action}"),
            encode: enc.clone(),
        };
        let req = ConsumeRequest {
            user: user.clone(),
            action: action.clone(),
            context: None,
        };
        let result = hub.consume(req, &meta, Some(&idem)).await;
        let first = match &result {
            Ok(Reply::Fresh(o)) => {
                let e = tally.consumed.entry(user.to_string()).or_default();
                e.0 += 1;
                e.1 += u64::from(o.energy_consumed.units());
                encode(&Ok(o.clone())).expect("encodable")
            }
            Err(AppError::Domain(d @ DomainError::InsufficientEnergy(_))) => {
                tally.refusals += 1;
                StoredResponse {
                    status: 402,
                    body: format!("{d:?}").into_bytes(),
                }
            }
            other => panic!("unexpected answer under contention: {other:?}"),
        };
        last = Some((key, user, action, first));
    }
    tally
}

/// One user's stream after a storm: one event per successful consume, never below zero, the
/// final balance exact, the stored projection equal to the rebuilt one.
async fn check_user(store: &dyn Store, u: &UserId, welcome: i64, (n, energy): (u64, u64), g: u64) {
    let events = store.read_stream(u).await.expect("read stream");
    let consume_events = events
        .iter()
        .filter(|e| matches!(e.event.kind, EventKind::EnergyConsumed(_)))
        .count();
    assert_eq!(
        consume_events as u64, n,
        "{u}: one event per successful consume"
    );
    let decided: Vec<_> = events.iter().map(|e| e.event.clone()).collect();
    for row in luna_core::history::transactions(&decided) {
        assert!(
            row.energy_after.units() >= 0,
            "{u}: balance went below zero"
        );
    }
    let wallet = Wallet::fold(&decided);
    let expected = welcome + i64::try_from(g).expect("fits") - i64::try_from(energy).expect("fits");
    assert_eq!(
        wallet.summary.balance.units(),
        expected,
        "{u}: final balance"
    );
    let loaded = store.load(u, &[]).await.expect("load");
    assert_eq!(
        loaded.summary, wallet.summary,
        "{u}: stored projection equals the rebuilt one"
    );
    assert_eq!(loaded.version, events.len() as u64);
}

/// Runs a storm through `hubs` (round-robin over tasks) and checks the invariants on the store
/// of the first hub: no balance ever below zero, final balances exactly welcome + grants −
/// successful consumes, one event per successful consume, replays equal to first answers, and
/// stored summaries equal to summaries rebuilt from the events.
pub async fn storm(
    hubs: &[Arc<Hub>],
    store: &dyn Store,
    plan: StormPlan,
    prefix: &str,
) -> StormReport {
    let users: Vec<UserId> = (0..plan.users)
        .map(|u| UserId::parse(&format!("{prefix}-u{u}")).expect("valid user"))
        .collect();
    let mut handles = Vec::new();
    for t in 0..plan.tasks {
        let hub = hubs[t % hubs.len()].clone();
        handles.push(tokio::spawn(task(
            hub,
            users.clone(),
            t,
            plan.ops_per_task,
            prefix.to_owned(),
        )));
    }
    let mut report = StormReport::default();
    let mut consumed: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut granted: BTreeMap<String, u64> = BTreeMap::new();
    for h in handles {
        let t = h.await.expect("storm task");
        for (u, (n, e)) in t.consumed {
            let c = consumed.entry(u).or_default();
            c.0 += n;
            c.1 += e;
        }
        for (u, g) in t.granted {
            *granted.entry(u).or_default() += g;
            report.grants += 1;
        }
        report.refusals += t.refusals;
        report.replays += t.replays;
    }
    tokio::time::sleep(plan.settle).await;
    let welcome = i64::from(hubs[0].policy().welcome_energy.units());
    for u in &users {
        let (n, energy) = consumed.get(u.as_str()).copied().unwrap_or_default();
        let g = granted.get(u.as_str()).copied().unwrap_or_default();
        check_user(store, u, welcome, (n, energy), g).await;
        report.consumes += n;
    }
    assert!(
        report.consumes > 0 && report.refusals > 0 && report.replays > 0,
        "the storm exercised too little: {report:?}"
    );
    report
}
