//! The client against a spawned hub: consume and the 402 mapping, a retried consume charged
//! once (an answer lost on the way back), holds committed, released on failure and released
//! when the helper's future is dropped, a user session refreshed once for concurrent calls.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luna_client::{Error, HoldError, LunaClient, Tokens};
use luna_ports::Scope;
use luna_server::config::{Config, Settings};
use luna_server::{runtime, serve};

struct Hub {
    base: String,
    key: String,
    _running: serve::RunningHub,
}

async fn hub() -> Hub {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("luna-client-{}-{t}", std::process::id()));
    let url = format!("sqlite://{}/luna.db", dir.display());
    let settings = Settings {
        database_url: Some(url.clone()),
        bind: Some("127.0.0.1:0".into()),
        config: Some(PathBuf::from("/dev/null")),
        jwt_secret: Some("client-tests-secret-of-at-least-32-bytes!".into()),
        log_format: Some("json".into()),
        ..Settings::default()
    };
    let config = Config::resolve(&settings).expect("config");
    let stores = runtime::open_stores(&url).await.expect("stores");
    let (_, key) = runtime::hub(&config, &stores)
        .expect("hub")
        .create_key("client tests", vec![Scope::Admin])
        .await
        .expect("key");
    let running = serve::RunningHub::start(config).await.expect("serving");
    Hub {
        base: running.base.clone(),
        key,
        _running: running,
    }
}

