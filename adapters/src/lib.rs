//! # distpos-adapters
//!
//! How this node talks to other chains. [`PeerChain`] is what the relay and header sync
//! need from a peer chain — fetch its headers, fetch a proof, deliver a batch of
//! transfers, deliver a batch of receipts (interchain v2, DESIGN §6.1) — and
//! [`HttpPeer`] implements it for distpos peers over their `/v1` peer protocol. The
//! wire types ([`BatchDelivery`], [`BatchReceipts`], …) are shared
//! with the gateway's HTTP handlers so both sides agree on one format, and answers are
//! typed ([`AckStatus`], [`TransferStage`]) with the same snake_case strings on the
//! wire. [`ChainNodes`] talks to this chain's *other nodes* (gossip, catch-up) — a
//! different thing from peer chains — and [`Client`] is the typed client of a node's
//! `/v1` API that the command line, the demo and the tests use.
//!
//! Every response is untrusted input: bodies are size-limited, requests time out, and
//! nothing a peer says is believed until the light client has checked it. Adapters to
//! other kinds of chain can implement the same trait later.

pub mod chain_nodes;
pub mod client;

pub use chain_nodes::{ChainNodes, NodeStatus, GOSSIP_HEADER};
pub use client::Client;

use distpos_chain::{Receipt, Transaction};
use distpos_proofs::{
    light_client::ProofBundle, multiproof::MultiProof, ChainId, Hash32, SignedHeader,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::{future::Future, time::Duration};

/// Interchain v2 (DESIGN §6.1): every transfer to one chain in one irreversible block
/// of ours (or a chunk of them), under one multiproof (`POST /v1/relay/v2/deliveries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDelivery {
    /// The chain the transfers come from.
    pub source_chain: ChainId,
    /// Source block height.
    pub height: u64,
    /// The signed transfers, in block order.
    pub transfers: Vec<Transaction>,
    /// Their positions in the block, strictly increasing.
    pub indices: Vec<u32>,
    /// One multiproof of them all against the block's `tx_root`.
    pub proof: MultiProof,
    /// Unused, left empty: a destination takes the headers that prove a batch only
    /// from its own header sync (headers from an anonymous sender could fill the run
    /// its next block carries with forged ones). Accepted and ignored.
    #[serde(default)]
    pub headers: Vec<SignedHeader>,
}

/// Interchain v2: a destination's receipts of batches from one source chain in one of
/// its irreversible blocks, sent back under one multiproof
/// (`POST /v1/relay/v2/receipts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchReceipts {
    /// The chain that produced the receipts (the transfers' destination).
    pub receipt_chain: ChainId,
    /// Its block height.
    pub height: u64,
    /// The receipts of its `InboundBatch` transactions, in block order.
    pub receipts: Vec<Receipt>,
    /// Their positions in the block, strictly increasing.
    pub indices: Vec<u32>,
    /// One multiproof of them all against the block's `receipts_root`.
    pub proof: MultiProof,
    /// Unused, left empty (as above).
    #[serde(default)]
    pub headers: Vec<SignedHeader>,
}

/// The underwritten fast path (DESIGN §11): a transfer of ours in a block that is not
/// irreversible yet, with the endorsements of bonded underwriters that together
/// cover it (`POST /v1/relay/fast` on the destination).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastDelivery {
    /// The chain the transfer comes from.
    pub source_chain: ChainId,
    /// The block that holds it.
    pub header: SignedHeader,
    /// The transfer.
    pub transfer: Transaction,
    /// Its position in the block.
    pub index: u32,
    /// Its inclusion proof against the block's `tx_root`.
    pub proof: MultiProof,
    /// The shares, adding up to amount + fast fee.
    pub endorsements: Vec<distpos_proofs::fast::Endorsement>,
}

/// A node of the source chain asks another for a share of a fast transfer in one of
/// the chain's blocks (`POST /v1/fast/endorse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndorseRequest {
    /// The block's id.
    pub block_id: Hash32,
    /// The transfer's hash.
    pub tx: Hash32,
    /// The share asked for.
    #[serde(with = "distpos_proofs::codec::dec_u128")]
    pub want: u128,
}

/// The answer: a share (possibly smaller than asked), or none and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndorseAnswer {
    /// The endorsement, if any.
    #[serde(default)]
    pub endorsement: Option<distpos_proofs::fast::Endorsement>,
    /// Why no (or a smaller) share.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a peer answers to a delivery or a receipt. Only `already_settled` and
/// `already_refunded` (to a receipt) are final; everything else leaves the item due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Taken: its transaction waits in the peer's mempool (a restart loses it), or a
    /// settlement is in a block that is not irreversible yet.
    Accepted,
    /// Not provable yet: the peer's light client has not seen the block as
    /// irreversible.
    Pending,
    /// The transfer was consumed already (delivered or bounced) on the destination.
    AlreadyConsumed,
    /// The source settled the transfer as delivered, irreversibly.
    AlreadySettled,
    /// The source refunded the transfer, irreversibly.
    AlreadyRefunded,
}

