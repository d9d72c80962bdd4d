//! `luna`: serve the hub, migrate, manage service keys, verify the store, print the catalogue.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use luna_ports::Scope;
use luna_server::config::{Config, LogFormat, Settings};
use luna_server::{catalog, runtime, serve};

/// mimalloc instead of glibc's malloc: under load the hub's request path spent ~12 % of its
/// CPU in glibc's malloc and free, part of it waiting on arena locks (`perf`, issue 9).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "luna",
    version,
    about = "Luna, the energy hub of the Phoenix apps"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the hub over HTTP.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage service keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Replay every stream and check the invariants and projections (non-zero exit on a violation).
    Verify,
    /// Print the effective cost grid and packs.
    Catalog,
    /// Look up or unlock user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Check the Stripe configuration, reconcile payments.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Check the key, the Unlimited price and the webhook secret (non-zero exit on a problem).
    Check,
    /// Credit, exactly once, every succeeded payment of ours that no path credited.
    Reconcile {
        /// Payments created since (RFC 3339 or unix seconds).
        #[arg(long)]
        since: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Print the account of an email (never its password hash).
    Find {
        /// The email (any case).
        email: String,
    },
    /// Clear the failed-login lock-out of an email.
    Unlock {
        /// The email (any case).
        email: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print its secret once.
    Create {
        /// A label.
        #[arg(long)]
        name: String,
        /// Scopes: energy:read energy:write events:read events:write billing:write admin.
        #[arg(long, num_args = 1.., required = true)]
        scopes: Vec<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id.
        id: String,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::resolve(&cli.settings)?;
    match cli.command {
        Command::Serve => {
            init_logs(config.log_format);
            let listener = tokio::net::TcpListener::bind(config.bind).await?;
            serve::serve(config, listener, serve::shutdown_signal()).await?;
        }
        Command::Migrate => {
            runtime::open_stores(&config.database_url).await?;
            println!(
                "migrations applied to {}",
                serve::redact(&config.database_url)
            );
        }
        Command::Keys { command } => {
            let stores = runtime::open_stores(&config.database_url).await?;
            return keys(command, &runtime::hub(&config, &stores)?).await;
        }
        Command::Verify => {
            let stores = runtime::open_stores(&config.database_url).await?;
            return verify(&stores).await;
        }
        Command::Users { command } => {
            let stores = runtime::open_stores(&config.database_url).await?;
            return users(command, &runtime::hub(&config, &stores)?).await;
        }
        Command::Billing { command } => {
            let stores = runtime::open_stores(&config.database_url).await?;
            return billing(command, &runtime::hub(&config, &stores)?).await;
        }
        Command::Catalog => {
            print!("{}", catalog::describe(&runtime::catalog(&config)?));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `luna billing …`.
async fn billing(command: BillingCommand, hub: &luna_app::Hub) -> anyhow::Result<ExitCode> {
    match command {
        BillingCommand::Check => {
            let mut ok = true;
            for line in hub.billing_check().await {
                match line {
                    Ok(m) => println!("ok    {m}"),
                    Err(m) => {
                        ok = false;
                        println!("FAIL  {m}");
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        BillingCommand::Reconcile { since } => {
            let since = luna_server::billing::parse_since(&since)?;
            let report = hub.reconcile(since).await?;
            print!("{}", luna_server::billing::describe(&report));
            Ok(if report.unmatched.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

/// `luna keys …`.
async fn keys(command: KeysCommand, hub: &luna_app::Hub) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create { name, scopes } => {
            let scopes = scopes
                .iter()
                .flat_map(|s| s.split([',', ' ']))
                .filter(|s| !s.is_empty())
                .map(|s| Scope::parse(s).ok_or_else(|| anyhow::anyhow!("unknown scope {s}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (key, secret) = hub.create_key(&name, scopes).await?;
            println!(
                "key {} created; its secret, shown this once:\n{secret}",
                key.id
            );
        }
        KeysCommand::List => {
            for k in hub.list_keys().await? {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}  {:<8} {:<24} {}", k.id, state, k.name, scopes.join(" "));
            }
        }
        KeysCommand::Revoke { id } => {
            let id = luna_core::Id::parse(&id).map_err(|e| anyhow::anyhow!("{e}"))?;
            if hub.revoke_key(id).await? {
                println!("key {id} revoked");
            } else {
                eprintln!("no active key {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `luna users …`.
async fn users(command: UsersCommand, hub: &luna_app::Hub) -> anyhow::Result<ExitCode> {
    let parse = |e: &str| luna_core::Email::parse(e).map_err(|e| anyhow::anyhow!("{e}"));
    match command {
        UsersCommand::Find { email } => {
            let Some(a) = hub.find_account(&parse(&email)?).await? else {
                eprintln!("no account with email {email}");
                return Ok(ExitCode::FAILURE);
            };
            println!("user_id     {}", a.user);
            println!("email       {}", a.email);
            println!("name        {}", a.name.as_deref().unwrap_or("-"));
            println!("created_at  {}", luna_http::render::rfc3339(a.created_at));
            let sessions = hub.sessions(&a.user).await?;
            let now = hub.now();
            let live = sessions.iter().filter(|s| s.is_live(now)).count();
            println!("sessions    {live} live, {} in all", sessions.len());
        }
        UsersCommand::Unlock { email } => {
            let n = hub.unlock(&parse(&email)?).await?;
            println!("{email}: {n} failed-login counter(s) cleared");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `luna verify`: replays every stream with a progress bar; non-zero exit on a violation.
async fn verify(stores: &runtime::Stores) -> anyhow::Result<ExitCode> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} streams verified {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let report = luna_app::verify::verify(stores.store.as_ref(), |n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    println!(
        "{} streams, {} events replayed",
        report.streams, report.events
    );
    if report.is_ok() {
        println!("OK: every invariant holds and every projection matches its events");
        Ok(ExitCode::SUCCESS)
    } else {
        for v in &report.violations {
            println!("VIOLATION {}: {}", v.stream, v.problem);
        }
        println!("{} violation(s)", report.violations.len());
        Ok(ExitCode::FAILURE)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("luna: {e:#}");
            ExitCode::FAILURE
        }
    }
}
