//! The pages in a real headless browser (Debian's `chromium` driven by `chromedriver` over
//! WebDriver): register → the gauge shows the welcome energy → buy a Café on the fake hosted
//! Checkout → the return page says credited and the gauge shows the new balance → a consume made
//! elsewhere moves the gauge without a reload → subscribe to Unlimited → the gauge says Unlimited →
//! the narrative lists what a satellite consumed. Every wait is bounded (no sleeps); the driver
//! and the hub die with the test. Screenshots of every page at desktop and phone width go to
//! `target/screenshots/` (or `LUNA_SCREENSHOTS`). Without a browser the test says SKIPPED — under
//! CI (`LUNA_REQUIRE_BROWSER=1`) it fails instead.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use luna_testkit::stripe::FakeStripe;
use serde_json::json;

use crate::{TestApp, email};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(15);

/// chromedriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn browser() -> Option<(Driver, Client, PathBuf)> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("LUNA_REQUIRE_BROWSER").is_err(),
            "LUNA_REQUIRE_BROWSER is set but {CHROMEDRIVER} or {CHROMIUM} is missing"
        );
        println!("SKIPPED: no chromium/chromedriver (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = std::env::temp_dir().join(format!("luna-chromium-{}-{port}", std::process::id()));
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let caps = caps.as_object().expect("object").clone();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen: retry the session for a bounded time.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => {
                let shots = std::env::var("LUNA_SCREENSHOTS").map_or_else(
                    |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"),
                    PathBuf::from,
                );
                std::fs::create_dir_all(&shots).expect("screenshot directory");
                return Some((driver, c, shots));
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

async fn shoot(c: &Client, dir: &std::path::Path, name: &str) {
    for (label, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        c.set_window_size(w, h).await.expect("resize");
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write screenshot");
    }
    c.set_window_size(1280, 900).await.expect("resize");
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cycle_in_a_browser() {
    let Some((_driver, c, shots)) = browser().await else {
        return;
    };
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn_billing_with(&fake, TestApp::fresh_database().await, true).await;
    let c = scopeguard(c);

    c.goto(&app.url("/app/login")).await.expect("login page");
    shoot(&c, &shots, "login").await;
    c.goto(&app.url("/app/register"))
        .await
        .expect("register page");
    shoot(&c, &shots, "register").await;
    let who = email("browser");
    c.find(Locator::Css("#email"))
        .await
        .expect("email")
        .send_keys(&who)
        .await
        .expect("type");
    c.find(Locator::Css("#password"))
        .await
        .expect("password")
        .send_keys(crate::PASSWORD)
        .await
        .expect("type");
    click(&c, "#submit").await;
    assert_eq!(text_of(&c, "#energy-value").await, "85");
    shoot(&c, &shots, "dashboard").await;

    // Buy a Café on the fake hosted Checkout.
    c.goto(&app.url("/app/buy")).await.expect("buy page");
    assert!(text_of(&c, "#bonus-cafe_luna").await.contains("+10"));
    shoot(&c, &shots, "buy").await;
    click(&c, "#buy-cafe_luna").await;
    click(&c, "#pay").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#payment-status.done"))
        .await
        .expect("the return page says credited");
    assert_eq!(text_of(&c, "#energy-value").await, "195");
    shoot(&c, &shots, "return").await;

    // A consume made by a satellite moves the gauge without a reload.
    let user = app
        .hub
        .find_account(&luna_core::Email::parse(&who).expect("email"))
        .await
        .expect("account")
        .expect("exists")
        .user;
    c.goto(&app.url("/app/dashboard")).await.expect("dashboard");
    let version: u64 = c
        .find(Locator::Css("#gauge"))
        .await
        .expect("gauge")
        .attr("data-version")
        .await
        .expect("attr")
        .and_then(|v| v.parse().ok())
        .expect("a version");
    let r = app
        .post(
            &app.service,
            "/luna/energy/consume",
            &json!({"user_id": user.as_str(), "action_name": "lettre_motivation",
                    "context": {"app_source": "letters", "target_role": "Data Analyst"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!(
            "#gauge[data-version='{}']",
            version + 1
        )))
        .await
        .expect("the live stream moved the gauge");
    assert_eq!(text_of(&c, "#energy-value").await, "180");

    // Unlimited.
    c.goto(&app.url("/app/buy")).await.expect("buy page");
    click(&c, "#subscribe").await;
    click(&c, "#pay").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#payment-status.done"))
        .await
        .expect("the return page says done");
    assert!(text_of(&c, "#energy-unlimited").await.contains("Unlimited"));
    c.goto(&app.url("/app/buy")).await.expect("buy page");
    assert!(!text_of(&c, "#already-unlimited").await.is_empty());

    // The narrative lists what the satellite consumed.
    c.goto(&app.url("/app/narrative")).await.expect("narrative");
    assert!(text_of(&c, "#timeline").await.contains("lettre_motivation"));
    shoot(&c, &shots, "narrative").await;
    c.goto(&app.url("/app/history")).await.expect("history");
    assert!(text_of(&c, "#purchases").await.contains("cafe_luna"));
    shoot(&c, &shots, "history").await;
    c.goto(&app.url("/app/sessions")).await.expect("sessions");
    shoot(&c, &shots, "sessions").await;
    c.goto(&app.url("/app/dashboard")).await.expect("dashboard");
    shoot(&c, &shots, "dashboard-unlimited").await;
}

/// Closes the WebDriver session when the test ends, however it ends.
fn scopeguard(c: Client) -> Session {
    Session(Some(c))
}

struct Session(Option<Client>);

impl std::ops::Deref for Session {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0.as_ref().expect("open")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = c.close().await;
                });
            }
        }
    }
}
