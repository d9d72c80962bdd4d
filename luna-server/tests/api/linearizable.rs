//! Two hub instances on one database serving one storm on the same users (issue 12), checked
//! for linearizability: every acknowledged consume and grant is recorded with its answered
//! balance and its start and end times; its stream version is read back from the store. The
//! order of versions must respect real time (an operation that ended before another began has
//! the lower version) and replaying the deltas in version order must give every answered
//! balance. No overdraft; a retry with the same key sent to the other instance is deduplicated.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, json_ok, uid};

#[derive(Debug, Clone)]
struct Op {
    user: usize,
    tx: String,
    delta: i64,
    answered: i64,
    start: Instant,
    end: Instant,
}

const ACTIONS: [(&str, i64); 3] = [
    ("conseil_rapide", 5),
    ("lettre_motivation", 15),
    ("mirror_match", 30),
];

async fn worker(apps: [Arc<TestApp>; 2], users: Vec<String>, t: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for i in 0..14 {
        let app = &apps[(t + i) % 2];
        let k = (t * 7 + i) % users.len();
        let start = Instant::now();
        if i % 5 == 0 {
            let r = app
                .post(
                    &app.admin,
                    "/luna/energy/grant",
                    &json!({"user_id": users[k], "amount": 40, "reason": "storm"}),
                )
                .await;
            let end = Instant::now();
            let v = json_ok(r).await;
            ops.push(Op {
                user: k,
                tx: v["transaction_id"].as_str().expect("tx").to_owned(),
                delta: 40,
                answered: v["new_energy_balance"].as_i64().expect("balance"),
                start,
                end,
            });
        } else {
            let (action, cost) = ACTIONS[(t + i) % ACTIONS.len()];
            let r = app.consume(&users[k], action).await;
            let end = Instant::now();
            match r.status() {
                StatusCode::OK => {
                    let v: Value = r.json().await.expect("json");
                    ops.push(Op {
                        user: k,
                        tx: v["transaction_id"].as_str().expect("tx").to_owned(),
                        delta: -cost,
                        answered: v["energy_remaining"].as_i64().expect("balance"),
                        start,
                        end,
                    });
                }
                StatusCode::PAYMENT_REQUIRED => {}
                s => panic!("unexpected {s}: {}", r.text().await.unwrap_or_default()),
            }
        }
    }
    ops
}

