//! The one error type of the HTTP API: `{"error": {"code", "message"}}` with the right
//! status. Client mistakes become 4xx and are not logged as errors; internal faults
//! become a generic 500 and are logged with their cause.

use crate::node::NodeError;
use axum::{
    extract::{rejection::JsonRejection, FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use distpos_chain::{forkdb::ForkError, TxError};
use serde::de::DeserializeOwned;

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// A 401.
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "missing or wrong bearer token".into(),
        }
    }

    /// A 500; the cause is logged, not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error serving request");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

/// The stable code of a transaction error.
pub fn tx_error_code(e: &TxError) -> &'static str {
    match e {
        TxError::WrongChain { .. } => "wrong_chain",
        TxError::BadSignature(_) => "bad_signature",
        TxError::Expired { .. } => "expired",
        TxError::ExpirationTooFar { .. } => "expiration_too_far",
        TxError::Tapos { .. } => "tapos",
        TxError::Duplicate(_) => "duplicate",
        TxError::BadNonce { .. } => "bad_nonce",
        TxError::FeeTooLow { .. } => "fee_too_low",
        TxError::InsufficientFunds { .. } => "insufficient_funds",
        TxError::Invalid(_) => "invalid",
        TxError::UnknownPeer(_) => "unknown_peer",
        TxError::PeerSuspended(_) => "peer_suspended",
        TxError::InsufficientStake { .. } => "insufficient_stake",
        TxError::NotAProducer(_) => "not_a_producer",
        TxError::KeyInUse(_) => "key_in_use",
        TxError::NotActiveProducer(_) => "not_active_producer",
        TxError::UnknownProposal(_) => "unknown_proposal",
        TxError::ProposalExpired(_) => "proposal_expired",
        TxError::AlreadyApproved(..) => "already_approved",
        TxError::Governance(_) => "governance",
        TxError::NotPeerOwner(_) => "not_peer_owner",
        TxError::InsufficientCollateral { .. } => "insufficient_collateral",
        TxError::BadEvidence(_) => "bad_evidence",
        TxError::UnknownProducerKey(_) => "unknown_producer_key",
        TxError::EvidenceApplied(_) => "evidence_applied",
        TxError::PeerHeaders(_) => "peer_headers_refused",
        TxError::NotYetProvable(_) => "not_yet_provable",
        TxError::BadProof(_) => "bad_proof",
        TxError::AlreadyConsumed(..) => "already_consumed",
        TxError::Fast(_) => "fast_path_refused",
        TxError::NotInFlight(_) => "not_in_flight",
        TxError::SystemOutsideBlock => "system_transaction",
        TxError::SystemEnvelope => "system_envelope",
        TxError::AlreadySlashed(_) => "already_slashed",
        TxError::Params(_) => "invalid_params",
        TxError::Overflow => "overflow",
        TxError::State(_) => "internal",
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Tx(TxError::State(s)) => ApiError::internal(s),
            NodeError::Tx(TxError::Duplicate(h)) => Self {
                status: StatusCode::CONFLICT,
                code: "duplicate",
                message: format!("transaction {h} was already included"),
            },
            NodeError::Tx(t) => ApiError::bad_request(tx_error_code(&t), t.to_string()),
            NodeError::Mempool(m @ crate::node::mempool::MempoolError::Full(_)) => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "mempool_full",
                message: m.to_string(),
            },
            NodeError::Mempool(m @ crate::node::mempool::MempoolError::NonceTaken { .. }) => Self {
                status: StatusCode::CONFLICT,
                code: "nonce_taken",
                message: m.to_string(),
            },
            NodeError::Fork(ForkError::UnknownParent(p)) => Self {
                status: StatusCode::CONFLICT,
                code: "unknown_parent",
                message: format!("parent block {p} is unknown here; syncing"),
            },
            NodeError::Fork(f @ ForkError::BelowLib { .. }) => Self {
                status: StatusCode::CONFLICT,
                code: "below_lib",
                message: f.to_string(),
            },
            NodeError::Fork(f) => ApiError::bad_request("invalid_block", f.to_string()),
            NodeError::Block(b) => ApiError::bad_request("invalid_block", b.to_string()),
            NodeError::Busy(why) => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "busy",
                message: why,
            },
            other => ApiError::internal(other),
        }
    }
}

/// `Json<T>` whose rejections (bad JSON, wrong content type, body too large) are
/// [`ApiError`]s with the right 4xx status.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    let status = rej.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "invalid_json",
    };
    let status = if status.is_client_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError {
        status,
        code,
        message: rej.body_text(),
    }
}
