//! `/luna/energy/*`, field by field and error by error.

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestApp, error_code, expect, json_ok, loc, uid};

#[tokio::test]
async fn a_check_opens_the_account_and_reports_every_field() {
    let app = TestApp::spawn().await;
    let u = uid("check");
    let v = app.check(&u).await;
    assert_eq!(v["success"], true);
    assert_eq!(v["user_id"], u.as_str());
    assert_eq!(v["current_energy"], 85);
    assert_eq!(v["max_energy"], 100);
    assert_eq!(v["percentage"], 85);
    assert_eq!(v["available_energy"], 85);
    assert_eq!(v["reserved_energy"], 0);
    assert_eq!(v["can_perform_basic_action"], true);
    assert_eq!(v["last_recharge"], serde_json::Value::Null);
    assert_eq!(v["total_consumed"], 0);
    assert_eq!(v["total_purchased"], 0);
    assert_eq!(v["subscription_type"], "free");
    assert_eq!(v["unlimited"], false);
    assert_eq!(v["unlimited_until"], serde_json::Value::Null);
    assert_eq!(v["stream_version"], 1);
    assert_eq!(
        app.check(&u).await["stream_version"],
        1,
        "a second check appends nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn can_perform_answers_yes_and_no_with_a_pack() {
    let app = TestApp::spawn().await;
    let u = uid("can");
    let yes = json_ok(
        app.can_perform(&json!({"user_id": u, "action_name": "mirror_match"}))
            .await,
    )
    .await;
    assert_eq!(
        (
            yes["success"].clone(),
            yes["can_perform"].clone(),
            yes["action_cost"].clone()
        ),
        (json!(true), json!(true), json!(30))
    );
    assert_eq!(
        (
            yes["energy_required"].clone(),
            yes["deficit"].clone(),
            yes["required_pack"].clone()
        ),
        (json!(30), json!(0), json!(null))
    );
    expect(app.consume(&u, "plan_reconversion").await, StatusCode::OK).await;
    expect(app.consume(&u, "mirror_match").await, StatusCode::OK).await;
    let no = json_ok(
        app.can_perform(&json!({"user_id": u, "action_name": "mirror_match"}))
            .await,
    )
    .await;
    assert_eq!(no["can_perform"], false);
    assert_eq!(no["current_energy"], 5);
    assert_eq!(no["deficit"], 25);
    assert_eq!(no["required_pack"], "cafe_luna");
    assert_eq!(no["subscription_type"], "free");
    assert_eq!(no["unlimited"], false);
}

#[tokio::test]
async fn a_consume_answers_every_field_and_a_shortfall_is_a_402_with_the_pack() {
    let app = TestApp::spawn().await;
    let u = uid("consume");
    let body = json!({"user_id": u, "action_name": "lettre_motivation", "context": {"app_source": "letters", "b": [1, 2], "a": {"z": 1}}});
    let v = json_ok(app.post(&app.service, "/luna/energy/consume", &body).await).await;
    assert_eq!(v["success"], true);
    assert_eq!(v["action"], "lettre_motivation");
    assert_eq!(v["energy_consumed"], 15);
    assert_eq!(v["notional_cost"], 15);
    assert_eq!(v["energy_remaining"], 70);
    assert_eq!(v["unlimited"], false);
    assert_eq!(v["subscription_type"], "free");
    assert!(v["transaction_id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(v["event_id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(v["timestamp"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(v["message"].as_str().is_some());
    expect(
        app.consume(&u, "audit_complet_profil").await,
        StatusCode::OK,
    )
    .await;
    let refused = expect(
        app.consume(&u, "mirror_match").await,
        StatusCode::PAYMENT_REQUIRED,
    )
    .await;
    let d = &refused["detail"];
    assert_eq!(d["error"], "insufficient_energy");
    assert_eq!(d["action"], "recharge_energy");
    assert_eq!(d["required_pack"], "cafe_luna");
    assert_eq!(d["energy_required"], 30);
    assert_eq!(d["current_energy"], 25);
    assert_eq!(d["deficit"], 5);
    assert!(d["message"].as_str().is_some());
    assert_eq!(app.balance(&u).await, 25, "a refusal changes nothing");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let u = uid("bad");
    // unknown action → 400
    let v = expect(app.consume(&u, "teleport").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(v["detail"], "Unknown action: teleport");
    // invalid user id → 400
    let v = expect(
        app.consume("not a user!", "conseil_rapide").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v["detail"], "Invalid user ID format");
    // a service key must name the user → 422
    let v = expect(
        app.post(
            &app.service,
            "/luna/energy/consume",
            &json!({"action_name": "conseil_rapide"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "user_id"]);
    // missing field → 422 list shape
    let v = expect(
        app.post(&app.service, "/luna/energy/consume", &json!({"user_id": u}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "action_name"]);
    assert_eq!(v["detail"][0]["type"], "value_error.missing");
    // mistyped field → 422
    let v = expect(
        app.post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": u, "action_name": 7}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "action_name"]);
    // malformed JSON → 422
    let r = app
        .client
        .post(app.url("/luna/energy/consume"))
        .bearer_auth(&app.service)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    let v = expect(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(loc(&v), ["body"]);
    assert_eq!(v["detail"][0]["type"], "value_error.jsondecode");
    // trailing garbage after a valid object → 422
    let r = app
        .client
        .post(app.url("/luna/energy/consume"))
        .bearer_auth(&app.service)
        .header("content-type", "application/json")
        .body(format!(
            "{} x",
            json!({"user_id": u, "action_name": "conseil_rapide"})
        ))
        .send()
        .await
        .unwrap();
    let v = expect(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(v["detail"][0]["type"], "value_error.jsondecode");
    // no JSON content type → 422
    let r = app
        .client
        .post(app.url("/luna/energy/consume"))
        .bearer_auth(&app.service)
        .body(json!({"user_id": u, "action_name": "conseil_rapide"}).to_string())
        .send()
        .await
        .unwrap();
    expect(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    // context not an object, or over 8 KiB → 422
    let v = expect(
        app.post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": u, "action_name": "conseil_rapide", "context": [1]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "context"]);
    let big = "x".repeat(9000);
    expect(
        app.post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": u, "action_name": "conseil_rapide", "context": {"big": big}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // body over 64 KiB → 413
    let huge = "y".repeat(70 * 1024);
    let v = expect(
        app.post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": u, "action_name": "conseil_rapide", "pad": huge}),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(v["detail"], "Request body too large");
    // ttl out of range → 422
    let v = expect(
        app.reserve(&json!({"user_id": u, "action_name": "conseil_rapide", "ttl_seconds": 3601}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "ttl_seconds"]);
    // nothing was stored for this user
    let events = json_ok(app.get(&app.admin, &format!("/luna/events/{u}")).await).await;
    assert_eq!(events["total_count"], 0);
}

#[tokio::test]
async fn credentials_and_scopes_are_enforced() {
    let app = TestApp::spawn().await;
    let u = uid("auth");
    let r = app
        .client
        .post(app.url("/luna/energy/check"))
        .json(&json!({"user_id": u}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok()),
        Some("Bearer")
    );
    let v = expect(r, StatusCode::UNAUTHORIZED).await;
    assert!(v["detail"].is_string());
    expect(
        app.post(
            "luna_sk_not_a_key",
            "/luna/energy/check",
            &json!({"user_id": u}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect(
        app.post("garbage", "/luna/energy/check", &json!({"user_id": u}))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // energy:read may check but not consume, post events, read events or grant
    json_ok(
        app.post(&app.reader, "/luna/energy/check", &json!({"user_id": u}))
            .await,
    )
    .await;
    let v = expect(
        app.post(
            &app.reader,
            "/luna/energy/consume",
            &json!({"user_id": u, "action_name": "conseil_rapide"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(v["detail"], "forbidden");
    expect(
        app.get(&app.reader, &format!("/luna/events/{u}")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        app.post(
            &app.service,
            "/luna/energy/grant",
            &json!({"user_id": u, "amount": 5, "reason": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // a revoked key stops working
    let (key, secret) = app
        .hub
        .create_key("temp", vec![luna_ports::Scope::EnergyRead])
        .await
        .unwrap();
    json_ok(
        app.post(&secret, "/luna/energy/check", &json!({"user_id": u}))
            .await,
    )
    .await;
    assert!(app.hub.revoke_key(key.id).await.unwrap());
    // revoked from outside the server: refused once its key-cache entry lapses
    tokio::time::sleep(luna_app::KEY_CACHE_TTL + std::time::Duration::from_millis(50)).await;
    expect(
        app.post(&secret, "/luna/energy/check", &json!({"user_id": u}))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn a_hold_reserves_commits_once_and_refuses_what_the_rules_refuse() {
    let app = TestApp::spawn().await;
    let u = uid("hold");
    let r = expect(
        app.reserve(&json!({"user_id": u, "action_name": "mirror_match"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (
            r["success"].clone(),
            r["energy_reserved"].clone(),
            r["available_energy"].clone()
        ),
        (json!(true), json!(30), json!(55))
    );
    assert_eq!(r["action"], "mirror_match");
    assert!(r["expires_at"].as_str().is_some());
    let id = r["reservation_id"].as_str().unwrap().to_owned();
    assert_eq!(app.check(&u).await["reserved_energy"], 30);
    let commit = format!("/luna/energy/reservations/{id}/commit");
    let c1 = json_ok(app.post(&app.service, &commit, &json!({})).await).await;
    assert_eq!(
        (
            c1["transaction_id"].as_str(),
            c1["energy_consumed"].clone(),
            c1["energy_remaining"].clone()
        ),
        (Some(id.as_str()), json!(30), json!(55))
    );
    let c2 = json_ok(app.post(&app.service, &commit, &json!({})).await).await;
    assert_eq!(
        (c2["transaction_id"].clone(), c2["event_id"].clone()),
        (c1["transaction_id"].clone(), c1["event_id"].clone())
    );
    let v = expect(
        app.post(
            &app.service,
            &format!("/luna/energy/reservations/{id}/release"),
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_committed");
    // release, release again, commit after release
    let r2 = expect(
        app.reserve(&json!({"user_id": u, "action_name": "conseil_rapide"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id2 = r2["reservation_id"].as_str().unwrap().to_owned();
    let release = format!("/luna/energy/reservations/{id2}/release");
    let rel = json_ok(
        app.client
            .post(app.url(&release))
            .bearer_auth(&app.service)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (
            rel["energy_released"].clone(),
            rel["available_energy"].clone()
        ),
        (json!(5), json!(55))
    );
    assert_eq!(
        json_ok(app.post(&app.service, &release, &json!({})).await).await["energy_released"],
        5
    );
    let v = expect(
        app.post(
            &app.service,
            &format!("/luna/energy/reservations/{id2}/commit"),
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_released");
    // unknown reservation → 404; not a uuid → 404
    let v = expect(
        app.post(
            &app.service,
            "/luna/energy/reservations/00000000-0000-0000-0000-000000000000/commit",
            &json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_not_found");
    expect(
        app.post(
            &app.service,
            "/luna/energy/reservations/nope/commit",
            &json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // holds count against what may be reserved: 55 → 5 available → 402
    let big = json!({"user_id": u, "action_name": "plan_reconversion"});
    expect(app.reserve(&big).await, StatusCode::CREATED).await;
    let v = expect(app.reserve(&big).await, StatusCode::PAYMENT_REQUIRED).await;
    assert_eq!(v["detail"]["current_energy"], 55);
    assert_eq!(v["detail"]["available_energy"], 5);
}

#[tokio::test]
async fn an_expired_hold_is_gone_for_commit_and_releases_nothing() {
    let app = TestApp::spawn().await;
    let u = uid("expired");
    let r = expect(
        app.reserve(&json!({"user_id": u, "action_name": "mirror_match", "ttl_seconds": 1}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = r["reservation_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let v = expect(
        app.post(
            &app.service,
            &format!("/luna/energy/reservations/{id}/commit"),
            &json!({}),
        )
        .await,
        StatusCode::GONE,
    )
    .await;
    assert_eq!(error_code(&v), "reservation_expired");
    let rel = json_ok(
        app.post(
            &app.service,
            &format!("/luna/energy/reservations/{id}/release"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            rel["energy_released"].clone(),
            rel["available_energy"].clone()
        ),
        (json!(0), json!(85))
    );
}

#[tokio::test]
async fn a_refund_gives_energy_back_once_and_refuses_the_rest() {
    let app = TestApp::spawn().await;
    let u = uid("refund");
    let c = json_ok(app.consume(&u, "lettre_motivation").await).await;
    let tx = c["transaction_id"].as_str().unwrap().to_owned();
    let v = expect(
        app.refund(&json!({"user_id": u, "transaction_id": tx, "amount": 16, "reason": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "amount"]);
    let r = json_ok(
        app.refund(&json!({"user_id": u, "transaction_id": tx, "reason": "generation failed"}))
            .await,
    )
    .await;
    assert_eq!(r["success"], true);
    assert_eq!(r["refunded_transaction_id"], tx.as_str());
    assert_eq!(r["energy_refunded"], 15);
    assert_eq!(r["new_energy_balance"], 85);
    assert_eq!(r["reason"], "generation failed");
    assert_ne!(r["transaction_id"], tx.as_str());
    let v = expect(
        app.refund(&json!({"user_id": u, "transaction_id": tx, "reason": "again"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(error_code(&v), "already_refunded");
    let v = expect(app.refund(&json!({"user_id": u, "transaction_id": "00000000-0000-0000-0000-000000000001", "reason": "x"})).await, StatusCode::NOT_FOUND).await;
    assert_eq!(error_code(&v), "transaction_not_found");
    // another user's consume is not found
    let other = uid("other");
    expect(
        app.refund(&json!({"user_id": other, "transaction_id": tx, "reason": "x"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let policy = json_ok(
        app.client
            .get(app.url("/luna/energy/refund-policy"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(policy["policy"]["window_days"], 7);
    assert_eq!(policy["policy"]["max_refunds_per_transaction"], 1);
    assert_eq!(
        policy["policy"]["ineligible_actions"],
        json!(["conseil_rapide", "correction_ponctuelle"])
    );
}

#[tokio::test]
async fn an_admin_grants_energy_within_limits() {
    let app = TestApp::spawn().await;
    let u = uid("grant");
    let g = json_ok(
        app.grant(&json!({"user_id": u, "amount": 40, "reason": "support"}))
            .await,
    )
    .await;
    assert_eq!(
        (
            g["success"].clone(),
            g["energy_granted"].clone(),
            g["new_energy_balance"].clone()
        ),
        (json!(true), json!(40), json!(125))
    );
    assert!(g["transaction_id"].as_str().is_some());
    for amount in [0, 1_000_001] {
        let v = expect(
            app.grant(&json!({"user_id": u, "amount": amount, "reason": "x"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(loc(&v), ["body", "amount"]);
    }
    assert!(app.check(&u).await["last_recharge"].is_string());
}

#[tokio::test]
async fn the_history_and_analytics_fold_every_transaction() {
    let app = TestApp::spawn().await;
    let u = uid("history");
    for a in ["lettre_motivation", "conseil_rapide", "lettre_motivation"] {
        let body = json!({"user_id": u, "action_name": a, "context": {"app_source": "letters"}});
        json_ok(app.post(&app.service, "/luna/energy/consume", &body).await).await;
    }
    json_ok(
        app.grant(&json!({"user_id": u, "amount": 10, "reason": "gift"}))
            .await,
    )
    .await;
    let p1 = json_ok(
        app.get(
            &app.service,
            &format!("/luna/energy/transactions/{u}?limit=3"),
        )
        .await,
    )
    .await;
    assert_eq!(p1["total_count"], 5);
    let rows = p1["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["action_type"], "grant");
    assert_eq!(rows[0]["app_source"], serde_json::Value::Null);
    assert_eq!(rows[1]["action_type"], "consume");
    assert_eq!(rows[1]["feature_used"], "lettre_motivation");
    assert_eq!(rows[1]["app_source"], "letters");
    assert_eq!(
        (
            rows[1]["energy_before"].clone(),
            rows[1]["energy_after"].clone()
        ),
        (json!(65), json!(50))
    );
    assert_eq!(rows[1]["context"], json!({"app_source": "letters"}));
    let cursor = p1["next_cursor"].as_str().unwrap();
    let p2 = json_ok(
        app.get(
            &app.service,
            &format!("/luna/energy/transactions/{u}?limit=3&before={cursor}"),
        )
        .await,
    )
    .await;
    let rows2 = p2["transactions"].as_array().unwrap();
    assert_eq!(rows2.len(), 2);
    assert_eq!(rows2[1]["action_type"], "welcome");
    assert_eq!(p2["next_cursor"], serde_json::Value::Null);
    expect(
        app.get(
            &app.service,
            &format!("/luna/energy/transactions/{u}?before=xyz"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect(
        app.get(
            &app.service,
            &format!("/luna/energy/transactions/{u}?limit=0"),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect(
        app.get(&app.service, "/luna/energy/transactions/bad%20id")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let a = json_ok(
        app.get(&app.service, &format!("/luna/energy/analytics/{u}"))
            .await,
    )
    .await;
    let an = &a["analytics"];
    assert_eq!(an["current_energy"], 60);
    assert_eq!(an["total_consumed"], 35);
    assert_eq!(an["total_purchased"], 0);
    assert_eq!(an["total_refunded"], 0);
    assert_eq!(an["total_transactions"], 5);
    assert_eq!(
        an["top_actions"][0],
        json!({"action": "lettre_motivation", "count": 2, "energy": 30})
    );
    assert_eq!(an["by_app"]["letters"], json!({"count": 3, "energy": 35}));
    assert_eq!(an["daily"].as_array().unwrap().len(), 1);
    assert_eq!(an["subscription_type"], "free");
    assert!(an["member_since"].is_string());
    let empty = json_ok(
        app.get(
            &app.service,
            &format!("/luna/energy/analytics/{u}?from=2999-01-01"),
        )
        .await,
    )
    .await;
    assert_eq!(empty["analytics"]["total_transactions"], 0);
    assert_eq!(empty["analytics"]["current_energy"], 60);
    // an unknown user: empty, nothing opened
    let ghost = uid("ghost");
    let t = json_ok(
        app.get(&app.service, &format!("/luna/energy/transactions/{ghost}"))
            .await,
    )
    .await;
    assert_eq!(t["total_count"], 0);
    let e = json_ok(app.get(&app.admin, &format!("/luna/events/{ghost}")).await).await;
    assert_eq!(e["total_count"], 0);
}

#[tokio::test]
async fn the_costs_list_the_grid_and_packs_publicly() {
    let app = TestApp::spawn().await;
    let v = json_ok(
        app.client
            .get(app.url("/luna/energy/costs"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["success"], true);
    assert_eq!(v["currency"], "EUR");
    assert_eq!(v["grid_version"], "2024-01");
    assert_eq!(v["energy_costs"]["lettre_motivation"], 15);
    assert_eq!(v["energy_costs"].as_object().unwrap().len(), 12);
    let cafe = &v["energy_packs"]["cafe_luna"];
    assert_eq!(cafe["price_euro"], "2.99");
    assert_eq!(cafe["price_cents"], 299);
    assert_eq!(cafe["energy_amount"], 100);
    assert_eq!(cafe["bonus_first_purchase"], 10);
    assert_eq!(cafe["subscription"], false);
    let unl = &v["energy_packs"]["luna_unlimited"];
    assert_eq!(
        (
            unl["energy_amount"].clone(),
            unl["interval"].clone(),
            unl["subscription"].clone()
        ),
        (json!(null), json!("month"), json!(true))
    );
}
