//! `letters`: the "Letters" satellite. Environment: `LUNA_URL` (default
//! `http://127.0.0.1:8003`), `LUNA_SERVICE_KEY` (a key with `energy:read energy:write`),
//! `LETTERS_BIND` (default `127.0.0.1:8010`), `GEMINI_API_KEY` (unset: a deterministic fake
//! model), `GEMINI_MODEL` (default `gemini-2.5-flash`), `GEMINI_BASE_URL` (tests point it at a
//! fake).

use std::sync::Arc;

use luna_client::LunaClient;
use luna_example_satellite::{FakeModel, Gemini, Letters, Model, app, model::GEMINI_BASE};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("LUNA_SERVICE_KEY")
        .map_err(|_| "LUNA_SERVICE_KEY is required (luna keys create --name letters --scopes energy:read energy:write)")?;
    let luna = LunaClient::with_service_key(&env("LUNA_URL", "http://127.0.0.1:8003"), &key)?;
    let model: Arc<dyn Model> = match std::env::var("GEMINI_API_KEY") {
        Ok(k) if !k.is_empty() => Arc::new(Gemini::new(
            &env("GEMINI_BASE_URL", GEMINI_BASE),
            &k,
            &env("GEMINI_MODEL", "gemini-2.5-flash"),
        )),
        _ => {
            eprintln!("GEMINI_API_KEY is not set: letters come from the offline fake model");
            Arc::new(FakeModel)
        }
    };
    let listener = tokio::net::TcpListener::bind(env("LETTERS_BIND", "127.0.0.1:8010")).await?;
    println!("letters listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(Letters { luna, model })).await?;
    Ok(())
}
