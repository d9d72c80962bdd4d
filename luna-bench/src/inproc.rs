//! The in-process hub the read benchmark drives (`luna-bench reads`): a store opened here, an
//! admin key made on it, and `luna serve`'s router on a loopback port.

use std::sync::Arc;
use std::time::Duration;

use luna_ports::{Scope, Store};
use luna_server::config::{Config, Settings};
use luna_server::{runtime, serve};

pub(crate) struct Hub {
    pub(crate) base: String,
    pub(crate) key: String,
    pub(crate) store: Arc<dyn Store>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Hub {
    /// Stops the in-process server.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
    }
}

pub(crate) async fn start_hub(database_url: &str) -> Hub {
    let stores = runtime::open_stores(database_url)
        .await
        .expect("open store");
    let store = stores.store.clone();
    let (_, key) = runtime::hub(
        &Config::resolve(&Settings::default()).expect("config"),
        &stores,
    )
    .expect("hub")
    .create_key("bench", vec![Scope::Admin])
    .await
    .expect("key");
    let settings = Settings {
        database_url: Some(database_url.to_owned()),
        log_format: Some("json".into()),
        config: Some("/dev/null".into()),
        ..Settings::default()
    };
    let config = Config::resolve(&settings).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve::serve(config, listener, async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    Hub {
        base,
        key,
        store,
        stop,
    }
}
