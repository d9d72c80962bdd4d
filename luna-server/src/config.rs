//! Configuration: flags override environment variables, which override `luna.toml`, which
//! overrides the defaults (spec §4). `luna serve` needs none of it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

/// The default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./luna-data/luna.db";
/// The default listen address (the seed's port 8003).
pub const DEFAULT_BIND: &str = "127.0.0.1:8003";
/// The seed's local front-ends.
pub const DEFAULT_CORS: &str = "http://localhost:3000,http://localhost:5173,http://localhost:5174";

/// Settings given as flags or environment variables (all optional).
#[derive(Args, Debug, Clone, Default)]
pub struct Settings {
    /// Configuration file (default: ./luna.toml when it exists).
    #[arg(long, env = "LUNA_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// `sqlite://…` (embedded) or `postgres://…`.
    #[arg(long, env = "LUNA_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Listen address.
    #[arg(long, env = "LUNA_BIND", global = true)]
    pub bind: Option<String>,
    /// `development` or `production` (refuses insecure defaults).
    #[arg(long = "env", env = "LUNA_ENV", global = true)]
    pub environment: Option<String>,
    /// HS256 secret for user tokens (≥ 32 bytes in production).
    #[arg(long, env = "LUNA_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// TOML file with the cost grid and packs.
    #[arg(long, env = "LUNA_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,
    /// Energy of a new account.
    #[arg(long, env = "LUNA_WELCOME_ENERGY", global = true)]
    pub welcome_energy: Option<u32>,
    /// Comma-separated CORS origins.
    #[arg(long, env = "LUNA_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,
    /// `json` or `pretty` (default: json when stdout is not a terminal).
    #[arg(long, env = "LUNA_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Comma-separated addresses/CIDRs whose `X-Forwarded-For` is believed.
    #[arg(long, env = "LUNA_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Stripe secret key (unset: billing writes answer 503).
    #[arg(
        long,
        env = "LUNA_STRIPE_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub stripe_secret_key: Option<String>,
    /// Stripe webhook endpoint secret (unset: the webhook answers 503).
    #[arg(
        long,
        env = "LUNA_STRIPE_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe base URL.
    #[arg(long, env = "LUNA_STRIPE_API_BASE", global = true)]
    pub stripe_api_base: Option<String>,
    /// Stripe price id of Luna Unlimited.
    #[arg(long, env = "LUNA_STRIPE_PRICE_UNLIMITED", global = true)]
    pub stripe_price_unlimited: Option<String>,
    /// Checkout success page.
    #[arg(long, env = "LUNA_CHECKOUT_SUCCESS_URL", global = true)]
    pub checkout_success_url: Option<String>,
    /// Checkout cancel page.
    #[arg(long, env = "LUNA_CHECKOUT_CANCEL_URL", global = true)]
    pub checkout_cancel_url: Option<String>,
    /// The hub's external base URL.
    #[arg(long, env = "LUNA_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// The origin of Stripe's hosted Checkout (the web pages' CSP allows it).
    #[arg(long, env = "LUNA_STRIPE_CHECKOUT_ORIGIN", global = true)]
    pub stripe_checkout_origin: Option<String>,
    /// Requests served at once; beyond it they wait up to 2 s, then get 503 + Retry-After.
    #[arg(long, env = "LUNA_MAX_IN_FLIGHT", global = true)]
    pub max_in_flight: Option<usize>,
    /// How long a request waits for a place (milliseconds) before it is shed.
    #[arg(long, env = "LUNA_ADMISSION_WAIT_MS", global = true)]
    pub admission_wait_ms: Option<u64>,
}

/// The same settings read from `luna.toml`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    bind: Option<String>,
    env: Option<String>,
    jwt_secret: Option<String>,
    catalog: Option<PathBuf>,
    welcome_energy: Option<u32>,
    cors_origins: Option<String>,
    log_format: Option<String>,
    trusted_proxies: Option<String>,
    stripe_secret_key: Option<String>,
    stripe_webhook_secret: Option<String>,
    stripe_api_base: Option<String>,
    stripe_price_unlimited: Option<String>,
    checkout_success_url: Option<String>,
    checkout_cancel_url: Option<String>,
    public_url: Option<String>,
    stripe_checkout_origin: Option<String>,
    max_in_flight: Option<usize>,
    admission_wait_ms: Option<u64>,
}

