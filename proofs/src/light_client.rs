//! The light client of a peer chain (DESIGN §4.3, §5, §10): it follows the peer's
//! headers from a trust anchor with exactly the rules the peer's own nodes use
//! ([`ConsensusState`]: scheduled producer, low-S signature bound to the chain id,
//! linkage, monotonic time, drift bound, LIB, schedule changes adopted only once
//! irreversible), and it admits an inclusion proof only against a header that is
//! irreversible under those rules.
//!
//! Headers are verified once, when submitted; afterwards a transfer proof costs one
//! Merkle check against a stored [`Finalized`] summary. The light client keeps only its
//! irreversible checkpoint and the branch above it; the window of irreversible
//! summaries is the caller's storage (a ledger keeps it as separate records), and
//! [`LightClientWithWindow`] is the in-memory version for relays and tests.
//!
//! Every answer is a [`Verdict`]: accepted, not yet (with why: the header is not
//! irreversible yet, or we have not seen it), or rejected (with the reason).

use crate::{
    chain_id::ChainId,
    consensus::{ChainRules, ConsensusState, ForkTip, HeaderError},
    hash::Hash32,
    header::SignedHeader,
    merkle::{self, MerkleError, MerkleProof},
    schedule::{ProducerSchedule, ScheduleError, SlotClock},
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most headers one submission may carry.
pub const MAX_HEADERS_PER_SUBMIT: usize = 1_000;
/// Most headers kept above the irreversible checkpoint; beyond that the peer is not
/// finalising and further headers are refused until it does.
pub const MAX_BRANCH: usize = 10_000;

/// What a light client starts from: the peer's identity and clock, and a checkpoint on
/// its chain (its genesis, or one of its irreversible headers: DESIGN §14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustAnchor {
    /// The peer's chain id.
    pub chain_id: ChainId,
    /// The peer's identity hash, which is also the `prev_id` of its block 1.
    pub identity: Hash32,
    /// The peer's slot clock.
    pub clock: SlotClock,
    /// How far into the future a peer header may be dated.
    pub max_drift_ms: u64,
    /// Where on the peer's chain the light client starts.
    pub checkpoint: Checkpoint,
}

/// A point of a peer chain a light client may start from: its genesis, or an
/// irreversible header with the consensus state after it (the schedule in force, a
/// pending one, who signed what: everything the next headers are judged by). What
/// `GET /v1/anchor` serves; trusted as a whole by whoever registers it, like any
/// checkpoint a light client starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The irreversible header; `None` at genesis (whose id is the identity hash).
    pub header: Option<SignedHeader>,
    /// The peer's consensus state after it.
    pub consensus: ConsensusState,
}

impl Checkpoint {
    /// The genesis of a chain whose first schedule is `schedule`.
    pub fn genesis(schedule: ProducerSchedule) -> Result<Self, ScheduleError> {
        Ok(Self {
            header: None,
            consensus: ConsensusState::genesis(schedule)?,
        })
    }

    /// Its height (0 at genesis).
    pub fn height(&self) -> u64 {
        self.consensus.height
    }

    /// Its block id: the header's, or `identity` at genesis.
    pub fn id(&self, identity: &Hash32) -> Hash32 {
        self.header.as_ref().map_or(*identity, SignedHeader::id)
    }
}

