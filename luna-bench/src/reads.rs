//! `luna-bench reads`: each read route over HTTP for a user with a short history and for one
//! with a long history, in interleaved rounds (medians), with the ratio long/short beside the
//! target (≤ 1.5×: a page costs O(page), not O(history)). The narrative reads the whole history
//! by design; its row shows how far from the raw read it is.
#![allow(
    clippy::cast_precision_loss,
    reason = "milliseconds of a benchmark, far below 2^52"
)]

use std::time::{Duration, Instant};

use luna_core::UserId;

/// Median latency of `n` sequential GETs.
async fn median(http: &reqwest::Client, url: &str, key: &str, n: usize) -> Duration {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        let r = http
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let _ = r.bytes().await;
        lat.push(s.elapsed());
    }
    lat.sort();
    lat[lat.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The routes, for one user.
fn routes(user: &UserId) -> Vec<(&'static str, String)> {
    let month_ago = luna_core::Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits"),
    )
    .minus(luna_core::Span::days(30))
    .date();
    vec![
        (
            "transactions (limit 50)",
            format!("/luna/energy/transactions/{user}?limit=50"),
        ),
        ("analytics", format!("/luna/energy/analytics/{user}")),
        (
            "analytics, last 30 days",
            format!("/luna/energy/analytics/{user}?from={month_ago}"),
        ),
        ("events (limit 50)", format!("/luna/events/{user}?limit=50")),
        (
            "events of one type (limit 50)",
            format!("/luna/events/{user}?limit=50&event_type=EnergyConsumed"),
        ),
        ("billing history", format!("/billing/history/{user}")),
        ("narrative", format!("/luna/narrative/{user}")),
    ]
}

/// Runs on `database_url` with histories of `short` and `long` events.
pub(crate) async fn run(database_url: &str, short: usize, long: usize, rounds: usize) {
    let hub = crate::inproc::start_hub(database_url).await;
    let run = format!("reads-{}", std::process::id());
    let (a, b) = (
        crate::user(&format!("{run}-short")),
        crate::user(&format!("{run}-long")),
    );
    crate::long_history(hub.store.as_ref(), &a, short).await;
    let s = Instant::now();
    crate::long_history(hub.store.as_ref(), &b, long).await;
    println!(
        "(wrote a {long}-event history in {:.1} s)\n",
        s.elapsed().as_secs_f64()
    );
    if !database_url.starts_with("sqlite:") {
        // The history was written faster than autovacuum wakes (1 min): each consume's rollup
        // upsert left a dead row version behind. Measure the tables as autovacuum keeps them.
        let pool = sqlx::PgPool::connect(database_url).await.expect("open");
        sqlx::query("VACUUM (ANALYZE) event, ledger, usage_daily, usage_span, event_count, wallet")
            .execute(&pool)
            .await
            .expect("vacuum");
        pool.close().await;
    }
    let http = reqwest::Client::new();
    println!(
        "| route | {short} events (ms, median) | {long} events (ms, median) | ratio | target |"
    );
    println!("|---|---|---|---|---|");
    for ((name, pa), (_, pb)) in routes(&a).into_iter().zip(routes(&b)) {
        let (ua, ub) = (format!("{}{pa}", hub.base), format!("{}{pb}", hub.base));
        // Interleaved rounds: drift affects both alike.
        let (mut la, mut lb) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            la.push(median(&http, &ua, &hub.key, 5).await);
            lb.push(median(&http, &ub, &hub.key, 5).await);
        }
        la.sort();
        lb.sort();
        let (ma, mb) = (la[la.len() / 2], lb[lb.len() / 2]);
        let ratio = mb.as_secs_f64() / ma.as_secs_f64().max(1e-9);
        let target = if name == "narrative" {
            "O(history) by design".to_owned()
        } else if ratio <= 1.5 {
            "≤ 1.5× met".to_owned()
        } else {
            "≤ 1.5× MISSED".to_owned()
        };
        println!(
            "| {name} | {:.2} | {:.2} | {ratio:.1}× | {target} |",
            ms(ma),
            ms(mb)
        );
    }
    let raw = raw_read(database_url, &b, rounds).await;
    let narrative = {
        let url = format!("{}/luna/narrative/{b}", hub.base);
        let mut l = Vec::new();
        for _ in 0..rounds {
            l.push(median(&http, &url, &hub.key, 3).await);
        }
        l.sort();
        l[l.len() / 2]
    };
    println!(
        "\nnarrative at {long} events: {:.1} ms; the same rows read raw (type, version, payload, \
         time — sqlx, no decode): {:.1} ms; ratio {:.1}× (target ≤ 3×)",
        ms(narrative),
        ms(raw),
        narrative.as_secs_f64() / raw.as_secs_f64().max(1e-9)
    );
    hub.stop();
}

/// The stream's rows as the narrative needs them, read with sqlx and not decoded (median).
async fn raw_read(database_url: &str, user: &UserId, rounds: usize) -> Duration {
    let mut lat = Vec::with_capacity(rounds);
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await.expect("open");
        for _ in 0..rounds {
            let s = Instant::now();
            let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
                "SELECT event_type, schema_version, payload, occurred_at_ms FROM event \
                 WHERE stream_id = ? ORDER BY position",
            )
            .bind(user.as_str())
            .fetch_all(&pool)
            .await
            .expect("raw read");
            assert!(!rows.is_empty());
            lat.push(s.elapsed());
        }
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.expect("open");
        for _ in 0..rounds {
            let s = Instant::now();
            let rows: Vec<(String, i32, String, i64)> = sqlx::query_as(
                "SELECT event_type, schema_version, payload::text, occurred_at_ms FROM event \
                 WHERE stream_id = $1 ORDER BY position",
            )
            .bind(user.as_str())
            .fetch_all(&pool)
            .await
            .expect("raw read");
            assert!(!rows.is_empty());
            lat.push(s.elapsed());
        }
    }
    lat.sort();
    lat[lat.len() / 2]
}
