//! The authorization matrix: every protected route of `/openapi.json` (so a new route is
//! covered automatically), called with every kind of bad credential and with a principal that
//! may not act — each refused with the spec's status and body, and nothing stored.

use jsonwebtoken::{EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{JWT_SECRET, TestApp, email, expect, json_ok};

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    sid: &'a str,
    iat: i64,
    exp: i64,
    iss: &'a str,
    typ: &'a str,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn jwt(claims: &Claims<'_>, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A protected route: method, path template, and the scope its `security` names.
struct Route {
    method: String,
    path: String,
    scope: String,
}

/// The routes spec §3.1 makes public (`/metrics` is public on loopback binds).
const PUBLIC: &[&str] = &[
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /luna/energy/costs",
    "GET /luna/energy/refund-policy",
    "POST /auth/register",
    "POST /auth/login",
    "POST /auth/refresh",
    "GET /billing/packs",
    // Authenticated by Stripe's signature, not a bearer.
    "POST /billing/webhook",
    // Authenticated by the pages' session cookie, not a bearer.
    "GET /app/live",
];

async fn protected_routes(app: &TestApp) -> Vec<Route> {
    let doc = json_ok(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut routes = Vec::new();
    let mut public = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(req) = op["security"].as_array().and_then(|s| s.first()) else {
                public.push(format!("{} {path}", method.to_uppercase()));
                continue;
            };
            let scope = req["bearer"][0]
                .as_str()
                .expect("every route names its scope");
            routes.push(Route {
                method: method.to_uppercase(),
                path: path.clone(),
                scope: scope.to_owned(),
            });
        }
    }
    public.sort();
    let mut expected: Vec<String> = PUBLIC.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(
        public, expected,
        "a route without `security` is public: is it meant to be?"
    );
    assert!(routes.len() >= 19, "{} protected routes", routes.len());
    routes
}

/// A body every route parses (unknown fields are ignored), acting for `user`.
fn body(user: &str) -> Value {
    json!({"user_id": user, "action_name": "conseil_rapide", "transaction_id": "00000000-0000-0000-0000-000000000001",
           "reason": "x", "amount": 5, "event_type": "matrix.probe", "app_source": "matrix", "event_data": {},
           "pack": "cafe_luna", "intent_id": "pi_1", "plan": "luna_unlimited", "pack_type": "cafe_luna",
           "stripe_payment_intent_id": "pi_1"})
}