/// Why a trust anchor is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// Chain id 0.
    #[error("trust anchor has chain id 0")]
    ZeroChain,
    /// All-zero identity.
    #[error("trust anchor has a zero identity hash")]
    ZeroIdentity,
    /// Zero block interval.
    #[error("trust anchor has a zero block interval")]
    ZeroInterval,
    /// Bad schedule.
    #[error("trust anchor schedule: {0}")]
    Schedule(#[from] ScheduleError),
    /// A checkpoint without a header that is not at height 0.
    #[error("a checkpoint without a header must be the genesis (height 0), not height {0}")]
    NotGenesis(u64),
    /// A checkpoint header at height 0 (genesis has no header).
    #[error("a checkpoint header cannot be at height 0")]
    HeaderAtGenesis,
    /// The header and the consensus state are for different heights.
    #[error("checkpoint header is at height {header} but its consensus state at {state}")]
    HeightMismatch {
        /// The header's height.
        header: u64,
        /// The state's height.
        state: u64,
    },
    /// The header names another chain.
    #[error("checkpoint header is for chain {got}, the anchor for chain {expected}")]
    WrongChain {
        /// The anchor's chain.
        expected: ChainId,
        /// The header's.
        got: ChainId,
    },
    /// The header's time is not the slot the consensus state says.
    #[error("checkpoint header time {timestamp} is not the start of slot {slot}")]
    SlotMismatch {
        /// The header's timestamp.
        timestamp: u64,
        /// The state's slot.
        slot: u64,
    },
    /// The state's LIB is above its own height, or a producer signed above it.
    #[error("checkpoint consensus state is inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The header's signature does not verify.
    #[error("checkpoint header signature invalid: {0}")]
    Signature(#[from] crate::keys::SignatureError),
}

impl TrustAnchor {
    /// Checks the anchor is usable: a real chain, identity and clock, and a checkpoint
    /// whose header and consensus state agree (same chain, height and slot, a valid
    /// signature, schedules that validate). It cannot check that the checkpoint is on
    /// the peer's chain: that is what registering it trusts.
    pub fn validate(&self) -> Result<(), AnchorError> {
        if self.chain_id.is_local() {
            return Err(AnchorError::ZeroChain);
        }
        if self.identity.is_zero() {
            return Err(AnchorError::ZeroIdentity);
        }
        if self.clock.interval_ms == 0 {
            return Err(AnchorError::ZeroInterval);
        }
        let c = &self.checkpoint.consensus;
        match &self.checkpoint.header {
            None if c.height != 0 => return Err(AnchorError::NotGenesis(c.height)),
            None => {}
            Some(h) => {
                let x = &h.header;
                if x.height == 0 {
                    return Err(AnchorError::HeaderAtGenesis);
                }
                if x.height != c.height {
                    return Err(AnchorError::HeightMismatch {
                        header: x.height,
                        state: c.height,
                    });
                }
                if x.chain_id != self.chain_id {
                    return Err(AnchorError::WrongChain {
                        expected: self.chain_id,
                        got: x.chain_id,
                    });
                }
                if self.clock.slot_at_boundary(x.timestamp_ms) != Some(c.slot) {
                    return Err(AnchorError::SlotMismatch {
                        timestamp: x.timestamp_ms,
                        slot: c.slot,
                    });
                }
            }
        }
        c.active.validate()?;
        if let Some(p) = &c.pending {
            p.schedule.validate()?;
            if p.height > c.height {
                return Err(AnchorError::Inconsistent(
                    "pending schedule above its height",
                ));
            }
        }
        if c.lib > c.height {
            return Err(AnchorError::Inconsistent("LIB above its height"));
        }
        if c.last_signed.values().any(|&h| h > c.height) {
            return Err(AnchorError::Inconsistent(
                "a producer signed above its height",
            ));
        }
        if let Some(h) = &self.checkpoint.header {
            h.verify_signature()?;
        }
        Ok(())
    }
}

/// The summary of an irreversible header that proofs are checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalized {
    /// Height.
    pub height: u64,
    /// Block id.
    pub id: Hash32,
    /// Transactions root.
    pub tx_root: Hash32,
    /// Leaf count of both trees.
    pub tx_count: u32,
    /// Receipts root.
    pub receipts_root: Hash32,
    /// Block time.
    pub timestamp_ms: u64,
}

impl Finalized {
    /// The summary of a signed header (its signature is not checked here).
    pub fn of(h: &SignedHeader) -> Self {
        let x = &h.header;
        Finalized {
            height: x.height,
            id: h.id(),
            tx_root: x.tx_root,
            tx_count: x.tx_count,
            receipts_root: x.receipts_root,
            timestamp_ms: x.timestamp_ms,
        }
    }
}

/// The answer of a light client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<T> {
    /// Valid.
    Accepted(T),
    /// Not decidable yet; may become valid later.
    NotYet(NotYet),
    /// Invalid; will never become valid.
    Rejected(Rejection),
}

