//! `luna-bench http`: the hub over HTTP on SQLite and PostgreSQL, beside an HTTP ceiling (a
//! trivial axum route) and a database ceiling (raw sqlx doing a consume's writes), measured in
//! the same run; then the invariants are checked (no overdraft, exact balances).

use std::sync::Arc;
use std::time::{Duration, Instant};

use luna_ports::{Scope, Store};
use luna_server::config::{Config, Settings};
use luna_server::{runtime, serve};
use serde_json::json;

use crate::stats::Stats;

pub(crate) struct Hub {
    pub(crate) base: String,
    pub(crate) key: String,
    pub(crate) store: Arc<dyn Store>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Hub {
    /// Stops the in-process server.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
    }
}

pub(crate) async fn start_hub(database_url: &str) -> Hub {
    let stores = runtime::open_stores(database_url)
        .await
        .expect("open store");
    let store = stores.store.clone();
    let (_, key) = runtime::hub(
        &Config::resolve(&Settings::default()).expect("config"),
        &stores,
    )
    .expect("hub")
    .create_key("bench", vec![Scope::Admin])
    .await
    .expect("key");
    let settings = Settings {
        database_url: Some(database_url.to_owned()),
        log_format: Some("json".into()),
        config: Some("/dev/null".into()),
        ..Settings::default()
    };
    let config = Config::resolve(&settings).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve::serve(config, listener, async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    Hub {
        base,
        key,
        store,
        stop,
    }
}

async fn start_trivial() -> String {
    let app = axum::Router::new().route(
        "/trivial",
        axum::routing::post(|axum::Json(v): axum::Json<serde_json::Value>| async move {
            axum::Json(json!({"success": true, "echo": v}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// `connections` tasks each sending `per_conn` POSTs built by `body(conn, i)`.
async fn drive(
    url: String,
    key: Option<String>,
    connections: usize,
    per_conn: usize,
    body: Arc<dyn Fn(usize, usize) -> serde_json::Value + Send + Sync>,
) -> (Stats, Vec<Vec<u16>>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, url, key, body) = (client.clone(), url.clone(), key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_conn);
            let mut statuses = Vec::with_capacity(per_conn);
            for i in 0..per_conn {
                let mut req = client.post(&url).json(&body(c, i));
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                let s = Instant::now();
                let r = req.send().await.expect("request");
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                lat.push(s.elapsed());
                statuses.push(status);
            }
            (lat, statuses)
        }));
    }
    let mut all = Vec::new();
    let mut statuses = Vec::new();
    for t in tasks {
        let (l, s) = t.await.expect("task");
        all.extend(l);
        statuses.push(s);
    }
    (Stats::new(all, start.elapsed()), statuses)
}

/// Login latency (sequential, Argon2id at production parameters) and the check with a user
/// token at the same concurrency as the service-key check.
async fn auth_figures(base: &str, connections: usize, per_conn: usize) -> (Stats, Stats) {
    let client = reqwest::Client::new();
    let email = format!("bench-{}@example.com", std::process::id());
    let password = "bench password 42";
    let reg: serde_json::Value = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("tokens");
    let token = reg["access_token"].as_str().expect("a token").to_owned();
    let start = Instant::now();
    let mut lat = Vec::new();
    for _ in 0..40 {
        let s = Instant::now();
        let r = client
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "login");
        lat.push(s.elapsed());
    }
    let logins = Stats::new(lat, start.elapsed());
    let (check, statuses) = drive(
        format!("{base}/luna/energy/check"),
        Some(token),
        connections,
        per_conn,
        Arc::new(|_, _| json!({})),
    )
    .await;
    assert!(
        statuses.iter().flatten().all(|s| *s == 200),
        "user checks answer 200"
    );
    (logins, check)
}

/// Runs the HTTP benchmark on one backend.
#[allow(
    clippy::too_many_lines,
    reason = "one measurement script, top to bottom"
)]
pub async fn run(
    label: &str,
    database_url: &str,
    connections: usize,
    requests: usize,
    users: usize,
) {
    println!(
        "\n== {label}: {requests} requests per measurement, {connections} connections, {users} users"
    );
    let hub = start_hub(database_url).await;
    let trivial = start_trivial().await;
    let per_conn = requests / connections;
    let user = |n: usize| format!("bench-{n}");
    // Open every account with a large balance first (not timed).
    for u in 0..users {
        let r = reqwest::Client::new()
            .post(format!("{}/luna/energy/grant", hub.base))
            .bearer_auth(&hub.key)
            .json(&json!({"user_id": user(u), "amount": 1_000_000, "reason": "bench"}))
            .send()
            .await
            .expect("grant");
        assert!(r.status().is_success(), "grant failed: {}", r.status());
    }
    let check_body: Arc<dyn Fn(usize, usize) -> serde_json::Value + Send + Sync> =
        Arc::new(move |c, i| json!({"user_id": format!("bench-{}", (c * 7919 + i) % users)}));
    let consume_body: Arc<dyn Fn(usize, usize) -> serde_json::Value + Send + Sync> = Arc::new(
        move |c, i| json!({"user_id": format!("bench-{}", (c * 7919 + i) % users), "action_name": "conseil_rapide"}),
    );

    let (ceiling, _) = drive(
        format!("{trivial}/trivial"),
        None,
        connections,
        per_conn,
        check_body.clone(),
    )
    .await;
    let (check, cs) = drive(
        format!("{}/luna/energy/check", hub.base),
        Some(hub.key.clone()),
        connections,
        per_conn,
        check_body,
    )
    .await;
    assert!(
        cs.iter().flatten().all(|s| *s == 200),
        "every check answers 200"
    );
    let (logins, user_check) = auth_figures(&hub.base, connections, per_conn).await;
    let (consume, statuses) = drive(
        format!("{}/luna/energy/consume", hub.base),
        Some(hub.key.clone()),
        connections,
        per_conn,
        consume_body,
    )
    .await;
    // The baseline writes its own rows into a separate database of the same engine, so the
    // hub's store stays verifiable.
    let db = match database_url {
        u if u.starts_with("sqlite:") => {
            let baseline_url = u.replace("luna.db", "baseline.db");
            let s = luna_adapters_sqlite::SqliteStore::connect(
                &baseline_url,
                Arc::new(runtime::SystemClock),
                luna_adapters_sqlite::Durability::Full,
            )
            .await
            .expect("open");
            crate::baselines::sqlite(s.pool(), &crate::sample_consume(), requests, connections)
                .await
        }
        u => {
            let s = luna_adapters_postgres::PgStore::connect(
                u,
                Some("raw_baseline"),
                64,
                Arc::new(runtime::SystemClock),
            )
            .await
            .expect("open");
            crate::baselines::postgres(s.pool(), &crate::sample_consume(), requests, connections)
                .await
        }
    };
    println!("  HTTP ceiling (trivial axum POST) : {}", ceiling.line());
    println!("  luna check                       : {}", check.line());
    println!(
        "  -> check / trivial route: {:.0} %  (target ≥ 50 %)",
        100.0 * check.per_sec() / ceiling.per_sec()
    );
    println!("  luna check, user token           : {}", user_check.line());
    println!("  luna login (sequential, Argon2id): {}", logins.line());
    println!("  DB ceiling (raw sqlx consume)    : {}", db.line());
    println!("  luna consume                     : {}", consume.line());
    println!(
        "  -> consume / raw SQL: {:.0} %  (target ≥ 50 %); consume p99 {:.1} ms (target ≤ 10 ms)",
        100.0 * consume.per_sec() / db.per_sec(),
        consume.p99().as_secs_f64() * 1000.0
    );
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        // A fresh database in the hub's schema, then the loop on one thread.
        let raw = path.replace("luna.db", "raw-loop.db");
        drop(
            luna_adapters_sqlite::SqliteStore::connect(
                &format!("sqlite://{raw}"),
                Arc::new(runtime::SystemClock),
                luna_adapters_sqlite::Durability::Full,
            )
            .await
            .expect("migrate"),
        );
        let raw_loop = tokio::task::spawn_blocking(move || {
            crate::rawsqlite::consume_loop(std::path::Path::new(&raw), requests, users)
        })
        .await
        .expect("raw loop");
        println!("  raw SQLite loop (1 commit/consume): {}", raw_loop.line());
        println!(
            "  -> consume / raw SQLite loop: {:.0} %  (target ≥ 70 %, stretch 100 %)",
            100.0 * consume.per_sec() / raw_loop.per_sec()
        );
    }
    if database_url.starts_with("postgres") {
        let (simple, select) = crate::pgbench::ceilings(database_url, connections, users, 10).await;
        println!("  pgbench, simple consume txn      : {}", simple.line());
        println!(
            "  -> consume / pgbench simple txn: {:.0} %  (target ≥ 60 %, stretch 80 %)",
            100.0 * consume.per_sec() / simple.tps
        );
        println!("  pgbench -S (one-row SELECT)      : {}", select.line());
        println!(
            "  -> check / pgbench -S: {:.0} %  (target ≥ 35 %)",
            100.0 * check.per_sec() / select.tps
        );
    }

    // Invariants after the run: exact balances, no overdraft, verify passes.
    let mut ok_per_user = vec![0i64; users];
    for (c, s) in statuses.iter().enumerate() {
        for (i, status) in s.iter().enumerate() {
            match status {
                200 => ok_per_user[(c * 7919 + i) % users] += 1,
                402 => {}
                other => panic!("consume answered {other}"),
            }
        }
    }
    for (u, n) in ok_per_user.iter().enumerate() {
        let loaded = hub
            .store
            .load(&luna_core::UserId::parse(&user(u)).expect("valid"), &[])
            .await
            .expect("load");
        let expected = 85 + 1_000_000 - 5 * n;
        assert_eq!(
            loaded.summary.balance.units(),
            expected,
            "{}: exact balance",
            user(u)
        );
    }
    let report = luna_app::verify::verify(hub.store.as_ref(), |_| {})
        .await
        .expect("verify");
    assert!(
        report.is_ok(),
        "invariants after the run: {:?}",
        report.violations
    );
    println!(
        "  invariants: {} streams, {} events verified; balances exact, no overdraft",
        report.streams, report.events
    );
    let _ = hub.stop.send(());
}