fn user(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn consume_and_the_402_mapping() {
    let h = hub().await;
    let luna = LunaClient::with_service_key(&h.base, &h.key).expect("client");
    let u = user("consume");
    let first = luna
        .consume(Some(&u), "plan_reconversion")
        .await
        .expect("consume");
    assert_eq!(first.energy_remaining, 35);
    let short = luna
        .consume(Some(&u), "plan_reconversion")
        .await
        .expect_err("402");
    assert_eq!(
        short,
        Error::InsufficientEnergy {
            required_pack: Some("cafe_luna".into()),
            required: 50,
            current: 35,
            available: 35,
            deficit: 15,
        }
    );
    let unknown = luna
        .consume(Some(&u), "no_such_action")
        .await
        .expect_err("400");
    assert!(matches!(unknown, Error::BadRequest(_)), "{unknown:?}");
    let other = luna
        .with_idempotency_key("k-1")
        .consume(Some(&u), "conseil_rapide")
        .await
        .expect("keyed");
    let reused = luna
        .with_idempotency_key("k-1")
        .consume(Some(&u), "format_lettre")
        .await
        .expect_err("another body");
    assert_eq!(reused.code(), Some("idempotency_key_reused"));
    assert_eq!(other.energy_remaining, 30);
}

/// A proxy that forwards every request to the hub and, the first time, loses the answer
/// (answers 503 as an overloaded balancer would after the hub acted).
async fn lossy_proxy(upstream: String) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (http, upstream, log) = (http.clone(), upstream.clone(), log.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
            let key = parts
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let first = {
                let mut l = log.lock().expect("log");
                l.push(key);
                l.len() == 1
            };
            let mut r = http.request(parts.method, format!("{upstream}{}", parts.uri));
            for (k, v) in &parts.headers {
                if k != "host" {
                    r = r.header(k, v);
                }
            }
            let answer = r.body(body).send().await.expect("upstream");
            let status = answer.status().as_u16();
            let bytes = answer.bytes().await.expect("bytes");
            if first {
                return (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "lost".to_owned(),
                );
            }
            (
                axum::http::StatusCode::from_u16(status).expect("status"),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen)
}

#[tokio::test]
async fn a_consume_whose_answer_was_lost_is_retried_with_its_key_and_charged_once() {
    let h = hub().await;
    let (proxy, seen) = lossy_proxy(h.base.clone()).await;
    let luna = LunaClient::with_service_key(&proxy, &h.key)
        .expect("client")
        .with_config(luna_client::ClientConfig {
            first_backoff: Duration::from_millis(5),
            ..luna_client::ClientConfig::default()
        })
        .expect("config");
    let u = user("retry");
    let done = luna
        .consume(Some(&u), "lettre_motivation")
        .await
        .expect("consume");
    assert_eq!(done.energy_remaining, 70);
    let keys = seen.lock().expect("log").clone();
    assert_eq!(keys.len(), 2, "one retry");
    assert!(keys[0].is_some() && keys[0] == keys[1], "{keys:?}");
    let direct = LunaClient::with_service_key(&h.base, &h.key).expect("client");
    assert_eq!(
        direct.check(Some(&u)).await.expect("check").current_energy,
        70
    );
}

async fn available(luna: &LunaClient, u: &str) -> i64 {
    luna.check(Some(u)).await.expect("check").available_energy
}

#[tokio::test]
async fn holds_commit_on_success_release_on_failure_and_when_dropped() {
    let h = hub().await;
    let luna = LunaClient::with_service_key(&h.base, &h.key).expect("client");
    let u = user("hold");
    let (text, charged) = luna
        .with_hold(Some(&u), "mirror_match", None, |hold| async move {
            assert_eq!(hold.energy_reserved, 30);
            Ok::<_, std::io::Error>("match")
        })
        .await
        .expect("committed");
    assert_eq!((text, charged.energy_remaining), ("match", 55));
    let failed = luna
        .with_hold(Some(&u), "mirror_match", None, |_| async {
            Err::<(), _>(std::io::Error::other("model down"))
        })
        .await;
    assert!(matches!(failed, Err(HoldError::Work(_))));
    assert_eq!(available(&luna, &u).await, 55, "released");
    // Dropped mid-work (a timeout): the hold is released in the background.
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        luna.with_hold(Some(&u), "mirror_match", None, |_| {
            std::future::pending::<Result<(), ()>>()
        }),
    )
    .await;
    assert!(dropped.is_err(), "timed out");
    let mut released = false;
    for _ in 0..250 {
        if available(&luna, &u).await == 55 {
            released = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "the dropped helper's hold was released");
    luna.consume(Some(&u), "plan_reconversion")
        .await
        .expect("55 → 5");
    let short = luna
        .with_hold(Some(&u), "mirror_match", None, |_| async {
            Ok::<_, ()>(())
        })
        .await;
    assert!(matches!(
        short,
        Err(HoldError::Luna(Error::InsufficientEnergy { .. }))
    ));
}

#[tokio::test]
async fn a_user_session_is_refreshed_once_for_concurrent_calls() {
    let h = hub().await;
    let email = format!("{}@example.com", user("refresh"));
    let (marie, tokens) = LunaClient::register(
        &h.base,
        &luna_client::api::RegisterBody {
            email: email.clone(),
            password: "correct horse battery".into(),
            name: Some("Marie".into()),
        },
    )
    .await
    .expect("registered");
    assert_eq!(marie.profile().await.expect("profile").email, email);
    // A client whose access token is refused (expired, say): every call needs a refresh.
    let stale = LunaClient::with_user_tokens(
        &h.base,
        Tokens {
            access_token: "expired.token.here".into(),
            refresh_token: tokens.refresh_token.clone(),
        },
    )
    .expect("client");
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let c = stale.clone();
            tokio::spawn(async move { c.check(None).await })
        })
        .collect();
    for c in calls {
        let b = c
            .await
            .expect("task")
            .expect("each call succeeds after one refresh");
        assert_eq!(b.current_energy, 85);
    }
    let rotated = stale.tokens().expect("tokens");
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    // Had two calls refreshed, the reused token would have revoked the session.
    assert!(stale.profile().await.is_ok());
    // The original refresh token was rotated away: using it revokes the session.
    let thief = LunaClient::with_user_tokens(
        &h.base,
        Tokens {
            access_token: "x".into(),
            refresh_token: tokens.refresh_token,
        },
    )
    .expect("client");
    assert!(matches!(thief.profile().await, Err(Error::Unauthorized(_))));
}
