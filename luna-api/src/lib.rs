//! The wire types of Luna's HTTP contract (`../shared/spec/LUNA-SPEC.md` §3): every request
//! and response body, shared by the server (`luna-http`) and the Rust client SDK. Plain serde
//! types; OpenAPI schemas (utoipa) behind the `openapi` feature. No domain logic and no
//! storage format here: the server maps its domain and stored events to these by hand.
#![allow(
    missing_docs,
    reason = "field names are the spec's; the spec documents each field"
)]

pub mod auth;
pub mod billing;
pub mod energy;
pub mod errors;
pub mod events;
pub mod hub_events;
pub mod ops;

pub use auth::*;
pub use billing::*;
pub use energy::*;
pub use errors::*;
pub use events::*;
pub use ops::*;
