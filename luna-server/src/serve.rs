//! `luna serve`: build the app, listen, shut down gracefully.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use luna_http::{AppShared, AppState, HttpConfig};
use luna_ports::{Scope, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::config::{Config, Environment, Secret};
use crate::runtime::{self, SystemClock};

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// Serves on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stores = runtime::open_stores(&config.database_url).await?;
    let hub = Arc::new(runtime::hub(&config, &stores)?);
    hub.load_signing_secret(config.jwt_secret.as_ref().map(Secret::expose))
        .await?;
    let trusted_proxies =
        luna_http::client::parse_trusted(&config.trusted_proxies).map_err(anyhow::Error::msg)?;
    if config.environment == Environment::Development && hub.list_keys().await?.is_empty() {
        let (key, secret) = hub
            .create_key("development admin", vec![Scope::Admin])
            .await?;
        println!(
            "Created a development admin service key (shown once, id {}):\n  {secret}",
            key.id
        );
    }
    let purge = tokio::spawn(purge(stores.store.clone(), hub.clone()));
    let upkeep = tokio::spawn(metrics_upkeep(metrics_handle()));
    // Live streams end when shutdown begins (they would otherwise hold the grace period).
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let state = AppState::new(AppShared {
        hub,
        metrics: metrics_handle(),
        config: Arc::new(HttpConfig {
            cors_origins: config.cors_origins.clone(),
            loopback_bind: listener.local_addr()?.ip().is_loopback(),
            trusted_proxies,
            public_url: config.public_url.clone(),
            checkout_origin: config.stripe.checkout_origin.clone(),
        }),
        live: Arc::default(),
        closing: closing_rx,
        admission: Arc::new(luna_http::Admission::new(
            config.max_in_flight,
            config.admission_wait,
        )),
    });
    let app = luna_http::router(state);
    let addr = listener.local_addr()?;
    println!("luna listening on http://{addr}");
    tracing::info!(%addr, database = %redact(&config.database_url), "listening");
    luna_http::server::serve(listener, app, shutdown).await?;
    purge.abort();
    upkeep.abort();
    tracing::info!("stopped");
    Ok(())
}

/// A hub serving in this process (an embedded hub, a test's): its base URL, stopped
/// gracefully when dropped or by [`RunningHub::stop`].
pub struct RunningHub {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningHub {
    /// Binds `config.bind` (port 0 picks a free one) and starts serving. The port is bound
    /// when this returns: requests made at once wait in the backlog while the stores open.
    pub async fn start(config: Config) -> anyhow::Result<RunningHub> {
        let listener = TcpListener::bind(config.bind).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(config, listener, async move {
            let _ = rx.await;
        }));
        Ok(RunningHub {
            base,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Stops serving (in-flight requests finish) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningHub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// How long idempotency records are kept (the spec asks for at least 24 h).
pub const IDEMPOTENCY_RETENTION: std::time::Duration = std::time::Duration::from_secs(48 * 3600);
/// How often old idempotency records are deleted.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Folds the histograms' recorded samples into their summaries every 5 s. Without it they pile
/// up until the next scrape of /metrics — without bound when nothing scrapes (the soak saw it).
async fn metrics_upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

async fn purge(store: Arc<dyn Store>, hub: Arc<luna_app::Hub>) {
    use luna_ports::Clock;
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        let retention = luna_core::Span::seconds(
            i64::try_from(IDEMPOTENCY_RETENTION.as_secs()).unwrap_or(i64::MAX),
        );
        let before = SystemClock.now().minus(retention);
        match store.purge(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old idempotency records deleted"),
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
        }
        match hub.purge_counters().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired login counters deleted"),
            Err(e) => tracing::warn!(error = %e, "login counter purge failed"),
        }
    }
}

/// What of a database URL may be printed: scheme, host, port and database (or, for SQLite,
/// the file path) — never a user, a password or a query parameter, which may hold secrets.
pub fn redact(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "<unparsable database URL>".to_owned();
    };
    let scheme = parsed.scheme();
    match parsed.host_str() {
        Some(host) => {
            let port = parsed
                .port()
                .map_or_else(|| default_port(scheme), |p| format!(":{p}"));
            format!("{scheme}://{host}{port}{}", parsed.path())
        }
        // `sqlite://./file` parses with host "."; `sqlite:///abs` with no host.
        None => format!("{scheme}://{}", parsed.path()),
    }
}

fn default_port(scheme: &str) -> String {
    match scheme {
        "postgres" | "postgresql" => ":5432".to_owned(),
        _ => String::new(),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn database_passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgres://luna:s3cret@db:5432/luna"),
            "postgres://db:5432/luna"
        );
        assert_eq!(
            redact("sqlite://./luna-data/luna.db"),
            "sqlite://./luna-data/luna.db"
        );
    }

    #[test]
    fn only_scheme_host_port_and_database_are_printed() {
        assert_eq!(
            redact("postgres://db.internal:6432/luna?password=s3cret&sslmode=require"),
            "postgres://db.internal:6432/luna"
        );
        assert_eq!(
            redact("postgresql://u:p%40ss@h/luna?sslpassword=x"),
            "postgresql://h:5432/luna"
        );
        assert_eq!(
            redact("sqlite:///var/lib/luna/luna.db?mode=rwc"),
            "sqlite:///var/lib/luna/luna.db"
        );
        assert!(!redact("postgres://h/db?options=-c%20password%3Dx").contains("password"));
        assert_eq!(
            redact("not a url at all with secret"),
            "<unparsable database URL>"
        );
    }
}
