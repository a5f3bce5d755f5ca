//! Blocks: building one for the scheduled producer of a slot, and applying one
//! (verify the header, the commitments and every signature, then execute) — the API a
//! node drives (DESIGN §4).

use crate::{
    address::Address,
    error::{BlockError, StateError, TxError},
    execute::{chain_rules, producer_secret, verify_tx_signature, Executor, TxCheck},
    ledger,
    state::{next_digest, ChangeSet, State},
    tx::{Receipt, Transaction},
};
use distpos_proofs::{
    consensus::ConsensusState, merkle, sha256, BlockHeader, Hash32, SecretKey, SignedHeader,
};
use serde::{Deserialize, Serialize};

/// A block: its signed header and its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The signed header.
    pub header: SignedHeader,
    /// The transactions, in execution order.
    pub txs: Vec<Transaction>,
}

impl Block {
    /// The block id.
    pub fn id(&self) -> Hash32 {
        self.header.id()
    }

    /// The block height.
    pub fn height(&self) -> u64 {
        self.header.header.height
    }
}

/// The result of executing a block on its parent state: what to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedBlock {
    /// Block id.
    pub id: Hash32,
    /// Height.
    pub height: u64,
    /// The state changes.
    pub changes: ChangeSet,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// The state digest after the block.
    pub state_digest: Hash32,
    /// The consensus state after the block.
    pub consensus: ConsensusState,
}

impl State {
    /// Commits an applied block; returns the change set that undoes it (for reorgs).
    /// The caller must apply blocks in order on the state they were executed on.
    pub fn commit(&mut self, applied: &AppliedBlock) -> Undo {
        let changes = self.apply(&applied.changes);
        let undo = Undo {
            changes,
            head_id: self.head_id,
            digest: self.digest,
        };
        self.head_id = applied.id;
        self.digest = applied.state_digest;
        undo
    }

    /// Reverts the most recent commit.
    pub fn revert(&mut self, undo: &Undo) {
        self.apply(&undo.changes);
        self.head_id = undo.head_id;
        self.digest = undo.digest;
    }
}

/// What it takes to undo one committed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    /// The old values of every key the block changed.
    pub changes: ChangeSet,
    /// The previous head id.
    pub head_id: Hash32,
    /// The previous digest.
    pub digest: Hash32,
}

/// Merkle root over transactions (leaves: canonical signed encodings).
pub fn tx_root(txs: &[Transaction]) -> Hash32 {
    let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.encode()).collect();
    merkle::merkle_root_of_items(&leaves)
}

/// Merkle root over receipts.
pub fn receipts_root(receipts: &[Receipt]) -> Hash32 {
    let leaves: Vec<Vec<u8>> = receipts.iter().map(|r| r.encode()).collect();
    merkle::merkle_root_of_items(&leaves)
}

/// A block built by [`build_block`].
#[derive(Clone, Debug)]
pub struct BuiltBlock {
    /// The signed block.
    pub block: Block,
    /// Its execution result, ready to commit.
    pub applied: AppliedBlock,
    /// Candidates left out, with the reason (invalid now; a mempool drops or keeps
    /// them as it sees fit).
    pub rejected: Vec<(Hash32, TxError)>,
}

/// Why a block could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The key is not the scheduled producer of the slot.
    #[error("this key is not scheduled for the slot at {0}")]
    NotScheduled(u64),
    /// The time is not a slot boundary after the head.
    #[error("time {0} is not a slot boundary after the head block")]
    BadSlot(u64),
    /// Executing the block-level steps failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Builds and signs the block for the slot starting at `slot_time_ms`, with as many of
/// `candidates` (in order) as are valid, up to `max_block_txs`.
pub fn build_block<'t>(
    state: &State,
    key: &SecretKey,
    slot_time_ms: u64,
    candidates: impl IntoIterator<Item = &'t Transaction>,
) -> Result<BuiltBlock, BuildError> {
    build_block_with(
        state,
        key,
        slot_time_ms,
        candidates.into_iter().map(|t| (t, None)),
    )
}

