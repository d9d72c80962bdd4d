//! A consume storm over HTTP: many concurrent clients, few users, no overdraft.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::{TestApp, uid};

async fn storm(app: Arc<TestApp>) {
    let users: Vec<String> = (0..4).map(|i| uid(&format!("storm{i}"))).collect();
    for u in &users {
        app.check(u).await;
        app.grant(&json!({"user_id": u, "amount": 300, "reason": "storm"}))
            .await;
    }
    let mut tasks = Vec::new();
    for t in 0..24 {
        let (app, users) = (app.clone(), users.clone());
        tasks.push(tokio::spawn(async move {
            let mut spent = vec![0i64; users.len()];
            for i in 0..20 {
                let k = (t + i) % users.len();
                let r = app.consume(&users[k], "lettre_motivation").await;
                match r.status() {
                    StatusCode::OK => spent[k] += 15,
                    StatusCode::PAYMENT_REQUIRED => {}
                    s => panic!("unexpected {s}: {}", r.text().await.unwrap_or_default()),
                }
            }
            spent
        }));
    }
    let mut spent = vec![0i64; users.len()];
    for t in tasks {
        for (k, s) in t.await.unwrap().into_iter().enumerate() {
            spent[k] += s;
        }
    }
    for (k, u) in users.iter().enumerate() {
        let balance = app.balance(u).await;
        assert_eq!(balance, 85 + 300 - spent[k], "{u}");
        assert!(balance >= 0);
        assert!(
            balance < 15,
            "{u}: the storm should drain the account, left {balance}"
        );
    }
    let report = luna_app::verify::verify(app.store.as_ref(), |_| {})
        .await
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consume_storm_over_http_never_overdraws_on_sqlite() {
    storm(Arc::new(TestApp::spawn().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consume_storm_over_http_never_overdraws_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres("http storm on postgres").await {
        storm(Arc::new(app)).await;
    }
}
