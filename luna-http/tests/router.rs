//! Fast `Router::oneshot` tests over the in-memory store: status codes and bodies that need a
//! store in a state a real database rarely is in (unreachable).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use luna_app::Hub;
use luna_app::hash_secret;
use luna_core::{Catalog, Policy};
use luna_http::{AppShared, AppState, HttpConfig, router};
use luna_ports::{KeyStore, Scope, ServiceKey};
use luna_testkit::{FixedClock, MemoryStore, SequentialIds};
use tower::ServiceExt;

const SECRET: &str = "luna_sk_test_secret";

async fn app() -> (axum::Router, Arc<MemoryStore>) {
    let clock = Arc::new(FixedClock::default_start());
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let key = ServiceKey {
        id: luna_core::Id::from_u128(1),
        name: "t".into(),
        scopes: vec![Scope::Admin],
        created_at: luna_core::Timestamp::EPOCH,
        revoked_at: None,
    };
    store.create_key(&key, &hash_secret(SECRET)).await.unwrap();
    let hub = Hub::new(
        luna_testkit::ports(store.clone(), clock, Arc::new(SequentialIds::default())),
        Arc::new(Catalog::builtin()),
        Policy::default(),
    );
    let state = AppState::new(AppShared {
        hub: Arc::new(hub),
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle(),
        config: Arc::new(HttpConfig {
            cors_origins: vec![],
            loopback_bind: true,
            trusted_proxies: vec![],
            public_url: "http://luna.test".into(),
            checkout_origin: "https://checkout.stripe.com".into(),
        }),
        live: Arc::default(),
        closing: tokio::sync::watch::channel(false).1,
        admission: Arc::new(luna_http::Admission::new(
            64,
            std::time::Duration::from_secs(2),
        )),
    });
    (router(state), store)
}

async fn body(r: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn ready_is_503_and_commands_are_503_when_the_database_is_unreachable() {
    let (app, store) = app().await;
    let ready = app
        .clone()
        .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    store.set_down(true);
    let ready = app
        .clone()
        .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body(ready).await,
        serde_json::json!({"ready": false, "checks": {"database": "unreachable"}})
    );
    // health checks no dependency
    let health = app
        .clone()
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    store.set_down(false);
    let consume = |app: axum::Router| {
        app.oneshot(
            Request::post("/luna/energy/consume")
                .header("authorization", format!("Bearer {SECRET}"))
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"user_id":"u1","action_name":"conseil_rapide"}"#,
                ))
                .unwrap(),
        )
    };
    assert_eq!(consume(app.clone()).await.unwrap().status(), StatusCode::OK);
    // the key was found before the store went down; now the store is down for the key lookup too
    store.set_down(true);
    let r = consume(app.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body(r).await,
        serde_json::json!({"detail": "Service unavailable"})
    );
}

#[tokio::test]
async fn an_unrouted_path_is_404_and_a_wrong_method_405() {
    let (app, _) = app().await;
    let r = app
        .clone()
        .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .oneshot(
            Request::get("/luna/energy/consume")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}
