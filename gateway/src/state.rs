//! What every HTTP handler and background task of a node shares.

use crate::{
    config::NodeConfig,
    metrics::Metrics,
    node::{snapshot::Reads, Node},
    queue::OutboundQueue,
};
use distpos_adapters::{ChainNodes, HttpPeer};
use std::sync::Arc;
use tokio::sync::{Mutex, Notify};

/// The state every handler and background task shares.
pub struct AppState {
    /// The node: the write path (admission, import, production). Readers use `reads`.
    pub node: Mutex<Node>,
    /// The chain as of the node's last commit, for every read.
    pub reads: Reads,
    /// This chain's other nodes (block and transaction gossip, catch-up sync).
    pub chain_nodes: ChainNodes,
    /// The configuration.
    pub config: NodeConfig,
    /// Metrics.
    pub metrics: Metrics,
    /// Wakes the sync loop (e.g. a block with an unknown parent arrived).
    pub sync_now: Notify,
    /// Routes to other chains.
    pub routes: Arc<distpos_routing::RouteTable>,
    /// The operator's route overrides of this node, as stored (changed through it, so
    /// that they survive restarts).
    pub route_overrides: crate::store::RouteOverrides,
    /// The persistent outbound queue.
    pub queue: OutboundQueue,
    /// Where handlers and tasks read the time (the system clock in a node).
    pub clock: crate::clock::Clock,
    /// Client of other chains' peer protocol.
    pub peer_chains: HttpPeer,
    /// Which peers' light clients cannot advance, and why.
    pub peer_watch: crate::interchain::stall::PeerWatch,
    /// What this node endorsed on the fast path, and its bonds as last seen.
    pub underwriting: tokio::sync::Mutex<crate::relay::fast::Underwriting>,
}
