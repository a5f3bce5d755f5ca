//! The read side of a node: the chain as of its last commit.
//!
//! The node publishes a [`Snapshot`] after every change (a block committed or undone,
//! transactions admitted). HTTP reads and the relay's scans work on the latest one and
//! never wait for the write path (admission, production, import), which is the only
//! thing that serialises. Publishing is cheap: the state is a persistent map (O(1) to
//! clone) and everything else is small.

use super::mempool::MempoolIndex;
use crate::store::Store;
use distpos_chain::{Genesis, State};
use distpos_proofs::{
    consensus::{ChainRules, ConsensusState},
    ChainId, Hash32, PublicKey,
};
use std::{collections::BTreeMap, sync::Arc};
use tokio::sync::watch;

/// What does not change while a node runs.
#[derive(Debug)]
pub struct NodeInfo {
    /// The chain's genesis.
    pub genesis: Genesis,
    /// Its identity hash.
    pub identity: Hash32,
    /// Header rules (the slot clock).
    pub rules: ChainRules,
    /// This node's producer key, if it produces.
    pub producer_key: Option<PublicKey>,
}

/// The chain as of one commit, with handles to read what is not in the state.
#[derive(Clone)]
pub struct Snapshot {
    /// What does not change.
    pub info: Arc<NodeInfo>,
    /// State after the head block.
    pub state: State,
    /// Head height.
    pub head_height: u64,
    /// Consensus state after the head.
    pub consensus: ConsensusState,
    /// Id of the last irreversible block (the identity hash before the first one).
    pub lib_id: Hash32,
    /// Collateral held per peer chain for inbound transfers waiting in the mempool.
    pub reserved: BTreeMap<ChainId, u128>,
    /// Blocks, receipts and transaction locations (live: may be ahead of `state` by
    /// the commit in progress, never behind it).
    pub store: Store,
    /// Which transactions wait in the mempool (live).
    pub mempool: MempoolIndex,
    /// The last cross-chain transfer events (live).
    pub recent: super::recent::RecentTransfers,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("head_height", &self.head_height)
            .field("head", &self.state.head_id)
            .field("lib", &self.consensus.lib)
            .finish_non_exhaustive()
    }
}

/// Where readers get the latest [`Snapshot`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Reads(watch::Receiver<Arc<Snapshot>>);

impl Reads {
    /// A reader of `publisher`'s snapshots.
    pub(super) fn new(rx: watch::Receiver<Arc<Snapshot>>) -> Self {
        Self(rx)
    }

    /// The latest snapshot (an `Arc` clone; the channel's lock is held for no longer).
    pub fn latest(&self) -> Arc<Snapshot> {
        self.0.borrow().clone()
    }

    /// Waits until a snapshot newer than the last one seen by this reader is published.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}
