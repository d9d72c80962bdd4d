//! Opaque JSON carried verbatim through the domain.
//!
//! Core has no JSON parser (no dependencies). The edges parse what clients send, keep the text
//! verbatim here, and hand core the few fields its rules read (`app_source`, `target_role`,
//! `industry`, an app event's `action`). Text is shared (`Arc<str>`): clones are cheap.

use std::sync::Arc;

/// The verbatim text of a JSON value, validated by whoever built it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Arc<str>);

impl RawJson {
    /// Wraps JSON text the caller has already validated.
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        RawJson(text.into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The empty JSON object `{}`.
    pub fn empty_object() -> Self {
        RawJson(Arc::from("{}"))
    }
}

/// The context object of an action, with the fields the domain reads pulled out of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Context {
    raw: RawJson,
    app_source: Option<Arc<str>>,
    target_role: Option<Arc<str>>,
    industry: Option<Arc<str>>,
}

impl Context {
    /// Builds a context from its verbatim JSON and the string fields the domain reads
    /// (`None` when absent or not a string).
    pub fn new(
        raw: RawJson,
        app_source: Option<Arc<str>>,
        target_role: Option<Arc<str>>,
        industry: Option<Arc<str>>,
    ) -> Self {
        Context {
            raw,
            app_source,
            target_role,
            industry,
        }
    }

    /// The verbatim JSON object.
    pub fn raw(&self) -> &RawJson {
        &self.raw
    }

    /// `context.app_source`, if a string.
    pub fn app_source(&self) -> Option<&str> {
        self.app_source.as_deref()
    }

    /// `context.target_role`, if a string.
    pub fn target_role(&self) -> Option<&str> {
        self.target_role.as_deref()
    }

    /// `context.industry`, if a string.
    pub fn industry(&self) -> Option<&str> {
        self.industry.as_deref()
    }
}
