//! `/luna/events` and `/luna/narrative`.

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestApp, error_code, expect, json_ok, loc, uid};

#[tokio::test]
async fn app_events_are_recorded_listed_with_the_hubs_own_and_folded_into_the_narrative() {
    let app = TestApp::spawn().await;
    let u = uid("events");
    let body = json!({"user_id": u, "action_name": "lettre_motivation", "context": {"app_source": "letters", "target_role": "Data Analyst"}});
    json_ok(app.post(&app.service, "/luna/energy/consume", &body).await).await;
    let data = json!({"action": "optimisation_cv", "context": {"target_role": "Product Manager", "industry": "Tech"}});
    let posted = expect(
        app.post_event(&json!({"user_id": u, "event_type": "cv.optimized", "app_source": "cv", "event_data": data, "metadata": {"client": "cv-web"}})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(posted["success"], true);
    assert_eq!(posted["stream_version"], 3);
    assert!(posted["position"].as_u64().is_some());
    assert!(posted["recorded_at"].is_string());
    let list = json_ok(
        app.get(&app.service, &format!("/luna/events/{u}?limit=2"))
            .await,
    )
    .await;
    assert_eq!(list["total_count"], 3);
    let events = list["events"].as_array().unwrap();
    assert_eq!(events[0]["event_type"], "cv.optimized");
    assert_eq!(events[0]["event_data"], data);
    assert_eq!(events[0]["metadata"], json!({"client": "cv-web"}));
    assert_eq!(events[0]["app_source"], "cv");
    assert_eq!(events[1]["event_type"], "EnergyConsumed");
    assert_eq!(events[1]["event_data"]["cost"], 15);
    assert_eq!(list["event_type_filter"], serde_json::Value::Null);
    let cursor = list["next_cursor"].as_str().unwrap();
    let older = json_ok(
        app.get(&app.service, &format!("/luna/events/{u}?before={cursor}"))
            .await,
    )
    .await;
    assert_eq!(older["events"][0]["event_type"], "AccountOpened");
    let filtered = json_ok(
        app.get(
            &app.service,
            &format!("/luna/events/{u}?event_type=EnergyConsumed"),
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            filtered["total_count"].clone(),
            filtered["event_type_filter"].clone()
        ),
        (json!(1), json!("EnergyConsumed"))
    );

    let n = json_ok(app.get(&app.service, &format!("/luna/narrative/{u}")).await).await;
    assert_eq!(n["success"], true);
    assert_eq!(n["source"], "event_store_real_time");
    let c = &n["capital_narratif"];
    assert_eq!(c["user_profile"]["total_events"], 3);
    assert_eq!(c["user_profile"]["apps_mastered"], json!(["cv", "letters"]));
    assert_eq!(
        c["user_profile"]["skills_demonstrated"],
        json!(["Data Analyst", "Product Manager", "Tech"])
    );
    assert_eq!(
        c["user_profile"]["most_frequent_action"],
        "lettre_motivation"
    );
    assert_eq!(c["usage_analytics"]["total_energy_consumed"], 15);
    assert_eq!(
        c["usage_analytics"]["subscription_insights"]["primary_subscription"],
        "free"
    );
    assert_eq!(
        c["professional_journey"]["career_progression"],
        json!(["Data Analyst", "Product Manager"])
    );
    assert_eq!(
        c["professional_journey"]["timeline"][0]["action"],
        "optimisation_cv"
    );
    assert_eq!(
        c["professional_journey"]["timeline"][0]["context"]["industry"],
        "Tech"
    );
    assert_eq!(c["ai_insights"]["growth_trajectory"], "early_user");
    assert_eq!(c["ai_insights"]["engagement_score"], 24);
    assert_eq!(c["ai_insights"]["recommendations"][0]["code"], "keep_going");
    assert_eq!(c["metadata"]["events_analyzed"], 3);
    assert_eq!(c["metadata"]["last_position"], posted["position"]);
}

#[tokio::test]
async fn nobody_posts_the_hubs_own_event_types_or_bad_shapes() {
    let app = TestApp::spawn().await;
    let u = uid("forge");
    let post = |t: &str, s: &str, d: serde_json::Value| json!({"user_id": u, "event_type": t, "app_source": s, "event_data": d});
    let v = expect(
        app.post(
            &app.service,
            "/luna/events",
            &post("energyGranted", "cv", json!({})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_code(&v), "reserved_event_type");
    let v = expect(
        app.post(&app.service, "/luna/events", &post("1bad", "cv", json!({})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "event_type"]);
    let v = expect(
        app.post(
            &app.service,
            "/luna/events",
            &post("ok.type", "CV", json!({})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "app_source"]);
    let v = expect(
        app.post(
            &app.service,
            "/luna/events",
            &post("ok.type", "cv", json!([1])),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(loc(&v), ["body", "event_data"]);
    let big = json!({"x": "z".repeat(17 * 1024)});
    expect(
        app.post(&app.service, "/luna/events", &post("ok.type", "cv", big))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect(
        app.post(
            &app.reader,
            "/luna/events",
            &post("ok.type", "cv", json!({})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let e = json_ok(app.get(&app.admin, &format!("/luna/events/{u}")).await).await;
    assert_eq!(e["total_count"], 0, "nothing stored");
}
