//! Full disk (issue 12, SQLite): the data directory is a 4 MiB tmpfs mounted in a private mount
//! namespace (`unshare -m`, so nothing outside sees it) with a 1 MiB ballast file in it, and
//! the hub runs in that namespace. Writes fill it: they answer 503 with a log line that says
//! "disk full", reads keep working, nothing refused is stored; then the ballast is removed
//! (`nsenter` into the namespace), writes resume without a restart, every acknowledged write is
//! there and `luna verify` is clean. Needs root (for the mount): without it it says SKIPPED —
//! under CI (`LUNA_REQUIRE_ROOT=1`) it fails instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::uid;

const LUNA: &str = env!("CARGO_BIN_EXE_luna");

/// `luna serve` inside its own mount namespace, on a small tmpfs.
struct Confined {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    base: String,
    key: String,
}

impl Confined {
    fn start(dir: &Path, log: &Path) -> Option<Confined> {
        let script = r#"mount -t tmpfs -o size=4m tmpfs "$1" \
            && dd if=/dev/zero of="$1/ballast" bs=1024 count=1024 status=none \
            && exec "$2" serve"#;
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(dir)
            .arg(LUNA)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env(
                "LUNA_DATABASE_URL",
                format!("sqlite://{}/luna.db", dir.display()),
            )
            .env("LUNA_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).ok()?)
            .spawn()
            .ok()?;
        let (mut key, mut base) = (None, None);
        for line in BufReader::new(child.stdout.take()?).lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.trim().strip_prefix("luna_sk_") {
                key = Some(format!("luna_sk_{k}"));
            }
            if let Some(rest) = line.strip_prefix("luna listening on ") {
                base = Some(rest.trim().to_owned());
                break;
            }
        }
        let (Some(base), Some(key)) = (base, key) else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        Some(Confined {
            child,
            dir: dir.to_owned(),
            log: log.to_owned(),
            base,
            key,
        })
    }

    /// Runs a command inside the hub's mount namespace.
    fn inside(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-m", "--", program])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env(
                "LUNA_DATABASE_URL",
                format!("sqlite://{}/luna.db", self.dir.display()),
            )
            .output()
            .expect("nsenter")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn post_event(c: &reqwest::Client, hub: &Confined, user: &str, n: usize) -> (u16, Value) {
    // 15 000 characters per event (the limit is 16 KiB): the disk fills in a few hundred writes.
    let filler: String = (0..15_000)
        .map(|i| char::from(b'a' + u8::try_from((i * 7 + n) % 26).unwrap_or(0)))
        .collect();
    let r = c
        .post(format!("{}/luna/events", hub.base))
        .bearer_auth(&hub.key)
        .json(
            &json!({"user_id": user, "event_type": "disk.fill", "app_source": "cv",
            "event_data": {"n": n, "filler": filler}}),
        )
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

async fn get(c: &reqwest::Client, hub: &Confined, path: &str) -> (StatusCode, Value) {
    let r = c
        .get(format!("{}{path}", hub.base))
        .bearer_auth(&hub.key)
        .send()
        .await
        .expect("request");
    (r.status(), r.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers_once_space_is_freed() {
    if std::env::var("LUNA_API_BACKEND").as_deref() == Ok("postgres") {
        println!("SKIPPED: the full-disk scenario is SQLite's (it runs in the SQLite pass)");
        return;
    }
    let tag = uid("disk");
    let dir = std::env::temp_dir().join(format!("luna-full-disk-{tag}"));
    let log = std::env::temp_dir().join(format!("luna-full-disk-{tag}.log"));
    std::fs::create_dir_all(&dir).expect("dir");
    let Some(hub) = tokio::task::spawn_blocking({
        let (dir, log) = (dir.clone(), log.clone());
        move || Confined::start(&dir, &log)
    })
    .await
    .expect("task") else {
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            std::env::var("LUNA_REQUIRE_ROOT").is_err(),
            "LUNA_REQUIRE_ROOT is set but the hub could not start on a private tmpfs"
        );
        println!("SKIPPED: no unshare/mount (not root)");
        return;
    };
    let http = reqwest::Client::new();
    let user = uid("full");
    let r = http
        .post(format!("{}/luna/energy/grant", hub.base))
        .bearer_auth(&hub.key)
        .json(&json!({"user_id": user, "amount": 1000, "reason": "disk"}))
        .send()
        .await
        .expect("grant");
    assert_eq!(r.status(), StatusCode::OK);
    let granted: Value = r.json().await.expect("json");
    let balance = granted["new_energy_balance"].as_i64().expect("balance");

    // Fill the disk.
    let mut acked = Vec::new();
    let mut refused = None;
    for n in 0..1000 {
        match post_event(&http, &hub, &user, n).await {
            (201, v) => acked.push(v["event_id"].as_str().expect("id").to_owned()),
            (503, v) => {
                refused = Some(v);
                break;
            }
            (s, v) => panic!("write {n} answered {s} {v} (expected 201, then 503)"),
        }
    }
    let refused = refused.expect("4 MiB filled up within 1000 writes of 15 KB");
    assert_eq!(refused["detail"], "Service unavailable");
    assert!(
        acked.len() > 10,
        "writes were acknowledged before the disk filled"
    );
    assert!(
        hub.log().contains("disk full"),
        "the log says why: {}",
        hub.log()
    );

    // Reads keep working, and what was refused is not there.
    let r = http
        .post(format!("{}/luna/energy/check", hub.base))
        .bearer_auth(&hub.key)
        .json(&json!({"user_id": user}))
        .send()
        .await
        .expect("check");
    assert_eq!(r.status(), StatusCode::OK);
    let check: Value = r.json().await.expect("json");
    assert_eq!(check["current_energy"], balance);
    let (s, list) = get(
        &http,
        &hub,
        &format!("/luna/events/{user}?event_type=disk.fill&limit=1"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(
        list["total_count"],
        acked.len(),
        "nothing refused was stored"
    );
    let (s, _) = get(&http, &hub, &format!("/luna/narrative/{user}")).await;
    assert_eq!(s, StatusCode::OK);

    // Free space: writes resume, without a restart.
    let freed = hub.inside("rm", &[&format!("{}/ballast", dir.display())]);
    assert!(freed.status.success(), "rm ballast: {freed:?}");
    let (s, v) = post_event(&http, &hub, &user, 5000).await;
    assert_eq!(s, 201, "a write after space was freed: {v}");
    acked.push(v["event_id"].as_str().expect("id").to_owned());
    let r = http
        .post(format!("{}/luna/energy/consume", hub.base))
        .bearer_auth(&hub.key)
        .json(&json!({"user_id": user, "action_name": "conseil_rapide"}))
        .send()
        .await
        .expect("consume");
    assert_eq!(r.status(), StatusCode::OK);

    // Every acknowledged write is there, and the store is consistent.
    let (_, list) = get(
        &http,
        &hub,
        &format!("/luna/events/{user}?event_type=disk.fill&limit=1"),
    )
    .await;
    assert_eq!(list["total_count"], acked.len());
    let verify = hub.inside(LUNA, &["verify"]);
    assert!(
        verify.status.success(),
        "luna verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    println!(
        "full disk: {} writes acknowledged, then 503; reads served; writes resumed after freeing space",
        acked.len()
    );
}
