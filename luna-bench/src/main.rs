//! Luna's load tool.
//!
//! `luna-bench store` drives the use cases on each storage backend and prints throughput and
//! latency beside a raw-sqlx baseline doing the same reads and writes in the same run, then the
//! consume latency of a fresh account against one with a long history.

use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use luna_adapters_postgres::PgStore;
use luna_adapters_sqlite::{Durability, SqliteStore};
use luna_app::{ConsumeRequest, Hub};
use luna_core::{
    AccountOpened, ActionName, Catalog, Energy, EnergyConsumed, EnergyGranted, Event, EventKind,
    Id, Policy, Span, UserId, Wallet,
};
use luna_ports::{AppendBatch, Clock, EventMetadata, IdGenerator, NewEvent, Store};
use luna_server::runtime::{SystemClock, UuidIds};

mod cpu;
mod http;
mod inproc;
mod overload;
mod pgbench;
mod process;
mod rawsqlite;
mod reads;
mod soak;
mod stats;
mod wrk;

use stats::Stats;

/// The hub's allocator (luna-server), so the baselines this tool serves — the trivial and the
/// one-SELECT axum routes — run on the same one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "luna-bench", about = "Luna's load tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume throughput and latency on each store, beside raw sqlx doing the same writes.
    Store {
        /// Also run on this PostgreSQL database (defaults to LUNA_TEST_DATABASE_URL).
        #[arg(long, env = "LUNA_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Consumes per run.
        #[arg(long, default_value_t = 4000)]
        ops: usize,
        /// Concurrent tasks.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Events in the long history.
        #[arg(long, default_value_t = 100_000)]
        history: usize,
        /// SQLite with synchronous=NORMAL instead of FULL.
        #[arg(long)]
        sqlite_normal: bool,
    },
    /// A `luna serve` process driven by wrk (check, consume) beside same-run ceilings — a
    /// trivial axum route, a one-SELECT axum route, the raw SQLite loop, pgbench — with the CPU
    /// per request of each side, on SQLite and (when given) PostgreSQL; then the invariants.
    Http {
        /// Also run on this PostgreSQL database (a fresh database is created on it).
        #[arg(long, env = "LUNA_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// The `luna` binary (default: the one beside this tool; build it with --release).
        #[arg(long)]
        luna: Option<std::path::PathBuf>,
        /// Concurrent connections (consume is also measured at 16).
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Users the requests spread over.
        #[arg(long, default_value_t = 1000)]
        users: usize,
    },
    /// Overload (PASS/FAIL): a `luna serve` process at the concurrency its database serves,
    /// then with many times more clients honouring Retry-After; shed requests change nothing
    /// and accepted throughput stays ≥ 80 % of the unloaded figure.
    Overload {
        /// Run on PostgreSQL (a fresh database on this server) instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// The `luna` binary (default: the one beside this tool).
        #[arg(long)]
        luna: Option<std::path::PathBuf>,
        /// Clients of the unloaded phase (the PostgreSQL pool's size).
        #[arg(long, default_value_t = 16)]
        base_clients: usize,
        /// Clients of the overload phase (8× the pool).
        #[arg(long, default_value_t = 128)]
        clients: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// The hub's admission limit (LUNA_MAX_IN_FLIGHT; default: the hub's own).
        #[arg(long)]
        max_in_flight: Option<u32>,
        /// How long a request waits for a place (LUNA_ADMISSION_WAIT_MS; default: the hub's).
        #[arg(long)]
        admission_wait_ms: Option<u64>,
    },
    /// The read routes over HTTP at a short and a long history (medians of interleaved
    /// rounds), on SQLite and (when given) PostgreSQL.
    Reads {
        /// Also run on this PostgreSQL database (a fresh database is created on it).
        #[arg(long, env = "LUNA_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Events in the short history.
        #[arg(long, default_value_t = 100)]
        short: usize,
        /// Events in the long history.
        #[arg(long, default_value_t = 100_000)]
        long: usize,
        /// Interleaved rounds (each the median of 5 requests).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Soak (PASS/FAIL): a mixed workload (service keys, user tokens, purchases and webhooks)
    /// on a `luna serve` process, memory, descriptors and connections sampled every 10 s.
    Soak {
        /// Run on PostgreSQL (a fresh database on this server) instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// The `luna` binary (default: the one beside this tool).
        #[arg(long)]
        luna: Option<std::path::PathBuf>,
        /// Seconds (at most 600).
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Concurrent workers (half satellites with a service key, half people with a token).
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// More variables for the hub process, `KEY=VALUE` (e.g. `RUST_LOG=debug`).
        #[arg(long = "hub-env", value_parser = parse_env)]
        hub_env: Vec<(String, String)>,
    },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s}"))
}

