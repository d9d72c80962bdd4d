//! What the existing Phoenix satellites (the old Python client) rely on.

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestApp, expect, json_ok, uid};

#[tokio::test]
async fn the_old_satellite_client_keeps_working() {
    let app = TestApp::spawn().await;
    let u = uid("satellite");
    // can-perform: `success` and `can_perform` are required by the client
    let v = json_ok(
        app.can_perform(&json!({"user_id": u, "action_name": "lettre_motivation"}))
            .await,
    )
    .await;
    assert_eq!(v["success"], true);
    assert!(v["can_perform"].is_boolean());
    // a retried consume with X-Idempotency-Key is deduplicated
    let body = json!({"user_id": u, "action_name": "plan_reconversion", "context": {"app_source": "letters"}});
    let first = json_ok(
        app.post_idem(
            &app.service,
            "/luna/energy/consume",
            "X-Idempotency-Key",
            "retry-1",
            &body,
        )
        .await,
    )
    .await;
    let retried = json_ok(
        app.post_idem(
            &app.service,
            "/luna/energy/consume",
            "X-Idempotency-Key",
            "retry-1",
            &body,
        )
        .await,
    )
    .await;
    assert_eq!(first, retried);
    assert_eq!(app.balance(&u).await, 35);
    // a 402 whose `detail` is an object with `required_pack`
    let r = app
        .post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": u, "action_name": "plan_reconversion"}),
        )
        .await;
    let v = expect(r, StatusCode::PAYMENT_REQUIRED).await;
    assert!(v["detail"].is_object());
    assert_eq!(v["detail"]["required_pack"], "cafe_luna");
    assert_eq!(v["detail"]["error"], "insufficient_energy");
}