/// Development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Convenient defaults (a first admin key is created and printed).
    Development,
    /// Insecure defaults are refused.
    Production,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database URL.
    pub database_url: String,
    /// Listen address.
    pub bind: SocketAddr,
    /// Environment.
    pub environment: Environment,
    /// Catalogue file, if not the built-in one.
    pub catalog: Option<PathBuf>,
    /// Welcome energy.
    pub welcome_energy: u32,
    /// CORS origins.
    pub cors_origins: Vec<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// The configured token-signing secret (`None` in development: generated and kept in the
    /// database).
    pub jwt_secret: Option<Secret>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// Stripe.
    pub stripe: StripeSettings,
    /// The hub's external base URL.
    pub public_url: String,
    /// The admission limit: requests served at once.
    pub max_in_flight: usize,
    /// How long a request waits for a place before it is shed.
    pub admission_wait: std::time::Duration,
}

/// The default Stripe base URL.
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
/// The default Checkout success page.
pub const DEFAULT_SUCCESS_URL: &str =
    "http://localhost:3000/billing/success?session_id={CHECKOUT_SESSION_ID}";
/// The default Checkout cancel page.
pub const DEFAULT_CANCEL_URL: &str = "http://localhost:3000/billing/cancel";
/// The default hosted Checkout origin.
pub const DEFAULT_CHECKOUT_ORIGIN: &str = "https://checkout.stripe.com";

/// Stripe's settings.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// Secret key (`None`: billing disabled).
    pub secret_key: Option<Secret>,
    /// Webhook endpoint secret (`None`: the webhook answers 503).
    pub webhook_secret: Option<Secret>,
    /// Base URL.
    pub api_base: String,
    /// Price id of Luna Unlimited.
    pub price_unlimited: Option<String>,
    /// Checkout success page.
    pub success_url: String,
    /// Checkout cancel page.
    pub cancel_url: String,
    /// Hosted Checkout's origin.
    pub checkout_origin: String,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Config {
    /// Resolves flags/environment over the file over the defaults.
    pub fn resolve(s: &Settings) -> anyhow::Result<Config> {
        let file = read_file(s)?;
        let stripe_file = file.clone();
        let environment = environment(s.environment.clone().or(file.env).as_deref())?;
        let bind_text = s
            .bind
            .clone()
            .or(file.bind)
            .unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind: SocketAddr = bind_text
            .parse()
            .map_err(|e| anyhow::anyhow!("LUNA_BIND {bind_text}: {e}"))?;
        let jwt_secret = s.jwt_secret.clone().or(file.jwt_secret);
        if environment == Environment::Production
            && jwt_secret.as_ref().is_none_or(|j| j.len() < 32)
        {
            anyhow::bail!("production mode needs LUNA_JWT_SECRET of at least 32 bytes");
        }
        let cors = s
            .cors_origins
            .clone()
            .or(file.cors_origins)
            .unwrap_or_else(|| DEFAULT_CORS.to_owned());
        let config = Config {
            database_url: s
                .database_url
                .clone()
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            bind,
            environment,
            catalog: s.catalog.clone().or(file.catalog),
            welcome_energy: s
                .welcome_energy
                .or(file.welcome_energy)
                .unwrap_or(luna_core::policy::DEFAULT_WELCOME_ENERGY),
            cors_origins: comma_list(&cors),
            log_format: log_format(s.log_format.clone().or(file.log_format).as_deref())?,
            jwt_secret: jwt_secret.map(Secret),
            trusted_proxies: comma_list(
                &s.trusted_proxies
                    .clone()
                    .or(file.trusted_proxies)
                    .unwrap_or_default(),
            ),
            public_url: s
                .public_url
                .clone()
                .or(file.public_url)
                .unwrap_or_else(|| format!("http://{bind}"))
                .trim_end_matches('/')
                .to_owned(),
            stripe: StripeSettings::resolve(s, stripe_file),
            max_in_flight: s
                .max_in_flight
                .or(file.max_in_flight)
                .unwrap_or(luna_http::limits::DEFAULT_MAX_IN_FLIGHT)
                .max(1),
            admission_wait: s.admission_wait_ms.or(file.admission_wait_ms).map_or(
                luna_http::limits::DEFAULT_ADMISSION_WAIT,
                std::time::Duration::from_millis,
            ),
        };
        if environment == Environment::Production && !config.public_url.starts_with("https://") {
            anyhow::bail!(
                "production mode needs LUNA_PUBLIC_URL to be https:// (the pages' cookie is Secure)"
            );
        }
        Ok(config)
    }
}

