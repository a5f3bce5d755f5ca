//! Talking to the other nodes of our own chain: block and transaction gossip, and
//! catch-up sync. Every response is untrusted input: blocks go through the same
//! verification as any other.
//!
//! Gossip goes through one bounded outbox per peer, drained by one worker with at most
//! [`GOSSIP_IN_FLIGHT`] requests at a time; blocks go before everything else. A full
//! outbox drops the message (counted, and logged at most every few seconds): gossip is
//! a shortcut, and sync fetches whatever a node missed. So a slow or dead peer, or a
//! flood of transactions, costs a bounded amount of memory and tasks.

use distpos_chain::{Block, Transaction};
use serde::Deserialize;
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::Duration,
};
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, warn};

/// Messages waiting per peer beyond which gossip to that peer is dropped.
pub const GOSSIP_QUEUE: usize = 1_024;
/// Blocks waiting per peer beyond which block gossip to it is dropped.
pub const GOSSIP_BLOCK_QUEUE: usize = 64;
/// Gossip requests in flight per peer.
pub const GOSSIP_IN_FLIGHT: usize = 8;

/// One gossip request: a body serialized once for every peer.
#[derive(Clone)]
struct Gossip {
    path: &'static str,
    body: bytes::Bytes,
    marked: bool,
    kind: &'static str,
}

/// A peer's outboxes (blocks first).
struct Outbox {
    blocks: mpsc::Sender<Gossip>,
    other: mpsc::Sender<Gossip>,
}

/// Header marking a transaction forwarded by another node of our chain (not forwarded
/// again).
pub const GOSSIP_HEADER: &str = "x-distpos-gossip";

/// HTTP client for this chain's other nodes (not other chains: see [`crate::PeerChain`]).
#[derive(Clone)]
pub struct ChainNodes {
    http: reqwest::Client,
    peers: Vec<String>,
    /// One outbox per peer, started with the first message (inside the runtime).
    outboxes: Arc<OnceLock<Vec<Outbox>>>,
    dropped: Arc<AtomicU64>,
    last_drop_log_ms: Arc<AtomicU64>,
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
        Ok(Self {
            http,
            peers,
            outboxes: Arc::new(OnceLock::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            last_drop_log_ms: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Gossip messages dropped because a peer's outbox was full.
    pub fn gossip_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn outboxes(&self) -> &[Outbox] {
        self.outboxes.get_or_init(|| {
            self.peers
                .iter()
                .map(|peer| {
                    let (blocks, block_rx) = mpsc::channel(GOSSIP_BLOCK_QUEUE);
                    let (other, other_rx) = mpsc::channel(GOSSIP_QUEUE);
                    tokio::spawn(gossip_worker(
                        self.http.clone(),
                        peer.clone(),
                        block_rx,
                        other_rx,
                    ));
                    Outbox { blocks, other }
                })
                .collect()
        })
    }

    /// Puts `body` (serialized once) in every peer's outbox, or drops it for a peer
    /// whose outbox is full.
    fn gossip<T: serde::Serialize>(
        &self,
        path: &'static str,
        body: &T,
        marked: bool,
        kind: &'static str,
    ) {
        if self.peers.is_empty() {
            return;
        }
        let body = match serde_json::to_vec(body) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                warn!(kind, error = %e, "gossip: cannot serialize");
                return;
            }
        };
        let msg = Gossip {
            path,
            body,
            marked,
            kind,
        };
        for (outbox, peer) in self.outboxes().iter().zip(&self.peers) {
            let queue = if kind == "block" {
                &outbox.blocks
            } else {
                &outbox.other
            };
            if queue.try_send(msg.clone()).is_err() {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let last = self.last_drop_log_ms.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 5_000
                    && self
                        .last_drop_log_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    warn!(
                        peer,
                        kind,
                        dropped_total = n,
                        "gossip outbox full: dropping (sync will fetch what the peer misses)"
                    );
                }
            }
        }
    }

    /// The peers' base URLs.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// Sends a block to every peer, in the background.
    pub fn broadcast_block(&self, block: Block) {
        self.gossip("/v1/blocks", &block, false, "block");
    }

    /// Forwards newly admitted transactions to every peer, in the background, marked
    /// so that they are not forwarded again.
    pub fn forward_txs(&self, txs: Vec<Transaction>) {
        self.gossip("/v1/txs", &txs, true, "transactions");
    }

    /// Forwards a relay batch that arrived here (`path`: its v2 route) to every peer,
    /// in the background, marked so that they do not forward it again: whichever
    /// producer makes the next block holds it.
    pub fn forward_relay<T: serde::Serialize>(&self, path: &'static str, item: T) {
        self.gossip(path, &item, true, "relay batch");
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

/// Sends one peer's gossip, blocks first, at most [`GOSSIP_IN_FLIGHT`] at a time; ends
/// when the [`ChainNodes`] (and every clone) is dropped.
async fn gossip_worker(
    http: reqwest::Client,
    peer: String,
    mut blocks: mpsc::Receiver<Gossip>,
    mut other: mpsc::Receiver<Gossip>,
) {
    let slots = Arc::new(Semaphore::new(GOSSIP_IN_FLIGHT));
    loop {
        let msg = tokio::select! {
            biased;
            Some(m) = blocks.recv() => m,
            Some(m) = other.recv() => m,
            else => return,
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let http = http.clone();
        let url = format!("{peer}{}", msg.path);
        tokio::spawn(async move {
            let mut req = http
                .post(url)
                .header("content-type", "application/json")
                .body(msg.body);
            if msg.marked {
                req = req.header(GOSSIP_HEADER, "1");
            }
            if let Err(e) = req.send().await {
                debug!(kind = msg.kind, error = %e, "gossip failed");
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that accepts connections and never answers: what it is sent stays in
    /// flight. Counts the connections it accepted.
    async fn silent_peer() -> (String, Arc<AtomicU64>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                held.push(s);
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn gossip_to_a_stuck_peer_is_bounded_and_the_rest_dropped() {
        let (url, accepted) = silent_peer().await;
        let nodes = ChainNodes::new(vec![url], Duration::from_secs(30)).unwrap();
        let sent = GOSSIP_QUEUE + 500;
        for _ in 0..sent {
            nodes.forward_txs(Vec::new());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let in_flight = accepted.load(Ordering::Relaxed) as usize;
        assert!(
            (1..=GOSSIP_IN_FLIGHT).contains(&in_flight),
            "at most {GOSSIP_IN_FLIGHT} requests at a time, got {in_flight}"
        );
        let dropped = nodes.gossip_dropped() as usize;
        assert!(
            dropped >= sent - GOSSIP_QUEUE - GOSSIP_IN_FLIGHT - 1,
            "what does not fit is dropped: {dropped} of {sent}"
        );
        // Blocks have their own outbox: a flood of transactions does not crowd them out.
        let before = nodes.gossip_dropped();
        use distpos_chain::testkit::TestChain;
        let mut c = TestChain::new(1, 1, 1, TestChain::dev_params());
        c.produce_empty(1).unwrap();
        nodes.broadcast_block(c.blocks[0].clone());
        assert_eq!(nodes.gossip_dropped(), before, "the block is queued");
    }
}
