//! Storms against `luna serve` processes (issue 12), each followed by the linearizability check
//! on the stored history (`check_linearizable`). Crash: `kill -9` mid-storm, restart; every
//! consume acknowledged with 200 is stored with the balance it answered, nothing is
//! half-applied, and `luna verify` exits 0. Two processes on one database (one SQLite file in
//! the SQLite pass) serving one storm. Both run on the suite's backend (SQLite, and PostgreSQL
//! in CI's second pass).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::defects::Hub;
use crate::{TestApp, uid};

const LUNA: &str = env!("CARGO_BIN_EXE_luna");

/// `luna verify` on a database, off the runtime.
pub async fn luna_verify(database: String) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(LUNA)
            .arg("verify")
            .env_clear()
            .env("LUNA_DATABASE_URL", &database)
            .output()
            .expect("luna verify")
    })
    .await
    .expect("task")
}

/// One stored transaction row.
#[derive(Debug, Clone)]
pub struct Row {
    pub tx: String,
    pub kind: String,
    pub amount: i64,
    pub before: i64,
    pub after: i64,
}

/// Every transaction row of a user, oldest first (stream order).
pub async fn rows(client: &reqwest::Client, base: &str, key: &str, user: &str) -> Vec<Row> {
    let mut out = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let url = match &before {
            Some(c) => format!("{base}/luna/energy/transactions/{user}?limit=200&before={c}"),
            None => format!("{base}/luna/energy/transactions/{user}?limit=200"),
        };
        let page: Value = client
            .get(&url)
            .bearer_auth(key)
            .send()
            .await
            .expect("transactions")
            .json()
            .await
            .expect("json");
        for r in page["transactions"].as_array().expect("rows") {
            out.push(Row {
                tx: r["transaction_id"].as_str().expect("id").to_owned(),
                kind: r["action_type"].as_str().expect("type").to_owned(),
                amount: r["amount"].as_i64().expect("amount"),
                before: r["energy_before"].as_i64().expect("before"),
                after: r["energy_after"].as_i64().expect("after"),
            });
        }
        let Some(c) = page["next_cursor"].as_str() else {
            out.reverse();
            return out;
        };
        before = Some(c.to_owned());
    }
}

/// An acknowledged operation: its transaction, the balance it answered, when it ran.
#[derive(Debug, Clone)]
pub struct Acked {
    pub user: String,
    pub tx: String,
    pub answered: i64,
    pub start: Instant,
    pub end: Instant,
}

/// The linearizability check on one user's stored history: every acknowledged operation is
/// stored with the balance it answered, and the stream order respects real time (an operation
/// that ended before another began comes first). The rows' `energy_before`/`energy_after` are
/// folded from the stored events in stream order, so "the rows chain and move by their amount,
/// never below zero" checks the replay of the stored history, and an acknowledged balance that
/// differs from that replay fails. Returns how many acknowledged operations were checked.
pub fn check_linearizable(user: &str, stored: &[Row], acked: &[Acked]) -> usize {
    for pair in stored.windows(2) {
        assert_eq!(
            pair[1].before, pair[0].after,
            "{user}: {pair:?} do not chain"
        );
    }
    for r in stored {
        let delta = if r.kind == "consume" || r.kind == "revoke" {
            -r.amount.abs()
        } else {
            r.amount.abs()
        };
        assert_eq!(
            r.after - r.before,
            delta,
            "{user}: {r:?} moves by its amount"
        );
        assert!(r.after >= 0, "{user} overdrawn by {r:?}");
    }
    let index: std::collections::BTreeMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, r)| (r.tx.as_str(), i))
        .collect();
    let mut mine: Vec<(usize, &Acked)> = acked
        .iter()
        .filter(|a| a.user == user)
        .map(|a| {
            let i = *index
                .get(a.tx.as_str())
                .unwrap_or_else(|| panic!("acknowledged {} of {user} was lost", a.tx));
            assert_eq!(
                stored[i].after, a.answered,
                "{}: stored with the balance it answered",
                a.tx
            );
            (i, a)
        })
        .collect();
    mine.sort_by_key(|(i, _)| *i);
    for (k, (_, a)) in mine.iter().enumerate() {
        for (_, b) in &mine[k + 1..] {
            assert!(
                b.end >= a.start,
                "{user}: {} is stored after {} but ended before it began",
                b.tx,
                a.tx
            );
        }
    }
    mine.len()
}

