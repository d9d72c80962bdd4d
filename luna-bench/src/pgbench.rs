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
         VALUES (gen_random_uuid(), 'bench-' || :u, :v, 'EnergyConsumed', 2, convert_from('\\x{payload}'::bytea, 'UTF8')::json, '{{}}', 0, 0, 0, 0);\n\
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

/// The simple consume transaction for `seconds` at `clients` connections (after [`prepare`]).
pub(crate) fn simple(url: &str, clients: usize, users: usize, seconds: u64) -> Figure {
    let script = std::env::temp_dir().join(format!("luna-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, simple_script(users)).expect("script");
    let mut args = common(clients, seconds);
    args.extend(["-f".into(), script.display().to_string()]);
    let f = figure(&pgbench(url, &args));
    let _ = std::fs::remove_file(&script);
    f
}

/// `pgbench -S` for `seconds` at `clients` connections (after [`prepare`]).
pub(crate) fn select(url: &str, clients: usize, seconds: u64) -> Figure {
    let mut args = common(clients, seconds);
    args.push("-S".into());
    figure(&pgbench(url, &args))
}
