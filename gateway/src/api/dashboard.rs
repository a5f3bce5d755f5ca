//! The live dashboard at `/` (DESIGN §14): one static page and its script, served by
//! the daemon itself (no build step, no CDN), that polls the public `/v1` views once a
//! second. Everything it shows is public already; the relay queue appears only when
//! the operator enters the token (kept in the browser tab, sent as a bearer token).

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");

/// Same-origin only: the page's own script and the node's API, inline styles.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

fn with(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /`: the dashboard page.
pub(super) async fn page() -> Response {
    with(PAGE, "text/html; charset=utf-8")
}

/// `GET /dashboard.js`: its script.
pub(super) async fn script() -> Response {
    with(SCRIPT, "text/javascript; charset=utf-8")
}
