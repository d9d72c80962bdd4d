//! `luna-bench soak`: a mixed workload on a `luna serve` process for a bounded time — service
//! keys (consume, check, reserve/commit/release, refund, app events, every read), user tokens
//! (register, check and consume their own, watch it live, refresh, buy a pack through the fake
//! Stripe, its webhook delivered) — with the process's resident memory, open descriptors and
//! database connections sampled every 10 s. Users are replaced every minute, so histories stay
//! bounded and growth means a leak. Verdict: no 5xx and no unexpected status, bounded growth
//! after warm-up, no ERROR log line, `luna verify` exits 0.
#![allow(
    clippy::cast_precision_loss,
    reason = "counts and kibibytes far below 2^52, shown as rates and MiB"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use luna_testkit::stripe::FakeStripe;
use serde_json::{Value, json};

use crate::process::{Database, LunaProcess, Sample};

/// Requests sent, and those answered with a 5xx or a status the step does not expect.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// One worker's view of the hub.
struct Ctx {
    http: reqwest::Client,
    base: String,
    key: String,
    counters: Arc<Counters>,
    deadline: Instant,
    started: Instant,
    run: String,
}

/// Users are replaced every `GENERATION`: histories stay bounded, so memory that keeps growing
/// is a leak, not a longer history being read (reads at 100 000 events are the benchmarks').
const GENERATION: Duration = Duration::from_secs(60);

impl Ctx {
    fn generation(&self) -> u64 {
        self.started.elapsed().as_secs() / GENERATION.as_secs()
    }

    /// The `k`-th shared user of the current generation.
    fn user(&self, k: usize) -> String {
        format!("soak-{}-{}-{k}", self.run, self.generation())
    }
    /// Sends a request; a status outside `ok` (or a network error) counts as an error.
    async fn send(&self, req: reqwest::RequestBuilder, ok: &[u16]) -> Option<Value> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let r = match req.timeout(Duration::from_secs(10)).send().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("soak: {e}");
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !ok.contains(&status) {
            eprintln!("soak: unexpected {status} {body}");
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        (200..300).contains(&status).then_some(body)
    }

    fn post(&self, token: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
    }

    fn get(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
    }
}

/// The answers each step may get in a mixed workload (domain refusals are answers, not
/// errors): consume, reserve, commit/release, refund.
const CONSUMED: &[u16] = &[200, 402];
const RESERVED: &[u16] = &[201, 402];
const SETTLED: &[u16] = &[200, 409, 410];
const REFUNDED: &[u16] = &[200, 409];