/// Transaction id → stream version, from every event of a user.
async fn versions_of(app: &TestApp, user: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(c) => format!("/luna/events/{user}?limit=200&before={c}"),
            None => format!("/luna/events/{user}?limit=200"),
        };
        let page = json_ok(app.get(&app.admin, &path).await).await;
        for e in page["events"].as_array().expect("events") {
            if let Some(tx) = e["event_data"]["transaction_id"].as_str() {
                out.insert(
                    tx.to_owned(),
                    e["stream_version"].as_u64().expect("version"),
                );
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => before = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_serve_one_storm_linearizably() {
    let one = Arc::new(TestApp::spawn().await);
    let two = Arc::new(TestApp::spawn_on_url(one.database_url.clone()).await);
    let users: Vec<String> = (0..3).map(|i| uid(&format!("lin{i}"))).collect();
    for u in &users {
        one.check(u).await;
    }
    let mut tasks = Vec::new();
    for t in 0..12 {
        let apps = [one.clone(), two.clone()];
        tasks.push(tokio::spawn(worker(apps, users.clone(), t)));
    }
    let mut ops = Vec::new();
    for t in tasks {
        ops.extend(t.await.expect("worker"));
    }
    let mut finals = Vec::new();
    for (k, u) in users.iter().enumerate() {
        let versions = versions_of(&one, u).await;
        let mut mine: Vec<(u64, Op)> = ops
            .iter()
            .filter(|o| o.user == k)
            .map(|o| {
                let v = *versions
                    .get(&o.tx)
                    .unwrap_or_else(|| panic!("acknowledged {} is stored", o.tx));
                (v, o.clone())
            })
            .collect();
        mine.sort_by_key(|(v, _)| *v);
        // Replaying the deltas in version order gives every answered balance.
        let mut balance = 85;
        for (v, o) in &mine {
            balance += o.delta;
            assert_eq!(balance, o.answered, "{u} at version {v}");
            assert!(balance >= 0, "{u} overdrawn at version {v}");
        }
        // Versions respect real time.
        for (i, (vi, a)) in mine.iter().enumerate() {
            for (vj, b) in &mine[i + 1..] {
                assert!(
                    b.end >= a.start,
                    "{u}: version {vj} ended before version {vi} began"
                );
            }
        }
        finals.push(balance);
    }
    println!(
        "linearizable: {} acknowledged operations on {} users over two instances; versions respect real time, replay gives every answer, 0 overdrafts",
        ops.len(),
        users.len()
    );
    // A retry with the same key sent to the other instance is deduplicated.
    let u = &users[0];
    let body = json!({"user_id": u, "action_name": "conseil_rapide"});
    let before = finals[0];
    let first = one
        .post_idem(
            &one.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "lin-retry",
            &body,
        )
        .await;
    let second = two
        .post_idem(
            &one.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "lin-retry",
            &body,
        )
        .await;
    let (s1, s2) = (first.status(), second.status());
    let (b1, b2) = (
        first.text().await.expect("body"),
        second.text().await.expect("body"),
    );
    assert_eq!((s1, &b1), (s2, &b2), "the same answer from both instances");
    assert_eq!(s1, StatusCode::OK, "{b1}");
    let answered: Value = serde_json::from_str(&b1).expect("json");
    assert_eq!(answered["energy_remaining"], before - 5, "charged once");
    let versions = versions_of(&two, u).await;
    let tx = answered["transaction_id"].as_str().expect("tx");
    assert!(versions.contains_key(tx));
    let consumes = json_ok(
        two.get(
            &two.admin,
            &format!("/luna/events/{u}?event_type=EnergyConsumed&limit=200"),
        )
        .await,
    )
    .await;
    let copies = consumes["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_data"]["transaction_id"] == tx)
        .count();
    assert_eq!(copies, 1, "one consume for the retried key");
}

/// A revoked user session is refused by every instance on its next request; a revoked service
/// key by every instance within the key cache's time (spec §6: at most 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_refused_by_both() {
    let one = TestApp::spawn().await;
    let two = TestApp::spawn_on_url(one.database_url.clone()).await;
    let someone = uid("someone");
    let check = |app: &TestApp, token: &str| {
        // A user token checks its own balance; a service key names the user.
        let body = if token.starts_with("luna_sk_") {
            json!({"user_id": someone})
        } else {
            json!({})
        };
        app.client
            .post(app.url("/luna/energy/check"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    // A user session, signed out on the second instance.
    let tokens = one.register(&crate::email("revoked")).await;
    let access = tokens["access_token"].as_str().expect("token").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("token").to_owned();
    for app in [&one, &two] {
        assert_eq!(check(app, &access).await.expect("check").status(), 200);
    }
    let out = two
        .client
        .post(two.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 200);
    for app in [&one, &two] {
        let r = check(app, &access).await.expect("check");
        assert_eq!(r.status(), 401, "the signed-out session on {}", app.base);
        assert_eq!(app.refresh(&refresh).await.status(), 401);
    }
    // A service key, used (and so cached) by both, revoked by an operator's tool.
    let (created, key) = one
        .hub
        .create_key("soon revoked", vec![luna_ports::Scope::EnergyRead])
        .await
        .expect("key");
    for app in [&one, &two] {
        assert_eq!(check(app, &key).await.expect("check").status(), 200);
    }
    assert!(one.hub.revoke_key(created.id).await.expect("revoke"));
    // Spec §6: a revoked key may work on another instance for at most 1 s.
    assert!(luna_app::KEY_CACHE_TTL <= std::time::Duration::from_secs(1));
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    for app in [&one, &two] {
        let r = check(app, &key).await.expect("check");
        assert_eq!(r.status(), 401, "the revoked key on {}", app.base);
    }
}
