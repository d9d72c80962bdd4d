//! The `luna` binary's library: configuration, the catalogue loader, wiring of the adapters
//! (the only crate that names them), serving, and the operator commands.

pub mod billing;
pub mod catalog;
pub mod config;
pub mod runtime;
pub mod serve;
