//! Talking to the other nodes of our own chain: block and transaction gossip, and
//! catch-up sync. Every response is untrusted input: blocks go through the same
//! verification as any other.

use distpos_chain::{Block, Transaction};
use serde::Deserialize;
use std::time::Duration;
use tracing::debug;

/// Header marking a transaction forwarded by another node of our chain (not forwarded
/// again).
pub const GOSSIP_HEADER: &str = "x-distpos-gossip";

/// HTTP client for this chain's other nodes (not other chains: see [`crate::PeerChain`]).
#[derive(Clone)]
pub struct ChainNodes {
    http: reqwest::Client,
    peers: Vec<String>,
}

/// What another node of our chain says about it (the fields sync and the outage
/// check need).
#[derive(Debug, Deserialize)]
pub struct NodeStatus {
    /// Its head.
    pub head: BlockRef,
    /// Its LIB.
    pub lib: BlockRef,
    /// Its producer key, if it produces.
    #[serde(default)]
    pub producer_key: Option<distpos_proofs::PublicKey>,
}

impl NodeStatus {
    /// Its head as fork choice sees it.
    pub fn tip(&self) -> distpos_proofs::consensus::ForkTip {
        distpos_proofs::consensus::ForkTip {
            lib: self.lib.height,
            height: self.head.height,
            id: self.head.id,
        }
    }
}

/// A block reference from a peer.
#[derive(Debug, Deserialize)]
pub struct BlockRef {
    /// Height.
    pub height: u64,
    /// Block id.
    pub id: distpos_proofs::Hash32,
}

#[derive(Deserialize)]
struct BlocksResponse {
    blocks: Vec<Block>,
}

impl ChainNodes {
    /// A client for `peers` (base URLs) with a per-request timeout.
    pub fn new(peers: Vec<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        let peers = peers
            .into_iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .collect();
        Ok(Self { http, peers })
    }

    /// The peers' base URLs.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// Sends a block to every peer, in the background.
    pub fn broadcast_block(&self, block: Block) {
        for peer in self.peers.clone() {
            let http = self.http.clone();
            let block = block.clone();
            tokio::spawn(async move {
                let r = http
                    .post(format!("{peer}/v1/blocks"))
                    .json(&block)
                    .send()
                    .await;
                if let Err(e) = r {
                    debug!(peer, error = %e, "block gossip failed");
                }
            });
        }
    }

    /// Forwards newly admitted transactions to every peer, in the background, marked
    /// so that they are not forwarded again.
    pub fn forward_txs(&self, txs: Vec<Transaction>) {
        for peer in self.peers.clone() {
            let http = self.http.clone();
            let txs = txs.clone();
            tokio::spawn(async move {
                let r = http
                    .post(format!("{peer}/v1/txs"))
                    .header(GOSSIP_HEADER, "1")
                    .json(&txs)
                    .send()
                    .await;
                if let Err(e) = r {
                    debug!(peer, error = %e, "transaction gossip failed");
                }
            });
        }
    }

    /// Forwards a relay batch that arrived here (`path`: its v2 route) to every peer,
    /// in the background, marked so that they do not forward it again: whichever
    /// producer makes the next block holds it.
    pub fn forward_relay<T: serde::Serialize + Clone + Send + Sync + 'static>(
        &self,
        path: &'static str,
        item: T,
    ) {
        for peer in self.peers.clone() {
            let http = self.http.clone();
            let item = item.clone();
            tokio::spawn(async move {
                let r = http
                    .post(format!("{peer}{path}"))
                    .header(GOSSIP_HEADER, "1")
                    .json(&item)
                    .send()
                    .await;
                if let Err(e) = r {
                    debug!(peer, error = %e, "relay batch gossip failed");
                }
            });
        }
    }

    /// A peer's status.
    pub async fn status(&self, peer: &str) -> Result<NodeStatus, String> {
        self.status_request(peer, None).await
    }

    /// A peer's status, waiting at most `wait`.
    pub async fn status_within(&self, peer: &str, wait: Duration) -> Result<NodeStatus, String> {
        self.status_request(peer, Some(wait)).await
    }

    async fn status_request(
        &self,
        peer: &str,
        wait: Option<Duration>,
    ) -> Result<NodeStatus, String> {
        let mut req = self.http.get(format!("{peer}/v1/status"));
        if let Some(w) = wait {
            req = req.timeout(w);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("status {}", r.status()));
        }
        r.json().await.map_err(|e| e.to_string())
    }

    /// Canonical blocks of a peer from `from`, at most `limit`.
    pub async fn blocks(&self, peer: &str, from: u64, limit: u64) -> Result<Vec<Block>, String> {
        let r = self
            .http
            .get(format!("{peer}/v1/blocks"))
            .query(&[("from", from), ("limit", limit)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("status {}", r.status()));
        }
        // A bounded read: a peer of our own chain is still untrusted input.
        const MAX_BYTES: usize = 128 * 1024 * 1024;
        let mut r = r;
        let mut bytes = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
            if bytes.len() + chunk.len() > MAX_BYTES {
                return Err(format!("sync answer larger than {MAX_BYTES} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body: BlocksResponse = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if body.blocks.len() as u64 > limit {
            return Err(format!(
                "peer sent {} blocks, asked for at most {limit}",
                body.blocks.len()
            ));
        }
        Ok(body.blocks)
    }
}
