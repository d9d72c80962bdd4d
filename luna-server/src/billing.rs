//! `luna billing`: reading `--since` and printing a reconciliation report.

use std::fmt::Write;

use luna_app::ReconcileReport;
use luna_core::Timestamp;

/// `--since`: RFC 3339 (`2026-11-01T00:00:00Z`) or unix seconds.
pub fn parse_since(raw: &str) -> anyhow::Result<Timestamp> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = raw
            .parse()
            .map_err(|_| anyhow::anyhow!("--since {raw}: too large"))?;
        return Ok(Timestamp::from_secs(secs));
    }
    luna_http::render::parse_time(raw)
        .ok_or_else(|| anyhow::anyhow!("--since {raw}: expected RFC 3339 or unix seconds"))
}

/// The report, one line per fact.
pub fn describe(r: &ReconcileReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "succeeded payments seen: {}", r.seen);
    let _ = writeln!(out, "credited now: {}", r.credited.len());
    for p in &r.credited {
        let _ = writeln!(out, "  credited {p}");
    }
    let _ = writeln!(out, "already credited: {}", r.already);
    let _ = writeln!(out, "not ours (no user or catalogue pack): {}", r.foreign);
    let _ = writeln!(
        out,
        "unmatched (somebody paid, not creditable): {}",
        r.unmatched.len()
    );
    for (p, why) in &r.unmatched {
        let _ = writeln!(out, "  unmatched {p}: {why}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_unix_seconds() {
        assert_eq!(
            parse_since("1700000000").unwrap(),
            Timestamp::from_secs(1_700_000_000)
        );
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z").unwrap(),
            Timestamp::from_secs(1_700_000_000)
        );
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("99999999999999999999999").is_err());
    }
}
