//! The pages under `/app` over plain HTTP (the browser tests drive them in Chromium): the
//! session cookie, the security headers, cross-site posts refused, a logged-out cookie
//! refused, escaping, buying through the hosted checkout, and the live balance stream.

use std::time::Duration;

use luna_testkit::stripe::FakeStripe;
use reqwest::{Client, StatusCode, redirect};
use serde_json::json;

use crate::{TestApp, email, fresh_octet};

fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

/// Registers through the form; the session cookie (`luna_session=…`).
async fn sign_up(app: &TestApp, who: &str) -> String {
    let r = browser()
        .post(app.url("/app/register"))
        .header("x-forwarded-for", format!("198.51.100.{}", fresh_octet()))
        .form(&[
            ("email", email(who).as_str()),
            ("password", crate::PASSWORD),
            ("name", "Marie"),
        ])
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/app/dashboard");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/app"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    cookie.split(';').next().expect("pair").to_owned()
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    browser()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page")
}

async fn text(r: reqwest::Response) -> String {
    r.text().await.expect("body")
}

#[tokio::test]
async fn pages_need_the_cookie_carry_the_security_headers_and_refuse_cross_site_posts() {
    let app = TestApp::spawn().await;
    let anonymous = page(&app, "", "/app/dashboard").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()["location"], "/app/login");
    let cookie = sign_up(&app, "web").await;
    let r = page(&app, &cookie, "/app/dashboard").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' https://checkout.stripe.com"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = text(r).await;
    assert!(
        html.contains(r#"<span id="energy-value">85</span>"#),
        "{html}"
    );
    assert!(html.contains("lettre_motivation"));
    // English when preferred.
    let en = browser()
        .get(app.url("/app/dashboard"))
        .header("cookie", &cookie)
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .expect("page");
    assert!(text(en).await.contains("What you can do"));
    // A form posted from another site is refused, whatever its cookie.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let r = browser()
            .post(app.url("/app/logout"))
            .header("cookie", &cookie)
            .header(name, value)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    }
    assert_eq!(
        page(&app, &cookie, "/app/dashboard").await.status(),
        StatusCode::OK
    );
    // Logging out revokes the session: its cookie is refused afterwards.
    let out = browser()
        .post(app.url("/app/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let gone = page(&app, &cookie, "/app/dashboard").await;
    assert_eq!(gone.status(), StatusCode::SEE_OTHER);
    assert_eq!(gone.headers()["location"], "/app/login");
    let live = page(&app, &cookie, "/app/live").await;
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stored_script_in_a_context_is_shown_as_text() {
    let app = TestApp::spawn().await;
    let cookie = sign_up(&app, "xss").await;
    let profile = page(&app, &cookie, "/app/dashboard").await;
    assert_eq!(profile.status(), StatusCode::OK);
    let user = app
        .hub
        .authenticate_cookie(cookie.trim_start_matches("luna_session="))
        .await
        .expect("cookie")
        .0;
    let r = app
        .post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": user.as_str(), "action_name": "lettre_motivation",
                    "context": {"app_source": "letters", "note": "<script>alert('pwn')</script>"}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(page(&app, &cookie, "/app/narrative").await).await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert") || html.contains("&#60;script&#62;alert"),
        "{html}"
    );
}

#[tokio::test]
async fn a_pack_bought_on_the_hosted_checkout_is_credited_and_the_return_page_says_so() {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn_billing(&fake).await;
    let cookie = sign_up(&app, "buyer").await;
    let buy = text(page(&app, &cookie, "/app/buy").await).await;
    assert!(
        buy.contains(r#"id="bonus-cafe_luna""#),
        "the first-purchase bonus is shown"
    );
    let r = browser()
        .post(app.url("/app/buy/cafe_luna"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("buy");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let checkout = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(checkout.starts_with(&fake.base), "{checkout}");
    // The fake hosted page: pay → signed events delivered → redirect to the return page.
    let paid = browser()
        .post(format!("{checkout}/pay"))
        .send()
        .await
        .expect("pay");
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let back = paid.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let path = back
        .strip_prefix("http://luna.test")
        .expect("our public URL");
    assert!(
        path.starts_with("/app/return?session_id=cs_test_"),
        "{path}"
    );
    let html = text(page(&app, &cookie, path).await).await;
    assert!(html.contains(r#"class="done""#), "{html}");
    assert!(
        html.contains(r#"<span id="energy-value">195</span>"#),
        "{html}"
    );
    let history = text(page(&app, &cookie, "/app/history").await).await;
    assert!(history.contains("cafe_luna") && history.contains("credited"));
    // Unlimited through the subscription checkout; then packs are not offered.
    let r = browser()
        .post(app.url("/app/subscribe"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("subscribe");
    let checkout = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let paid = browser()
        .post(format!("{checkout}/pay"))
        .send()
        .await
        .expect("pay");
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let buy = text(page(&app, &cookie, "/app/buy").await).await;
    assert!(buy.contains(r#"id="already-unlimited""#), "{buy}");
    assert!(!buy.contains(r#"id="buy-cafe_luna""#));
}

#[tokio::test]
async fn the_live_stream_sends_the_balance_at_once_and_on_every_change() {
    let app = TestApp::spawn().await;
    let t = app.register(&email("live")).await;
    let token = t["access_token"].as_str().expect("token").to_owned();
    let mut r = app
        .client
        .get(app.url("/luna/energy/live"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("live");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    let mut next_event = async |r: &mut reqwest::Response, want: &str| {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !seen.contains(want) {
                let chunk = r.chunk().await.expect("chunk").expect("open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("the event arrives in time");
    };
    next_event(&mut r, "\"current_energy\":85").await;
    let c = app
        .post(
            &token,
            "/luna/energy/consume",
            &json!({"action_name": "lettre_motivation"}),
        )
        .await;
    assert_eq!(c.status(), StatusCode::OK);
    next_event(&mut r, "\"current_energy\":70").await;
    // Another user's stream is refused to a user token.
    let other = app
        .client
        .get(app.url("/luna/energy/live?user_id=someone_else"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("live");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}

/// Reads a stream until it ends (true) or `within` passes (false).
async fn ends_within(r: &mut reqwest::Response, within: Duration) -> bool {
    tokio::time::timeout(within, async { while let Ok(Some(_)) = r.chunk().await {} })
        .await
        .is_ok()
}

#[tokio::test]
async fn live_streams_are_bounded_per_user_and_end_with_their_session() {
    let app = TestApp::spawn().await;
    let t = app.register(&email("streams")).await;
    let token = t["access_token"].as_str().expect("token").to_owned();
    let open = || {
        app.client
            .get(app.url("/luna/energy/live"))
            .bearer_auth(&token)
            .send()
    };
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut r = open().await.expect("live");
        assert_eq!(r.status(), StatusCode::OK);
        r.chunk().await.expect("first event").expect("open");
        streams.push(r);
    }
    // A sixth closes the oldest.
    let mut sixth = open().await.expect("live");
    sixth.chunk().await.expect("first event").expect("open");
    assert!(
        ends_within(&mut streams[0], Duration::from_secs(5)).await,
        "the oldest stream was closed"
    );
    // Logging out ends the session's streams (checked again every few seconds).
    let out = app.post(&token, "/auth/logout", &json!({})).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert!(
        ends_within(&mut sixth, Duration::from_secs(12)).await,
        "a revoked session's stream ends"
    );
}
