//! `luna-bench http`: a `luna serve` process (the release binary beside this tool) driven by
//! `wrk` over TCP loopback, beside ceilings measured in the same run on the same machine:
//! a trivial axum route, an axum route doing one prepared sqlx SELECT of the projection (the
//! hub's check without the hub), the raw one-commit-per-consume SQLite loop, and pgbench (the
//! simple consume transaction, `-S`). Every row carries the CPU it cost per request: the server
//! under test, PostgreSQL, and the rest of the machine (the load generator). Printed as markdown
//! tables `docs/PERFORMANCE.md` copies; then the invariants (acknowledged consumes all
//! recorded, balances exact, `luna verify`).

use std::path::Path;

use serde_json::json;

use crate::cpu::{PerRequest, Snapshot};
use crate::process::{Database, LunaProcess};
use crate::wrk;

/// One measured row.
struct Row {
    what: String,
    connections: usize,
    per_sec: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    cpu: PerRequest,
}

/// The run's parameters.
pub(crate) struct Plan<'a> {
    pub(crate) luna: &'a Path,
    pub(crate) postgres: Option<&'a str>,
    pub(crate) connections: usize,
    pub(crate) seconds: u64,
    pub(crate) users: usize,
}

/// The baseline routes, served by this process: `/trivial` (echo the JSON) and `/select` (one
/// prepared SELECT of the user's projection row, as the hub's check loads it).
async fn start_baselines(database_url: &str) -> String {
    #[derive(Clone)]
    enum Db {
        Pg(sqlx::PgPool),
        Lite(sqlx::SqlitePool),
    }
    async fn select(
        axum::extract::State(db): axum::extract::State<Db>,
        axum::Json(v): axum::Json<serde_json::Value>,
    ) -> axum::Json<serde_json::Value> {
        let user = v["user_id"].as_str().expect("a user_id").to_owned();
        let (version, summary): (i64, String) = match db {
            Db::Pg(p) => {
                sqlx::query_as("SELECT version, summary::text FROM wallet WHERE stream_id = $1")
                    .bind(user)
                    .fetch_one(&p)
                    .await
            }
            Db::Lite(p) => {
                sqlx::query_as("SELECT version, summary FROM wallet WHERE stream_id = ?")
                    .bind(user)
                    .fetch_one(&p)
                    .await
            }
        }
        .expect("the user's projection row");
        axum::Json(json!({"version": version, "summary": summary}))
    }
    let db = if database_url.starts_with("sqlite:") {
        Db::Lite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(8)
                .connect(database_url)
                .await
                .expect("open"),
        )
    } else {
        Db::Pg(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(luna_adapters_postgres::POOL_SIZE)
                .connect(database_url)
                .await
                .expect("open"),
        )
    };
    let app = axum::Router::new()
        .route(
            "/trivial",
            axum::routing::post(|axum::Json(v): axum::Json<serde_json::Value>| async move {
                axum::Json(json!({"success": true, "echo": v}))
            }),
        )
        .route("/select", axum::routing::post(select))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// wrk against `url`, with the CPU of process `pid` (and PostgreSQL, and the machine) over
/// the run.
async fn measure(
    what: &str,
    pid: u32,
    url: String,
    bearers: Vec<String>,
    body: &'static str,
    plan: &Plan<'_>,
    connections: usize,
) -> (Row, wrk::Run) {
    let (users, seconds) = (plan.users, plan.seconds);
    let (run, cpu) = tokio::task::spawn_blocking(move || {
        let before = Snapshot::take(pid);
        let run = wrk::run(&wrk::Load {
            url: &url,
            bearers: &bearers,
            body,
            users,
            connections,
            seconds,
        });
        let cpu = before.per_request(&Snapshot::take(pid), run.requests);
        (run, cpu)
    })
    .await
    .expect("wrk");
    assert_eq!(run.errors, 0, "{what}: socket errors or timeouts");
    // A refused or failed request would count as throughput (consumes: balances are large).
    assert_eq!(run.non_2xx, 0, "{what}: every request answers 2xx");
    let row = Row {
        what: what.to_owned(),
        connections,
        per_sec: run.per_sec(),
        p50_ms: Some(run.p50_ms),
        p99_ms: Some(run.p99_ms),
        cpu,
    };
    (row, run)
}