impl AckStatus {
    /// The source settled or refunded the transfer for good: a receipt is done.
    pub fn settles_receipt(self) -> bool {
        matches!(self, AckStatus::AlreadySettled | AckStatus::AlreadyRefunded)
    }

    /// The answer's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Accepted => "accepted",
            AckStatus::Pending => "pending",
            AckStatus::AlreadyConsumed => "already_consumed",
            AckStatus::AlreadySettled => "already_settled",
            AckStatus::AlreadyRefunded => "already_refunded",
        }
    }
}

impl std::fmt::Display for AckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a peer answers to a delivery or a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayAck {
    /// The answer.
    pub status: AckStatus,
    /// The transaction the peer created for it, if any.
    #[serde(default)]
    pub tx: Option<Hash32>,
    /// Why it is pending, if it is.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Where an outbound transfer is, as the source sees it, or how an inbound one ended
/// (`GET /v1/txs/{hash}`, `cross_chain.stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStage {
    /// Outbound: in a block, waiting for it to be irreversible before it is relayed.
    InFlight,
    /// Outbound: queued to the destination, not yet taken.
    Forwarding,
    /// Outbound: taken by the destination, waiting for its receipt. Inbound: the
    /// recipient was credited.
    Delivered,
    /// Outbound: the destination's receipt of delivery settled it.
    SettledDelivered,
    /// Outbound: the destination bounced it and the sender was refunded.
    Refunded,
    /// Outbound: the relay item outlived its maximum lifetime (an operator can retry).
    Expired,
    /// Inbound: refused (collateral short, deadline passed, peer suspended, bad
    /// recipient); the source refunds it.
    Bounced,
    /// Inbound: admitted, and delayed by this chain's policy for its source (DESIGN
    /// §13) until `forwarding.state.delayed.until`; governance may cancel it.
    Delayed,
}

/// A page of a peer's headers (`GET /v1/headers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderPage {
    /// The peer's head height.
    pub head: u64,
    /// The peer's LIB.
    pub lib: u64,
    /// Consecutive signed headers.
    pub headers: Vec<SignedHeader>,
}

/// A peer's proof of one of its transactions (`GET /v1/proofs/tx/{hash}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxProof {
    /// Block height.
    pub height: u64,
    /// Whether the block is irreversible on the peer.
    pub irreversible: bool,
    /// The transaction and its proof.
    pub tx: ProofBundle,
    /// The receipt and its proof.
    pub receipt: ProofBundle,
}

/// Why talking to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// Could not connect, or the request timed out (try another endpoint).
    #[error("{endpoint}: unreachable: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The peer answered with an error status.
    #[error("{endpoint}: HTTP {status}: {body}")]
    Status {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The peer's error body (truncated).
        body: String,
    },
    /// The response was too large or not the expected JSON.
    #[error("{endpoint}: bad response: {reason}")]
    BadResponse {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// What was waited for did not happen in time.
    #[error("{0}")]
    TimedOut(String),
}

impl AdapterError {
    /// True when another endpoint (or a later retry) may succeed: unreachable, 5xx,
    /// 408 or 429. A 4xx refusal is the peer's final word on this request.
    pub fn is_retryable(&self) -> bool {
        match self {
            AdapterError::Unreachable { .. }
            | AdapterError::BadResponse { .. }
            | AdapterError::TimedOut(_) => true,
            AdapterError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
        }
    }
}

/// What this node needs from a peer chain. `endpoint` is a base URL from the routing
/// table.
pub trait PeerChain {
    /// Headers `from..=to` (the peer may return fewer).
    fn headers(
        &self,
        endpoint: &str,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<HeaderPage, AdapterError>> + Send;
    /// The proof of one of the peer's transactions.
    fn tx_proof(
        &self,
        endpoint: &str,
        tx: &Hash32,
    ) -> impl Future<Output = Result<TxProof, AdapterError>> + Send;
    /// Delivers a v2 batch of transfers (one block's, under one multiproof).
    fn deliver_v2(
        &self,
        endpoint: &str,
        batch: &BatchDelivery,
    ) -> impl Future<Output = Result<RelayAck, AdapterError>> + Send;
    /// Delivers a v2 batch of receipts back to the transfers' source.
    fn deliver_receipts_v2(
        &self,
        endpoint: &str,
        batch: &BatchReceipts,
    ) -> impl Future<Output = Result<RelayAck, AdapterError>> + Send;
}

/// [`PeerChain`] over a distpos peer's HTTP API.
#[derive(Clone)]
pub struct HttpPeer {
    http: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpPeer {
    /// A client with a per-request `timeout` and a response size cap.
    pub fn new(timeout: Duration, max_response_bytes: usize) -> Result<Self, AdapterError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| AdapterError::Unreachable {
                endpoint: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            max_response_bytes,
        })
    }