/// Prints each check and the verdict line (PASS or FAIL); true on PASS.
pub(crate) fn verdict(checks: &[(&str, bool, String)]) -> bool {
    println!();
    for (what, ok, figure) in checks {
        println!("{} {what} {figure}", if *ok { "ok  " } else { "FAIL" });
    }
    let pass = checks.iter().all(|(_, ok, _)| *ok);
    println!("{}", if pass { "PASS" } else { "FAIL" });
    pass
}

fn hub<S>(store: Arc<S>) -> Arc<Hub>
where
    S: Store
        + luna_ports::KeyStore
        + luna_ports::AccountStore
        + luna_ports::ThrottleStore
        + luna_ports::BillingStore
        + 'static,
{
    Arc::new(Hub::new(
        luna_app::Ports {
            store: store.clone(),
            keys: store.clone(),
            accounts: store.clone(),
            throttle: store.clone(),
            billing: store,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidIds),
            secrets: Arc::new(luna_server::runtime::OsSecrets),
        },
        Arc::new(Catalog::builtin()),
        Policy::default(),
    ))
}

fn user(s: &str) -> UserId {
    UserId::parse(s).expect("valid user id")
}

fn meta() -> EventMetadata {
    EventMetadata {
        actor: Some("bench".into()),
        ..EventMetadata::default()
    }
}

