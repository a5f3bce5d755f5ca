//! Cross-chain work the node holds in memory between a delivery or receipt arriving
//! and its transaction entering a block: rebuilt after a restart by the sender, whose
//! persistent queue sends it again until it is final (see `crate::queue`).

use distpos_chain::Body;
use distpos_proofs::{ChainId, Hash32};
use std::collections::BTreeMap;

/// A delivery or receipt being turned into a transaction.
#[derive(Clone, Debug)]
pub struct PendingRelay {
    /// The `Inbound` or `Settle` body.
    pub body: Body,
    /// Its transaction while in the mempool.
    pub tx: Option<Hash32>,
    /// Amount (inbound: counts as reserved collateral while pending).
    pub amount: u128,
    /// First seen.
    pub since_ms: u64,
    /// Why it waits.
    pub reason: Option<String>,
    /// Our light client's LIB of the peer when it was last tried (retried only after
    /// that moves).
    pub tried_at_lib: u64,
}

/// Relay work held by the node.
#[derive(Debug, Default)]
pub struct RelayState {
    /// Inbound transfers by (source chain, source tx).
    pub inbound: BTreeMap<(ChainId, Hash32), PendingRelay>,
    /// Settlements by (destination chain, our transfer).
    pub settle: BTreeMap<(ChainId, Hash32), PendingRelay>,
    /// The last `PeerHeaders` transaction per peer.
    pub headers_tx: BTreeMap<ChainId, Hash32>,
}
