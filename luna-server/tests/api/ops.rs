//! Operations: health, readiness, metrics, OpenAPI, Swagger UI, request ids, CORS.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, json_ok, uid};

/// Every route of spec §3.3 (but purchase), §3.4, §3.5 and §3.7.
pub const SPEC_ROUTES: &[(&str, &str)] = &[
    ("post", "/luna/energy/check"),
    ("post", "/luna/energy/can-perform"),
    ("post", "/luna/energy/consume"),
    ("post", "/luna/energy/reserve"),
    ("post", "/luna/energy/reservations/{id}/commit"),
    ("post", "/luna/energy/reservations/{id}/release"),
    ("post", "/luna/energy/refund"),
    ("get", "/luna/energy/refund-policy"),
    ("post", "/luna/energy/grant"),
    ("get", "/luna/energy/transactions/{user_id}"),
    ("get", "/luna/energy/analytics/{user_id}"),
    ("get", "/luna/energy/costs"),
    ("post", "/luna/events"),
    ("get", "/luna/events/{user_id}"),
    ("get", "/luna/narrative/{user_id}"),
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/refresh"),
    ("get", "/auth/profile"),
    ("get", "/auth/me"),
    ("get", "/auth/sessions"),
    ("delete", "/auth/sessions/{id}"),
    ("post", "/auth/logout"),
    ("post", "/auth/logout-all"),
    ("post", "/luna/energy/purchase"),
    ("get", "/billing/packs"),
    ("post", "/billing/create-intent"),
    ("post", "/billing/confirm-payment"),
    ("post", "/billing/create-subscription"),
    ("post", "/billing/cancel-subscription"),
    ("post", "/billing/webhook"),
    ("get", "/billing/history/{user_id}"),
    ("get", "/luna/energy/live"),
    ("get", "/app/live"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
];

/// POST routes that take no body.
const BODILESS_POSTS: &[&str] = &["/auth/logout", "/auth/logout-all"];

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let h = json_ok(app.client.get(app.url("/health")).send().await.unwrap()).await;
    assert_eq!(
        h,
        json!({"status": "healthy", "service": "luna-hub", "version": env!("CARGO_PKG_VERSION")})
    );
    let r = json_ok(app.client.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r, json!({"ready": true, "checks": {"database": "ok"}}));
}

#[tokio::test]
async fn metrics_are_prometheus_text_on_loopback() {
    let app = TestApp::spawn().await;
    let u = uid("metrics");
    app.consume(&u, "conseil_rapide").await;
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("luna_http_requests_total"), "{text}");
    assert!(text.contains("luna_consumes_total"), "{text}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/health")).send().await.unwrap();
    assert!(r.headers().get("x-request-id").is_some());
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
}

#[tokio::test]
async fn cors_allows_the_configured_front_ends_only() {
    let app = TestApp::spawn().await;
    let allowed = app
        .client
        .get(app.url("/health"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://localhost:5173")
    );
    let other = app
        .client
        .get(app.url("/health"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_openapi_document_is_3_1_lists_every_route_with_schemas_and_every_route_answers() {
    let app = TestApp::spawn().await;
    let doc = json_ok(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    // kept for the CI's external validator
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/openapi.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            listed.insert((method.clone(), path.clone()));
            let responses = op["responses"].as_object().unwrap();
            let ok = responses
                .iter()
                .find(|(code, _)| code.starts_with('2'))
                .expect("a 2xx response");
            assert!(
                ok.1["content"].is_object(),
                "{method} {path}: 2xx response without a schema"
            );
            if method == "post" && !BODILESS_POSTS.contains(&path.as_str()) {
                assert!(
                    op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                    "{method} {path}: no request schema"
                );
            }
        }
    }
    let expected: BTreeSet<(String, String)> = SPEC_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        listed, expected,
        "the OpenAPI paths are exactly the spec's routes"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ConsumeResponse",
        "CheckResponse",
        "CanPerformResponse",
        "InsufficientEnergyBody",
        "ConsumeBody",
        "NarrativeResponse",
    ] {
        assert!(
            schemas[name]["example"].is_object(),
            "{name} has no example"
        );
    }

    // Every documented route is routed (an unrouted path answers the fallback's
    // `{"detail":"Not Found"}`; a handler's 404 names its rule).
    for (method, path) in &listed {
        let concrete = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{user_id}", "someone");
        let req = match method.as_str() {
            "post" => app
                .client
                .post(app.url(&concrete))
                .bearer_auth(&app.admin)
                .json(&json!({"user_id": "someone"})),
            "delete" => app
                .client
                .delete(app.url(&concrete))
                .bearer_auth(&app.admin),
            _ => app.client.get(app.url(&concrete)).bearer_auth(&app.admin),
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let v: Value = serde_json::from_str(&body).expect("JSON");
            assert_ne!(v["detail"], "Not Found", "{method} {path} is not routed");
        }
    }
}

#[tokio::test]
async fn the_swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let js = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK, "assets are vendored, no CDN");
}

#[tokio::test]
async fn cors_preflight_allows_the_headers_browser_front_ends_send() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/auth/login"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key,x-idempotency-key,x-request-id",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let allowed = r
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "idempotency-key",
        "x-idempotency-key",
        "x-request-id",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://localhost:3000")
    );
}
