//! Hostile payloads (issue 12): each gets the spec's 4xx in the `{"detail": …}` shape and
//! changes nothing stored — oversized bodies sent chunked without a length, invalid UTF-8, huge,
//! negative and fractional numbers where integers are due, control characters and Unicode
//! look-alikes in ids, header injection in `X-Request-ID`; and free text holding SQL or script
//! fragments (or French apostrophes) is normal input, stored verbatim and returned as JSON.

use std::io::{Read, Write};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, json_ok, uid};

async fn versions(app: &TestApp, users: &[&str]) -> Vec<u64> {
    let mut out = Vec::new();
    for u in users {
        let id = luna_core::UserId::parse(u).expect("a valid id");
        out.push(app.store.current_version(&id).await.expect("version"));
    }
    out
}

/// Asserts a 4xx with a JSON `detail`.
async fn refused(r: reqwest::Response, what: &str) -> (StatusCode, Value) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert!(body.get("detail").is_some(), "{what}: {body}");
    (status, body)
}

#[tokio::test]
async fn hostile_bodies_get_a_4xx_and_change_nothing() {
    let app = TestApp::spawn().await;
    let u = uid("hostile");
    app.check(&u).await;
    let before = versions(&app, &[&u]).await;
    let consume = app.url("/luna/energy/consume");

    // Over 64 KiB, chunked (no Content-Length): read up to the limit, then 413.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let r = app
        .client
        .post(&consume)
        .bearer_auth(&app.service)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .expect("request");
    let (status, _) = refused(r, "chunked 80 KiB").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Invalid UTF-8 inside a JSON string.
    let mut bad = br#"{"user_id":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#"","action_name":"conseil_rapide"}"#);
    let r = app
        .client
        .post(&consume)
        .bearer_auth(&app.service)
        .header("content-type", "application/json")
        .body(bad)
        .send()
        .await
        .expect("request");
    refused(r, "invalid UTF-8").await;

    // Numbers: huge, negative, fractional, exponent where an integer is due.
    for amount in [
        "1e400",
        "-5",
        "5.5",
        "99999999999999999999999",
        "1e2",
        "NaN",
        "\"5\"",
    ] {
        let body = format!(
            r#"{{"user_id":"{u}","transaction_id":"0190c7a2-0000-7000-8000-000000000001","amount":{amount},"reason":"x"}}"#
        );
        let r = app
            .post_raw(&app.service, "/luna/energy/refund", None, &body)
            .await;
        refused(r, &format!("refund amount {amount}")).await;
        let grant = format!(r#"{{"user_id":"{u}","amount":{amount},"reason":"x"}}"#);
        let r = app
            .post_raw(&app.admin, "/luna/energy/grant", None, &grant)
            .await;
        refused(r, &format!("grant amount {amount}")).await;
    }
    for ttl in ["-1", "0", "1e9", "3.5", "18446744073709551616"] {
        let body =
            format!(r#"{{"user_id":"{u}","action_name":"conseil_rapide","ttl_seconds":{ttl}}}"#);
        let r = app
            .post_raw(&app.service, "/luna/energy/reserve", None, &body)
            .await;
        refused(r, &format!("ttl {ttl}")).await;
    }

    // Ids with control characters, look-alikes, separators, over-long.
    for id in [
        "marie\u{0000}",
        "marie\n",
        "mаrie",
        "marie\u{200b}",
        "../marie",
        "marie;drop",
        "' OR '1'='1",
        "<script>",
        &"m".repeat(300),
        "",
        " ",
    ] {
        let r = app
            .post(
                &app.service,
                "/luna/energy/consume",
                &json!({"user_id": id, "action_name": "conseil_rapide"}),
            )
            .await;
        let (status, body) = refused(r, &format!("user id {id:?}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id:?}: {body}");
    }
    for action in [
        "conseil_rapide\u{0000}",
        "cоnseil_rapide",
        "conseil_rapide'--",
    ] {
        let r = app
            .post(
                &app.service,
                "/luna/energy/consume",
                &json!({"user_id": u, "action_name": action}),
            )
            .await;
        refused(r, &format!("action {action:?}")).await;
    }
    assert_eq!(versions(&app, &[&u]).await, before, "nothing was stored");
}

/// A stream of byte chunks for a request body without a length.
fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn a_request_id_cannot_inject_a_header() {
    let app = TestApp::spawn().await;
    let u = uid("inject");
    let body = json!({"user_id": u}).to_string();
    let addr = app.base.trim_start_matches("http://").to_owned();
    let raw = format!(
        "POST /luna/energy/check HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         X-Request-ID: abc\r\n Set-Cookie: pwned=1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.service,
        body.len()
    );
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(raw.as_bytes()).expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .expect("task");
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(!head.contains("set-cookie"), "{head}");
    assert!(!head.contains("pwned"), "{head}");
}

#[tokio::test]
async fn free_text_with_sql_script_or_apostrophes_is_stored_verbatim_and_returned_as_json() {
    let app = TestApp::spawn().await;
    let u = uid("text");
    let texts = [
        "Robert'); DROP TABLE event;--",
        "<script>alert(document.cookie)</script>",
        "L'expérience d'une chargée d'études « sénior » — aujourd'hui",
        "\u{202e}gnp.exe",
        "NULL",
    ];
    for t in texts {
        let r = app
            .post_event(
                &json!({"user_id": u, "event_type": "letter.generated", "app_source": "letters",
                                "event_data": {"note": t}, "metadata": {"title": t}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{t}");
        let c = app
            .post(&app.service, "/luna/energy/consume",
                  &json!({"user_id": u, "action_name": "conseil_rapide", "context": {"app_source": "letters", "note": t}}))
            .await;
        assert_eq!(c.status(), StatusCode::OK, "{t}");
    }
    let events = json_ok(
        app.get(
            &app.admin,
            &format!("/luna/events/{u}?event_type=letter.generated"),
        )
        .await,
    )
    .await;
    let notes: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_data"]["note"].as_str())
        .collect();
    for t in texts {
        assert!(notes.contains(&t), "{t} came back verbatim: {notes:?}");
    }
    let tx = json_ok(
        app.get(&app.admin, &format!("/luna/energy/transactions/{u}"))
            .await,
    )
    .await;
    let contexts: Vec<&str> = tx["transactions"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["context"]["note"].as_str())
        .collect();
    for t in texts {
        assert!(contexts.contains(&t), "{t}");
    }
    // The event table is still there.
    assert_eq!(app.balance(&u).await, 85 - 5 * 5);
}