const CHECK: &str = r#"{"user_id": "{user}"}"#;
const CONSUME: &str = r#"{"user_id": "{user}", "action_name": "conseil_rapide"}"#;

/// People signed in for the user-token check: its requests spread over them (one person's
/// commands run one at a time in an instance, so a single token would measure that queue).
const PEOPLE: usize = 16;

/// The email of the `i`th person the run registers.
fn person_email(i: usize) -> String {
    format!("bench-{}-{i}@example.com", std::process::id())
}

/// Access tokens of `n` people (registers them).
async fn user_tokens(base: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let reg: serde_json::Value = client
            .post(format!("{base}/auth/register"))
            .json(&json!({"email": person_email(i),
                          "password": "bench password 42"}))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("tokens");
        tokens.push(reg["access_token"].as_str().expect("a token").to_owned());
    }
    tokens
}

/// Opens every account with a large balance (not timed).
async fn grant_all(base: &str, key: &str, users: usize) {
    let client = reqwest::Client::new();
    for u in 0..users {
        let r = client
            .post(format!("{base}/luna/energy/grant"))
            .bearer_auth(key)
            .json(&json!({"user_id": format!("bench-{u}"), "amount": 1_000_000, "reason": "bench"}))
            .send()
            .await
            .expect("grant");
        assert!(r.status().is_success(), "grant failed: {}", r.status());
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.2}"))
}

fn print_rows(rows: &[Row]) {
    println!(
        "| measurement | conns | req/s | p50 ms | p99 ms | server CPU µs/req | PostgreSQL CPU µs/req | rest (load generator) µs/req |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.0} | {:.0} | {:.0} |",
            r.what,
            r.connections,
            r.per_sec,
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            r.cpu.process,
            r.cpu.postgres_cpu,
            r.cpu.rest
        );
    }
}

/// `(name, value %, target %)` rows (a NaN target: shown without a target), then the p99
/// latency targets `(connections, p99 ms, target ms)`.
fn print_ratios(ratios: &[(String, f64, f64)], p99s: &[(usize, f64, f64)]) {
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("\n| ratio (same run) | value | target | |");
    println!("|---|---|---|---|");
    for (name, value, target) in ratios {
        if target.is_nan() {
            println!("| {name} | {value:.0} % | – | (no target) |");
        } else {
            let met = verdict(value >= target);
            // One decimal, so a ratio just under its target does not print as the target.
            println!("| {name} | {value:.1} % | ≥ {target:.0} % | {met} |");
        }
    }
    for (conns, p99, target) in p99s {
        let met = verdict(p99 <= target);
        println!("| consume p99, {conns} connections | {p99:.1} ms | ≤ {target:.0} ms | {met} |");
    }
}

