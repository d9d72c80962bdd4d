//! Crash (issue 12): a consume storm against a `luna serve` process, `kill -9` mid-storm,
//! restart. Every consume acknowledged with 200 is stored with the balance it answered, nothing
//! is half-applied, and `luna verify` exits 0. Runs on the suite's backend (SQLite, and
//! PostgreSQL in CI's second pass).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::defects::Hub;
use crate::{TestApp, uid};

const LUNA: &str = env!("CARGO_BIN_EXE_luna");

/// Every transaction row of a user: id → balance after it.
async fn rows(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    user: &str,
) -> std::collections::BTreeMap<String, i64> {
    let mut out = std::collections::BTreeMap::new();
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
            out.insert(
                r["transaction_id"].as_str().expect("id").to_owned(),
                r["energy_after"].as_i64().expect("after"),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => before = Some(c.to_owned()),
            None => return out,
        }
    }
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
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, String, i64)>::new()));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (client, base, key, users, acked) = (
            client.clone(),
            base.clone(),
            key.clone(),
            users.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let u = &users[(t + i) % users.len()];
                let sent = client
                    .post(format!("{base}/luna/energy/consume"))
                    .bearer_auth(&key)
                    .json(&json!({"user_id": u, "action_name": "conseil_rapide"}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let Ok(r) = sent else { return };
                if r.status() != 200 {
                    return;
                }
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                acked.lock().expect("acked").push((
                    u.clone(),
                    v["transaction_id"].as_str().expect("tx").to_owned(),
                    v["energy_remaining"].as_i64().expect("balance"),
                ));
            }
        }));
    }
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
        for (who, tx, answered) in acked.iter().filter(|(who, _, _)| who == u) {
            let after = stored
                .get(tx)
                .unwrap_or_else(|| panic!("acknowledged {tx} of {who} was lost"));
            assert_eq!(after, answered, "{tx}: stored with the balance it answered");
            checked += 1;
        }
    }
    assert_eq!(checked, acked.len());
    drop(restarted);
    let verify = tokio::task::spawn_blocking(move || {
        Command::new(LUNA)
            .arg("verify")
            .env_clear()
            .env("LUNA_DATABASE_URL", &database)
            .output()
            .expect("luna verify")
    })
    .await
    .expect("task");
    assert!(
        verify.status.success(),
        "luna verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