impl StripeSettings {
    fn resolve(s: &Settings, file: FileSettings) -> StripeSettings {
        StripeSettings {
            secret_key: nonempty(s.stripe_secret_key.clone().or(file.stripe_secret_key))
                .map(Secret),
            webhook_secret: nonempty(
                s.stripe_webhook_secret
                    .clone()
                    .or(file.stripe_webhook_secret),
            )
            .map(Secret),
            api_base: s
                .stripe_api_base
                .clone()
                .or(file.stripe_api_base)
                .unwrap_or_else(|| DEFAULT_STRIPE_API_BASE.to_owned()),
            price_unlimited: nonempty(
                s.stripe_price_unlimited
                    .clone()
                    .or(file.stripe_price_unlimited),
            ),
            success_url: s
                .checkout_success_url
                .clone()
                .or(file.checkout_success_url)
                .unwrap_or_else(|| DEFAULT_SUCCESS_URL.to_owned()),
            cancel_url: s
                .checkout_cancel_url
                .clone()
                .or(file.checkout_cancel_url)
                .unwrap_or_else(|| DEFAULT_CANCEL_URL.to_owned()),
            checkout_origin: s
                .stripe_checkout_origin
                .clone()
                .or(file.stripe_checkout_origin)
                .unwrap_or_else(|| DEFAULT_CHECKOUT_ORIGIN.to_owned()),
        }
    }
}

/// An empty setting is an unset one (`LUNA_STRIPE_SECRET_KEY=` disables billing).
fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `luna.toml` (or the file named by `--config`), when there is one.
fn read_file(s: &Settings) -> anyhow::Result<FileSettings> {
    let path = s.config.clone().or_else(|| {
        let default = PathBuf::from("luna.toml");
        default.exists().then_some(default)
    });
    match &path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
        None => Ok(FileSettings::default()),
    }
}

fn environment(name: Option<&str>) -> anyhow::Result<Environment> {
    match name.unwrap_or("development") {
        "development" | "dev" => Ok(Environment::Development),
        "production" | "prod" => Ok(Environment::Production),
        other => anyhow::bail!("LUNA_ENV must be development or production, not {other}"),
    }
}

fn log_format(name: Option<&str>) -> anyhow::Result<LogFormat> {
    match name {
        Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some("auto") | None => Ok(if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        }),
        Some(other) => anyhow::bail!("LUNA_LOG_FORMAT must be json or pretty, not {other}"),
    }
}

/// A comma-separated list, trimmed, empty items dropped.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_gives_the_zero_config_defaults() {
        let c = Config::resolve(&Settings {
            config: Some(PathBuf::from("/nonexistent/luna.toml")),
            ..Settings::default()
        });
        assert!(c.is_err(), "an explicit missing file is an error");
        let c = Config::resolve(&Settings::default()).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.bind.port(), 8003);
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.welcome_energy, 85);
        assert_eq!(c.cors_origins.len(), 3);
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let dir = std::env::temp_dir().join(format!("luna-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("luna.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:9000\"\nwelcome_energy = 50\n").unwrap();
        let from_file = Config::resolve(&Settings {
            config: Some(file.clone()),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(
            (from_file.bind.port(), from_file.welcome_energy),
            (9000, 50)
        );
        let flagged = Config::resolve(&Settings {
            config: Some(file),
            welcome_energy: Some(10),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!((flagged.bind.port(), flagged.welcome_energy), (9000, 10));
    }

    #[test]
    fn production_refuses_a_missing_or_short_jwt_secret() {
        let s = Settings {
            environment: Some("production".into()),
            ..Settings::default()
        };
        assert!(Config::resolve(&s).is_err());
        let short = Settings {
            jwt_secret: Some("short".into()),
            ..s.clone()
        };
        assert!(Config::resolve(&short).is_err());
        let http = Settings {
            jwt_secret: Some("x".repeat(32)),
            ..s.clone()
        };
        assert!(
            Config::resolve(&http).is_err(),
            "an http public URL in production"
        );
        let ok = Settings {
            jwt_secret: Some("x".repeat(32)),
            public_url: Some("https://luna.example.com".into()),
            ..s
        };
        assert_eq!(
            Config::resolve(&ok).unwrap().environment,
            Environment::Production
        );
    }
}
