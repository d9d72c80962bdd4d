//! A `luna serve` child process for the fault scenarios: its address, the admin key it printed
//! on its first start, and samples of what it holds (resident memory, open descriptors,
//! database connections) read from `/proc` and the database.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `luna serve`.
pub(crate) struct LunaProcess {
    child: Child,
    pub(crate) base: String,
    pub(crate) key: String,
    pub(crate) database_url: String,
    log: PathBuf,
    luna: PathBuf,
}

/// What the process holds at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) rss_kib: u64,
    pub(crate) fds: u64,
    pub(crate) db_connections: u64,
}

/// The `luna` binary: `--luna`, else the one beside this tool (same target directory).
pub(crate) fn luna_binary(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("luna")))
            .filter(|p| p.exists())
            .expect("no `luna` beside luna-bench: build it (cargo build --release -p luna-server) or pass --luna")
    })
}

impl LunaProcess {
    /// Starts `luna serve` on a fresh database with these extra variables; waits until it
    /// listens.
    pub(crate) fn start(luna: &Path, database_url: &str, env: &[(&str, String)]) -> LunaProcess {
        let log = std::env::temp_dir().join(format!(
            "luna-bench-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let mut cmd = Command::new(luna);
        cmd.arg("serve")
            .env_clear()
            .env("LUNA_DATABASE_URL", database_url)
            .env("LUNA_BIND", "127.0.0.1:0")
            .env("LUNA_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start luna serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut key, mut base) = (None, None);
        for line in lines.by_ref() {
            let line = line.expect("stdout");
            if let Some(k) = line.trim().strip_prefix("luna_sk_") {
                key = Some(format!("luna_sk_{k}"));
            }
            if let Some(rest) = line.strip_prefix("luna listening on ") {
                base = Some(rest.trim().to_owned());
                break;
            }
        }
        // Keep draining stdout so the hub never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        LunaProcess {
            child,
            base: base.expect("luna serve printed its address"),
            key: key.expect("a fresh database: luna serve printed a first admin key"),
            database_url: database_url.to_owned(),
            log,
            luna: luna.to_owned(),
        }
    }

    /// The hub's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory and open descriptors from `/proc`, database connections from the
    /// database (PostgreSQL: its sessions on this database; SQLite: descriptors on the database
    /// file, one per connection). A figure that cannot be read stops the run (a failed
    /// scenario), never a zero that would pass the checks.
    pub(crate) async fn sample(&self, pg: Option<&sqlx::PgPool>) -> Sample {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("the hub's /proc status (has it exited?)");
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in the hub's /proc status");
        let mut fds = 0;
        let mut db_files = 0;
        let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the hub's descriptors");
        {
            for e in dir.flatten() {
                fds += 1;
                if std::fs::read_link(e.path())
                    .is_ok_and(|t| t.to_string_lossy().ends_with("/luna.db"))
                {
                    db_files += 1;
                }
            }
        }
        let db_connections = match pg {
            Some(pool) => sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid()",
            )
            .fetch_one(pool)
            .await
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .expect("the database's sessions (pg_stat_activity)"),
            None => db_files,
        };
        Sample {
            rss_kib,
            fds,
            db_connections,
        }
    }

    /// Lines the hub logged at level ERROR (`None`: the log could not be read — a failed
    /// check, not zero).
    pub(crate) fn error_lines(&self) -> Option<usize> {
        let log = std::fs::read_to_string(&self.log).ok()?;
        Some(
            log.lines()
                .filter(|l| l.contains("\"level\":\"ERROR\""))
                .count(),
        )
    }

    /// Stops the hub (SIGKILL is enough: every acknowledged write is committed) and runs
    /// `luna verify` on its database; true when it exits 0.
    pub(crate) fn stop_and_verify(mut self) -> bool {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = Command::new(&self.luna)
            .arg("verify")
            .env_clear()
            .env("LUNA_DATABASE_URL", &self.database_url)
            .output()
            .expect("luna verify");
        if !out.status.success() {
            eprintln!(
                "luna verify: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }
}

impl Drop for LunaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("the hub's log is kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A fresh database for one scenario: a SQLite file in a temporary directory, or a new
/// database on the PostgreSQL server `postgres` names. Dropped with [`Database::drop_it`].
pub(crate) struct Database {
    pub(crate) url: String,
    pub(crate) pool: Option<sqlx::PgPool>,
    admin: Option<(sqlx::PgPool, String)>,
    dir: Option<PathBuf>,
}

impl Database {
    pub(crate) async fn fresh(postgres: Option<&str>, tag: &str) -> Database {
        let name = format!("luna_bench_{tag}_{}", std::process::id());
        match postgres {
            None => {
                let dir = std::env::temp_dir().join(&name);
                Database {
                    url: format!("sqlite://{}/luna.db", dir.display()),
                    pool: None,
                    admin: None,
                    dir: Some(dir),
                }
            }
            Some(base) => {
                let admin = sqlx::PgPool::connect(base).await.expect("connect");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .expect("create database");
                let url = match base.rfind('/') {
                    Some(i) if i > base.find("://").map_or(0, |s| s + 2) => {
                        format!("{}/{name}", &base[..i])
                    }
                    _ => format!("{base}/{name}"),
                };
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&url)
                    .await
                    .expect("connect");
                Database {
                    url,
                    pool: Some(pool),
                    admin: Some((admin, name)),
                    dir: None,
                }
            }
        }
    }

    pub(crate) async fn drop_it(self) {
        if let Some(pool) = self.pool {
            pool.close().await;
        }
        if let Some((admin, name)) = self.admin {
            let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The consumes recorded for the `bench-*` users and the sum of their balances, read from the
/// database at `url`.
pub(crate) async fn consumed_and_balances(url: &str) -> (u64, i64) {
    const CONSUMED: &str = "SELECT COUNT(*) FROM event WHERE event_type = 'EnergyConsumed' \
                            AND stream_id LIKE 'bench-%'";
    let (consumed, balances): (i64, i64) = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open");
        (
            sqlx::query_scalar(CONSUMED)
                .fetch_one(&pool)
                .await
                .expect("count"),
            sqlx::query_scalar("SELECT SUM(balance) FROM wallet WHERE stream_id LIKE 'bench-%'")
                .fetch_one(&pool)
                .await
                .expect("sum"),
        )
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open");
        (
            sqlx::query_scalar(CONSUMED)
                .fetch_one(&pool)
                .await
                .expect("count"),
            sqlx::query_scalar(
                "SELECT SUM(balance)::bigint FROM wallet WHERE stream_id LIKE 'bench-%'",
            )
            .fetch_one(&pool)
            .await
            .expect("sum"),
        )
    };
    (u64::try_from(consumed).expect("a count"), balances)
}