impl<T> Verdict<T> {
    /// True for `Accepted`.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted(_))
    }

    /// `Ok` for `Accepted`; otherwise why not, keeping "not yet" apart from "never".
    pub fn into_result(self) -> Result<T, Refusal> {
        match self {
            Verdict::Accepted(t) => Ok(t),
            Verdict::NotYet(n) => Err(Refusal::NotYet(n)),
            Verdict::Rejected(r) => Err(Refusal::Rejected(r)),
        }
    }
}

/// Why a light client did not accept: not yet (may change as it follows the peer), or
/// never.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not decidable yet.
    #[error(transparent)]
    NotYet(NotYet),
    /// Invalid.
    #[error(transparent)]
    Rejected(Rejection),
}

/// Where a light client stands on a peer chain: its head, its last irreversible
/// height, and the oldest height whose irreversible header it still keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Head height.
    pub head: u64,
    /// Last irreversible height.
    pub lib: u64,
    /// Oldest height whose header is kept.
    pub oldest_kept: u64,
}

/// The one rule for "can a proof against the peer's block at `height` be checked now":
/// only against an irreversible header we keep (`kept`, if any, is that header). A
/// height above our LIB may become provable (not irreversible yet, or not seen yet);
/// a height at or below it without a kept header never will. [`Window::verify`] and
/// the ledger (which keeps its peer headers in state) both decide with it.
pub fn admissible<F>(kept: Option<F>, height: u64, at: Position) -> Verdict<F> {
    match kept {
        Some(f) => Verdict::Accepted(f),
        None if height > at.lib && height <= at.head => Verdict::NotYet(NotYet::NotIrreversible {
            height,
            lib: at.lib,
        }),
        None if height > at.lib => Verdict::NotYet(NotYet::Unseen {
            height,
            head: at.head,
        }),
        None => Verdict::Rejected(Rejection::BelowWindow {
            height,
            oldest: at.oldest_kept,
        }),
    }
}

/// Why a question cannot be answered yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotYet {
    /// The header at this height is known but not irreversible yet.
    #[error("block {height} is not irreversible yet (light client LIB is {lib})")]
    NotIrreversible {
        /// Asked height.
        height: u64,
        /// Our LIB.
        lib: u64,
    },
    /// We have not seen a header at this height (sync headers first).
    #[error("no header at height {height} yet (light client head is {head})")]
    Unseen {
        /// Asked height.
        height: u64,
        /// Our head.
        head: u64,
    },
    /// The submitted headers do not connect to anything we know.
    #[error(
        "headers start at height {height}, whose parent is unknown (light client head is {head})"
    )]
    UnknownParent {
        /// First submitted height.
        height: u64,
        /// Our head.
        head: u64,
    },
    /// The submitted branch is valid but not preferred over ours (yet).
    #[error("the submitted branch is valid but not preferred over the current one")]
    NotPreferred,
}

/// Why something is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A header does not verify.
    #[error("header {index} (height {height}) invalid: {error}")]
    Header {
        /// Position in the submission.
        index: usize,
        /// Its height.
        height: u64,
        /// Why.
        error: HeaderError,
    },
    /// The submission is not a run of consecutive headers.
    #[error("header {0} does not follow the previous one in the submission")]
    NotConsecutive(usize),
    /// Empty or oversized submission.
    #[error("a submission must carry 1..={MAX_HEADERS_PER_SUBMIT} headers")]
    BadSize,
    /// The submission conflicts with a header we consider irreversible.
    #[error("header at height {0} conflicts with an irreversible header")]
    ConflictsWithIrreversible(u64),
    /// Every submitted header is at or below the irreversible checkpoint.
    #[error("all submitted headers are at or below the irreversible checkpoint {checkpoint}")]
    BelowCheckpoint {
        /// Our checkpoint height.
        checkpoint: u64,
    },
    /// The peer is not finalising: too many headers above the checkpoint.
    #[error("more than {MAX_BRANCH} headers above the irreversible checkpoint")]
    BranchTooLong,
    /// The proof's position is outside the block.
    #[error("index {index} is outside the block's {count} items")]
    IndexOutOfRange {
        /// Index.
        index: u32,
        /// Items in the block.
        count: u32,
    },
    /// The Merkle proof does not verify.
    #[error("inclusion proof invalid: {0}")]
    Proof(#[from] MerkleError),
    /// The multiproof of a batch does not verify.
    #[error("batch proof invalid: {0}")]
    MultiProof(#[from] crate::multiproof::MultiProofError),
    /// The header is older than the kept window.
    #[error("height {height} is below the kept window (oldest kept: {oldest})")]
    BelowWindow {
        /// Asked.
        height: u64,
        /// Oldest kept.
        oldest: u64,
    },
}

/// What a successful submission did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advance {
    /// Headers that became irreversible, oldest first (the caller stores them).
    pub finalized: Vec<Finalized>,
    /// Pairs of different headers signed by one producer for one slot.
    pub evidence: Vec<(SignedHeader, SignedHeader)>,
    /// Head height after the submission.
    pub head: u64,
    /// LIB after the submission.
    pub lib: u64,
}

