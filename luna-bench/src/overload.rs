//! `luna-bench overload`: a `luna serve` process driven first at the concurrency its database
//! can serve (the unloaded figure), then by many times more clients that honour `Retry-After`.
//! Verdict: shed requests get 503 with `Retry-After` and change nothing (balances exact), no
//! other 5xx, no request runs past its timeout, memory stays bounded, and the accepted
//! throughput under overload is at least 80 % of the unloaded one.
#![allow(
    clippy::cast_precision_loss,
    reason = "counts and kibibytes far below 2^52, shown as rates and MiB"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{Database, LunaProcess, Sample};

/// The client's timeout: a request running longer is a failure of the scenario.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Energy granted to each user: more than a run can consume.
const GRANT: i64 = 1_000_000;
const COST: i64 = 5;

/// Counts of one phase.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    shed: AtomicU64,
    shed_without_retry_after: AtomicU64,
    other: AtomicU64,
    timeouts: AtomicU64,
    max_latency_ms: AtomicU64,
}

/// One phase's figures.
struct Phase {
    clients: usize,
    seconds: f64,
    served: u64,
    shed: u64,
    bad: u64,
    timeouts: u64,
    max_latency_ms: u64,
    peak: Sample,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.served as f64 / self.seconds
    }
}

/// Sends consumes until `deadline`; a 503 is retried with the same idempotency key after the
/// `Retry-After` it carries (and counted as shed). Returns what this client had served.
async fn client(
    http: reqwest::Client,
    hub: Arc<(String, String)>,
    user: String,
    deadline: Instant,
    tally: Arc<Tally>,
) -> u64 {
    let (base, key) = (&hub.0, &hub.1);
    let mut served = 0;
    let mut idem = uuid::Uuid::new_v4().to_string();
    while Instant::now() < deadline {
        let start = Instant::now();
        let sent = http
            .post(format!("{base}/luna/energy/consume"))
            .bearer_auth(key)
            .header("Idempotency-Key", &idem)
            .json(&json!({"user_id": user, "action_name": "conseil_rapide"}))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                tally.timeouts.fetch_add(1, Ordering::Relaxed);
                return served;
            }
            Err(_) => {
                tally.other.fetch_add(1, Ordering::Relaxed);
                return served;
            }
        };
        match r.status().as_u16() {
            200 => {
                let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                tally.max_latency_ms.fetch_max(ms, Ordering::Relaxed);
                tally.served.fetch_add(1, Ordering::Relaxed);
                served += 1;
                idem = uuid::Uuid::new_v4().to_string();
            }
            503 => {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                // Only the admission limit's answer is shedding; a 503 from the storage is a
                // failure of the scenario.
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if body["detail"] != "Service busy, retry" {
                    eprintln!("overload: 503 that is not shedding: {body}");
                    tally.other.fetch_add(1, Ordering::Relaxed);
                    return served;
                }
                tally.shed.fetch_add(1, Ordering::Relaxed);
                let Some(wait) = wait else {
                    tally
                        .shed_without_retry_after
                        .fetch_add(1, Ordering::Relaxed);
                    return served;
                };
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            _ => {
                tally.other.fetch_add(1, Ordering::Relaxed);
                return served;
            }
        }
    }
    served
}

/// Runs `clients` clients for `seconds`, sampling the process every second; adds what each
/// user was charged to `charged`.
async fn phase(
    hub: &LunaProcess,
    db: &Database,
    users: &[String],
    charged: &mut [u64],
    clients: usize,
    seconds: u64,
) -> Phase {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let shared = Arc::new((hub.base.clone(), hub.key.clone()));
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let u = users[c % users.len()].clone();
            tokio::spawn(client(
                http.clone(),
                shared.clone(),
                u,
                deadline,
                tally.clone(),
            ))
        })
        .collect();
    let mut peak = Sample::default();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = hub.sample(db.pool.as_ref()).await;
        peak.rss_kib = peak.rss_kib.max(s.rss_kib);
        peak.fds = peak.fds.max(s.fds);
        peak.db_connections = peak.db_connections.max(s.db_connections);
    }
    for (c, t) in tasks.into_iter().enumerate() {
        charged[c % users.len()] += t.await.expect("client task");
    }
    Phase {
        clients,
        seconds: start.elapsed().as_secs_f64(),
        served: tally.served.load(Ordering::Relaxed),
        shed: tally.shed.load(Ordering::Relaxed),
        bad: tally.other.load(Ordering::Relaxed)
            + tally.shed_without_retry_after.load(Ordering::Relaxed),
        timeouts: tally.timeouts.load(Ordering::Relaxed),
        max_latency_ms: tally.max_latency_ms.load(Ordering::Relaxed),
        peak,
    }
}

