//! The `luna` binary: the README's run command, and `luna verify`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::{TestApp, json_ok, uid};

const LUNA: &str = env!("CARGO_BIN_EXE_luna");

#[tokio::test]
async fn luna_serve_starts_with_no_configuration_and_answers_health() {
    let dir = std::env::temp_dir().join(format!("luna-zero-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(LUNA)
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("LUNA_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let mut admin_key = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.trim().strip_prefix("luna_sk_") {
            admin_key = Some(format!("luna_sk_{k}"));
        }
        if let Some(rest) = line.strip_prefix("luna listening on ") {
            base = Some(rest.trim().to_owned());
            break;
        }
    }
    let base = base.expect("the server printed its address");
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        dir.join("luna-data/luna.db").exists(),
        "SQLite in ./luna-data by default"
    );
    let key = admin_key.expect("a development admin key is printed once");
    let check = reqwest::Client::new()
        .post(format!("{base}/luna/energy/check"))
        .bearer_auth(key)
        .json(&json!({"user_id": "first_user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200);
    // SIGTERM: graceful shutdown, exit 0
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "luna serve exits 0 after a graceful shutdown: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn luna_verify_passes_on_a_healthy_store_and_fails_on_a_tampered_projection() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        let u = uid(&format!("verify{i}"));
        json_ok(app.consume(&u, "lettre_motivation").await).await;
        json_ok(
            app.grant(&json!({"user_id": u, "amount": 5, "reason": "x"}))
                .await,
        )
        .await;
    }
    let url = app.database_url.clone();
    let run = |url: &str| {
        Command::new(LUNA)
            .arg("verify")
            .env_clear()
            .env("LUNA_DATABASE_URL", url)
            .output()
            .unwrap()
    };
    let ok = run(&url);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK"));
    // Tamper with one projection row (the event table itself refuses updates).
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(r#"UPDATE wallet SET summary = replace(summary, '"balance":75', '"balance":9999') WHERE balance = 75"#)
            .execute(&pool)
            .await
            .unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(r#"UPDATE wallet SET summary = replace(summary::text, '"balance":75', '"balance":9999')::json WHERE balance = 75"#)
            .execute(&pool)
            .await
            .unwrap();
    }
    let bad = run(&url);
    assert!(
        !bad.status.success(),
        "verify must fail on a tampered projection"
    );
    assert!(String::from_utf8_lossy(&bad.stdout).contains("VIOLATION"));
    app.stop().await;
}

#[tokio::test]
async fn a_database_password_in_the_url_query_is_never_printed() {
    let Some(base) = luna_testkit::pg::database_url("password in the URL query") else {
        return;
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}password=hunter2-query-secret");
    let out = Command::new(LUNA)
        .arg("migrate")
        .env_clear()
        .env("LUNA_DATABASE_URL", &url)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("migrations applied"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
    // the listening log line of `luna serve`
    let mut child = Command::new(LUNA)
        .arg("serve")
        .env_clear()
        .env("LUNA_DATABASE_URL", &url)
        .env("LUNA_BIND", "127.0.0.1:0")
        .env("LUNA_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("listening"), "{seen}");
    assert!(!seen.contains("hunter2"), "{seen}");
}

#[tokio::test]
async fn tokens_passwords_and_hashes_never_reach_the_logs() {
    let dir = std::env::temp_dir().join(format!("luna-logs-{}", crate::uid("l")));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = Command::new(LUNA)
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("LUNA_BIND", "127.0.0.1:0")
        .env("LUNA_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut base = None;
    let mut admin = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().starts_with("luna_sk_") {
            admin = Some(line.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("luna listening on ") {
            base = Some(rest.trim().to_owned());
            break;
        }
    }
    let base = base.unwrap();
    let admin = admin.expect("a development key");
    let client = reqwest::Client::new();
    let password = "a-very-secret-password-42";
    let reg: serde_json::Value = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": "logs@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = reg["access_token"].as_str().unwrap().to_owned();
    let refresh = reg["refresh_token"].as_str().unwrap().to_owned();
    let _ = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "logs@example.com", "password": "wrong-password-99"}))
        .send()
        .await
        .unwrap();
    let rotated: serde_json::Value = client
        .post(format!("{base}/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = client
        .get(format!("{base}/auth/profile"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let _ = client
        .post(format!("{base}/luna/energy/check"))
        .bearer_auth(&admin)
        .json(&json!({"user_id": "someone"}))
        .send()
        .await
        .unwrap();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    child.wait().unwrap();
    let logs = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(logs.contains("request"), "the run was logged: {logs}");
    let secrets = [
        password,
        "wrong-password-99",
        access.as_str(),
        refresh.as_str(),
        rotated["refresh_token"].as_str().unwrap(),
        rotated["access_token"].as_str().unwrap(),
        admin.as_str(),
        "$argon2",
    ];
    for s in secrets {
        assert!(!logs.contains(s), "a secret reached the logs: {s}");
    }
    let hash = luna_app::hash_secret(&refresh);
    assert!(
        !logs.contains(&hash),
        "a refresh-token hash reached the logs"
    );
}

fn luna_billing(
    database_url: &str,
    fake: &luna_testkit::stripe::FakeStripe,
    price: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(LUNA)
        .arg("billing")
        .args(args)
        .env_clear()
        .env("LUNA_DATABASE_URL", database_url)
        .env("LUNA_CONFIG", "/dev/null")
        .env("LUNA_STRIPE_SECRET_KEY", luna_testkit::stripe::SECRET_KEY)
        .env(
            "LUNA_STRIPE_WEBHOOK_SECRET",
            luna_testkit::stripe::WEBHOOK_SECRET,
        )
        .env("LUNA_STRIPE_API_BASE", &fake.base)
        .env("LUNA_STRIPE_PRICE_UNLIMITED", price)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn luna_billing_check_and_reconcile_from_the_command_line() {
    let fake = luna_testkit::stripe::FakeStripe::start().await;
    let app = TestApp::spawn_billing(&fake).await;
    let url = app.database_url.clone();
    let fake_ref = &fake;
    // check: the key works, the price is monthly in EUR, the webhook secret is set.
    let ok = tokio::task::block_in_place(|| {
        luna_billing(
            &url,
            fake_ref,
            luna_testkit::stripe::PRICE_UNLIMITED,
            &["check"],
        )
    });
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("monthly") && !text.contains("FAIL"), "{text}");
    let bad =
        tokio::task::block_in_place(|| luna_billing(&url, fake_ref, "price_missing", &["check"]));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success());
    assert!(
        text.contains("FAIL") && text.contains("price_missing"),
        "{text}"
    );
    // reconcile: a payment whose webhook was never delivered is credited once.
    let user = uid("reconcile");
    let since = fake.now() - 60;
    let p = fake.create_payment(299, "eur", &json!({"user_id": user, "pack": "cafe_luna"}));
    fake.succeed(p["id"].as_str().unwrap());
    let since_arg = since.to_string();
    let first = tokio::task::block_in_place(|| {
        luna_billing(
            &url,
            fake_ref,
            luna_testkit::stripe::PRICE_UNLIMITED,
            &["reconcile", "--since", &since_arg],
        )
    });
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}");
    assert!(text.contains("credited now: 1"), "{text}");
    let second = tokio::task::block_in_place(|| {
        luna_billing(
            &url,
            fake_ref,
            luna_testkit::stripe::PRICE_UNLIMITED,
            &["reconcile", "--since", "2020-01-01T00:00:00Z"],
        )
    });
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(
        text.contains("credited now: 0") && text.contains("already credited: 1"),
        "{text}"
    );
    // The server sees the credit (a write decides on the current version).
    let c = json_ok(app.consume(&user, "conseil_rapide").await).await;
    assert_eq!(c["energy_remaining"], 85 + 110 - 5);
}
