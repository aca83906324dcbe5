//! The HTTP API. Record routes follow Salesforce's REST shapes (`/records/{Object}`, errors as
//! `[{errorCode, message, fields}]`) so the people who know that API find their way.
//!
//! Every API route, with the one API scope it needs, is a line of [`api_routes`]; the router checks
//! the bearer token and that scope ([`Caller`]) before the route's handler or any of its extractors
//! runs. `/health`, the provider webhooks (which carry their own secret or signature) and the
//! console (`/console`, signed in with a session cookie; see `console`) are the only routes outside
//! that table; the console checks the same scopes with the same function.
//!
//! What a client can make herald do is bounded: a request body is at most [`MAX_BODY_BYTES`], and an
//! error answer lists at most [`herald_engine::FieldProblem::MAX_LISTED`] problems and counts the
//! rest, so no request draws an answer much larger than itself.

mod actions;
mod auth;
mod console;
mod credentials;
mod error;
mod messages;
mod project;
mod records;
mod runs;
mod webhooks;

pub use auth::Caller;
pub use console::{CONTENT_SECURITY_POLICY, SESSION_COOKIE};
pub use runs::run_json;

use auth::RouteScope;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, get, on, post};
use axum::{Extension, Json, Router};
use herald_engine::Engine;
use herald_project::ApiScope;

/// One route of the API (`/api/v1`, and the Salesforce-shaped `/services/data/v{version}`): its method, its path, and the API scope a caller must hold.
pub struct ApiRoute {
    pub method: Method,
    pub path: &'static str,
    pub scope: ApiScope,
    handler: MethodRouter<Engine>,
}

impl ApiRoute {
    fn new<H, T>(method: Method, path: &'static str, scope: ApiScope, handler: H) -> ApiRoute
    where
        H: Handler<T, Engine>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("the route table uses standard methods");
        ApiRoute { method, path, scope, handler: on(filter, handler) }
    }
}

/// Every API route and the scope it needs: the one place where a route's access is decided.
pub fn api_routes() -> Vec<ApiRoute> {
    use ApiScope::*;
    use Method as M;
    #[rustfmt::skip]
    let routes = vec![
        ApiRoute::new(M::POST,  "/api/v1/records/{object}",           WriteRecords, records::create),
        ApiRoute::new(M::GET,   "/api/v1/records/{object}/{id}",      ReadRecords,  records::get),
        ApiRoute::new(M::PATCH, "/api/v1/records/{object}/{id}",      WriteRecords, records::update),
        ApiRoute::new(M::GET,   "/api/v1/records/{object}/{id}/runs", ReadRuns,     records::runs),
        ApiRoute::new(M::GET,   "/api/v1/runs",                       ReadRuns,     runs::list),
        ApiRoute::new(M::GET,   "/api/v1/runs/{id}",                  ReadRuns,     runs::get),
        ApiRoute::new(M::POST,  "/api/v1/runs/{id}/retry",            ManageFlows,  runs::retry),
        ApiRoute::new(M::POST,  "/api/v1/runs/{id}/wake",             ManageFlows,  runs::wake),
        ApiRoute::new(M::GET,   "/api/v1/messages",                   ReadRuns,     messages::list),
        ApiRoute::new(M::GET,   "/api/v1/messages/{id}",              ReadRuns,     messages::get),
        ApiRoute::new(M::GET,   "/api/v1/receipts",                   ReadRuns,     messages::receipts),
        ApiRoute::new(M::GET,   "/api/v1/consent",                    ReadRuns,     messages::consent),
        ApiRoute::new(M::PUT,   "/api/v1/credentials/{external}/{principal}/{parameter}",
                                                                      ManageCredentials, credentials::set),
        ApiRoute::new(M::GET,   "/services/data/{version}/actions/custom/flow",
                                                                      RunFlows,     actions::list),
        ApiRoute::new(M::POST,  "/services/data/{version}/actions/custom/flow/{flow}",
                                                                      RunFlows,     actions::invoke),
        ApiRoute::new(M::POST,  "/api/v1/project/reload",             ManageFlows,  project::reload),
    ];
    routes
}

/// The largest request body the API reads (records, secrets, webhooks); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP API of `herald serve`.
pub fn router(engine: Engine) -> Router {
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/webhooks/{name}", post(webhooks::receive))
        .merge(console::routes());
    for route in api_routes() {
        // The layer added last runs first: it sets the route's scope, then `Caller` checks the token
        // and that scope, and only then do the handler's own extractors (path, query, body) run.
        let handler = route
            .handler
            .route_layer(axum::middleware::from_extractor_with_state::<Caller, _>(engine.clone()))
            .route_layer(Extension(RouteScope(route.scope)));
        router = router.route(route.path, handler);
    }
    router.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(engine)
}

/// Needs no token: what a load balancer or an operator checks (`status` is `ok` or `degraded`).
async fn health(axum::extract::State(engine): axum::extract::State<Engine>) -> Json<herald_engine::Health> {
    Json(engine.health().await)
}

/// A listing's `limit`: 100 unless given, at least 1 and at most 10,000.
fn limit(requested: Option<i64>) -> i64 {
    requested.unwrap_or(100).clamp(1, 10_000)
}
