//! Black-box tests: the real server on 127.0.0.1:0 with a fresh database, driven over HTTP.
//! One test binary, modules by area, a `TestApp` whose methods are the API's vocabulary.
#![allow(
    clippy::too_many_lines,
    reason = "black-box scenarios read top to bottom"
)]

mod auth;
mod billing;
mod browser;
mod cli;
mod crash;
mod defects;
mod energy;
mod events;
mod full_disk;
mod hostile;
mod idempotency;
mod linearizable;
mod matrix;
mod ops;
mod outage;
mod overload;
mod satellites;
mod storm;
mod web;

use std::path::PathBuf;
use std::sync::Arc;

use luna_ports::{Scope, Store};
use luna_server::config::{Config, Settings};
use luna_server::{runtime, serve};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

/// The token-signing secret of test servers (so tests can forge tokens signed right or wrong).
pub const JWT_SECRET: &str = "test-secret-of-the-api-suite-32-bytes-at-least";

/// A running server and the keys to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// An admin key.
    pub admin: String,
    /// A key with energy:read energy:write events:read events:write only.
    pub service: String,
    /// A key with energy:read only.
    pub reader: String,
    pub store: Arc<dyn Store>,
    /// A hub on the server's database (an operator's tools: keys).
    pub hub: Arc<luna_app::Hub>,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

fn fresh_dir(name: &str) -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("luna-api-{}-{name}-{t}", std::process::id()))
}

impl TestApp {
    /// A server on a fresh SQLite file, or on a fresh PostgreSQL database when
    /// `LUNA_API_BACKEND=postgres` (CI runs this suite once per backend).
    pub async fn spawn() -> TestApp {
        TestApp::spawn_on(TestApp::fresh_database().await).await
    }

    /// A fresh database on the suite's backend.
    pub async fn fresh_database() -> String {
        if std::env::var("LUNA_API_BACKEND").as_deref() == Ok("postgres") {
            return TestApp::fresh_postgres("api suite on postgres")
                .await
                .expect("LUNA_API_BACKEND=postgres needs LUNA_TEST_DATABASE_URL");
        }
        let dir = fresh_dir("sqlite");
        format!("sqlite://{}/luna.db", dir.display())
    }

    /// A server on a fresh PostgreSQL database, when `LUNA_TEST_DATABASE_URL` is set.
    pub async fn spawn_postgres(test: &str) -> Option<TestApp> {
        Some(TestApp::spawn_on(TestApp::fresh_postgres(test).await?).await)
    }