/// Runs the benchmark on one backend (`plan.postgres`: PostgreSQL, else SQLite).
#[allow(
    clippy::too_many_lines,
    reason = "one measurement script, top to bottom"
)]
pub(crate) async fn run(plan: &Plan<'_>) {
    let db = Database::fresh(plan.postgres, "http").await;
    let hub = LunaProcess::start(plan.luna, &db.url, &[]);
    let (label, pg) = match plan.postgres {
        Some(_) => ("PostgreSQL", true),
        None => ("SQLite (synchronous=FULL)", false),
    };
    println!(
        "\n### {label}: {} s per measurement, {} users\n",
        plan.seconds, plan.users
    );
    grant_all(&hub.base, &hub.key, plan.users).await;
    let tokens = user_tokens(&hub.base, PEOPLE).await;
    let baselines = start_baselines(&db.url).await;
    let me = std::process::id();
    let c = plan.connections;
    // Consume (and pgbench's transactions) at 16 connections and at the plan's.
    let mut concurrencies = vec![16, c];
    concurrencies.dedup();
    let mut rows = Vec::new();
    let (trivial, _) = measure(
        "trivial axum route",
        me,
        format!("{baselines}/trivial"),
        Vec::new(),
        CHECK,
        plan,
        c,
    )
    .await;
    let (select, _) = measure(
        "axum route, one prepared SELECT of the projection",
        me,
        format!("{baselines}/select"),
        Vec::new(),
        CHECK,
        plan,
        c,
    )
    .await;
    let (check, _) = measure(
        "luna check (service key)",
        hub.pid(),
        format!("{}/luna/energy/check", hub.base),
        vec![hub.key.clone()],
        CHECK,
        plan,
        c,
    )
    .await;
    let (user_check, _) = measure(
        "luna check (user tokens, 16 people)",
        hub.pid(),
        format!("{}/luna/energy/check", hub.base),
        tokens,
        "{}",
        plan,
        c,
    )
    .await;
    let mut acknowledged = 0;
    let mut in_flight = 0;
    let mut consume = Vec::new();
    for &conns in &concurrencies {
        let (row, r) = measure(
            "luna consume",
            hub.pid(),
            format!("{}/luna/energy/consume", hub.base),
            vec![hub.key.clone()],
            CONSUME,
            plan,
            conns,
        )
        .await;
        acknowledged += r.ok();
        in_flight += u64::try_from(conns).expect("fits");
        consume.push(row);
    }
    let (check_per_sec, trivial_per_sec, select_per_sec) =
        (check.per_sec, trivial.per_sec, select.per_sec);
    rows.extend([trivial, select, check, user_check]);
    let mut ratios = vec![
        (
            "check / trivial route".to_owned(),
            100.0 * check_per_sec / trivial_per_sec,
            if pg { f64::NAN } else { 70.0 },
        ),
        (
            "check / one-SELECT route".to_owned(),
            100.0 * check_per_sec / select_per_sec,
            70.0,
        ),
    ];
    if pg {
        let url = db.url.clone();
        let (users, seconds) = (plan.users, plan.seconds);
        crate::pgbench::prepare(&url, users).await;
        let hub_script = std::sync::Arc::new(crate::pgbench::prepare_hub(&url, users).await);
        for &conns in &concurrencies {
            let u = url.clone();
            let simple = pgbench_row("pgbench: simple consume transaction", conns, move || {
                crate::pgbench::simple(&u, conns, users, seconds)
            })
            .await;
            let script = hub_script.clone();
            let own = pgbench_row(
                "pgbench: the hub's own consume statements",
                conns,
                move || crate::pgbench::hub(&script, conns, seconds),
            )
            .await;
            let hub_row = consume
                .iter()
                .find(|r| r.connections == conns)
                .expect("measured");
            ratios.push((
                format!("consume / pgbench simple transaction, {conns} connections"),
                100.0 * hub_row.per_sec / simple.per_sec,
                60.0,
            ));
            ratios.push((
                format!("consume / pgbench with the hub's statements, {conns} connections"),
                100.0 * hub_row.per_sec / own.per_sec,
                60.0,
            ));
            rows.extend([simple, own]);
        }
        let u = url.clone();
        let select_s = pgbench_row("pgbench -S (one-row SELECT)", c, move || {
            crate::pgbench::select(&u, c, seconds)
        })
        .await;
        ratios.push((
            "check / pgbench -S".to_owned(),
            100.0 * check_per_sec / select_s.per_sec,
            35.0,
        ));
        rows.push(select_s);
    } else {
        let raw_path = db
            .url
            .strip_prefix("sqlite://")
            .expect("a SQLite URL")
            .replace("luna.db", "raw-loop.db");
        let raw = raw_sqlite_row(&raw_path, plan).await;
        for r in &consume {
            ratios.push((
                format!("consume ({} connections) / raw SQLite loop", r.connections),
                100.0 * r.per_sec / raw.per_sec,
                70.0,
            ));
        }
        rows.push(raw);
    }
    let mut p99s = Vec::new();
    for r in &consume {
        let target = if r.connections <= 16 { 10.0 } else { 40.0 };
        p99s.push((r.connections, r.p99_ms.expect("wrk measures p99"), target));
    }
    rows.extend(consume);
    let logins = logins(&hub.base).await;
    print_rows(&rows);
    println!(
        "\nlogin (sequential, Argon2id at production parameters): {}",
        logins.line()
    );
    print_ratios(&ratios, &p99s);
    invariants(hub, &db, acknowledged, in_flight, plan.users).await;
    db.drop_it().await;
}

