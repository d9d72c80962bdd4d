//! Idempotency keys on mutating routes.

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestApp, error_code, expect, uid};

#[tokio::test]
async fn a_repeated_key_replays_the_first_status_and_body_without_a_second_effect() {
    let app = TestApp::spawn().await;
    let u = uid("idem");
    let body = json!({"user_id": u, "action_name": "lettre_motivation"});
    let first = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k-1",
            &body,
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = first.text().await.unwrap();
    let second = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k-1",
            &body,
        )
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.text().await.unwrap(), first, "the same bytes");
    assert_eq!(app.balance(&u).await, 70);
    // the same key with another body
    let other = json!({"user_id": u, "action_name": "conseil_rapide"});
    let v = expect(
        app.post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k-1",
            &other,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_code(&v), "idempotency_key_reused");
    // keys are scoped by principal: the admin's k-1 is another key
    let admin = app
        .post_idem(
            &app.admin,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k-1",
            &body,
        )
        .await;
    assert_eq!(admin.status(), StatusCode::OK);
    assert_eq!(app.balance(&u).await, 55);
}

#[tokio::test]
async fn a_402_is_kept_and_replayed_for_its_key() {
    let app = TestApp::spawn().await;
    let u = uid("idem402");
    let body = json!({"user_id": u, "action_name": "plan_reconversion"});
    expect(
        app.consume(&u, "audit_complet_profil").await,
        StatusCode::OK,
    )
    .await;
    let first = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k-402",
            &body,
        )
        .await;
    assert_eq!(first.status(), StatusCode::PAYMENT_REQUIRED);
    let first = first.text().await.unwrap();
    app.grant(&json!({"user_id": u, "amount": 500, "reason": "top-up"}))
        .await;
    let again = app
        .post_idem(
            &app.service,
            "/luna/energy/consume",
            "Idempotency-Key",
            "k-402",
            &body,
        )
        .await;
    assert_eq!(again.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(again.text().await.unwrap(), first);
}

#[tokio::test]
async fn concurrent_duplicates_apply_once() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let u = uid("dup");
    let body = json!({"user_id": u, "action_name": "conseil_rapide"});
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = app
                .post_idem(
                    &app.service,
                    "/luna/energy/consume",
                    "X-Idempotency-Key",
                    "same",
                    &body,
                )
                .await;
            (r.status(), r.text().await.unwrap())
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        bodies.push(text);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every duplicate got the first response"
    );
    assert_eq!(app.balance(&u).await, 80);
}
