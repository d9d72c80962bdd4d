//! Where PostgreSQL tests find their database.
//!
//! They read `LUNA_TEST_DATABASE_URL`. Without it they print that they are skipped, unless
//! `CI` or `LUNA_REQUIRE_POSTGRES` is set: then they fail, so CI never passes without them.

use std::io::Write;

/// The test database URL, or `None` (after saying so) when PostgreSQL tests are to be skipped.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var("LUNA_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var_os("LUNA_REQUIRE_POSTGRES").is_some()
                || std::env::var_os("CI").is_some();
            assert!(
                !required,
                "{test}: LUNA_TEST_DATABASE_URL is unset but PostgreSQL tests are required here"
            );
            // Written to the process's stderr directly: the test harness captures `eprintln!`,
            // and a skip must be visible.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set LUNA_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            None
        }
    }
}

static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A schema name no other test uses.
pub fn fresh_schema(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        t % 1_000_000_000_000,
        n
    )
}
