//! Luna over HTTP: the axum router, wire DTOs, authentication and authorization, the one error
//! mapping, idempotency keys, OpenAPI 3.1 (generated from the handlers) and Swagger UI,
//! health, readiness and Prometheus metrics, request ids and JSON access logs.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use luna_app::Hub;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub mod canonical;
pub mod client;
pub mod command;
pub mod error;
pub mod extract;
pub mod limits;
pub mod live;
pub mod render;
pub mod routes;
pub mod server;
pub mod web;
pub mod wire;

pub use error::ApiError;
pub use extract::Principal;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// Whether the server listens on a loopback address (`/metrics` is then public to loopback
    /// peers).
    pub loopback_bind: bool,
    /// Proxies whose `X-Forwarded-For` is believed for the client address.
    pub trusted_proxies: Vec<client::Cidr>,
    /// The hub's external base URL (pages' cookies are `Secure` when it is https; cross-site
    /// form posts are refused by comparing origins with it).
    pub public_url: String,
    /// Stripe's hosted Checkout origin (the pages' CSP `form-action` allows it).
    pub checkout_origin: String,
}

/// What every handler sees: shared, so the per-request clones axum makes of the state cost
/// one reference count (cloning and dropping six handles per extraction was ~3 % of a check's
/// CPU, `perf`).
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl AppState {
    /// The state of a router over these parts.
    pub fn new(shared: AppShared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppShared {
    /// The use cases.
    pub hub: Arc<Hub>,
    /// The Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
    /// Open live-balance streams.
    pub live: Arc<live::Registry>,
    /// Turns true when the server shuts down (live streams end).
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// The admission limit.
    pub admission: Arc<Admission>,
}

/// The admission limit (spec §6): places for requests being served, and how long a request
/// waits for one before it is shed.
#[derive(Debug)]
pub struct Admission {
    /// The places.
    pub places: tokio::sync::Semaphore,
    /// The longest wait.
    pub wait: std::time::Duration,
}

impl Admission {
    /// `places` requests at once, each waiting up to `wait` for a place.
    pub fn new(places: usize, wait: std::time::Duration) -> Admission {
        Admission {
            places: tokio::sync::Semaphore::new(places.max(1)),
            wait,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Luna Hub", description = "Energy (prepaid credit) hub of the Phoenix apps. Contract: LUNA-SPEC.md."),
    modifiers(&BearerAuth),
    tags(
        (name = "energy", description = "Balances, consumes, holds, refunds, history"),
        (name = "events", description = "App events and the Capital Narratif"),
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "billing", description = "Packs, payments and Luna Unlimited through Stripe"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A service key (luna_sk_…) or a user access token"))
                    .build(),
            ),
        );
    }
}

/// The answers any route may give beside its own (spec §3.2, §6): 401 on every protected
/// route, 413 and 422 on every body, 400 on every user path, 503 everywhere (storage down or
/// load shed, with `Retry-After`).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, ResponseBuilder, content::ContentBuilder};
        let error = |description: &str, schema: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build(),
                )
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            let user_path = path.contains("{user_id}");
            let ops = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.delete, false),
            ];
            for (op, has_body) in ops {
                let Some(op) = op.as_mut() else { continue };
                let protected = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let responses = &mut op.responses.responses;
                let mut add = |code: &str, description: &str, schema: &str| {
                    responses
                        .entry(code.to_owned())
                        .or_insert_with(|| error(description, schema).into());
                };
                if protected {
                    add("401", "Missing, bad or revoked credentials", "ErrorBody");
                    add("403", "Scope or user not allowed", "ErrorBody");
                }
                if has_body {
                    add("400", "Invalid user id, or an unknown action", "ErrorBody");
                    add("413", "Request body too large", "ErrorBody");
                    add("422", "Invalid request", "ValidationErrorBody");
                }
                if user_path {
                    add("400", "Invalid user id", "ErrorBody");
                    add("422", "Invalid query parameter", "ValidationErrorBody");
                }
                add(
                    "503",
                    "Unavailable (storage down or load shed; see Retry-After)",
                    "ErrorBody",
                );
            }
        }
    }
}

/// The API's routes and their OpenAPI description, from the same handler list.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{
        admin, auth, balance, billing, events, history, holds, live, narrative, ops, refunds,
    };
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(balance::check))
        .routes(routes!(balance::can_perform))
        .routes(routes!(balance::consume))
        .routes(routes!(holds::reserve))
        .routes(routes!(holds::commit))
        .routes(routes!(holds::release))
        .routes(routes!(refunds::refund))
        .routes(routes!(refunds::refund_policy))
        .routes(routes!(admin::grant))
        .routes(routes!(history::transactions))
        .routes(routes!(history::analytics))
        .routes(routes!(balance::costs))
        .routes(routes!(events::post_event))
        .routes(routes!(events::list_events))
        .routes(routes!(narrative::narrative))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::profile))
        .routes(routes!(auth::me))
        .routes(routes!(auth::sessions))
        .routes(routes!(auth::delete_session))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(billing::packs))
        .routes(routes!(billing::create_intent))
        .routes(routes!(billing::confirm_payment))
        .routes(routes!(billing::purchase))
        .routes(routes!(billing::create_subscription))
        .routes(routes!(billing::cancel_subscription))
        .routes(routes!(billing::webhook))
        .routes(routes!(billing::history))
        .routes(routes!(live::live))
        .routes(routes!(web::app_live))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    // After the routes are in: a modifier on `ApiDoc` would run before they are added.
    utoipa::Modify::modify(&CommonResponses, &mut doc);
    (router, doc)
}