/// Consumes through the hub: `concurrency` tasks, each on its own users.
async fn hub_consumes(hub: &Arc<Hub>, run: &str, ops: usize, concurrency: usize) -> Stats {
    let users_per_task = 4;
    for t in 0..concurrency {
        for k in 0..users_per_task {
            let u = user(&format!("{run}-{t}-{k}"));
            hub.grant(&u, Energy::new(1_000_000), "bench", &meta(), None)
                .await
                .expect("grant");
        }
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let hub = hub.clone();
        let run = run.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(ops / concurrency);
            for i in 0..ops / concurrency {
                let u = user(&format!("{run}-{t}-{}", i % users_per_task));
                let s = Instant::now();
                hub.consume(
                    ConsumeRequest {
                        user: u,
                        action: "conseil_rapide".into(),
                        context: None,
                    },
                    &meta(),
                    None,
                )
                .await
                .expect("consume");
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    Stats::new(all, start.elapsed())
}

/// A stored consume event's columns, precomputed: the baseline writes the same bytes.
pub(crate) fn sample_consume() -> luna_codec::NewEventRow {
    let e = NewEvent {
        event_id: Id::from_u128(1),
        event: Event {
            occurred_at: SystemClock.now(),
            kind: EventKind::EnergyConsumed(EnergyConsumed {
                tx: Id::from_u128(2),
                action: ActionName::parse("conseil_rapide").expect("valid"),
                cost: Energy::new(5),
                notional: Energy::new(5),
                unlimited: false,
                grid_version: "2024-01".into(),
                context: None,
                from_reservation: false,
            }),
        },
        metadata: meta(),
        after: Some(luna_ports::EnergyAfter {
            balance: 80,
            available: 80,
        }),
    };
    luna_codec::encode_new(&e)
}

/// How many days a benchmark history spans.
const HISTORY_DAYS: i64 = 120;

/// The actions a benchmark history's consumes cycle through.
const ACTIONS: [&str; 4] = [
    "conseil_rapide",
    "lettre_motivation",
    "analyse_cv",
    "preparation_entretien",
];

/// Appends a history of `n` events (welcome, then grants and consumes of several actions)
/// spread over the last [`HISTORY_DAYS`] days, in batches.
async fn long_history(store: &dyn Store, u: &UserId, n: usize) {
    let mut wallet = Wallet::default();
    let mut version = 0usize;
    let mut i = 0u128;
    let t0 = SystemClock.now();
    while version < n {
        let mut batch = Vec::new();
        while batch.len() < 1000 && version + batch.len() < n {
            i += 1;
            let kind = if version == 0 && batch.is_empty() {
                EventKind::AccountOpened(AccountOpened {
                    tx: Id::from_u128(i),
                    welcome: Energy::new(85),
                })
            } else if i % 2 == 0 {
                EventKind::EnergyGranted(EnergyGranted {
                    tx: Id::from_u128(i),
                    amount: Energy::new(10),
                    reason: "h".into(),
                })
            } else {
                EventKind::EnergyConsumed(EnergyConsumed {
                    tx: Id::from_u128(i),
                    action: ActionName::parse(ACTIONS[(i as usize / 2) % ACTIONS.len()])
                        .expect("valid"),
                    cost: Energy::new(5),
                    notional: Energy::new(5),
                    unlimited: false,
                    grid_version: "2024-01".into(),
                    context: None,
                    from_reservation: false,
                })
            };
            // Spread evenly over the last HISTORY_DAYS days, oldest first.
            let left = i64::try_from(n - version - batch.len()).expect("a bench history fits i64");
            let age = HISTORY_DAYS * 86_400 * left / i64::try_from(n).expect("fits");
            let event = Event {
                occurred_at: t0.minus(Span::seconds(age)),
                kind,
            };
            wallet.apply(&event);
            let after = Some(luna_ports::EnergyAfter {
                balance: wallet.summary.balance.units(),
                available: wallet.summary.available(t0),
            });
            batch.push(NewEvent {
                event_id: UuidIds.next_id(),
                event,
                metadata: meta(),
                after,
            });
        }
        store
            .append(AppendBatch {
                stream: u.clone(),
                expected_version: version as u64,
                events: &batch,
                summary: &wallet.summary,
                idempotency: None,
                processed: None,
            })
            .await
            .expect("append history");
        version += batch.len();
    }
}

async fn sequential_consumes(hub: &Arc<Hub>, u: &UserId, n: usize) -> Stats {
    hub.grant(u, Energy::new(1_000_000), "bench", &meta(), None)
        .await
        .expect("grant");
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        hub.consume(
            ConsumeRequest {
                user: u.clone(),
                action: "conseil_rapide".into(),
                context: None,
            },
            &meta(),
            None,
        )
        .await
        .expect("consume");
        lat.push(s.elapsed());
    }
    Stats::new(lat, start.elapsed())
}

async fn history_latency(hub: &Arc<Hub>, store: &dyn Store, run: &str, history: usize) {
    let fresh = user(&format!("{run}-fresh"));
    let long = user(&format!("{run}-long"));
    let s = Instant::now();
    long_history(store, &long, history).await;
    println!(
        "  (wrote a {history}-event history in {:.1} s)",
        s.elapsed().as_secs_f64()
    );
    // Interleave the two measurements in rounds so drift affects both alike.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(sequential_consumes(hub, &fresh, 200).await);
        b.push(sequential_consumes(hub, &long, 200).await);
    }
    let (a, b) = (Stats::merge(a), Stats::merge(b));
    println!(
        "  consume latency, empty history      : {}",
        a.latency_line()
    );
    println!(
        "  consume latency, {history}-event history: {}",
        b.latency_line()
    );
    println!(
        "  ratio long/empty (p50): {:.2}×  (target ≤ 1.2×)",
        b.p50().as_secs_f64() / a.p50().as_secs_f64()
    );
}

async fn sqlite_run(
    path: &str,
    durability: Durability,
    ops: usize,
    concurrency: usize,
    history: usize,
) {
    let _ = std::fs::remove_dir_all(path);
    let url = format!("sqlite://{path}/luna.db");
    let store = Arc::new(
        SqliteStore::connect(&url, Arc::new(SystemClock), durability)
            .await
            .expect("open sqlite"),
    );
    println!("\n== SQLite ({durability:?} sync), {ops} consumes, {concurrency} tasks");
    let baseline = baselines::sqlite(store.pool(), &sample_consume(), ops, concurrency).await;
    let hub = hub(store.clone());
    let luna = hub_consumes(&hub, "sq", ops, concurrency).await;
    let baseline2 = baselines::sqlite(store.pool(), &sample_consume(), ops, concurrency).await;
    report(&Stats::merge(vec![baseline, baseline2]), &luna);
    history_latency(&hub, store.as_ref(), "sq", history).await;
}

/// Prints a store run's hub figures beside its baseline.
fn report(baseline: &Stats, luna: &Stats) {
    println!(
        "  raw sqlx baseline (select + insert event + update wallet): {}",
        baseline.line()
    );
    println!(
        "  luna consume (load + decide + append)                    : {}",
        luna.line()
    );
    println!(
        "  luna / baseline throughput: {:.0} %",
        100.0 * luna.per_sec() / baseline.per_sec()
    );
}

