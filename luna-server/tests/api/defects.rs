//! Regression tests for the eleven defects of the adversarial review (issue 7), one per defect,
//! black-box over HTTP (two real `luna serve` processes for the SQLite cache one).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{TestApp, error_code, expect, json_ok, uid};

const LUNA: &str = env!("CARGO_BIN_EXE_luna");

// ---- 1. the idempotency fingerprint is the canonical body, never a default -------------

#[tokio::test]
async fn a_key_reused_with_another_body_holding_a_huge_number_is_refused_not_replayed() {
    let app = TestApp::spawn().await;
    let (a, b) = (uid("canon_a"), uid("canon_b"));
    let first =
        format!(r#"{{"user_id":"{a}","action_name":"lettre_motivation","context":{{"n":1e400}}}}"#);
    let r = app
        .post_raw(
            &app.service,
            "/luna/energy/consume",
            Some("k-1e400"),
            &first,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let second =
        format!(r#"{{"user_id":"{b}","action_name":"plan_reconversion","context":{{"n":1e400}}}}"#);
    let v = expect(
        app.post_raw(
            &app.service,
            "/luna/energy/consume",
            Some("k-1e400"),
            &second,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_code(&v), "idempotency_key_reused");
    assert_eq!(
        app.balance(&b).await,
        85,
        "the second user was never charged"
    );
    assert_eq!(app.balance(&a).await, 70);
}

#[tokio::test]
async fn two_grants_differing_only_in_a_deep_field_do_not_share_a_fingerprint() {
    let app = TestApp::spawn().await;
    let (a, b) = (uid("grant_a"), uid("grant_b"));
    let first = format!(r#"{{"user_id":"{a}","amount":5,"reason":"x","note":1e999}}"#);
    expect(
        app.post_raw(&app.admin, "/luna/energy/grant", Some("g-1"), &first)
            .await,
        StatusCode::OK,
    )
    .await;
    let second = format!(r#"{{"user_id":"{b}","amount":999999,"reason":"x","note":1e999}}"#);
    let v = expect(
        app.post_raw(&app.admin, "/luna/energy/grant", Some("g-1"), &second)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_code(&v), "idempotency_key_reused");
    assert_eq!(app.balance(&b).await, 85);
}

#[tokio::test]
async fn reordered_keys_and_whitespace_replay_the_first_answer() {
    let app = TestApp::spawn().await;
    let u = uid("canon_same");
    let first = format!(
        r#"{{"user_id":"{u}","action_name":"conseil_rapide","context":{{"a":1,"b":[1,2]}}}}"#
    );
    let r1 = app
        .post_raw(&app.service, "/luna/energy/consume", Some("same"), &first)
        .await;
    assert_eq!(r1.status(), StatusCode::OK);
    let t1 = r1.text().await.unwrap();
    let second = format!(
        "{{ \"context\" : {{\"b\":[1, 2], \"a\":1}},\n \"action_name\":\"conseil_rapide\", \"user_id\":\"{u}\" }}"
    );
    let r2 = app
        .post_raw(&app.service, "/luna/energy/consume", Some("same"), &second)
        .await;
    assert_eq!(r2.status(), StatusCode::OK);
    assert_eq!(r2.text().await.unwrap(), t1);
    assert_eq!(app.balance(&u).await, 80);
}

#[tokio::test]
async fn bodies_nested_deeper_than_64_or_with_duplicate_keys_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let u = uid("deep");
    let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
    let body =
        format!(r#"{{"user_id":"{u}","action_name":"conseil_rapide","context":{{"x":{deep}}}}}"#);
    let v = expect(
        app.post_raw(&app.service, "/luna/energy/consume", None, &body)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(v["detail"].is_array(), "{v}");
    let dup =
        format!(r#"{{"user_id":"{u}","action_name":"conseil_rapide","context":{{"a":1,"a":2}}}}"#);
    let v = expect(
        app.post_raw(&app.service, "/luna/energy/consume", None, &dup)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(v["detail"].is_array(), "{v}");
    let escaped_dup = format!(
        r#"{{"user_id":"{u}","action_name":"conseil_rapide","context":{{"a":1,"\u0061":2}}}}"#
    );
    expect(
        app.post_raw(&app.service, "/luna/energy/consume", None, &escaped_dup)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // 64 levels are fine
    let ok_depth = format!("{}1{}", "[".repeat(61), "]".repeat(61));
    let body = format!(
        r#"{{"user_id":"{u}","action_name":"conseil_rapide","context":{{"x":{ok_depth}}}}}"#
    );
    expect(
        app.post_raw(&app.service, "/luna/energy/consume", None, &body)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        app.balance(&u).await,
        80,
        "only the accepted consume charged"
    );
}

// ---- 2. refusals are decided on the current version, across SQLite processes ----------

/// A `luna serve` process on a database; its base URL, and the admin key it printed (if any).
pub struct Hub {
    pub child: Child,
    pub base: String,
    pub key: Option<String>,
}

impl Hub {
    pub fn start(database_url: &str) -> Hub {
        let mut child = Command::new(LUNA)
            .arg("serve")
            .env_clear()
            .env("LUNA_DATABASE_URL", database_url)
            .env("LUNA_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut key = None;
        let mut base = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(k) = line.trim().strip_prefix("luna_sk_") {
                key = Some(format!("luna_sk_{k}"));
            }
            if let Some(rest) = line.strip_prefix("luna listening on ") {
                base = Some(rest.trim().to_owned());
                break;
            }
        }
        Hub {
            child,
            base: base.expect("listening line"),
            key,
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_402_on_one_sqlite_process_is_not_stale_after_a_grant_on_another() {
    let dir = std::env::temp_dir().join(format!(
        "luna-two-procs-{}-{}",
        std::process::id(),
        uid("d")
    ));
    let url = format!("sqlite://{}/luna.db", dir.display());
    let a = Hub::start(&url);
    let b = Hub::start(&url);
    let key = a
        .key
        .clone()
        .expect("the first process created the admin key");
    let client = reqwest::Client::new();
    let post = |base: &str, path: &str, body: Value, idem: Option<&str>| {
        let mut r = client
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body);
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        r.send()
    };
    let u = uid("stale");
    let consume = json!({"user_id": u, "action_name": "plan_reconversion"});
    json_ok(
        post(&a.base, "/luna/energy/consume", consume.clone(), None)
            .await
            .unwrap(),
    )
    .await;
    // 35 left: refused on A (A now holds the row)
    expect(
        post(&a.base, "/luna/energy/consume", consume.clone(), None)
            .await
            .unwrap(),
        StatusCode::PAYMENT_REQUIRED,
    )
    .await;
    // B grants 100; A must decide on that at once
    json_ok(
        post(
            &b.base,
            "/luna/energy/grant",
            json!({"user_id": u, "amount": 100, "reason": "support"}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    let v = json_ok(
        post(
            &a.base,
            "/luna/energy/consume",
            consume.clone(),
            Some("after-grant"),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["energy_remaining"], 85);
    // A refused commit is decided on the current version too: a hold released on B
    let hold = expect(
        post(
            &a.base,
            "/luna/energy/reserve",
            json!({"user_id": u, "action_name": "conseil_rapide"}),
            None,
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = hold["reservation_id"].as_str().unwrap().to_owned();
    json_ok(
        post(
            &b.base,
            &format!("/luna/energy/reservations/{id}/release"),
            json!({}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    let v = expect(
        post(
            &a.base,
            &format!("/luna/energy/reservations/{id}/commit"),
            json!({}),
            None,
        )
        .await
        .unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_released");
}

// ---- 3. metric labels come from closed sets ------------------------------------------

#[tokio::test]
async fn random_http_methods_do_not_create_metric_series() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        let m = reqwest::Method::from_bytes(format!("XMETHOD{i}").as_bytes()).unwrap();
        let _ = app
            .client
            .request(m, app.url("/health"))
            .send()
            .await
            .unwrap();
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("XMETHOD"),
        "method labels must be a closed set"
    );
    assert!(text.contains("method=\"other\""), "{text}");
}

// ---- 4 and 5. query parameters are validated before they reach a store ----------------

#[tokio::test]
async fn a_forged_cursor_or_event_type_filter_is_a_422_not_a_500() {
    let app = TestApp::spawn().await;
    let u = uid("cursor");
    app.check(&u).await;
    for path in [
        format!("/luna/events/{u}?before=p9223372036854775808"),
        format!("/luna/energy/transactions/{u}?before=p9223372036854775808"),
        format!("/luna/events/{u}?before=p99999999999999999999999"),
        format!("/luna/events/{u}?event_type=%00abc"),
        format!("/luna/events/{u}?event_type=a%20b"),
        format!("/luna/events/{u}?event_type={}", "a".repeat(101)),
    ] {
        let v = expect(
            app.get(&app.admin, &path).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(v["detail"].is_array(), "{path}: {v}");
    }
    // the largest valid cursor is accepted
    json_ok(
        app.get(
            &app.admin,
            &format!("/luna/events/{u}?before=p9223372036854775807"),
        )
        .await,
    )
    .await;
}

// ---- 7. X-Request-ID is kept only when short and printable ------------------------------

#[tokio::test]
async fn an_oversized_or_unprintable_request_id_is_replaced_and_never_stored() {
    let app = TestApp::spawn().await;
    let u = uid("reqid");
    for bad in ["x".repeat(4000), "has space".to_owned(), "é".to_owned()] {
        let r = app
            .client
            .post(app.url("/luna/energy/consume"))
            .bearer_auth(&app.service)
            .header("x-request-id", bad.as_bytes())
            .json(&json!({"user_id": u, "action_name": "conseil_rapide"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let echoed = r.headers()["x-request-id"].as_bytes().to_vec();
        assert_ne!(echoed, bad.as_bytes(), "a bad id is not echoed");
        assert!(echoed.len() <= 128 && echoed.iter().all(|c| (0x21..=0x7e).contains(c)));
    }
    let ok = "client-id_123".to_owned();
    let r = app
        .client
        .post(app.url("/luna/energy/consume"))
        .bearer_auth(&app.service)
        .header("x-request-id", &ok)
        .json(&json!({"user_id": u, "action_name": "conseil_rapide"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], ok.as_str());
    let events = json_ok(
        app.get(&app.admin, &format!("/luna/events/{u}?limit=200"))
            .await,
    )
    .await;
    for e in events["events"].as_array().unwrap() {
        let id = e["metadata"]["correlation_id"].as_str().unwrap_or("");
        assert!(id.len() <= 128, "a stored correlation id is bounded");
        assert!(!id.contains(' ') && id.is_ascii());
    }
}

// ---- 8. every error is JSON in the {"detail": …} shape --------------------------------

#[tokio::test]
async fn bad_paths_unknown_routes_and_wrong_methods_answer_json_details() {
    let app = TestApp::spawn().await;
    let v = expect(
        app.get(&app.admin, "/luna/energy/transactions/%FF").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v, json!({"detail": "Invalid user ID format"}));
    let v = expect(
        app.get(&app.admin, "/luna/narrative/%C3%28").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v, json!({"detail": "Invalid user ID format"}));
    let v = expect(
        app.post(
            &app.admin,
            "/luna/energy/reservations/%FF/commit",
            &json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_not_found");
    let v = expect(
        app.get(&app.admin, "/no/such/route").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(v, json!({"detail": "Not Found"}));
    let r = app
        .client
        .delete(app.url("/luna/energy/check"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let v = expect(r, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(v, json!({"detail": "Method Not Allowed"}));
}

// ---- 9. commit again / release again: the same 200 -------------------------------------

#[tokio::test]
async fn commit_again_and_release_again_answer_the_figures_of_the_first_time() {
    let app = TestApp::spawn().await;
    let u = uid("again");
    let app = &app;
    let reserve = |action: &str| {
        let body = json!({"user_id": u, "action_name": action});
        async move { app.reserve(&body).await }
    };
    let hold = expect(reserve("mirror_match").await, StatusCode::CREATED).await;
    let id = hold["reservation_id"].as_str().unwrap().to_owned();
    let commit = format!("/luna/energy/reservations/{id}/commit");
    let first = app
        .post(&app.service, &commit, &json!({}))
        .await
        .text()
        .await
        .unwrap();
    json_ok(app.consume(&u, "lettre_motivation").await).await;
    let again = app
        .post(&app.service, &commit, &json!({"context": {"other": true}}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.text().await.unwrap(), first);

    let hold = expect(reserve("conseil_rapide").await, StatusCode::CREATED).await;
    let id = hold["reservation_id"].as_str().unwrap().to_owned();
    let release = format!("/luna/energy/reservations/{id}/release");
    let first = app
        .post(&app.service, &release, &json!({}))
        .await
        .text()
        .await
        .unwrap();
    json_ok(app.consume(&u, "conseil_rapide").await).await;
    let again = app.post(&app.service, &release, &json!({})).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.text().await.unwrap(), first);
}

// ---- 10. handler-level refusals are kept under the idempotency key ---------------------

#[tokio::test]
async fn a_422_or_400_raised_before_the_use_case_is_kept_under_its_key() {
    let app = TestApp::spawn().await;
    let u = uid("keep422");
    let bad = json!({"user_id": u, "action_name": "conseil_rapide", "context": [1]});
    let first = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k422",
            &bad,
        )
        .await;
    assert_eq!(first.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let good = json!({"user_id": u, "action_name": "conseil_rapide"});
    let v = expect(
        app.post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k422",
            &good,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_code(&v), "idempotency_key_reused");

    let bad_user = json!({"user_id": "not valid!", "action_name": "conseil_rapide"});
    let r = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k400",
            &bad_user,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v = expect(
        app.post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k400",
            &good,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_code(&v), "idempotency_key_reused");
    // a missing field, then the same key with the field: the key holds the first answer
    let missing = json!({"user_id": u});
    let first = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "kmiss",
            &missing,
        )
        .await;
    assert_eq!(first.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let first = first.text().await.unwrap();
    let again = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "kmiss",
            &missing,
        )
        .await;
    assert_eq!(again.text().await.unwrap(), first);
    // malformed JSON does not touch the key
    let r = app
        .post_raw(
            &app.service,
            "/luna/energy/consume",
            Some("kmal"),
            "{not json",
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    json_ok(
        app.post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "kmal",
            &good,
        )
        .await,
    )
    .await;
    assert_eq!(app.balance(&u).await, 80, "one consume ran");
}

// ---- 11. slow headers are cut off, a declared oversized body refused at once -----------

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut rest = Vec::new();
    // Without a header-read timeout the server never closes it: the bound is only a guard.
    let closed = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the server closes a connection whose headers never end"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_with_413_before_it_is_sent() {
    let app = TestApp::spawn().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST /luna/energy/consume HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
        app.service
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("Request body too large"), "{head}");
}