/// Like [`build_block`], for candidates whose signatures the caller already verified
/// (`Some(check)`, e.g. at mempool admission): those are not verified again.
pub fn build_block_with<'t>(
    state: &State,
    key: &SecretKey,
    slot_time_ms: u64,
    candidates: impl IntoIterator<Item = (&'t Transaction, Option<TxCheck>)>,
) -> Result<BuiltBlock, BuildError> {
    let rules = chain_rules(state)?;
    let consensus = ledger::consensus(state)?;
    let slot = rules
        .clock
        .slot_at_boundary(slot_time_ms)
        .ok_or(BuildError::BadSlot(slot_time_ms))?;
    if slot <= consensus.slot {
        return Err(BuildError::BadSlot(slot_time_ms));
    }
    let producer = key.public_key();
    if consensus.scheduled_producer(slot) != Some(&producer) {
        return Err(BuildError::NotScheduled(slot_time_ms));
    }
    let height = consensus.height + 1;
    let owner = ledger::producer_by_key(state, &producer)?.ok_or(BlockError::UnknownProducer)?;
    let record = ledger::producer(state, &owner)?.ok_or(BlockError::UnknownProducer)?;
    let reveal = if record.last_commit.is_zero() {
        Hash32::ZERO
    } else {
        producer_secret(key, record.last_block_height)
    };
    let commit = sha256(&producer_secret(key, height).0);

    let mut ex = Executor::begin(state, slot_time_ms, &producer, &reveal, &commit)?;
    let max = ex.env.params.max_block_txs as usize;
    let mut txs = Vec::new();
    let mut rejected = Vec::new();
    for (tx, cached) in candidates {
        if txs.len() >= max {
            break;
        }
        let check = match cached {
            Some(c) => Ok(c),
            None => verify_tx_signature(tx),
        };
        match check.and_then(|check| ex.apply_tx(tx, &check).map(|_| check)) {
            Ok(_) => txs.push(tx.clone()),
            Err(e) => rejected.push((tx.hash(), e)),
        }
    }
    let new_schedule = ex.election()?;
    let mut header = BlockHeader {
        chain_id: rules.chain_id,
        height,
        prev_id: state.head_id,
        timestamp_ms: slot_time_ms,
        producer,
        schedule_version: consensus.active.version,
        tx_root: tx_root(&txs),
        tx_count: txs.len() as u32,
        receipts_root: Hash32::ZERO,
        state_digest: Hash32::ZERO,
        new_schedule,
        reveal,
        commit,
    };
    let (changes, receipts, consensus) = ex.finish(&header)?;
    header.receipts_root = receipts_root(&receipts);
    header.state_digest = next_digest(&state.digest, &changes);
    let signed = header.sign(key);
    let applied = AppliedBlock {
        id: signed.id(),
        height,
        state_digest: signed.header.state_digest,
        changes,
        receipts,
        consensus,
    };
    Ok(BuiltBlock {
        block: Block {
            header: signed,
            txs,
        },
        applied,
        rejected,
    })
}

/// Verifies `block` against the parent `state` (header, commitments, every signature,
/// every transaction) and computes its effect, without changing `state`. `now_ms` is
/// the node's clock, for the future-drift bound.
pub fn apply_block(state: &State, block: &Block, now_ms: u64) -> Result<AppliedBlock, BlockError> {
    let checks = check_block_signatures(state, block, now_ms)?;
    apply_checked_block(state, block, &checks)
}

/// First half of [`apply_block`]: the header against the parent, the transaction
/// commitments, and every transaction signature (the costly part, which a node may
/// parallelise). Returns each transaction's hash and sender.
pub fn check_block_signatures(
    state: &State,
    block: &Block,
    now_ms: u64,
) -> Result<Vec<TxCheck>, BlockError> {
    check_block_signatures_with(state, block, now_ms, |_, _| None)
}

/// [`check_block_signatures`] for a node that has verified some of the block's
/// transactions already (on admission to its mempool): `verified(tx, hash)` gives the
/// sender of a transaction whose exact bytes, signature included, it verified before,
/// and that signature is not checked again. Everything else is checked as always.
///
/// `verified` must compare the whole transaction, not only its hash: the hash does not
/// cover the signature, so a block could carry a known hash under a broken signature,
/// which every other node would refuse.
pub fn check_block_signatures_with(
    state: &State,
    block: &Block,
    now_ms: u64,
    verified: impl Fn(&Transaction, &Hash32) -> Option<Address>,
) -> Result<Vec<TxCheck>, BlockError> {
    let rules = chain_rules(state)?;
    let consensus = ledger::consensus(state)?;
    let params = ledger::params(state)?;
    let h = &block.header.header;
    consensus.check_header(&state.head_id, &block.header, &rules, now_ms)?;
    if block.txs.len() > params.max_block_txs as usize {
        return Err(BlockError::TooManyTxs {
            max: params.max_block_txs,
            got: block.txs.len(),
        });
    }
    if h.tx_count as usize != block.txs.len() {
        return Err(BlockError::TxRoot("tx_count"));
    }
    if h.tx_root != tx_root(&block.txs) {
        return Err(BlockError::TxRoot("tx_root"));
    }
    block
        .txs
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            let hash = tx.hash();
            if let Some(sender) = verified(tx, &hash) {
                return Ok(TxCheck { hash, sender });
            }
            verify_tx_signature(tx).map_err(|error| BlockError::Tx { index, hash, error })
        })
        .collect()
}

/// Second half of [`apply_block`]: executes a block whose header and signatures
/// passed [`check_block_signatures`], and checks the header's results.
pub fn apply_checked_block(
    state: &State,
    block: &Block,
    checks: &[TxCheck],
) -> Result<AppliedBlock, BlockError> {
    let h = &block.header.header;
    let mut ex = Executor::begin(state, h.timestamp_ms, &h.producer, &h.reveal, &h.commit)?;
    for (index, (tx, check)) in block.txs.iter().zip(checks).enumerate() {
        ex.apply_tx(tx, check).map_err(|error| BlockError::Tx {
            index,
            hash: check.hash,
            error,
        })?;
    }
    if ex.election()? != h.new_schedule {
        return Err(BlockError::Schedule);
    }
    let (changes, receipts, consensus) = ex.finish(h)?;
    if receipts_root(&receipts) != h.receipts_root {
        return Err(BlockError::ReceiptsRoot);
    }
    let digest = next_digest(&state.digest, &changes);
    if digest != h.state_digest {
        return Err(BlockError::StateDigest {
            computed: digest,
            header: h.state_digest,
        });
    }
    Ok(AppliedBlock {
        id: block.id(),
        height: h.height,
        changes,
        receipts,
        state_digest: digest,
        consensus,
    })
}