async fn postgres_run(url: &str, ops: usize, concurrency: usize, history: usize) {
    let schema = format!("luna_bench_{}", std::process::id());
    let store = Arc::new(
        PgStore::connect(url, Some(&schema), 32, Arc::new(SystemClock))
            .await
            .expect("connect"),
    );
    println!("\n== PostgreSQL (schema {schema}), {ops} consumes, {concurrency} tasks");
    let baseline = baselines::postgres(store.pool(), &sample_consume(), ops, concurrency).await;
    let hub = hub(store.clone());
    let luna = hub_consumes(&hub, "pg", ops, concurrency).await;
    let baseline2 = baselines::postgres(store.pool(), &sample_consume(), ops, concurrency).await;
    report(&Stats::merge(vec![baseline, baseline2]), &luna);
    history_latency(&hub, store.as_ref(), "pg", history).await;
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(store.pool())
        .await;
}

mod baselines;

#[allow(
    clippy::too_many_lines,
    reason = "the load tool is rebuilt around wrk and pgbench by the performance issue"
)]
#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Store {
            postgres,
            ops,
            concurrency,
            history,
            sqlite_normal,
        } => {
            println!(
                "luna-bench store: {} CPUs",
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            );
            let durability = if sqlite_normal {
                Durability::Normal
            } else {
                Durability::Full
            };
            let dir = std::env::temp_dir().join(format!("luna-bench-{}", std::process::id()));
            sqlite_run(
                &dir.to_string_lossy(),
                durability,
                ops,
                concurrency,
                history,
            )
            .await;
            let _ = std::fs::remove_dir_all(&dir);
            match postgres {
                Some(url) => postgres_run(&url, ops, concurrency, history).await,
                None => println!(
                    "\n(PostgreSQL skipped: pass --postgres URL or set LUNA_TEST_DATABASE_URL)"
                ),
            }
        }
        Command::Overload {
            postgres,
            luna,
            base_clients,
            clients,
            seconds,
            max_in_flight,
            admission_wait_ms,
        } => {
            let luna = process::luna_binary(luna);
            let mut env = Vec::new();
            if let Some(n) = max_in_flight {
                env.push(("LUNA_MAX_IN_FLIGHT", n.to_string()));
            }
            if let Some(ms) = admission_wait_ms {
                env.push(("LUNA_ADMISSION_WAIT_MS", ms.to_string()));
            }
            let backend = if postgres.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            };
            println!(
                "luna-bench overload on {backend}: {base_clients} then {clients} clients, {seconds} s each\n"
            );
            let pass = overload::run(
                &luna,
                postgres.as_deref(),
                &env,
                (base_clients, clients),
                seconds,
            )
            .await;
            std::process::exit(i32::from(!pass));
        }
        Command::Reads {
            postgres,
            short,
            long,
            rounds,
        } => {
            println!("luna-bench reads: SQLite (synchronous=FULL)\n");
            let dir = std::env::temp_dir().join(format!("luna-bench-reads-{}", std::process::id()));
            reads::run(
                &format!("sqlite://{}/luna.db", dir.display()),
                short,
                long,
                rounds,
            )
            .await;
            let _ = std::fs::remove_dir_all(&dir);
            if let Some(base) = postgres {
                println!("\nluna-bench reads: PostgreSQL\n");
                let db = process::Database::fresh(Some(&base), "reads").await;
                reads::run(&db.url, short, long, rounds).await;
                db.drop_it().await;
            }
        }
        Command::Soak {
            postgres,
            luna,
            seconds,
            workers,
            hub_env,
        } => {
            let luna = process::luna_binary(luna);
            let backend = if postgres.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            };
            let seconds = seconds.min(600);
            println!("luna-bench soak on {backend}: {workers} workers, {seconds} s\n");
            let pass = soak::run(&luna, postgres.as_deref(), seconds, workers, &hub_env).await;
            std::process::exit(i32::from(!pass));
        }
        Command::Http {
            postgres,
            luna,
            connections,
            seconds,
            users,
        } => {
            let luna = process::luna_binary(luna);
            println!(
                "luna-bench http: {} CPUs, wrk over TCP loopback, hub {}",
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                luna.display()
            );
            let mut plan = http::Plan {
                luna: &luna,
                postgres: None,
                connections,
                seconds,
                users,
            };
            http::run(&plan).await;
            match postgres.as_deref() {
                Some(base) => {
                    plan.postgres = Some(base);
                    http::run(&plan).await;
                }
                None => println!(
                    "\n(PostgreSQL skipped: pass --postgres URL or set LUNA_TEST_DATABASE_URL)"
                ),
            }
        }
    }
}
