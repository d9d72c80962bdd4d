//! PostgreSQL's own ceilings, measured by `pgbench` in the same run as the hub (issue 9): the
//! simple consume transaction (update the balance, insert the event, in tables shaped like the
//! hub's) and `pgbench -S` (one primary-key SELECT), prepared, over TCP, at the hub's
//! concurrency. A home-made client is not the ceiling; the database's own tool is.

use std::process::Command;

/// What one pgbench run printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figure {
    /// Transactions processed.
    pub(crate) transactions: u64,
    /// Transactions per second (without the initial connection time).
    pub(crate) tps: f64,
    /// Mean latency, ms (pgbench prints no percentiles without a per-transaction log).
    pub(crate) latency_ms: f64,
}

/// The value after `label` on the line that starts with it (`tps = 3356.1 (without…)`).
fn value_after(out: &str, label: &str) -> Option<f64> {
    out.lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The value after `label:` (`number of transactions actually processed: 81234`).
fn value_after_colon(out: &str, label: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse().ok())
}

fn pgbench<S: AsRef<std::ffi::OsStr>>(url: &str, args: &[S]) -> String {
    let out = Command::new("pgbench")
        .args(args)
        .arg(url)
        .output()
        .expect("pgbench (Debian package postgresql-client) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pgbench failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "pgbench prints a whole count"
)]
fn figure(out: &str) -> Figure {
    Figure {
        transactions: value_after_colon(out, "number of transactions actually processed")
            .expect("pgbench prints the transactions processed") as u64,
        tps: value_after(out, "tps").expect("pgbench prints tps"),
        latency_ms: value_after(out, "latency average").expect("pgbench prints the latency"),
    }
}

/// Creates the simple transaction's tables beside the hub's (same shapes: `LIKE … INCLUDING
/// ALL`, without the hub's triggers) with `users` wallets, and pgbench's own for `-S`.
pub(crate) async fn prepare(url: &str, users: usize) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    for sql in [
        "DROP TABLE IF EXISTS pgb_event, pgb_wallet",
        "CREATE TABLE pgb_event (LIKE event INCLUDING ALL)",
        "CREATE TABLE pgb_wallet (LIKE wallet INCLUDING ALL)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    sqlx::query(
        "INSERT INTO pgb_wallet (stream_id, version, balance, summary, updated_at_ms) \
         SELECT 'bench-' || g, 0, 1000000, '{}', 0 FROM generate_series(0, $1 - 1) g",
    )
    .bind(i64::try_from(users).expect("fits"))
    .execute(&pool)
    .await
    .expect("wallets");
    pool.close().await;
    pgbench(url, &["-i", "-q", "-s", "1"]);
}

/// A time-ordered id, like the hub's UUID v7 (milliseconds first, then md5 digits: not a true v7,
/// ordered to the millisecond), so the baselines' id indexes grow at their end as the hub's do
/// (PostgreSQL 15 has no `uuidv7()`).
const ORDERED_ID: &str = "(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') \
                          || substr(md5(random()::text), 1, 20))::uuid";

/// The simple consume transaction as a pgbench script, with the payload the hub writes.
fn simple_script(users: usize) -> String {
    // In hex: pgbench would read the payload's `:` as its variables.
    let row = crate::sample_consume();
    let payload = row
        .encoded
        .payload
        .bytes()
        .fold(String::new(), |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        });
    format!(
        "\\set u random(0, {last})\n\
         BEGIN;\n\
         UPDATE pgb_wallet SET balance = balance - 5, version = version + 1 WHERE stream_id = 'bench-' || :u RETURNING version AS v \\gset\n\
         INSERT INTO pgb_event (event_id, stream_id, version, event_type, schema_version, payload, metadata, occurred_at_ms, recorded_at_ms, balance_after, available_after) \
         VALUES ({ORDERED_ID}, 'bench-' || :u, :v, 'EnergyConsumed', 2, convert_from('\\x{payload}'::bytea, 'UTF8')::json, '{{}}', 0, 0, 0, 0);\n\
         END;\n",
        last = users - 1
    )
}

fn common(clients: usize, seconds: u64) -> Vec<String> {
    ["-n", "-M", "prepared", "-j", "2", "-c"]
        .iter()
        .map(ToString::to_string)
        .chain([clients.to_string(), "-T".into(), seconds.to_string()])
        .collect()
}