/// A light client of one peer chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightClient {
    /// The peer's rules.
    pub rules: ChainRules,
    /// The peer's identity.
    pub identity: Hash32,
    /// Id of the irreversible checkpoint (identity at genesis).
    pub base_id: Hash32,
    /// Consensus state at the checkpoint.
    pub base: ConsensusState,
    /// Headers above the checkpoint on the followed branch, with the state after each.
    pub branch: Vec<(SignedHeader, ConsensusState)>,
}

impl LightClient {
    /// Starts from a trust anchor (the peer's genesis or an irreversible checkpoint),
    /// refusing one that [`TrustAnchor::validate`] refuses.
    pub fn new(anchor: &TrustAnchor) -> Result<Self, AnchorError> {
        anchor.validate()?;
        Ok(Self {
            rules: ChainRules {
                chain_id: anchor.chain_id,
                clock: anchor.clock,
                max_drift_ms: anchor.max_drift_ms,
            },
            identity: anchor.identity,
            base_id: anchor.checkpoint.id(&anchor.identity),
            base: anchor.checkpoint.consensus.clone(),
            branch: Vec::new(),
        })
    }

    /// Head height of the followed branch.
    pub fn head(&self) -> u64 {
        self.branch
            .last()
            .map_or(self.base.height, |(h, _)| h.header.height)
    }

    /// The last irreversible height: the checkpoint's own height (not the LIB the
    /// checkpoint block itself saw, which is older).
    #[allow(clippy::misnamed_getters)]
    pub fn lib(&self) -> u64 {
        self.base.height
    }

    /// Id of the irreversible checkpoint (the block at [`Self::lib`]).
    pub fn checkpoint_id(&self) -> Hash32 {
        self.base_id
    }

    /// Id of the head.
    pub fn head_id(&self) -> Hash32 {
        self.branch.last().map_or(self.base_id, |(h, _)| h.id())
    }

    /// Consensus state at the head.
    pub fn head_state(&self) -> &ConsensusState {
        self.branch.last().map_or(&self.base, |(_, c)| c)
    }

