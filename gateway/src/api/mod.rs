//! The HTTP API (DESIGN §8): routes, handlers and the middleware stack. `app` builds
//! the router apart from serving it, so handlers are testable without a socket.

mod auth;
mod chain;
mod dashboard;
pub mod error;
pub mod peer;
pub mod rate_limit;
pub mod scrape;
mod txs_body;
pub mod views;

use crate::state::AppState;
use axum::{
    error_handling::HandleErrorLayer,
    extract::DefaultBodyLimit,
    http::StatusCode,
    response::{IntoResponse, Response},
    BoxError, Router,
};
use error::ApiError;
use rate_limit::ClientRates;
use std::{sync::Arc, time::Duration};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
pub use txs_body::MAX_TX_BATCH;

/// Most headers one `GET /v1/headers` returns.
pub const MAX_HEADERS: u64 = 500;
/// Transactions after which one sync answer stops adding blocks.
pub const MAX_SYNC_TXS: usize = 20_000;
/// Most blocks one sync request returns.
pub const MAX_SYNC_BLOCKS: u64 = 200;

/// The router with its middleware. From the outside in: tracing, the client's rate
/// (429), the concurrency limit (503) and the request's time (408), then routing;
/// operator routes check the bearer token before their extractors read the body.
pub fn app(shared: Arc<AppState>) -> Router {
    let http = shared.config.http.clone();
    let operator = peer::operator_routes().route_layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        auth::require_operator,
    ));
    let rates = ClientRates::new(
        http.rate_limit_per_s,
        http.rate_limit_burst,
        http.rate_limit_clients,
    )
    .map(Arc::new);
    let router = Router::new()
        .merge(chain::routes())
        .merge(peer::routes())
        .merge(operator)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(http.max_concurrency)
                .timeout(Duration::from_millis(http.request_timeout_ms)),
        );
    let router = match rates {
        Some(rates) => router.layer(axum::middleware::from_fn_with_state(
            rates,
            rate_limit::limit_rate,
        )),
        None => router,
    };
    router.layer(TraceLayer::new_for_http()).with_state(shared)
}

async fn overloaded(err: BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "timeout",
            message: "request took too long".into(),
        }
        .into_response()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "overloaded",
            message: "too many requests in flight; retry".into(),
        }
        .into_response()
    } else {
        ApiError::internal(err).into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "method not allowed on this route".into(),
    }
}