/// The OpenAPI description (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The full application: API routes, `/openapi.json`, `/docs`, and the middleware stack.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api();
    let admission = state.admission.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            state
                .config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ]);
    let request_id = HeaderName::from_static(REQUEST_ID);
    api.merge(web::router(state.clone()))
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(|| async { ApiError::message(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::message(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .layer(middleware::from_fn_with_state(admission, admit))
        .layer(middleware::from_fn(access_log))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits::REQUEST_TIMEOUT,
        ))
        .layer(cors)
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(drop_unfit_request_id))
}

/// The admission limit (spec §6): a request waits up to `Admission::wait` for a place, else it
/// is shed with 503 and `Retry-After` before anything runs — so it changed nothing.
async fn admit(
    axum::extract::State(admission): axum::extract::State<Arc<Admission>>,
    req: Request,
    next: Next,
) -> Response {
    if limits::admission_exempt(req.uri().path()) {
        return next.run(req).await;
    }
    if let Ok(Ok(_place)) = tokio::time::timeout(admission.wait, admission.places.acquire()).await {
        return next.run(req).await;
    }
    metrics::counter!("luna_requests_shed_total").increment(1);
    ApiError::message(StatusCode::SERVICE_UNAVAILABLE, "Service busy, retry")
        .retry_after(1)
        .into_response()
}

/// The request id header.
const REQUEST_ID: &str = "x-request-id";

/// Whether a client's request id may be kept (and stored as events' correlation id): at most
/// `MAX_REQUEST_ID_LEN` visible ASCII characters.
pub fn is_fit_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= limits::MAX_REQUEST_ID_LEN
        && id.iter().all(|c| (0x21..=0x7e).contains(c))
}

/// Removes a client request id that is too long or not printable, so a fresh one is generated.
async fn drop_unfit_request_id(mut req: Request, next: Next) -> Response {
    let fit = req
        .headers()
        .get_all(REQUEST_ID)
        .iter()
        .all(|v| is_fit_request_id(v.as_bytes()));
    if !fit {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// Answers 413 at once when the declared `Content-Length` is over the route's limit, instead of
/// waiting for a body that will be refused anyway.
async fn refuse_declared_oversize(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = limits::body_limit(req.uri().path()) as u64;
    if declared.is_some_and(|n| n > limit) {
        return ApiError::body_too_large().into_response();
    }
    next.run(req).await
}

/// The metric label of a method: a closed set, so clients cannot create series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

tokio::task_local! {
    /// The user the current request acts for, recorded when it is resolved, for the access log.
    static LOGGED_USER: std::cell::RefCell<Option<String>>;
}

/// Records the user of the current request for its access-log line.
pub(crate) fn log_user(user: &luna_core::UserId) {
    let _ = LOGGED_USER.try_with(|u| *u.borrow_mut() = Some(user.to_string()));
}

async fn access_log(req: Request, next: Next) -> Response {
    LOGGED_USER
        .scope(std::cell::RefCell::new(None), logged(req, next))
        .await
}

async fn logged(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(req).await;
    let latency = start.elapsed();
    let status = response.status().as_u16();
    if response.status().is_server_error() {
        // The one place a server error is logged, with its request id.
        let cause = response
            .extensions()
            .get::<error::ErrorCause>()
            .map_or("", |c| c.0.as_str());
        if response.status() == StatusCode::SERVICE_UNAVAILABLE && cause.is_empty() {
            // Load shed by the admission limit (no cause: nothing failed): a warning, so a shed
            // storm does not bury the real errors. A 503 with a cause (storage unavailable, disk
            // full) stays an error.
            tracing::warn!(request_id = %request_id, route = %route, status, "service busy, shed");
        } else {
            tracing::error!(request_id = %request_id, route = %route, status, cause, "server error");
        }
    }
    let user = LOGGED_USER.try_with(|u| u.borrow().clone()).ok().flatten();
    // Every label comes from a closed set: matched routes, seven methods, status codes.
    let method_label = method_label(&method);
    metrics::counter!("luna_http_requests_total", "route" => route.clone(), "method" => method_label, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("luna_http_request_duration_seconds", "route" => route.clone(), "method" => method_label)
        .record(latency.as_secs_f64());
    tracing::info!(
        request_id = %request_id,
        method = %method_label,
        route = %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        user_id = user.as_deref().unwrap_or(""),
        "request"
    );
    response
}
