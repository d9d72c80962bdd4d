//! Accounts over HTTP: register, login, refresh, profile, sessions, logout, the user principal,
//! brute-force limits, and concurrency on two hub instances (spec §3.5, §6 "Auth details").

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{PASSWORD, TestApp, email, error_code, expect, json_ok, loc, uid};

fn token(v: &Value, field: &str) -> String {
    v[field].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn registration_opens_the_account_with_its_welcome_energy_and_signs_in() {
    let app = TestApp::spawn().await;
    let mail = email("reg");
    let v = app.register(&format!("  {}  ", mail.to_uppercase())).await;
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["email"], mail, "trimmed and lowercased");
    let user = v["user_id"].as_str().unwrap().to_owned();
    assert!(user.starts_with("usr_") && user.len() <= 64);
    assert!(token(&v, "refresh_token").starts_with("luna_rt_"));
    let access = token(&v, "access_token");
    for path in ["/auth/profile", "/auth/me"] {
        let p = json_ok(app.get(&access, path).await).await;
        assert_eq!(
            p,
            json!({"id": user, "user_id": user, "email": mail, "name": "Test",
                   "created_at": p["created_at"], "subscription_type": "free",
                   "is_unlimited": false, "luna_energy": 85})
        );
    }
    // the check agrees at once, for the user and for a satellite
    let mine = json_ok(app.post(&access, "/luna/energy/check", &json!({})).await).await;
    assert_eq!(mine["current_energy"], 85);
    assert_eq!(mine["stream_version"], 2, "welcome, then the login audit");
    assert_eq!(app.balance(&user).await, 85);
    // the same email in another case is taken
    let again = expect(
        app.register_from("198.51.100.250", &mail.to_uppercase(), PASSWORD)
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(again, json!({"detail": "Email already registered"}));
}

#[tokio::test]
async fn registration_checks_the_email_and_the_password_length() {
    let app = TestApp::spawn().await;
    let v = expect(
        app.register_from("198.51.100.1", "not-an-email", PASSWORD)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "email"]);
    for bad in ["short", &"x".repeat(129)] {
        let v = expect(
            app.register_from("198.51.100.1", &email("pw"), bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(loc(&v), ["body", "password"]);
    }
}

#[tokio::test]
async fn login_answers_alike_for_a_wrong_password_and_an_unknown_email() {
    let app = TestApp::spawn().await;
    let mail = email("login");
    app.register(&mail).await;
    let ok = json_ok(app.login_from("203.0.113.1", &mail, PASSWORD).await).await;
    assert_eq!(ok["email"], mail);
    let wrong = app.login_from("203.0.113.1", &mail, "wrong password").await;
    assert_eq!(wrong.headers().get("www-authenticate").unwrap(), "Bearer");
    let wrong = expect(wrong, StatusCode::UNAUTHORIZED).await;
    let unknown = expect(
        app.login_from("203.0.113.1", &email("nobody"), PASSWORD)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong, json!({"detail": "Invalid email or password"}));
    assert_eq!(unknown, wrong);
    // the audit trail: logins and the failure, never a secret
    let user = ok["user_id"].as_str().unwrap();
    let events = json_ok(app.events(user, "limit=200").await).await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"LoginFailed") && types.contains(&"LoginSucceeded"),
        "{types:?}"
    );
    let text = events.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains("luna_rt_") && !text.contains("$argon2"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let v = app.register(&email("rot")).await;
    let first = token(&v, "refresh_token");
    let r = json_ok(app.refresh(&first).await).await;
    assert_eq!(r["token_type"], "bearer");
    assert!(r.get("user_id").is_none(), "the spec's refresh shape");
    let second = token(&r, "refresh_token");
    assert_ne!(second, first);
    let access = token(&r, "access_token");
    json_ok(app.get(&access, "/auth/profile").await).await;
    // the rotated token comes back: the session dies, with every token of it
    let reuse = expect(app.refresh(&first).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(reuse["detail"], "Invalid token");
    expect(app.refresh(&second).await, StatusCode::UNAUTHORIZED).await;
    expect(
        app.get(&access, "/auth/profile").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect(
        app.refresh("luna_rt_garbage").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one_or_all_at_once() {
    let app = TestApp::spawn().await;
    let mail = email("sess");
    let a = app.register(&mail).await;
    let b = json_ok(app.login_from("203.0.113.2", &mail, PASSWORD).await).await;
    let c = json_ok(app.login_from("203.0.113.3", &mail, PASSWORD).await).await;
    let (ta, tb, tc) = (
        token(&a, "access_token"),
        token(&b, "access_token"),
        token(&c, "access_token"),
    );
    let list = json_ok(app.get(&ta, "/auth/sessions").await).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let b_id = sessions
        .iter()
        .find(|s| s["ip"] == "203.0.113.2")
        .expect("the second login's session")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = json_ok(app.delete(&ta, &format!("/auth/sessions/{b_id}")).await).await;
    assert_eq!(done, json!({"message": "Session revoked"}));
    expect(
        app.get(&tb, "/auth/profile").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect(
        app.refresh(&token(&b, "refresh_token")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let again = expect(
        app.delete(&ta, &format!("/auth/sessions/{b_id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(error_code(&again), "session_not_found");
    let out = json_ok(app.post(&tc, "/auth/logout", &json!({})).await).await;
    assert_eq!(out["sessions_revoked"], 1);
    expect(
        app.get(&tc, "/auth/profile").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let d = app.register(&email("sess2")).await;
    let td = token(&d, "access_token");
    let mail_d = d["email"].as_str().unwrap().to_owned();
    json_ok(app.login_from("203.0.113.4", &mail_d, PASSWORD).await).await;
    let all = json_ok(app.post(&td, "/auth/logout-all", &json!({})).await).await;
    assert_eq!(all["sessions_revoked"], 2);
    expect(
        app.get(&td, "/auth/sessions").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // a service key is not a user
    expect(
        app.get(&app.service, "/auth/profile").await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn a_user_acts_on_their_own_energy_only() {
    let app = TestApp::spawn().await;
    let a = app.register(&email("own-a")).await;
    let b = app.register(&email("own-b")).await;
    let (ta, user_a, user_b) = (
        token(&a, "access_token"),
        a["user_id"].as_str().unwrap().to_owned(),
        b["user_id"].as_str().unwrap().to_owned(),
    );
    let mine = json_ok(
        app.post(
            &ta,
            "/luna/energy/consume",
            &json!({"action_name": "lettre_motivation"}),
        )
        .await,
    )
    .await;
    assert_eq!(mine["user_id"], user_a);
    assert_eq!(mine["energy_remaining"], 70);
    json_ok(
        app.post(
            &ta,
            "/luna/energy/consume",
            &json!({"user_id": user_a, "action_name": "conseil_rapide"}),
        )
        .await,
    )
    .await;
    let other = expect(
        app.post(
            &ta,
            "/luna/energy/consume",
            &json!({"user_id": user_b, "action_name": "conseil_rapide"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(other, json!({"detail": "forbidden"}));
    expect(
        app.get(&ta, &format!("/luna/energy/transactions/{user_b}"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    json_ok(
        app.get(&ta, &format!("/luna/energy/transactions/{user_a}"))
            .await,
    )
    .await;
    expect(
        app.post(
            &ta,
            "/luna/energy/grant",
            &json!({"user_id": user_a, "amount": 5, "reason": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // another user's reservation does not exist for me
    let hold = expect(
        app.reserve(&json!({"user_id": user_b, "action_name": "conseil_rapide"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = hold["reservation_id"].as_str().unwrap();
    let v = expect(
        app.post(
            &ta,
            &format!("/luna/energy/reservations/{id}/commit"),
            &json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_not_found");
    assert_eq!(app.balance(&user_b).await, 85);
}

#[tokio::test]
async fn a_user_may_refund_three_of_their_own_consumes_in_30_days_then_409() {
    let app = TestApp::spawn().await;
    let a = app.register(&email("quota")).await;
    let ta = token(&a, "access_token");
    for n in 0..4 {
        let c = json_ok(
            app.post(
                &ta,
                "/luna/energy/consume",
                &json!({"action_name": "lettre_motivation"}),
            )
            .await,
        )
        .await;
        let r = app
            .post(
                &ta,
                "/luna/energy/refund",
                &json!({"transaction_id": c["transaction_id"], "reason": "generation failed"}),
            )
            .await;
        if n < 3 {
            json_ok(r).await;
        } else {
            let v = expect(r, StatusCode::CONFLICT).await;
            assert_eq!(error_code(&v), "refund_quota_exceeded");
        }
    }
}

#[tokio::test]
async fn the_sixth_bad_password_in_the_window_gets_429_even_with_the_right_one_until_unlocked() {
    let app = TestApp::spawn().await;
    let mail = email("brute");
    let other = email("bystander");
    app.register(&mail).await;
    app.register(&other).await;
    for i in 0..5 {
        let from = format!("203.0.113.{}", 10 + i);
        expect(
            app.login_from(&from, &mail, "wrong").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let locked = app.login_from("203.0.113.50", &mail, "wrong").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
    let body: Value = locked.json().await.unwrap();
    assert_eq!(error_code(&body), "too_many_attempts");
    expect(
        app.login_from("203.0.113.51", &mail, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    json_ok(app.login_from("203.0.113.51", &other, PASSWORD).await).await;
    // the counters live in the database: a restarted hub still refuses
    let url = app.database_url.clone();
    app.stop().await;
    let app = TestApp::spawn_on_url(url.clone()).await;
    expect(
        app.login_from("203.0.113.52", &mail, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    // an operator unlocks it
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_luna"))
        .args(["users", "unlock", &mail.to_uppercase()])
        .env_clear()
        .env("LUNA_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_ok(app.login_from("203.0.113.52", &mail, PASSWORD).await).await;
    let found = std::process::Command::new(env!("CARGO_BIN_EXE_luna"))
        .args(["users", "find", &mail])
        .env_clear()
        .env("LUNA_DATABASE_URL", &url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(text.contains("usr_") && text.contains(&mail), "{text}");
    assert!(!text.contains("argon2"), "never the hash");
}

#[tokio::test]
async fn fifty_failed_logins_from_one_address_lock_that_address_out() {
    let app = TestApp::spawn().await;
    for i in 0..50 {
        let e = format!("{}-{i}@example.com", uid("addr"));
        expect(
            app.login_from("192.0.2.77", &e, "wrong").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    expect(
        app.login_from("192.0.2.77", &email("addr-x"), "wrong")
            .await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    // another address of another /64 is not affected; the same /64 is
    expect(
        app.login_from("2001:db8:5:6::1", &email("v6"), "wrong")
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_register_one_email_once_refresh_once_and_count_guesses_together() {
    let a = Arc::new(TestApp::spawn().await);
    let b = Arc::new(TestApp::spawn_on_url(a.database_url.clone()).await);
    let pick = |i: u8| if i % 2 == 0 { a.clone() } else { b.clone() };
    let mail = email("race");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20u8 {
        let (app, mail) = (pick(i), mail.clone());
        tasks.spawn(async move {
            app.register_from(&format!("198.18.0.{i}"), &mail, PASSWORD)
                .await
                .status()
        });
    }
    let statuses = tasks.join_all().await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19,
        "{statuses:?}"
    );
    // one refresh token, presented twice at once: at most one succeeds
    let t = json_ok(a.login_from("198.18.1.1", &mail, PASSWORD).await).await;
    let rt = token(&t, "refresh_token");
    let (ra, rb) = tokio::join!(a.refresh(&rt), b.refresh(&rt));
    let ok = [ra.status(), rb.status()]
        .iter()
        .filter(|s| **s == StatusCode::OK)
        .count();
    assert!(ok <= 1, "both refreshes succeeded");
    // ten concurrent wrong passwords on two instances: never more than five past the counter
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..10u8 {
        let (app, mail) = (pick(i), mail.clone());
        guesses.spawn(async move {
            app.login_from(&format!("198.18.2.{i}"), &mail, "wrong guess")
                .await
                .status()
        });
    }
    let statuses = guesses.join_all().await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(checked <= 5, "{statuses:?}");
    assert_eq!(
        checked
            + statuses
                .iter()
                .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
                .count(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_revoked_on_one_instance_is_refused_by_the_other_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on_url(a.database_url.clone()).await;
    let v = a.register(&email("revoke")).await;
    let access = token(&v, "access_token");
    json_ok(b.get(&access, "/auth/profile").await).await;
    json_ok(a.post(&access, "/auth/logout", &json!({})).await).await;
    expect(
        b.get(&access, "/auth/profile").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect(
        b.post(&access, "/luna/energy/check", &json!({})).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