    /// Verifies a run of consecutive headers and, if its tip is preferred by fork
    /// choice, follows it. Nothing changes unless the verdict is `Accepted`.
    pub fn submit(&mut self, headers: &[SignedHeader], now_ms: u64) -> Verdict<Advance> {
        if headers.is_empty() || headers.len() > MAX_HEADERS_PER_SUBMIT {
            return Verdict::Rejected(Rejection::BadSize);
        }
        for i in 1..headers.len() {
            let (prev, h) = (&headers[i - 1], &headers[i].header);
            if h.prev_id != prev.id() || Some(h.height) != prev.header.height.checked_add(1) {
                return Verdict::Rejected(Rejection::NotConsecutive(i));
            }
        }
        // Where does the run attach? At the checkpoint or on our branch.
        let first = &headers[0].header;
        let base_h = self.base.height;
        if first.height <= base_h {
            // The run reaches back into irreversible history: it must pass through our
            // checkpoint unchanged; what follows it is submitted as usual.
            let p = (base_h - first.height) as usize;
            let Some(at_base) = headers.get(p) else {
                return Verdict::Rejected(Rejection::BelowCheckpoint { checkpoint: base_h });
            };
            if at_base.id() != self.base_id {
                return Verdict::Rejected(Rejection::ConflictsWithIrreversible(base_h));
            }
            let rest = &headers[p + 1..];
            if rest.is_empty() {
                return Verdict::Accepted(Advance {
                    head: self.head(),
                    lib: self.lib(),
                    ..Default::default()
                });
            }
            return self.submit(rest, now_ms);
        }
        let attach = if first.prev_id == self.base_id && first.height == base_h + 1 {
            Some(0usize)
        } else {
            self.branch
                .iter()
                .position(|(h, _)| h.id() == first.prev_id)
                .filter(|&k| self.branch[k].0.header.height + 1 == first.height)
                .map(|k| k + 1)
        };
        let Some(keep) = attach else {
            return Verdict::NotYet(NotYet::UnknownParent {
                height: first.height,
                head: self.head(),
            });
        };
        // Skip headers we already follow.
        let mut skip = 0;
        while skip < headers.len()
            && keep + skip < self.branch.len()
            && self.branch[keep + skip].0.id() == headers[skip].id()
        {
            skip += 1;
        }
        let keep = keep + skip;
        let new = &headers[skip..];
        if new.is_empty() {
            return Verdict::Accepted(Advance {
                head: self.head(),
                lib: self.lib(),
                ..Default::default()
            });
        }
        // Verify the new part from its parent's state.
        let (mut parent_id, mut state) = if keep == 0 {
            (self.base_id, self.base.clone())
        } else {
            (
                self.branch[keep - 1].0.id(),
                self.branch[keep - 1].1.clone(),
            )
        };
        let mut suffix = Vec::with_capacity(new.len());
        let mut evidence = Vec::new();
        for (i, h) in new.iter().enumerate() {
            if let Err(error) = state.check_header(&parent_id, h, &self.rules, now_ms) {
                return Verdict::Rejected(Rejection::Header {
                    index: skip + i,
                    height: h.header.height,
                    error,
                });
            }
            // A different header of ours for the same slot by the same producer.
            if let Some((ours, _)) = self.branch.iter().find(|(o, _)| {
                o.header.producer == h.header.producer
                    && o.header.timestamp_ms == h.header.timestamp_ms
                    && o.id() != h.id()
            }) {
                evidence.push((ours.clone(), h.clone()));
            }
            state = state.advance(&h.header, &self.rules.clock);
            parent_id = h.id();
            suffix.push((h.clone(), state.clone()));
        }
        if keep + suffix.len() > MAX_BRANCH {
            return Verdict::Rejected(Rejection::BranchTooLong);
        }
        // Fork choice between our branch and the candidate.
        let candidate = ForkTip {
            lib: state.lib,
            height: state.height,
            id: parent_id,
        };
        let ours = ForkTip {
            lib: self.head_state().lib,
            height: self.head(),
            id: self.head_id(),
        };
        let extends = keep == self.branch.len();
        if !extends && !candidate.prefer(&ours).is_gt() {
            return if evidence.is_empty() {
                Verdict::NotYet(NotYet::NotPreferred)
            } else {
                Verdict::Accepted(Advance {
                    evidence,
                    head: self.head(),
                    lib: self.lib(),
                    ..Default::default()
                })
            };
        }
        self.branch.truncate(keep);
        self.branch.extend(suffix);
        let finalized = self.move_checkpoint();
        Verdict::Accepted(Advance {
            finalized,
            evidence,
            head: self.head(),
            lib: self.lib(),
        })
    }

    /// Moves headers at or below the head's LIB out of the branch into the checkpoint.
    fn move_checkpoint(&mut self) -> Vec<Finalized> {
        let lib = self.head_state().lib;
        let mut finalized = Vec::new();
        let n = self
            .branch
            .iter()
            .take_while(|(h, _)| h.header.height <= lib)
            .count();
        for (h, c) in self.branch.drain(..n) {
            finalized.push(Finalized::of(&h));
            self.base_id = h.id();
            self.base = c;
        }
        finalized
    }
}

/// Which commitment of a block an item is proven against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Commitment {
    /// `tx_root`: the item is a canonical signed transaction.
    Transactions,
    /// `receipts_root`: the item is a canonical receipt.
    Receipts,
}