    async fn read<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, AdapterError> {
        let unreachable = |e: reqwest::Error| AdapterError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(AdapterError::BadResponse {
                    endpoint: endpoint.to_string(),
                    reason: format!("response larger than {} bytes", self.max_response_bytes),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            return Err(AdapterError::Status {
                endpoint: endpoint.to_string(),
                status,
                body: distpos_proofs::codec::truncate(&text),
            });
        }
        serde_json::from_slice(&body).map_err(|e| AdapterError::BadResponse {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })
    }

    fn url(endpoint: &str, path: &str) -> String {
        format!("{}{path}", endpoint.trim_end_matches('/'))
    }
}

impl PeerChain for HttpPeer {
    async fn headers(
        &self,
        endpoint: &str,
        from: u64,
        to: u64,
    ) -> Result<HeaderPage, AdapterError> {
        let req = self
            .http
            .get(Self::url(endpoint, "/v1/headers"))
            .query(&[("from", from), ("to", to)]);
        let page: HeaderPage = self.read(endpoint, req).await?;
        if page.headers.len() as u64 > to.saturating_sub(from) + 1 {
            return Err(AdapterError::BadResponse {
                endpoint: endpoint.into(),
                reason: "more headers than asked for".into(),
            });
        }
        Ok(page)
    }

    async fn tx_proof(&self, endpoint: &str, tx: &Hash32) -> Result<TxProof, AdapterError> {
        self.read(
            endpoint,
            self.http
                .get(Self::url(endpoint, &format!("/v1/proofs/tx/{tx}"))),
        )
        .await
    }

    async fn deliver_v2(
        &self,
        endpoint: &str,
        batch: &BatchDelivery,
    ) -> Result<RelayAck, AdapterError> {
        self.read(
            endpoint,
            self.http
                .post(Self::url(endpoint, "/v1/relay/v2/deliveries"))
                .json(batch),
        )
        .await
    }

    async fn deliver_receipts_v2(
        &self,
        endpoint: &str,
        batch: &BatchReceipts,
    ) -> Result<RelayAck, AdapterError> {
        self.read(
            endpoint,
            self.http
                .post(Self::url(endpoint, "/v1/relay/v2/receipts"))
                .json(batch),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_statuses_keep_the_strings_clients_see() {
        for (status, text) in [
            (AckStatus::Accepted, "accepted"),
            (AckStatus::Pending, "pending"),
            (AckStatus::AlreadyConsumed, "already_consumed"),
            (AckStatus::AlreadySettled, "already_settled"),
            (AckStatus::AlreadyRefunded, "already_refunded"),
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), text);
            assert_eq!(status.as_str(), text);
            assert_eq!(
                serde_json::from_value::<AckStatus>(text.into()).unwrap(),
                status
            );
            assert_eq!(
                status.settles_receipt(),
                text.starts_with("already_") && text != "already_consumed"
            );
        }
        assert!(serde_json::from_value::<AckStatus>("done".into()).is_err());
        for (stage, text) in [
            (TransferStage::InFlight, "in_flight"),
            (TransferStage::Forwarding, "forwarding"),
            (TransferStage::Delivered, "delivered"),
            (TransferStage::SettledDelivered, "settled_delivered"),
            (TransferStage::Refunded, "refunded"),
            (TransferStage::Expired, "expired"),
            (TransferStage::Bounced, "bounced"),
        ] {
            assert_eq!(serde_json::to_value(stage).unwrap(), text);
        }
    }

    #[test]
    fn retryable_errors() {
        let s = |status| AdapterError::Status {
            endpoint: "e".into(),
            status,
            body: String::new(),
        };
        assert!(s(503).is_retryable());
        assert!(s(429).is_retryable());
        assert!(!s(400).is_retryable());
        assert!(!s(409).is_retryable());
        assert!(AdapterError::Unreachable {
            endpoint: "e".into(),
            reason: "x".into()
        }
        .is_retryable());
    }

    #[tokio::test]
    async fn oversized_and_malformed_responses_are_errors() {
        // A tiny HTTP server that answers every request with a fixed body.
        async fn serve(body: &'static str) -> String {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                while let Ok((mut s, _)) = l.accept().await {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                }
            });
            format!("http://{addr}")
        }
        let big: &'static str = Box::leak(
            format!(
                "{{\"head\":1,\"lib\":1,\"headers\":[{}]}}",
                "0,".repeat(5000) + "0"
            )
            .into_boxed_str(),
        );
        let peer = HttpPeer::new(Duration::from_secs(5), 1024).unwrap();
        let url = serve(big).await;
        assert!(matches!(
            peer.headers(&url, 1, 2).await,
            Err(AdapterError::BadResponse { .. })
        ));
        let url = serve("{\"not\": \"a page\"}").await;
        assert!(matches!(
            peer.headers(&url, 1, 2).await,
            Err(AdapterError::BadResponse { .. })
        ));
        let dead = "http://127.0.0.1:1";
        assert!(matches!(
            peer.headers(dead, 1, 2).await,
            Err(AdapterError::Unreachable { .. })
        ));
    }
}