/// Sequential logins (their cost is Argon2id's, by design).
async fn logins(base: &str) -> crate::stats::Stats {
    let client = reqwest::Client::new();
    let (email, password) = (person_email(0), "bench password 42");
    let start = std::time::Instant::now();
    let mut lat = Vec::new();
    for _ in 0..20 {
        let s = std::time::Instant::now();
        let r = client
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "login");
        lat.push(s.elapsed());
    }
    crate::stats::Stats::new(lat, start.elapsed())
}

/// A pgbench run (`run`), with the CPU it cost.
async fn pgbench_row(
    what: &str,
    conns: usize,
    run: impl FnOnce() -> crate::pgbench::Figure + Send + 'static,
) -> Row {
    let me = std::process::id();
    let (figure, cpu, requests) = tokio::task::spawn_blocking(move || {
        let before = Snapshot::take(me);
        let f = run();
        let after = Snapshot::take(me);
        (f, (before, after), f.transactions)
    })
    .await
    .expect("pgbench");
    Row {
        what: format!("{what} (mean latency {:.2} ms)", figure.latency_ms),
        connections: conns,
        per_sec: figure.tps,
        p50_ms: None,
        p99_ms: None,
        cpu: cpu.0.per_request(&cpu.1, requests),
    }
}

async fn raw_sqlite_row(path: &str, plan: &Plan<'_>) -> Row {
    // A fresh database in the hub's schema, then the loop on one thread of this process.
    drop(
        luna_adapters_sqlite::SqliteStore::connect(
            &format!("sqlite://{path}"),
            std::sync::Arc::new(luna_server::runtime::SystemClock),
            luna_adapters_sqlite::Durability::Full,
        )
        .await
        .expect("migrate"),
    );
    let (path, users, seconds) = (path.to_owned(), plan.users, plan.seconds);
    let me = std::process::id();
    let (stats, cpu) = tokio::task::spawn_blocking(move || {
        let before = Snapshot::take(me);
        let stats = crate::rawsqlite::consume_loop(Path::new(&path), seconds, users);
        let cpu = before.per_request(&Snapshot::take(me), stats.count());
        (stats, cpu)
    })
    .await
    .expect("raw loop");
    Row {
        what: "raw SQLite loop (rusqlite, 1 commit per consume, FULL)".to_owned(),
        connections: 1,
        per_sec: stats.per_sec(),
        p50_ms: Some(stats.p50().as_secs_f64() * 1000.0),
        p99_ms: Some(stats.p99().as_secs_f64() * 1000.0),
        cpu,
    }
}

/// Every acknowledged consume is recorded (and at most the requests in flight when wrk
/// stopped besides), the balances are exactly what the events say, and `luna verify` passes.
async fn invariants(
    hub: LunaProcess,
    db: &Database,
    acknowledged: u64,
    in_flight: u64,
    users: usize,
) {
    let (consumed, balances) = crate::process::consumed_and_balances(&db.url).await;
    let users = i64::try_from(users).expect("fits");
    assert!(
        consumed >= acknowledged && consumed <= acknowledged + in_flight,
        "consumes recorded {consumed}, acknowledged {acknowledged} (+ ≤ {in_flight} in flight)"
    );
    assert_eq!(
        balances,
        users * (85 + 1_000_000) - 5 * i64::try_from(consumed).expect("fits"),
        "the balances are exactly the grants minus the recorded consumes"
    );
    assert!(hub.stop_and_verify(), "luna verify after the run");
    println!(
        "\ninvariants: {acknowledged} acknowledged consumes, {consumed} recorded; balances exact; luna verify passed"
    );
}