/// A proof that an item is in a block of the peer chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// Height of the block.
    pub height: u64,
    /// Position of the item in the block.
    pub index: u32,
    /// The item's canonical encoding.
    #[serde(with = "crate::codec::hex_bytes")]
    pub item: Vec<u8>,
    /// The inclusion proof.
    pub proof: MerkleProof,
}

/// Checks that `items` (canonical encodings) sit at `indices` of the block whose
/// irreversible header summary is `header`, with one multiproof against `commitment`
/// (interchain v2 batches). The leaf count comes from the signed header.
pub fn verify_batch<T: AsRef<[u8]>>(
    header: &Finalized,
    items: &[T],
    indices: &[u32],
    proof: &crate::multiproof::MultiProof,
    commitment: Commitment,
) -> Result<(), Rejection> {
    let root = match commitment {
        Commitment::Transactions => &header.tx_root,
        Commitment::Receipts => &header.receipts_root,
    };
    let leaves: Vec<crate::Hash32> = items
        .iter()
        .map(|i| merkle::leaf_hash(i.as_ref()))
        .collect();
    let indices: Vec<u64> = indices.iter().map(|&i| u64::from(i)).collect();
    crate::multiproof::verify_many(root, u64::from(header.tx_count), &indices, &leaves, proof)?;
    Ok(())
}

/// Checks a bundle against the irreversible header summary of its height. The leaf
/// count comes from the signed header, never from the prover.
pub fn verify_bundle(
    header: &Finalized,
    bundle: &ProofBundle,
    commitment: Commitment,
) -> Result<(), Rejection> {
    if bundle.index >= header.tx_count {
        return Err(Rejection::IndexOutOfRange {
            index: bundle.index,
            count: header.tx_count,
        });
    }
    let root = match commitment {
        Commitment::Transactions => &header.tx_root,
        Commitment::Receipts => &header.receipts_root,
    };
    merkle::verify_inclusion(
        root,
        u64::from(header.tx_count),
        u64::from(bundle.index),
        &merkle::leaf_hash(&bundle.item),
        &bundle.proof,
    )?;
    Ok(())
}

/// A light client with an in-memory window of irreversible headers.
#[derive(Clone, Debug)]
pub struct LightClientWithWindow {
    /// The light client.
    pub client: LightClient,
    /// Irreversible summaries by height.
    pub window: BTreeMap<u64, Finalized>,
    /// Most summaries kept.
    pub max_window: usize,
}

impl LightClientWithWindow {
    /// A light client from `anchor` keeping up to `max_window` irreversible summaries.
    pub fn new(anchor: &TrustAnchor, max_window: usize) -> Result<Self, AnchorError> {
        let mut window = BTreeMap::new();
        if let Some(h) = &anchor.checkpoint.header {
            window.insert(h.header.height, Finalized::of(h));
        }
        Ok(Self {
            client: LightClient::new(anchor)?,
            window,
            max_window: max_window.max(1),
        })
    }

    /// Submits headers (see [`LightClient::submit`]) and stores what became final.
    pub fn submit(&mut self, headers: &[SignedHeader], now_ms: u64) -> Verdict<Advance> {
        let v = self.client.submit(headers, now_ms);
        if let Verdict::Accepted(a) = &v {
            for f in &a.finalized {
                self.window.insert(f.height, f.clone());
            }
            while self.window.len() > self.max_window {
                self.window.pop_first();
            }
        }
        v
    }

    /// Whether `bundle` proves an item in an irreversible block of the peer.
    pub fn verify(&self, bundle: &ProofBundle, commitment: Commitment) -> Verdict<()> {
        let at = Position {
            head: self.client.head(),
            lib: self.client.lib(),
            oldest_kept: self
                .window
                .keys()
                .next()
                .copied()
                .unwrap_or(self.client.lib()),
        };
        match admissible(self.window.get(&bundle.height), bundle.height, at) {
            Verdict::Accepted(h) => match verify_bundle(h, bundle, commitment) {
                Ok(()) => Verdict::Accepted(()),
                Err(r) => Verdict::Rejected(r),
            },
            Verdict::NotYet(n) => Verdict::NotYet(n),
            Verdict::Rejected(r) => Verdict::Rejected(r),
        }
    }
}

#[cfg(test)]
mod tests;