async fn call(
    app: &TestApp,
    r: &Route,
    path: &str,
    token: Option<&str>,
    user: &str,
) -> reqwest::Response {
    // A GET naming no user in its path names it in the query (the live stream).
    let url = if r.method == "GET" && !r.path.contains("{user_id}") {
        format!("{}?user_id={user}", app.url(path))
    } else {
        app.url(path)
    };
    let mut req = app
        .client
        .request(Method::from_bytes(r.method.as_bytes()).unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if r.method == "POST" {
        req = req.json(&body(user));
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one matrix, read top to bottom")]
async fn every_protected_route_refuses_bad_credentials_and_foreign_users_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let reg_a = app.register(&email("matrix-a")).await;
    let reg_b = app.register(&email("matrix-b")).await;
    let (ua, ub) = (
        reg_a["user_id"].as_str().unwrap(),
        reg_b["user_id"].as_str().unwrap(),
    );
    let access_a = reg_a["access_token"].as_str().unwrap().to_owned();
    let refresh_a = reg_a["refresh_token"].as_str().unwrap().to_owned();
    // B's reservation, for routes that name one
    let hold = expect(
        app.reserve(&json!({"user_id": ub, "action_name": "conseil_rapide"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let b_hold = hold["reservation_id"].as_str().unwrap().to_owned();
    // a session of A, then revoked
    let second = json_ok(
        app.login_from(
            "203.0.113.200",
            reg_a["email"].as_str().unwrap(),
            crate::PASSWORD,
        )
        .await,
    )
    .await;
    let revoked = second["access_token"].as_str().unwrap().to_owned();
    json_ok(app.post(&revoked, "/auth/logout", &json!({})).await).await;
    // a key with events:read only (lacks energy:*), and the energy:read-only key
    let (_, events_only) = app
        .hub
        .create_key("events only", vec![luna_ports::Scope::EventsRead])
        .await
        .unwrap();

    let sid = {
        let s = json_ok(app.get(&access_a, "/auth/sessions").await).await;
        s["sessions"][0]["id"].as_str().unwrap().to_owned()
    };
    let issued = now();
    let good = |sub: &str, iat: i64, exp: i64, typ: &str, secret: &[u8]| {
        jwt(
            &Claims {
                sub,
                sid: &sid,
                iat,
                exp,
                iss: "luna-hub",
                typ,
            },
            secret,
        )
    };
    let expired = good(
        ua,
        issued - 3600,
        issued - 60,
        "access",
        JWT_SECRET.as_bytes(),
    );
    let other_secret = good(
        ua,
        issued,
        issued + 900,
        "access",
        b"another secret, thirty-two bytes long",
    );
    let wrong_type = good(ua, issued, issued + 900, "refresh", JWT_SECRET.as_bytes());
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"sub":"{ua}","sid":"{sid}","iat":{issued},"exp":{},"iss":"luna-hub","typ":"access"}}"#,
            issued + 900
        ))
    );
    let tampered = {
        let parts: Vec<&str> = access_a.split('.').collect();
        let payload = b64(&format!(
            r#"{{"sub":"{ub}","sid":"{sid}","iat":{issued},"exp":{},"iss":"luna-hub","typ":"access"}}"#,
            issued + 900
        ));
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let bad_tokens: Vec<(&str, String)> = vec![
        ("garbage", "garbage".to_owned()),
        ("expired", expired),
        ("another secret", other_secret),
        ("alg none", alg_none),
        ("tampered payload", tampered),
        ("not an access token", wrong_type),
        ("a refresh token", refresh_a.clone()),
        ("a revoked session", revoked),
        ("an unknown service key", "luna_sk_0000".to_owned()),
    ];

    let versions = |app: &TestApp| {
        let store = app.store.clone();
        let (ua, ub) = (
            luna_core::UserId::parse(ua).unwrap(),
            luna_core::UserId::parse(ub).unwrap(),
        );
        async move {
            (
                store.current_version(&ua).await.unwrap(),
                store.current_version(&ub).await.unwrap(),
            )
        }
    };
    let before = versions(&app).await;

    for r in protected_routes(&app).await {
        let concrete = r.path.replace("{user_id}", ub).replace("{id}", &b_hold);
        let what = format!("{} {}", r.method, r.path);
        // no credentials
        let resp = call(&app, &r, &concrete, None, ub).await;
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{what}"
        );
        assert_eq!(
            expect(resp, StatusCode::UNAUTHORIZED).await,
            json!({"detail": "Not authenticated"}),
            "{what}"
        );
        for (label, token) in &bad_tokens {
            let v = expect(
                call(&app, &r, &concrete, Some(token), ub).await,
                StatusCode::UNAUTHORIZED,
            )
            .await;
            assert!(v["detail"].is_string(), "{what} with {label}: {v}");
        }
        // a service key lacking the route's scope
        let lacking = if r.scope == "energy:read" {
            &events_only
        } else {
            &app.reader
        };
        let v = expect(
            call(&app, &r, &concrete, Some(lacking), ub).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(
            v,
            json!({"detail": "forbidden"}),
            "{what} without {}",
            r.scope
        );
        // user A on user B's data: by body and by path → 403; B's reservation → 404
        if r.scope != "user" && r.scope != "admin" {
            let resp = call(&app, &r, &concrete, Some(&access_a), ub).await;
            let expected = if r.path.contains("{id}") {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            let v = expect(resp, expected).await;
            if expected == StatusCode::FORBIDDEN {
                assert_eq!(v, json!({"detail": "forbidden"}), "{what} as A on B");
            }
        }
        if r.scope == "admin" {
            let v = expect(
                call(&app, &r, &concrete, Some(&access_a), ua).await,
                StatusCode::FORBIDDEN,
            )
            .await;
            assert_eq!(
                v,
                json!({"detail": "forbidden"}),
                "{what}: users are never admins"
            );
        }
    }
    assert_eq!(
        versions(&app).await,
        before,
        "no refused call stored anything"
    );
}
