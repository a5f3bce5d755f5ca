//! The operator's bearer token: one middleware in front of every operator route, run
//! before the route's extractors, so a caller without the token is refused before its
//! body is read or parsed.

use super::error::ApiError;
use crate::state::AppState;
use axum::{
    extract::{Request, State},
    http::{header::AUTHORIZATION, StatusCode},
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Lets the request through only with `Authorization: Bearer <api_token>`: 401
/// otherwise, 403 `operator_disabled` on a node without a token.
pub(super) async fn require_operator(
    State(s): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = s.config.api_token.as_deref() else {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "operator_disabled",
            message: "operator endpoints are disabled: set api_token in the node config".into(),
        });
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match given {
        Some(given) if token_matches(given, token.as_bytes()) => Ok(next.run(req).await),
        _ => Err(ApiError::unauthorized()),
    }
}

/// Compares in time that depends on neither the tokens' contents nor their lengths:
/// both are hashed to 32 bytes, and the digests are compared without an early exit.
fn token_matches(given: &[u8], token: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(token);
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn only_the_exact_token_matches() {
        let token = b"test-operator-token-0123456789";
        assert!(token_matches(token, token));
        assert!(!token_matches(b"test-operator-token-012345678", token));
        assert!(!token_matches(b"test-operator-token-01234567890", token));
        assert!(!token_matches(b"", token));
        assert!(!token_matches(b"TEST-operator-token-0123456789", token));
    }
}