    async fn fresh_postgres(test: &str) -> Option<String> {
        let base_url = luna_testkit::pg::database_url(test)?;
        let name = luna_testkit::pg::fresh_schema("luna_api");
        let admin = sqlx::postgres::PgPool::connect(&base_url)
            .await
            .expect("connect to LUNA_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        Some(match base_url.rfind('/') {
            Some(i)
                if base_url[..i].contains("://") && i > base_url.find("://").unwrap_or(0) + 2 =>
            {
                format!("{}/{name}", &base_url[..i])
            }
            _ => format!("{base_url}/{name}"),
        })
    }

    /// Another server on an existing database (a second instance, or a restart).
    pub async fn spawn_on_url(database_url: String) -> TestApp {
        TestApp::spawn_on(database_url).await
    }

    async fn spawn_on(database_url: String) -> TestApp {
        TestApp::spawn_with(database_url, |_, _| {}).await
    }

    /// A server whose billing talks to `fake` (a fresh database on the suite's backend); the
    /// fake delivers its events to this server.
    pub async fn spawn_billing(fake: &luna_testkit::stripe::FakeStripe) -> TestApp {
        TestApp::spawn_billing_on(fake, TestApp::fresh_database().await).await
    }

    /// A billing server on an existing database (a second instance).
    pub async fn spawn_billing_on(
        fake: &luna_testkit::stripe::FakeStripe,
        database_url: String,
    ) -> TestApp {
        TestApp::spawn_billing_with(fake, database_url, false).await
    }

    /// A billing server whose public URL is its real address (`own_url`, for a browser that
    /// follows Checkout's redirects back) or `http://luna.test`.
    pub async fn spawn_billing_with(
        fake: &luna_testkit::stripe::FakeStripe,
        database_url: String,
        own_url: bool,
    ) -> TestApp {
        let stripe = fake.base.clone();
        let app = TestApp::spawn_with(database_url, move |s, base| {
            s.stripe_secret_key = Some(luna_testkit::stripe::SECRET_KEY.into());
            s.stripe_webhook_secret = Some(luna_testkit::stripe::WEBHOOK_SECRET.into());
            s.stripe_api_base = Some(stripe.clone());
            s.stripe_price_unlimited = Some(luna_testkit::stripe::PRICE_UNLIMITED.into());
            s.stripe_checkout_origin = Some(stripe);
            s.public_url = Some(if own_url {
                base.to_owned()
            } else {
                "http://luna.test".into()
            });
        })
        .await;
        fake.set_webhook_url(&app.url("/billing/webhook"));
        app
    }

    pub async fn spawn_with(
        database_url: String,
        customize: impl FnOnce(&mut Settings, &str),
    ) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stores = runtime::open_stores(&database_url)
            .await
            .expect("open store");
        let mut settings = Settings {
            database_url: Some(database_url.clone()),
            bind: Some("127.0.0.1:0".into()),
            log_format: Some("json".into()),
            config: Some(PathBuf::from("/dev/null")),
            jwt_secret: Some(JWT_SECRET.into()),
            // Tests register many users from loopback: they say who they are with
            // X-Forwarded-For, which loopback is trusted to set.
            trusted_proxies: Some("127.0.0.1".into()),
            ..Settings::default()
        };
        customize(&mut settings, &base);
        let config = Config::resolve(&settings).expect("config");
        let keys = runtime::hub(&config, &stores).expect("hub");
        let (_, admin) = keys
            .create_key("test admin", vec![Scope::Admin])
            .await
            .expect("key");
        let (_, service) = keys
            .create_key(
                "letters backend",
                vec![
                    Scope::EnergyRead,
                    Scope::EnergyWrite,
                    Scope::EventsRead,
                    Scope::EventsWrite,
                ],
            )
            .await
            .expect("key");
        let (_, reader) = keys
            .create_key("dashboard", vec![Scope::EnergyRead])
            .await
            .expect("key");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve::serve(config, listener, async move {
            let _ = rx.await;
        }));
        let client = Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        for _ in 0..100 {
            if client.get(format!("{base}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        TestApp {
            base,
            client,
            admin,
            service,
            reader,
            store: stores.store.clone(),
            hub: Arc::new(keys),
            database_url,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.expect("server task").expect("server exits cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON with a bearer key.
    pub async fn post(&self, key: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST JSON with a bearer key and an idempotency header.
    pub async fn post_idem(
        &self,
        key: &str,
        path: &str,
        header: &str,
        idem: &str,
        body: &Value,
    ) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .header(header, idem)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// POST raw bytes as JSON with a bearer key and, maybe, an idempotency key.
    pub async fn post_raw(
        &self,
        key: &str,
        path: &str,
        idem: Option<&str>,
        body: &str,
    ) -> Response {
        let mut r = self
            .client
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        r.send().await.expect("request")
    }

    /// GET with a bearer key.
    pub async fn get(&self, key: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    // ---- the API's vocabulary (the satellite's key unless said otherwise) ----------------

    /// POST /luna/energy/can-perform.
    pub async fn can_perform(&self, body: &Value) -> Response {
        self.post(&self.service, "/luna/energy/can-perform", body)
            .await
    }

    /// POST /luna/energy/reserve.
    pub async fn reserve(&self, body: &Value) -> Response {
        self.post(&self.service, "/luna/energy/reserve", body).await
    }

    /// POST /luna/energy/reservations/{id}/commit.
    pub async fn commit(&self, id: &str, body: &Value) -> Response {
        self.post(
            &self.service,
            &format!("/luna/energy/reservations/{id}/commit"),
            body,
        )
        .await
    }

    /// POST /luna/energy/reservations/{id}/release.
    pub async fn release(&self, id: &str) -> Response {
        self.post(
            &self.service,
            &format!("/luna/energy/reservations/{id}/release"),
            &json!({}),
        )
        .await
    }

    /// POST /luna/energy/refund.
    pub async fn refund(&self, body: &Value) -> Response {
        self.post(&self.service, "/luna/energy/refund", body).await
    }

    /// POST /luna/energy/grant, with the admin key.
    pub async fn grant(&self, body: &Value) -> Response {
        self.post(&self.admin, "/luna/energy/grant", body).await
    }

    /// POST /luna/events.
    pub async fn post_event(&self, body: &Value) -> Response {
        self.post(&self.service, "/luna/events", body).await
    }

    /// GET /luna/energy/transactions/{user}?{query}.
    pub async fn transactions(&self, user: &str, query: &str) -> Response {
        self.get(
            &self.service,
            &format!("/luna/energy/transactions/{user}?{query}"),
        )
        .await
    }

    /// GET /luna/energy/analytics/{user}?{query}.
    pub async fn analytics(&self, user: &str, query: &str) -> Response {
        self.get(
            &self.service,
            &format!("/luna/energy/analytics/{user}?{query}"),
        )
        .await
    }

    /// GET /luna/events/{user}?{query}.
    pub async fn events(&self, user: &str, query: &str) -> Response {
        self.get(&self.service, &format!("/luna/events/{user}?{query}"))
            .await
    }

    /// GET /luna/narrative/{user}.
    pub async fn narrative(&self, user: &str) -> Response {
        self.get(&self.service, &format!("/luna/narrative/{user}"))
            .await
    }

    // ---- users ------------------------------------------------------------------------

    /// POST /auth/register from the client address `from` (X-Forwarded-For).
    pub async fn register_from(&self, from: &str, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/auth/register"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": email, "password": password, "name": "Test"}))
            .send()
            .await
            .expect("request")
    }

    /// Registers a fresh user (each from its own address); returns the token response.
    pub async fn register(&self, email: &str) -> Value {
        let from = format!("198.51.100.{}", fresh_octet());
        expect(
            self.register_from(&from, email, PASSWORD).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// POST /auth/login from the client address `from`.
    pub async fn login_from(&self, from: &str, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/auth/login"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request")
    }

    /// POST /auth/refresh.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/auth/refresh"))
            .json(&json!({"refresh_token": refresh_token}))
            .send()
            .await
            .expect("request")
    }

    /// DELETE with a bearer token.
    pub async fn delete(&self, key: &str, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn check(&self, user: &str) -> Value {
        json_ok(
            self.post(
                &self.service,
                "/luna/energy/check",
                &json!({"user_id": user}),
            )
            .await,
        )
        .await
    }

    pub async fn consume(&self, user: &str, action: &str) -> Response {
        self.post(
            &self.service,
            "/luna/energy/consume",
            &json!({"user_id": user, "action_name": action}),
        )
        .await
    }

    pub async fn balance(&self, user: &str) -> i64 {
        self.check(user).await["current_energy"]
            .as_i64()
            .expect("current_energy")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts a status and returns the JSON body; a failure names the calling line (an async
/// fn cannot be `#[track_caller]`, so the location is captured before the future starts).
#[track_caller]
pub fn expect(r: Response, status: StatusCode) -> impl std::future::Future<Output = Value> {
    let at = std::panic::Location::caller();
    async move {
        let got = r.status();
        let text = r.text().await.expect("body");
        assert_eq!(got, status, "unexpected status at {at}, body: {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON at {at}: {text}"))
    }
}

/// Asserts 200 and returns the JSON body.
#[track_caller]
pub fn json_ok(r: Response) -> impl std::future::Future<Output = Value> {
    expect(r, StatusCode::OK)
}

/// The `error` code of a `{"detail":{"error":…}}` body.
pub fn error_code(v: &Value) -> &str {
    v["detail"]["error"].as_str().unwrap_or("")
}

/// The `loc` of the first problem of a 422 list body.
pub fn loc(v: &Value) -> Vec<String> {
    v["detail"][0]["loc"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The password test users register with.
pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh last octet, so each registration counts against its own address.
pub fn fresh_octet() -> u8 {
    static N: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// An email no other test uses.
pub fn email(prefix: &str) -> String {
    format!("{}@example.com", uid(prefix))
}

/// A user id no other test uses.
pub fn uid(prefix: &str) -> String {
    luna_testkit::contract::unique_user(prefix).to_string()
}
