//! Cross-chain work the node holds in memory between a batch arriving and its system
//! transaction entering a block: rebuilt after a restart by the sender, whose
//! persistent queue sends it again until it is final (see `crate::queue`).

use distpos_chain::Body;
use distpos_proofs::{ChainId, Hash32, SignedHeader};
use std::collections::BTreeMap;

/// Relay work held by the node.
#[derive(Debug, Default)]
pub struct RelayState {
    /// Interchain v2 batches waiting for our next block (checked on arrival).
    pub batches: BTreeMap<BatchKey, PendingBatch>,
    /// Batches for blocks beyond every header held: not checked yet, a few per peer
    /// and kind (the oldest make room), moved to `batches` once header sync brings
    /// their block's header.
    pub unseen: BTreeMap<BatchKey, PendingBatch>,
    /// Headers of each peer above our light client's head, by height: the run the
    /// next batch of that peer carries into a block.
    pub peer_headers: BTreeMap<ChainId, BTreeMap<u64, SignedHeader>>,
    /// Fast deliveries (DESIGN §11) waiting for our next block, by peer and transfer.
    pub fast: BTreeMap<(ChainId, Hash32), crate::interchain::fast::PendingFast>,
    /// Next hops chosen for transfers our ledger holds for forwarding (DESIGN §12),
    /// by peer and transfer: our next block carries them as `Forward`s.
    pub forwards: BTreeMap<(ChainId, Hash32), distpos_chain::tx::Hop>,
}

/// A batch's place: peer chain, kind (inbound transfers or settlements), the peer's
/// block, the first index (a block's transfers may come in several chunks), and what
/// it claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchKey {
    /// The peer chain.
    pub peer: ChainId,
    /// `false`: transfers to us (`InboundBatch`); `true`: receipts (`SettleBatch`).
    pub settle: bool,
    /// The peer's block height.
    pub height: u64,
    /// The first index of the batch in that block.
    pub first_index: u32,
    /// Hash of what the batch claims (its indices and items): a forged batch claiming
    /// the same place never stands in for the real one.
    pub digest: Hash32,
}

/// A v2 batch held until a block of ours includes it.
#[derive(Clone, Debug)]
pub struct PendingBatch {
    /// The `InboundBatch` or `SettleBatch` body, without headers (the run is added
    /// when a block is built).
    pub body: Body,
    /// Its transfers (inbound: the source transactions; settle: ours).
    pub transfers: Vec<Hash32>,
    /// Total amount (inbound: reserved collateral while it waits).
    pub amount: u128,
    /// First seen.
    pub since_ms: u64,
    /// Why it waits, when it is not provable yet.
    pub reason: Option<String>,
}

impl PendingBatch {
    /// A batch first seen at `now_ms`, not judged yet.
    pub fn new(body: Body, transfers: Vec<Hash32>, amount: u128, now_ms: u64) -> Self {
        Self {
            body,
            transfers,
            amount,
            since_ms: now_ms,
            reason: None,
        }
    }
}