/// Runs `script` (written to a temporary file) with these variables (`-D name=value`).
fn run_script(url: &str, script: &str, defines: &[String], clients: usize, seconds: u64) -> Figure {
    let path = std::env::temp_dir().join(format!(
        "luna-pgbench-{}-{}.sql",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, script).expect("script");
    let mut args = common(clients, seconds);
    args.extend(["-f".into(), path.display().to_string()]);
    for d in defines {
        args.extend(["-D".into(), d.clone()]);
    }
    let f = figure(&pgbench(url, &args));
    let _ = std::fs::remove_file(&path);
    f
}

/// The simple consume transaction for `seconds` at `clients` connections (after [`prepare`]).
pub(crate) fn simple(url: &str, clients: usize, users: usize, seconds: u64) -> Figure {
    run_script(url, &simple_script(users), &[], clients, seconds)
}

/// `pgbench -S` for `seconds` at `clients` connections (after [`prepare`]).
pub(crate) fn select(url: &str, clients: usize, seconds: u64) -> Figure {
    let mut args = common(clients, seconds);
    args.push("-S".into());
    figure(&pgbench(url, &args))
}

/// The hub's own consume, as pgbench runs it: the projection read, then the hub's append
/// statement in autocommit (`luna_adapters_postgres::consume_statement`, its parameters become
/// pgbench variables) — the same round trips and statements — in copies of the hub's tables
/// (schema `pgb_hub`), with the values of a consume the hub stored.
pub(crate) struct HubScript {
    users: usize,
    script: String,
    defines: Vec<String>,
    url: String,
}

/// The statement's parameters that are the stored consume's values: (parameter, column of
/// the query in [`prepare_hub`]).
const FIXED: [(usize, usize); 20] = [
    (4, 0),
    (5, 1),
    (7, 3),
    (8, 4),
    (9, 5),
    (10, 5),
    (11, 6),
    (12, 7),
    (13, 8),
    (14, 9),
    (15, 10),
    (16, 11),
    (17, 12),
    (18, 13),
    (19, 14),
    (20, 15),
    (21, 16),
    (22, 17),
    (24, 6),
    (25, 18),
];

/// Copies the hub's tables into `pgb_hub` with `users` projection rows, and builds the script
/// from one `EnergyConsumed` event the hub stored (with its ledger row).
pub(crate) async fn prepare_hub(url: &str, users: usize) -> HubScript {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    copy_tables(&pool, users).await;
    let row = sqlx::query(
        "SELECT e.event_type, e.schema_version::text, e.entity, e.payload::text, e.metadata::text, \
         e.occurred_at_ms::text, e.balance_after::text, e.available_after::text, l.kind, \
         l.amount::text, l.balance_before::text, l.balance_after::text AS l_after, \
         l.occurred_at_ms::text AS l_at, l.action, l.app, l.unlimited::text, l.notional::text, \
         (SELECT u.day::text FROM usage_daily u WHERE u.stream_id = e.stream_id \
          AND e.position BETWEEN u.first_position AND u.last_position LIMIT 1) AS day, \
         w.summary::text AS summary \
         FROM event e JOIN ledger l ON l.stream_id = e.stream_id AND l.position = e.position \
         JOIN wallet w ON w.stream_id = e.stream_id \
         WHERE e.event_type = 'EnergyConsumed' LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("a consume the hub stored");
    pool.close().await;
    let value = |i: usize| -> Option<String> { sqlx::Row::get(&row, i) };
    // $1 event id, $2 stream, $3 version, $23 new version, $26 expected version and the entity
    // ($6, unique when set) vary; the rest are the stored consume's values.
    let entity = value(2).map_or("NULL::text".to_owned(), |e| {
        let prefix = e.split(':').next().unwrap_or_default().to_owned();
        format!("'{prefix}:' || {ORDERED_ID}")
    });
    let mut statement = luna_adapters_postgres::consume_statement().to_owned();
    // Highest numbers first, so `$1` does not match the start of `$12`.
    for n in (1..=26).rev() {
        statement = statement.replace(&format!("${n}"), &format!(":p{n}"));
    }
    let mut defines = Vec::new();
    for (param, column) in FIXED {
        match value(column) {
            Some(v) => defines.push(format!("p{param}={v}")),
            None => statement = statement.replace(&format!(":p{param}"), "NULL"),
        }
    }
    let script = format!(
        "SELECT {ORDERED_ID}::text AS p1, stream_id AS p2, version + 1 AS p3, \
         version + 1 AS p23, version AS p26, {entity} AS p6, summary::text AS summary \
         FROM wallet WHERE stream_id = 'bench-' || :u \\gset\n\
         {statement};\n"
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    HubScript {
        users,
        script,
        defines,
        url: format!("{url}{sep}options=-csearch_path%3Dpgb_hub"),
    }
}

/// The hub's tables copied into schema `pgb_hub` (indexes and defaults included), with
/// `users` projection rows.
async fn copy_tables(pool: &sqlx::PgPool, users: usize) {
    for sql in [
        "DROP SCHEMA IF EXISTS pgb_hub CASCADE".to_owned(),
        "CREATE SCHEMA pgb_hub".to_owned(),
    ]
    .into_iter()
    .chain(
        [
            "event",
            "wallet",
            "ledger",
            "usage_daily",
            "usage_span",
            "event_count",
        ]
        .iter()
        .map(|t| format!("CREATE TABLE pgb_hub.{t} (LIKE public.{t} INCLUDING ALL)")),
    ) {
        sqlx::query(&sql).execute(pool).await.expect("copy a table");
    }
    sqlx::query(
        "INSERT INTO pgb_hub.wallet (stream_id, version, balance, summary, updated_at_ms) \
         SELECT 'bench-' || g, 1, 1000000, (SELECT summary FROM wallet WHERE stream_id = 'bench-0'), 0 \
         FROM generate_series(0, $1 - 1) g",
    )
    .bind(i64::try_from(users).expect("fits"))
    .execute(pool)
    .await
    .expect("wallets");
}

/// The hub's own consume statements for `seconds` at `clients` connections.
pub(crate) fn hub(hub: &HubScript, clients: usize, seconds: u64) -> Figure {
    // Each client its own users (pgbench does not retry a conflict; the hub does).
    assert!(
        hub.users >= clients,
        "the hub's statements need a user per pgbench client ({} users, {clients} clients)",
        hub.users
    );
    let per_client = hub.users / clients;
    let choose = format!(
        "\\set u :client_id + {clients} * random(0, {})\n",
        per_client - 1
    );
    run_script(
        &hub.url,
        &(choose + &hub.script),
        &hub.defines,
        clients,
        seconds,
    )
}
