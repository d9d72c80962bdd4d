//! The one way a command route runs: scope, body, idempotency key, request checks, use case,
//! one renderer for fresh answers and kept ones.
//!
//! Order (spec §6): 401 (extractor) → 403 missing scope → 413 / malformed JSON → key. None of
//! these touch the key. From then on the principal and the body are known, and every final
//! answer but a 5xx is kept under the key: a 422 or 400 raised while checking the request, and
//! whatever the use case answers (kept in the same transaction as its effect).

use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use luna_app::{AppError, Hub, Idempotency, Reply};
use luna_ports::{EventMetadata, Scope, StoredResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::extract::{Body, JsonBody, Principal, fingerprint, idempotency_key, metadata};
use crate::render::{keep, render, replayed, respond};

/// A mutating call whose principal, body and idempotency key are known.
pub struct Call {
    /// Who calls.
    pub principal: Principal,
    /// What its events record (actor, request id, idempotency key).
    pub meta: EventMetadata,
    /// The scoped key and the request's fingerprint, when the client sent a key.
    idempotency: Option<(String, String)>,
    body: JsonBody,
}

impl Call {
    /// Checks the scope, reads the body and the idempotency key. `route` scopes the key (with
    /// the principal) and enters the fingerprint.
    pub async fn begin(
        principal: Principal,
        scope: Scope,
        headers: &HeaderMap,
        route: &str,
        body: Body,
    ) -> Result<Call, ApiError> {
        principal.require(scope)?;
        let body = body.read().await?;
        let key = idempotency_key(headers)?;
        let meta = metadata(&principal, headers, key.clone());
        let idempotency = key.map(|k| {
            (
                format!("{}|{route}|{k}", principal.id()),
                fingerprint(route, body.canonical()),
            )
        });
        Ok(Call {
            principal,
            meta,
            idempotency,
            body,
        })
    }

    /// Parses the request as `B`, checks it with `prepare` (its refusals are kept under the
    /// key), runs the use case with `exec`, and renders the outcome with `ok` and `dto`.
    pub async fn run<B, R, O, D, Fut>(
        self,
        hub: &Hub,
        ok: StatusCode,
        dto: fn(&O) -> D,
        prepare: impl FnOnce(B, &Principal) -> Result<R, ApiError>,
        exec: impl FnOnce(R, EventMetadata, Option<Idempotency<O>>) -> Fut,
    ) -> Response
    where
        B: DeserializeOwned,
        D: Serialize + 'static,
        O: 'static,
        Fut: Future<Output = Result<Reply<O>, AppError>>,
    {
        let renderer = move |r: &Result<O, AppError>| render(r, ok, dto);
        let principal = self.principal.scope();
        let idem = self.idempotency.map(|(key, fingerprint)| Idempotency {
            key,
            fingerprint,
            principal,
            encode: Arc::new(move |r: &Result<O, AppError>| keep(renderer(r))),
        });
        let prepared = self
            .body
            .parse::<B>()
            .and_then(|b| prepare(b, &self.principal));
        match prepared {
            Ok(request) => respond(exec(request, self.meta, idem).await, renderer),
            Err(refusal) => match idem {
                Some(i) if !refusal.status.is_server_error() => {
                    keep_refusal(hub, &i, &refusal).await
                }
                _ => refusal.into_response(),
            },
        }
    }
}

/// Keeps a refusal of the request itself under its key and answers it — or the answer the key
/// already holds.
async fn keep_refusal<O>(hub: &Hub, idem: &Idempotency<O>, refusal: &ApiError) -> Response {
    let response = StoredResponse {
        status: refusal.status.as_u16(),
        body: refusal.body(),
    };
    match hub.engine().keep_answer(idem, response).await {
        Ok(kept) => replayed(kept),
        Err(e) => ApiError::from(&e).into_response(),
    }
}