/// `tasks` clients consuming on `users`, spread over `bases`, until they get a non-200
/// (the hub killed, or the balance spent).
pub fn storm(
    client: &reqwest::Client,
    bases: &[String],
    key: &str,
    users: &[String],
    tasks: usize,
) -> (
    Arc<std::sync::Mutex<Vec<Acked>>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let acked = Arc::new(std::sync::Mutex::new(Vec::<Acked>::new()));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (client, bases, key, users, acked) = (
            client.clone(),
            bases.to_vec(),
            key.to_owned(),
            users.to_vec(),
            acked.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut i = 0;
            let mut idem = uid("storm");
            let mut busy = 0;
            loop {
                let u = &users[(t + i) % users.len()];
                let base = &bases[(t + i) % bases.len()];
                let start = Instant::now();
                let sent = client
                    .post(format!("{base}/luna/energy/consume"))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", &idem)
                    .json(&json!({"user_id": u, "action_name": "conseil_rapide"}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let Ok(r) = sent else { return };
                if r.status() == 503 && busy < 30 {
                    // Busy for a moment: the same request again, after Retry-After.
                    busy += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                busy = 0;
                if r.status() != 200 {
                    return;
                }
                i += 1;
                idem = uid("storm");
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                acked.lock().expect("acked").push(Acked {
                    user: u.clone(),
                    tx: v["transaction_id"].as_str().expect("tx").to_owned(),
                    answered: v["energy_remaining"].as_i64().expect("balance"),
                    start,
                    end: Instant::now(),
                });
            }
        }));
    }
    (acked, handles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_mid_storm_loses_no_acknowledged_consume() {
    let database = TestApp::fresh_database().await;
    let hub = Hub::start(&database);
    let key = hub.key.clone().expect("a development admin key");
    let base = hub.base.clone();
    let client = reqwest::Client::new();
    let users: Vec<String> = (0..4).map(|i| uid(&format!("crash{i}"))).collect();
    for u in &users {
        let r = client
            .post(format!("{base}/luna/energy/grant"))
            .bearer_auth(&key)
            .json(&json!({"user_id": u, "amount": 100_000, "reason": "crash"}))
            .send()
            .await
            .expect("grant");
        assert_eq!(r.status(), 200);
    }
    let (acked, tasks) = storm(&client, std::slice::from_ref(&base), &key, &users, 16);
    // Let the storm run, then kill the process without warning.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acked.lock().expect("acked").len() < 300 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(hub); // SIGKILL, then reaped
    for t in tasks {
        t.await.expect("task");
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(
        acked.len() >= 50,
        "the storm ran ({} acknowledged)",
        acked.len()
    );

    let restarted = Hub::start(&database);
    let mut checked = 0;
    for u in &users {
        let stored = rows(&client, &restarted.base, &key, u).await;
        checked += check_linearizable(u, &stored, &acked);
    }
    assert_eq!(checked, acked.len());
    println!(
        "crash: {} consumes acknowledged before kill -9, all stored with the balance they answered, in an order that respects real time",
        acked.len()
    );
    drop(restarted);
    let verify = luna_verify(database).await;
    assert!(
        verify.status.success(),
        "luna verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Two `luna serve` processes on one database (one SQLite file in the SQLite pass) serving one
/// storm on the same users until their energy runs out: no overdraft, every consume stored was
/// acknowledged and vice versa, the order respects real time, `luna verify` clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_database_serve_one_storm_linearizably() {
    let database = TestApp::fresh_database().await;
    let one = Hub::start(&database);
    let two = Hub::start(&database);
    let key = one.key.clone().expect("a development admin key");
    let client = reqwest::Client::new();
    let users: Vec<String> = (0..3).map(|i| uid(&format!("procs{i}"))).collect();
    for u in &users {
        let r = client
            .post(format!("{}/luna/energy/grant", one.base))
            .bearer_auth(&key)
            .json(&json!({"user_id": u, "amount": 300, "reason": "storm"}))
            .send()
            .await
            .expect("grant");
        assert_eq!(r.status(), 200);
    }
    let bases = [one.base.clone(), two.base.clone()];
    let (acked, tasks) = storm(&client, &bases, &key, &users, 12);
    for t in tasks {
        t.await.expect("task");
    }
    let acked = acked.lock().expect("acked").clone();
    let mut checked = 0;
    for u in &users {
        let stored = rows(&client, &two.base, &key, u).await;
        checked += check_linearizable(u, &stored, &acked);
        let consumes = stored.iter().filter(|r| r.kind == "consume").count();
        let mine = acked.iter().filter(|a| &a.user == u).count();
        assert_eq!(consumes, mine, "{u}: every stored consume was acknowledged");
        assert!(
            stored.last().is_some_and(|r| r.after < 5),
            "{u}: the storm spent the balance"
        );
    }
    assert_eq!(checked, acked.len());
    println!(
        "two processes: {} consumes acknowledged on {} users, all stored, 0 overdrafts, order respects real time",
        acked.len(),
        users.len()
    );
    drop((one, two));
    let verify = luna_verify(database).await;
    assert!(verify.status.success(), "luna verify: {verify:?}");
}
