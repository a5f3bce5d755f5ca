//! The crate's error types: why a transaction or block is invalid, or why stored state
//! could not be read.

use crate::{
    address::{Address, AddressError},
    params::ParamsError,
};
use distpos_proofs::{
    codec::CodecError,
    consensus::{EvidenceError, HeaderError},
    light_client::{NotYet, Refusal, Rejection},
    ChainId, Hash32, SignatureError,
};

/// Stored state could not be decoded: a bug or disk corruption, never a client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt state record under key {key}: {error}")]
pub struct StateError {
    /// The key, hex.
    pub key: String,
    /// The decode error.
    pub error: CodecError,
}

/// Why a transaction is invalid. Every variant is the client's to fix, except `State`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Signed for another chain.
    #[error("transaction is for chain {got}, this is chain {expected}")]
    WrongChain {
        /// Our chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// The signature does not verify.
    #[error("bad signature over the DISTPOS/TX/v4 hash: {0}")]
    BadSignature(#[from] SignatureError),
    /// The transaction has expired.
    #[error("transaction expired at {expiration}, block time is {now}")]
    Expired {
        /// Its expiration.
        expiration: u64,
        /// Block time.
        now: u64,
    },
    /// The expiration is more than an hour ahead.
    #[error("expiration {expiration} is more than 1 hour after block time {now}")]
    ExpirationTooFar {
        /// Its expiration.
        expiration: u64,
        /// Block time.
        now: u64,
    },
    /// TaPoS reference does not match a block of this chain.
    #[error("TaPoS reference (block num {num}, prefix {prefix:#010x}) is not a recent block of this chain")]
    Tapos {
        /// `ref_block_num`.
        num: u16,
        /// `ref_block_prefix`.
        prefix: u32,
    },
    /// Already included.
    #[error("transaction {0} was already included")]
    Duplicate(Hash32),
    /// Nonce out of sequence.
    #[error("nonce {got} is out of sequence; expected {expected}")]
    BadNonce {
        /// The next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// Fee below the minimum.
    #[error("fee {got} is below the minimum {min}")]
    FeeTooLow {
        /// Minimum fee.
        min: u128,
        /// The fee.
        got: u128,
    },
    /// Not enough balance.
    #[error("insufficient balance: need {need}, have {have}")]
    InsufficientFunds {
        /// Needed.
        need: u128,
        /// Available.
        have: u128,
    },
    /// A body field is out of bounds or malformed.
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// A cross-chain transfer names a chain that is not a registered peer.
    #[error("chain {0} is not a registered peer of this chain (a chain reached through a correspondent needs via: GET /v1/routes/{0} names it)")]
    UnknownPeer(ChainId),
    /// The peer chain is suspended.
    #[error("peer chain {0} is suspended")]
    PeerSuspended(ChainId),
    /// Not enough stake.
    #[error("insufficient stake: need {need}, have {have}")]
    InsufficientStake {
        /// Needed.
        need: u128,
        /// Staked.
        have: u128,
    },
    /// A vote for an account that is not a registered producer.
    #[error("{0} is not a registered producer")]
    NotAProducer(Address),
    /// The signing key belongs to another producer.
    #[error("signing key is already used by producer {0}")]
    KeyInUse(Address),
    /// Only active producers may propose and approve.
    #[error("{0} is not an active producer")]
    NotActiveProducer(Address),
    /// No open proposal with this id.
    #[error("no open proposal {0}")]
    UnknownProposal(u64),
    /// The proposal's lifetime has passed.
    #[error("proposal {0} has expired")]
    ProposalExpired(u64),
    /// Approved twice.
    #[error("{0} already approved proposal {1}")]
    AlreadyApproved(Address, u64),
    /// A governance action cannot execute.
    #[error("governance action refused: {0}")]
    Governance(String),
    /// Only the peer's owner may withdraw its collateral.
    #[error("only the owner of peer {0}'s correspondent account may withdraw")]
    NotPeerOwner(ChainId),
    /// Withdrawal above the unreserved positive collateral.
    #[error("peer {peer} has only {available} collateral available to withdraw")]
    InsufficientCollateral {
        /// The peer.
        peer: ChainId,
        /// Withdrawable.
        available: u128,
    },
    /// Invalid double-sign evidence.
    #[error("invalid evidence: {0}")]
    BadEvidence(#[from] EvidenceError),
    /// Evidence about a key no producer uses.
    #[error("evidence names key {0}, which no producer uses")]
    UnknownProducerKey(String),
    /// This evidence was applied before.
    #[error("evidence for this producer and slot {0} was already applied")]
    EvidenceApplied(u64),
    /// The producer was slashed before (a producer is slashed once).
    #[error("producer {0} was already slashed")]
    AlreadySlashed(Address),
    /// Parameter change refused.
    #[error("{0}")]
    Params(#[from] ParamsError),
    /// Peer headers the light client refuses (not yet, or never).
    #[error("peer headers refused: {0}")]
    PeerHeaders(Box<Refusal>),
    /// A proof that cannot be checked yet (the peer header is not irreversible here
    /// yet, or not seen): retry after syncing the peer's headers.
    #[error("not provable yet: {0}")]
    NotYetProvable(NotYet),
    /// A proof or proven item that is invalid (forged, malformed, or not what it claims).
    #[error("invalid proof: {0}")]
    BadProof(Box<ProofError>),
    /// A fast delivery or slash that does not apply.
    #[error("fast path: {0}")]
    Fast(Box<crate::interchain::fast::FastError>),
    /// This inbound transfer was delivered or bounced already.
    #[error("inbound transfer {1} from chain {0} was already consumed")]
    AlreadyConsumed(ChainId, Hash32),
    /// A system transaction outside a block (submitted to a mempool): only a block's
    /// producer puts one in.
    #[error("a system transaction (inbound_batch, settle_batch, header_run) is put in a block by its producer; it cannot be submitted")]
    SystemOutsideBlock,
    /// A system transaction signed with another key than the block's producer's, or
    /// with a nonce or a fee.
    #[error(
        "a system transaction must be signed with the block producer's key, with nonce 0 and fee 0"
    )]
    SystemEnvelope,
    /// No in-flight transfer for this receipt (settled already, or never sent).
    #[error("no in-flight transfer {0} to settle (already settled?)")]
    NotInFlight(Hash32),
    /// An amount computation overflowed.
    #[error("amount overflow")]
    Overflow,
    /// Stored state is corrupt (not the client's fault).
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a block cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header does not extend the head.
    #[error("bad header: {0}")]
    Header(#[from] HeaderError),
    /// A transaction is invalid.
    #[error("transaction {index} ({hash}) invalid: {error}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Its hash.
        hash: Hash32,
        /// Why.
        error: TxError,
    },
    /// `tx_count` or `tx_root` does not match the transactions.
    #[error("header commits to different transactions ({0})")]
    TxRoot(&'static str),
    /// Too many transactions.
    #[error("block has {got} transactions; at most {max} allowed")]
    TooManyTxs {
        /// Allowed.
        max: u32,
        /// Present.
        got: usize,
    },
    /// `receipts_root` does not match the receipts we computed.
    #[error("receipts_root does not match the computed receipts")]
    ReceiptsRoot,
    /// `state_digest` does not match the state we computed.
    #[error("state_digest does not match: computed {computed}, header says {header}")]
    StateDigest {
        /// Ours.
        computed: Hash32,
        /// The header's.
        header: Hash32,
    },
    /// `new_schedule` does not match the election result.
    #[error("new_schedule does not match the election result")]
    Schedule,
    /// The reveal does not open the producer's previous commit.
    #[error("reveal does not match the producer's previous commit")]
    Reveal,
    /// The block's signing key belongs to no registered producer.
    #[error("block signer is not a registered producer key")]
    UnknownProducer,
    /// Stored state is corrupt.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a proof, or what it proves, is refused for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The light client refuses the proof (it does not verify, its index is outside
    /// the block, or its block is below the kept window).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The proven transaction was signed for another chain than the one delivering it.
    #[error("source transaction is for chain {got}, not chain {expected}")]
    WrongSourceChain {
        /// The chain that delivered it.
        expected: ChainId,
        /// The chain it was signed for.
        got: ChainId,
    },
    /// The proven transaction is not a transfer.
    #[error("source transaction is not a transfer")]
    NotATransfer,
    /// The proven transfer goes to another chain.
    #[error("transfer is addressed to chain {got}, not to this chain {ours}")]
    WrongDestination {
        /// This chain.
        ours: ChainId,
        /// The transfer's destination.
        got: ChainId,
    },
    /// The proven transaction's key has no address.
    #[error("source transaction key: {0}")]
    SourceKey(#[from] AddressError),
    /// The proven receipt neither delivers nor bounces a transfer.
    #[error("receipt is not a delivery or a bounce")]
    NotATransferReceipt,
    /// The proven receipt is for a transfer from another chain.
    #[error("receipt settles a transfer from chain {0}, not from this chain")]
    ForeignTransfer(ChainId),
    /// The transfer went to another chain than the one whose receipt this is.
    #[error("transfer {tx} went to chain {went}, not {peer}")]
    WrongPeer {
        /// The transfer.
        tx: Hash32,
        /// Where it went.
        went: ChainId,
        /// Whose receipt this is.
        peer: ChainId,
    },
    /// The receipt's amount is not the transfer's.
    #[error("receipt amount {got} differs from the transfer's {expected}")]
    AmountMismatch {
        /// The transfer's amount.
        expected: u128,
        /// The receipt's.
        got: u128,
    },
}

impl From<ProofError> for TxError {
    fn from(e: ProofError) -> Self {
        TxError::BadProof(Box::new(e))
    }
}

impl From<Refusal> for TxError {
    /// A light client's refusal of a proof: "not yet" stays apart from "never".
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotYet(n) => TxError::NotYetProvable(n),
            Refusal::Rejected(r) => ProofError::Rejected(r).into(),
        }
    }
}
