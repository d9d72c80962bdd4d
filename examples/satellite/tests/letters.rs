//! The satellite end to end: a spawned hub, a fake Gemini server, the satellite's own routes.
//! A letter commits its hold; a model failure releases it (balance unchanged); short energy is
//! a 402 naming the pack; the request sent to Gemini has Gemini's documented shape, and a 429
//! with a `RetryInfo` delay is retried.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use luna_client::LunaClient;
use luna_example_satellite::{Gemini, Letters, app};
use luna_ports::Scope;
use luna_server::config::{Config, Settings};
use luna_server::{runtime, serve};
use serde_json::{Value, json};

/// A fake Gemini: records each request (path, API key header, body) and answers from a script.
#[derive(Default)]
struct FakeGemini {
    seen: Vec<(String, Option<String>, Value)>,
    script: VecDeque<(u16, Value)>,
}

fn letter(text: &str) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                           "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 42, "candidatesTokenCount": 17, "totalTokenCount": 59},
           "modelVersion": "gemini-2.5-flash"})
}

async fn fake_gemini(script: Vec<(u16, Value)>) -> (String, Arc<Mutex<FakeGemini>>) {
    let state = Arc::new(Mutex::new(FakeGemini {
        seen: Vec::new(),
        script: script.into(),
    }));
    let s = state.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let s = s.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
            let mut g = s.lock().expect("fake");
            g.seen.push((
                parts.uri.path().to_owned(),
                parts
                    .headers
                    .get("x-goog-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            ));
            let (status, answer) = g
                .script
                .pop_front()
                .unwrap_or((500, json!({"error": {"code": 500, "status": "INTERNAL"}})));
            (
                axum::http::StatusCode::from_u16(status).expect("status"),
                axum::Json(answer),
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
    (base, state)
}

struct World {
    letters: String,
    luna: LunaClient,
    _hub: serve::RunningHub,
}

async fn world(gemini_base: &str) -> World {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("luna-letters-{}-{t}", std::process::id()));
    let url = format!("sqlite://{}/luna.db", dir.display());
    let config = Config::resolve(&Settings {
        database_url: Some(url.clone()),
        bind: Some("127.0.0.1:0".into()),
        config: Some(PathBuf::from("/dev/null")),
        jwt_secret: Some("letters-tests-secret-of-at-least-32-bytes".into()),
        log_format: Some("json".into()),
        ..Settings::default()
    })
    .expect("config");
    let stores = runtime::open_stores(&url).await.expect("stores");
    let (_, key) = runtime::hub(&config, &stores)
        .expect("hub")
        .create_key("letters", vec![Scope::EnergyRead, Scope::EnergyWrite])
        .await
        .expect("key");
    let hub = serve::RunningHub::start(config).await.expect("hub serving");
    let luna = LunaClient::with_service_key(&hub.base, &key).expect("client");
    let mut gemini = Gemini::new(gemini_base, "test-gemini-key", "gemini-2.5-flash");
    gemini.max_wait = std::time::Duration::from_secs(2);
    let satellite = app(Letters {
        luna: luna.clone(),
        model: Arc::new(gemini),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let letters = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, satellite).await;
    });
    World {
        letters,
        luna,
        _hub: hub,
    }
}

async fn ask(w: &World, user: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/letters", w.letters))
        .json(&json!({"user_id": user, "job_title": "Data Analyst", "company": "Acme", "highlights": "SQL"}))
        .send()
        .await
        .expect("satellite answers");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn a_letter_commits_its_hold_and_gemini_gets_its_documented_request() {
    let (base, gemini) = fake_gemini(vec![
        (
            429,
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                   "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.05s"}]}}),
        ),
        (200, letter("Madame, Monsieur, …")),
    ])
    .await;
    let w = world(&base).await;
    let (status, body) = ask(&w, "marie").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["letter"], "Madame, Monsieur, …");
    assert_eq!(
        (
            body["energy_consumed"].as_u64(),
            body["energy_remaining"].as_i64()
        ),
        (Some(15), Some(70))
    );
    let seen = gemini.lock().expect("fake").seen.clone();
    assert_eq!(
        seen.len(),
        2,
        "the 429 was retried after its RetryInfo delay"
    );
    let (path, key, request) = &seen[1];
    assert_eq!(path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(key.as_deref(), Some("test-gemini-key"));
    assert_eq!(request["contents"][0]["role"], "user");
    assert!(
        request["contents"][0]["parts"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Data Analyst"))
    );
    assert!(request["systemInstruction"]["parts"][0]["text"].is_string());
    assert!(request["generationConfig"]["maxOutputTokens"].is_u64());
    // The consume carries the satellite's context.
    let page = w
        .luna
        .transactions("marie", Some(1), None)
        .await
        .expect("history");
    assert_eq!(page.transactions[0].app_source.as_deref(), Some("letters"));
}

#[tokio::test]
async fn a_model_failure_releases_the_hold_and_short_energy_is_a_402_with_the_pack() {
    let (base, _gemini) = fake_gemini(vec![]).await; // every answer is a 500
    let w = world(&base).await;
    let (status, body) = ask(&w, "paul").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["detail"], "generation failed");
    let b = w.luna.check(Some("paul")).await.expect("check");
    assert_eq!(
        (b.current_energy, b.available_energy),
        (85, 85),
        "released, nothing charged"
    );
    // Short of energy: the satellite answers 402 with the pack to buy.
    w.luna
        .consume(Some("paul"), "plan_reconversion")
        .await
        .expect("85 → 35");
    w.luna
        .consume(Some("paul"), "mirror_match")
        .await
        .expect("35 → 5");
    let (status, body) = ask(&w, "paul").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["detail"]["required_pack"], "cafe_luna");
    assert_eq!(body["detail"]["deficit"], 10);
    assert_eq!(
        w.luna
            .check(Some("paul"))
            .await
            .expect("check")
            .current_energy,
        5
    );
}