async fn balances_exact(hub: &LunaProcess, users: &[String], charged: &[u64]) -> bool {
    let http = reqwest::Client::new();
    let mut exact = true;
    for (u, n) in users.iter().zip(charged) {
        let v: Value = http
            .post(format!("{}/luna/energy/check", hub.base))
            .bearer_auth(&hub.key)
            .json(&json!({"user_id": u}))
            .send()
            .await
            .expect("check")
            .json()
            .await
            .expect("json");
        let expected = 85 + GRANT - COST * i64::try_from(*n).unwrap_or(i64::MAX);
        if v["current_energy"].as_i64() != Some(expected) {
            eprintln!("{u}: balance {} expected {expected}", v["current_energy"]);
            exact = false;
        }
    }
    exact
}

fn row(name: &str, p: &Phase) {
    println!(
        "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {:.1} | {} |",
        p.clients,
        p.rate(),
        p.served,
        p.shed,
        p.bad,
        p.timeouts,
        p.max_latency_ms,
        p.peak.rss_kib as f64 / 1024.0,
        p.peak.db_connections
    );
}

/// The scenario on one backend; true when it passes.
pub(crate) async fn run(
    luna: &std::path::Path,
    postgres: Option<&str>,
    env: &[(&str, String)],
    (base_clients, clients): (usize, usize),
    seconds: u64,
) -> bool {
    let db = Database::fresh(postgres, "overload").await;
    let hub = LunaProcess::start(luna, &db.url, env);
    let http = reqwest::Client::new();
    let users: Vec<String> = (0..base_clients.max(1))
        .map(|i| format!("overload-{i}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    for u in &users {
        let r = http
            .post(format!("{}/luna/energy/grant", hub.base))
            .bearer_auth(&hub.key)
            .json(&json!({"user_id": u, "amount": GRANT, "reason": "overload"}))
            .send()
            .await
            .expect("grant");
        assert!(r.status().is_success(), "grant: {}", r.status());
    }
    let mut charged = vec![0; users.len()];
    let calm = phase(&hub, &db, &users, &mut charged, base_clients, seconds).await;
    let storm = phase(&hub, &db, &users, &mut charged, clients, seconds).await;
    let exact = balances_exact(&hub, &users, &charged).await;
    let errors = hub.error_lines();
    let verified = hub.stop_and_verify();
    db.drop_it().await;

    println!(
        "| phase | clients | served/s | served | shed (503 + Retry-After) | other errors | timeouts | max latency ms | peak RSS MiB | peak DB connections |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    row("unloaded", &calm);
    row("overload", &storm);
    let ratio = storm.rate() / calm.rate().max(1.0);
    let memory_bounded = storm.peak.rss_kib <= calm.peak.rss_kib.saturating_mul(2) + 64 * 1024;
    let checks = [
        (
            "accepted throughput ≥ 80 % of unloaded",
            ratio >= 0.8,
            format!("{:.0} %", ratio * 100.0),
        ),
        (
            "no 5xx but 503 + Retry-After, no other error",
            calm.bad + storm.bad == 0,
            format!("{}", calm.bad + storm.bad),
        ),
        (
            "no request past its 10 s timeout",
            calm.timeouts + storm.timeouts == 0,
            format!("{}", calm.timeouts + storm.timeouts),
        ),
        (
            "memory bounded (≤ 2× unloaded + 64 MiB)",
            memory_bounded,
            format!("{:.1} MiB", storm.peak.rss_kib as f64 / 1024.0),
        ),
        (
            "balances exact (shed requests changed nothing)",
            exact,
            String::new(),
        ),
        (
            "no ERROR line in the hub's log",
            errors == Some(0),
            format!("{errors:?}"),
        ),
        ("luna verify exits 0", verified, String::new()),
    ];
    crate::verdict(&checks)
}