/// A satellite backend with its service key, on 50 users shared with the other workers.
async fn service_worker(ctx: Ctx, w: usize) {
    let key = ctx.key.clone();
    let mut i = w;
    while Instant::now() < ctx.deadline {
        let u = &ctx.user(i % 50);
        i += 1;
        if i % 10 == 0 {
            let grant = json!({"user_id": u, "amount": 200, "reason": "soak"});
            ctx.send(ctx.post(&key, "/luna/energy/grant", &grant), &[200])
                .await;
        }
        let consume = json!({"user_id": u, "action_name": "conseil_rapide", "context": {"app_source": "letters"}});
        let consumed = ctx
            .send(ctx.post(&key, "/luna/energy/consume", &consume), CONSUMED)
            .await;
        ctx.send(
            ctx.post(&key, "/luna/energy/check", &json!({"user_id": u})),
            &[200],
        )
        .await;
        let hold = json!({"user_id": u, "action_name": "lettre_motivation"});
        if let Some(h) = ctx
            .send(ctx.post(&key, "/luna/energy/reserve", &hold), RESERVED)
            .await
        {
            if let Some(id) = h["reservation_id"].as_str() {
                let verb = if i % 2 == 0 { "commit" } else { "release" };
                let path = format!("/luna/energy/reservations/{id}/{verb}");
                ctx.send(ctx.post(&key, &path, &json!({})), SETTLED).await;
            } else {
                eprintln!("soak: a reservation without an id: {h}");
                ctx.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(tx) = consumed.as_ref().and_then(|c| c["transaction_id"].as_str()) {
            if i % 3 == 0 {
                let refund = json!({"user_id": u, "transaction_id": tx, "reason": "soak"});
                ctx.send(ctx.post(&key, "/luna/energy/refund", &refund), REFUNDED)
                    .await;
            }
        }
        let event = json!({"user_id": u, "event_type": "cv.optimized", "app_source": "cv",
            "event_data": {"target_role": "Data Analyst", "n": i}});
        ctx.send(ctx.post(&key, "/luna/events", &event), &[201])
            .await;
        for path in [
            format!("/luna/energy/transactions/{u}?limit=20"),
            format!("/luna/energy/analytics/{u}"),
            format!("/luna/events/{u}?limit=20"),
            format!("/luna/narrative/{u}"),
        ] {
            ctx.send(ctx.get(&key, &path), &[200]).await;
        }
    }
}

/// A person on the web page: registers (a new account each generation), then checks and
/// spends their energy, watches it live, refreshes their session and buys packs (paid at the
/// fake Stripe, whose webhook is delivered too).
async fn user_worker(ctx: Ctx, fake: Arc<FakeStripe>, w: usize) {
    while Instant::now() < ctx.deadline {
        let generation = ctx.generation();
        let Some(mut tokens) = register(&ctx, w).await else {
            return;
        };
        let mut i = 0_usize;
        while Instant::now() < ctx.deadline && ctx.generation() == generation {
            i += 1;
            let access = tokens["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            ctx.send(ctx.post(&access, "/luna/energy/check", &json!({})), &[200])
                .await;
            let consume = json!({"action_name": "conseil_rapide"});
            ctx.send(
                ctx.post(&access, "/luna/energy/consume", &consume),
                CONSUMED,
            )
            .await;
            ctx.send(ctx.get(&access, "/billing/packs"), &[200]).await;
            if i % 5 == 0 {
                buy(&ctx, &fake, &access).await;
            }
            if i % 7 == 0 {
                let body = json!({"refresh_token": tokens["refresh_token"]});
                let req = ctx
                    .http
                    .post(format!("{}/auth/refresh", ctx.base))
                    .json(&body);
                if let Some(t) = ctx.send(req, &[200]).await {
                    tokens = t;
                }
            }
            if i % 11 == 0 {
                live(&ctx, &access).await;
            }
        }
    }
}

async fn register(ctx: &Ctx, w: usize) -> Option<Value> {
    let email = format!("soak-{w}-{}@example.com", uuid::Uuid::new_v4().simple());
    let register = ctx
        .http
        .post(format!("{}/auth/register", ctx.base))
        .header("x-forwarded-for", format!("198.51.100.{}", w % 250 + 1))
        .json(&json!({"email": email, "password": "correct horse battery staple", "name": "Soak"}));
    ctx.send(register, &[201]).await
}

/// Opens the live balance stream, reads its first event, and goes away.
async fn live(ctx: &Ctx, access: &str) {
    ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
    let sent = ctx
        .get(access, "/luna/energy/live")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let first = match sent {
        Ok(mut r) if r.status() == 200 => r.chunk().await.ok().flatten(),
        Ok(r) => {
            eprintln!("soak: live answered {}", r.status());
            None
        }
        Err(e) => {
            eprintln!("soak: live {e}");
            None
        }
    };
    if first.is_none() {
        ctx.counters.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// create-intent, the customer pays, confirm-payment, then Stripe's webhook (deduplicated).
async fn buy(ctx: &Ctx, fake: &FakeStripe, access: &str) {
    let intent = json!({"pack": "cafe_luna"});
    let Some(i) = ctx
        .send(ctx.post(access, "/billing/create-intent", &intent), &[200])
        .await
    else {
        return;
    };
    let pi = i["intent_id"].as_str().unwrap_or_default().to_owned();
    let event = fake.succeed(&pi);
    let confirm = json!({"intent_id": pi});
    ctx.send(
        ctx.post(access, "/billing/confirm-payment", &confirm),
        &[200],
    )
    .await;
    ctx.counters.requests.fetch_add(1, Ordering::Relaxed);
    let (status, body) = fake.deliver(&event).await;
    if status != 200 {
        eprintln!("soak: webhook answered {status} {body}");
        ctx.counters.errors.fetch_add(1, Ordering::Relaxed);
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Starts the workers and samples every 10 s; returns the samples (time, sample, requests).
async fn drive(
    hub: &LunaProcess,
    db: &Database,
    fake: &Arc<FakeStripe>,
    seconds: u64,
    workers: usize,
) -> (Vec<(u64, Sample, u64)>, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let http = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let started = Instant::now();
    let ctx = || Ctx {
        http: http.clone(),
        base: hub.base.clone(),
        key: hub.key.clone(),
        counters: counters.clone(),
        deadline,
        started,
        run: run.clone(),
    };
    let mut tasks = Vec::new();
    for w in 0..workers {
        if w % 2 == 0 {
            tasks.push(tokio::spawn(service_worker(ctx(), w)));
        } else {
            tasks.push(tokio::spawn(user_worker(ctx(), fake.clone(), w)));
        }
    }
    let start = Instant::now();
    let mut samples = vec![(0, hub.sample(db.pool.as_ref()).await, 0)];
    println!("| t (s) | RSS MiB | open fds | DB connections | requests |");
    println!("|---|---|---|---|---|");
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
        let s = hub.sample(db.pool.as_ref()).await;
        let n = counters.requests.load(Ordering::Relaxed);
        let t = start.elapsed().as_secs();
        println!(
            "| {t} | {:.1} | {} | {} | {n} |",
            mib(s.rss_kib),
            s.fds,
            s.db_connections
        );
        samples.push((t, s, n));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    (samples, counters)
}

/// The largest figures of the samples taken between `from` and `to` seconds (the first sample
/// if none is).
fn peak(samples: &[(u64, Sample, u64)], from: u64, to: u64) -> Sample {
    let window: Vec<&Sample> = samples
        .iter()
        .filter(|(t, _, _)| (from..=to).contains(t))
        .map(|(_, s, _)| s)
        .collect();
    if window.is_empty() {
        return samples[0].1;
    }
    Sample {
        rss_kib: window.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        fds: window.iter().map(|s| s.fds).max().unwrap_or(0),
        db_connections: window.iter().map(|s| s.db_connections).max().unwrap_or(0),
    }
}

/// The hub's variables: user tokens, a trusted proxy (registrations from many addresses) and
/// the fake Stripe.
fn hub_env(fake: &FakeStripe) -> Vec<(&'static str, String)> {
    use luna_testkit::stripe::{PRICE_UNLIMITED, SECRET_KEY, WEBHOOK_SECRET};
    vec![
        (
            "LUNA_JWT_SECRET",
            "soak-secret-of-at-least-32-bytes-long!!".into(),
        ),
        ("LUNA_TRUSTED_PROXIES", "127.0.0.1".into()),
        ("LUNA_STRIPE_SECRET_KEY", SECRET_KEY.into()),
        ("LUNA_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("LUNA_STRIPE_API_BASE", fake.base.clone()),
        ("LUNA_STRIPE_PRICE_UNLIMITED", PRICE_UNLIMITED.into()),
    ]
}

/// The scenario on one backend; true when it passes.
pub(crate) async fn run(
    luna: &std::path::Path,
    postgres: Option<&str>,
    seconds: u64,
    workers: usize,
    extra_env: &[(String, String)],
) -> bool {
    let fake = Arc::new(FakeStripe::start().await);
    let db = Database::fresh(postgres, "soak").await;
    let mut env: Vec<(&str, String)> = hub_env(&fake);
    env.extend(extra_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let hub = LunaProcess::start(luna, &db.url, &env);
    fake.set_webhook_url(&format!("{}/billing/webhook", hub.base));
    let (samples, counters) = drive(&hub, &db, &fake, seconds, workers).await;
    let errors = hub.error_lines();
    let verified = hub.stop_and_verify();
    db.drop_it().await;
    let requests = counters.requests.load(Ordering::Relaxed);
    let failed = counters.errors.load(Ordering::Relaxed);
    println!("\n{requests} requests in {seconds} s");
    let mut checks = vec![(
        "no 5xx, no unexpected status",
        failed == 0,
        format!("{failed} of {requests}"),
    )];
    if seconds >= 130 {
        checks.extend(growth_checks(&samples));
    } else {
        println!(
            "(growth after warm-up not judged: it compares the first minute after 10 s with the last minute, disjoint only in runs of 130 s or more)"
        );
    }
    checks.push((
        "no ERROR line in the hub's log",
        errors == Some(0),
        format!("{errors:?}"),
    ));
    checks.push(("luna verify exits 0", verified, String::new()));
    crate::verdict(&checks)
}

/// Growth after warm-up: the peak of the first minute after 10 s against the peak of the last
/// minute (peaks, because the allocator gives memory back in steps).
fn growth_checks(samples: &[(u64, Sample, u64)]) -> Vec<(&'static str, bool, String)> {
    let end = samples.last().map_or(0, |s| s.0);
    let warm = peak(samples, 10, 70);
    let last = peak(samples, end.saturating_sub(60).max(71), end);
    let rss_growth = last.rss_kib.saturating_sub(warm.rss_kib);
    let fd_growth = last.fds.saturating_sub(warm.fds);
    let max_connections = samples
        .iter()
        .map(|(_, s, _)| s.db_connections)
        .max()
        .unwrap_or(0);
    vec![
        (
            "RSS growth after warm-up ≤ 32 MiB (peak of the first minute → of the last)",
            rss_growth <= 32 * 1024,
            format!(
                "{:+.1} MiB ({:.1} → {:.1})",
                mib(rss_growth),
                mib(warm.rss_kib),
                mib(last.rss_kib)
            ),
        ),
        (
            "open descriptors growth ≤ 16",
            fd_growth <= 16,
            format!("{fd_growth:+} ({} → {})", warm.fds, last.fds),
        ),
        (
            "DB connections within the pool (≤ 16 + 1)",
            max_connections <= 17,
            format!("max {max_connections}"),
        ),
    ]
}
