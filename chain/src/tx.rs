//! Transactions, their bodies, receipts, and the canonical encoding and hashing
//! (DESIGN §3).
//!
//! `tx_hash = sha256("DISTPOS/TX/v4" ‖ canonical encoding without the signature)`; the
//! signature is over `tx_hash`. Because the encoding starts with `chain_id`, a
//! transaction signed for one chain is invalid on every other. The binary encoding of a
//! signed transaction is exactly the unsigned encoding followed by the 64 signature
//! bytes. Golden vectors in `chain/testdata/` pin both.

use crate::address::{Address, QualifiedAddress};
use distpos_proofs::{
    codec::{self, dec_u128, hex_bytes, CodecError},
    fast::Endorsement,
    hash_domain,
    light_client::Checkpoint,
    multiproof::MultiProof,
    ChainId, Hash32, PublicKey, SecretKey, Signature, SignedHeader,
};
use serde::{Deserialize, Serialize};

/// Domain of transaction hashes.
pub const TX_DOMAIN: &[u8] = b"DISTPOS/TX/v4";
/// Longest memo.
pub const MAX_MEMO_BYTES: usize = 256;
/// Longest producer URL.
pub const MAX_URL_BYTES: usize = 256;
/// Most producers one `Vote` may approve.
pub const MAX_VOTES: usize = 30;
/// Most headers in one `PeerHeaders`.
pub const MAX_PEER_HEADERS: usize = 1_000;
/// Largest encoded transaction accepted.
pub const MAX_TX_BYTES: usize = 256 * 1024;
/// How far beyond the head block time a transaction may expire.
pub const MAX_EXPIRATION_MS: u64 = 3_600_000;

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The chain the transaction is valid on.
    pub chain_id: ChainId,
    /// Per-sender sequence number: the account's previous nonce + 1.
    pub nonce: u64,
    /// Fee paid to the block producer.
    #[serde(with = "dec_u128")]
    pub fee: u128,
    /// TaPoS: `height & 0xFFFF` of a recent block.
    pub ref_block_num: u16,
    /// TaPoS: bytes 8..12 (LE) of that block's id.
    pub ref_block_prefix: u32,
    /// Unix ms after which the transaction is invalid (≤ head time + 1 h).
    pub expiration: u64,
    /// What the transaction does.
    pub body: Body,
    /// The signer's compressed public key; the sender address derives from it.
    pub pubkey: PublicKey,
    /// Low-S ECDSA signature over the transaction hash.
    pub signature: Signature,
}

/// The signed part of a transaction, in encoding order (all fields but the signature).
#[derive(Serialize)]
struct SigningView<'a> {
    chain_id: &'a ChainId,
    nonce: &'a u64,
    #[serde(with = "dec_u128")]
    fee: &'a u128,
    ref_block_num: &'a u16,
    ref_block_prefix: &'a u32,
    expiration: &'a u64,
    body: &'a Body,
    pubkey: &'a PublicKey,
}

/// Everything needed to build and sign a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsignedTx {
    /// See [`Transaction::chain_id`].
    pub chain_id: ChainId,
    /// See [`Transaction::nonce`].
    pub nonce: u64,
    /// See [`Transaction::fee`].
    pub fee: u128,
    /// See [`Transaction::ref_block_num`].
    pub ref_block_num: u16,
    /// See [`Transaction::ref_block_prefix`].
    pub ref_block_prefix: u32,
    /// See [`Transaction::expiration`].
    pub expiration: u64,
    /// See [`Transaction::body`].
    pub body: Body,
}

impl UnsignedTx {
    /// Signs with `key`, filling in the public key and signature.
    pub fn sign(self, key: &SecretKey) -> Transaction {
        let mut tx = Transaction {
            chain_id: self.chain_id,
            nonce: self.nonce,
            fee: self.fee,
            ref_block_num: self.ref_block_num,
            ref_block_prefix: self.ref_block_prefix,
            expiration: self.expiration,
            body: self.body,
            pubkey: key.public_key(),
            signature: Signature([0; 64]),
        };
        tx.signature = key.sign(&tx.hash());
        tx
    }
}

impl Transaction {
    fn signing_view(&self) -> SigningView<'_> {
        SigningView {
            chain_id: &self.chain_id,
            nonce: &self.nonce,
            fee: &self.fee,
            ref_block_num: &self.ref_block_num,
            ref_block_prefix: &self.ref_block_prefix,
            expiration: &self.expiration,
            body: &self.body,
            pubkey: &self.pubkey,
        }
    }

    /// Canonical encoding of everything but the signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        codec::encode(&self.signing_view())
    }

    /// The transaction hash (its id), which the signature covers.
    pub fn hash(&self) -> Hash32 {
        hash_domain(TX_DOMAIN, &[&self.signing_bytes()])
    }

    /// Canonical encoding of the signed transaction (a Merkle leaf of `tx_root`).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a signed transaction, accepting only its canonical encoding (no trailing
    /// bytes, no alternative varints) and refusing oversized input.
    pub fn decode(bytes: &[u8]) -> Result<Transaction, CodecError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(CodecError::Malformed(format!(
                "transaction is {} bytes; at most {MAX_TX_BYTES} are allowed",
                bytes.len()
            )));
        }
        codec::decode_canonical(bytes)
    }
}

/// What a transaction does (DESIGN §3.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// Move tokens; cross-chain when `to.chain` is another registered chain.
    Transfer {
        /// Recipient (`0x…` = this chain).
        to: QualifiedAddress,
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
        /// Free-form data, at most 256 bytes.
        #[serde(with = "hex_bytes", default)]
        memo: Vec<u8>,
        /// For cross-chain transfers: unix ms after which the destination bounces it
        /// (0 = no deadline).
        #[serde(default)]
        deliver_by: u64,
        /// For cross-chain transfers: what the sender pays, on top of `amount`, to be
        /// delivered before this block is irreversible (DESIGN §11): the destination
        /// pays part of it to the transfer's underwriters and the rest to the
        /// recipient; a transfer that takes the ordinary path delivers all of it to
        /// the recipient. 0 = the ordinary path only.
        #[serde(with = "dec_u128", default)]
        fast_fee: u128,
        /// For a chain we have no correspondent relation with (DESIGN §12): the
        /// registered peer that forwards it (the first hop of the route to `to.chain`,
        /// which `GET /v1/routes/{chain}` names). `None`: straight to `to.chain`.
        #[serde(default)]
        via: Option<ChainId>,
    },
    /// Lock tokens as stake.
    Stake {
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
    },
    /// Start unbonding staked tokens.
    Unstake {
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
    },
    /// Become a producer candidate.
    RegisterProducer {
        /// Key the producer will sign blocks with.
        signing_key: PublicKey,
        /// Where its node can be reached.
        url: String,
    },
    /// Withdraw candidacy.
    UnregisterProducer,
    /// Approve up to 30 producers with the sender's stake.
    Vote {
        /// Producer accounts.
        producers: Vec<Address>,
    },
    /// Let another account vote this account's stake (or take it back).
    SetProxy {
        /// The proxy, or `None` to vote directly again.
        proxy: Option<Address>,
    },
    /// Propose a governance action (active producers only).
    Propose {
        /// The action (boxed: a peer's trust anchor makes it the largest body).
        action: Box<GovAction>,
    },
    /// Approve an open proposal (active producers only).
    Approve {
        /// Proposal id.
        proposal: u64,
    },
    /// Fund a peer chain's correspondent account.
    DepositCollateral {
        /// The peer chain.
        peer: ChainId,
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
    },
    /// Take collateral back (the peer's owner account only).
    WithdrawCollateral {
        /// The peer chain.
        peer: ChainId,
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
    },
    /// Advance our light client of a peer chain.
    PeerHeaders {
        /// The peer chain.
        peer: ChainId,
        /// Consecutive signed headers.
        headers: Vec<SignedHeader>,
    },
    /// Two headers signed by one producer for one slot.
    Evidence {
        /// First header.
        header_a: Box<SignedHeader>,
        /// Second header.
        header_b: Box<SignedHeader>,
    },
    /// Interchain v2 (DESIGN §6.1): transfers to us from one block of a peer chain,
    /// under one multiproof. A system transaction: put in a block by its producer,
    /// signed with the block's key, no nonce, no fee; the proof authenticates it.
    InboundBatch {
        /// The source chain.
        peer: ChainId,
        /// Headers of the peer that first advance our light client (may be empty):
        /// the run that makes `source_height` irreversible here.
        headers: Vec<SignedHeader>,
        /// Height of the source block.
        source_height: u64,
        /// The transfers, in block order.
        transfers: Vec<Transaction>,
        /// Their positions in the source block, strictly increasing.
        indices: Vec<u32>,
        /// One multiproof of them all against the source block's `tx_root`.
        proof: MultiProof,
    },
    /// Interchain v2: the peer's receipts of `InboundBatch`es of our transfers, from one
    /// of its blocks, under one multiproof. A system transaction like `InboundBatch`.
    SettleBatch {
        /// The destination chain.
        peer: ChainId,
        /// Headers of the peer that first advance our light client (may be empty).
        headers: Vec<SignedHeader>,
        /// Height of the destination block.
        source_height: u64,
        /// The receipts, in block order.
        receipts: Vec<Receipt>,
        /// Their positions in the destination block, strictly increasing.
        indices: Vec<u32>,
        /// One multiproof of them all against the block's `receipts_root`.
        proof: MultiProof,
    },
    /// Interchain v2: the system form of `PeerHeaders`, put in a block by its producer
    /// ahead of the batches its headers prove (so a light client far behind catches up
    /// even when no single batch can be proven yet).
    HeaderRun {
        /// The peer chain.
        peer: ChainId,
        /// Consecutive signed headers.
        headers: Vec<SignedHeader>,
    },
    /// Post an underwriting bond for transfers from `peer` (DESIGN §11): the sender's
    /// tokens here stand behind what `signing_key` endorses.
    BondUnderwriter {
        /// The chain whose transfers the bond underwrites.
        peer: ChainId,
        /// The key whose endorsements the bond backs (one bond per peer and key).
        signing_key: PublicKey,
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
    },
    /// Take part of a bond back (its owner only; not the locked part): it unbonds
    /// like stake.
    UnbondUnderwriter {
        /// The bond's peer chain.
        peer: ChainId,
        /// The bond's key.
        signing_key: PublicKey,
        /// Amount.
        #[serde(with = "dec_u128")]
        amount: u128,
    },
    /// The fast path (DESIGN §11): a transfer from `peer` in a block that is not
    /// irreversible yet, delivered on the endorsements of bonded underwriters, whose
    /// shares stay locked until the ordinary proof arrives. A system transaction.
    InboundFast {
        /// The source chain.
        peer: ChainId,
        /// The block of the peer that holds the transfer (checked against our light
        /// client's schedule, not its finality).
        header: Box<SignedHeader>,
        /// The transfer.
        transfer: Box<Transaction>,
        /// Its position in that block.
        index: u32,
        /// Its inclusion proof against the header's `tx_root`.
        proof: MultiProof,
        /// Shares that together cover the transfer (amount + fast fee) exactly.
        endorsements: Vec<Endorsement>,
    },
    /// Slash the shares behind a fast transfer whose block was orphaned and which can
    /// no longer be included on its chain: they go to the peer's correspondent
    /// account, which paid the recipient. A system transaction.
    SlashFast {
        /// The source chain.
        peer: ChainId,
        /// The fast transfer.
        tx: Hash32,
    },
    /// Forwarding (DESIGN §12): sends on a transfer from `source` that we admitted for
    /// another chain, as our own leg to the next hop, or bounces it when there is no
    /// way on. A system transaction: its producer picks the hop from its routes; the
    /// ledger checks the leg against what it holds, so the chain at `next` can trust
    /// every field once it proves this transaction in our block.
    Forward {
        /// The chain we admitted the transfer from.
        source: ChainId,
        /// Its transaction there (a transfer, or that chain's `Forward`).
        source_tx: Hash32,
        /// Onward, or back.
        hop: Hop,
    },
    /// Reports back what became of transfers we held (forwarded legs that settled):
    /// one result per transfer, in the receipt of this transaction, which the source
    /// chain settles with like an `InboundBatch` receipt. A system transaction.
    Release {
        /// The chain the transfers came from.
        source: ChainId,
        /// Their transactions there.
        txs: Vec<Hash32>,
    },
    /// Two headers of a peer chain signed by one of its producers for one slot
    /// (DESIGN §13): evidence of equivocation among the peer's producers, which
    /// lowers its reputation here. Anyone may submit it; it counts once per producer
    /// and slot. (Our light client also records such pairs itself when both reach it.)
    PeerEvidence {
        /// The peer chain.
        peer: ChainId,
        /// First header.
        header_a: Box<SignedHeader>,
        /// Second header.
        header_b: Box<SignedHeader>,
    },
}

/// Where a [`Body::Forward`] sends a held transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Hop {
    /// Our leg to `next`, a registered peer.
    Onward(Box<Leg>),
    /// Back to the source: no route, a loop, or too many hops.
    Bounce(BounceReason),
}

/// A forwarded leg: everything the next chain reads, fixed by the forwarding chain's
/// ledger from the transfer it admitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leg {
    /// The next hop: a registered peer of the forwarding chain.
    pub next: ChainId,
    /// The final recipient (its chain may be `next` or beyond).
    pub to: QualifiedAddress,
    /// What arrives: what we admitted, less our transit fee.
    #[serde(with = "dec_u128")]
    pub amount: u128,
    /// The deadline, shortened by our margin (0 = none).
    pub deliver_by: u64,
    /// The chains the transfer has left, the first sender's first, ours last.
    pub path: Vec<ChainId>,
    /// The first sender, qualified with its chain.
    pub origin: QualifiedAddress,
}

impl Body {
    /// What a cross-chain transfer or a forwarded leg carries to the chain it goes
    /// to (amount and fast fee; a leg's amount); `None` for any other body.
    pub fn carried(&self) -> Option<u128> {
        match self {
            Body::Transfer {
                amount, fast_fee, ..
            } => Some(amount.saturating_add(*fast_fee)),
            Body::Forward {
                hop: Hop::Onward(leg),
                ..
            } => Some(leg.amount),
            _ => None,
        }
    }

    /// A system transaction: included by a block's producer, signed with its block
    /// key, with nonce 0 and no fee; never admitted from a client.
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            Body::InboundBatch { .. }
                | Body::SettleBatch { .. }
                | Body::HeaderRun { .. }
                | Body::InboundFast { .. }
                | Body::SlashFast { .. }
                | Body::Forward { .. }
                | Body::Release { .. }
        )
    }
}

/// Most transfers or receipts one batch carries.
pub const MAX_BATCH_ITEMS: usize = 4_000;
/// Most endorsements behind one fast transfer.
pub const MAX_ENDORSEMENTS: usize = 16;

/// Registration of a peer chain (DESIGN §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRegistration {
    /// The peer's chain id.
    pub chain: ChainId,
    /// The peer's identity hash (its genesis without peers).
    pub identity: Hash32,
    /// Start of the peer's slot 0.
    pub genesis_time_ms: u64,
    /// The peer's block interval.
    pub block_interval_ms: u64,
    /// Where our light client of the peer starts: its genesis, or an irreversible
    /// header with the consensus state after it (`GET /v1/anchor` of a peer node).
    pub anchor: Checkpoint,
    /// Account on our chain that owns the correspondent account.
    pub owner: Address,
    /// Credit our chain extends to the peer beyond its collateral.
    #[serde(with = "dec_u128", default)]
    pub credit_limit: u128,
    /// Below this available collateral the peer is reported `low`.
    #[serde(with = "dec_u128", default)]
    pub low_watermark: u128,
}

/// What a chain publishes so that other chains can register it as a peer (`GET
/// /v1/anchor`, DESIGN §14): its id, identity and clock, and a checkpoint (an
/// irreversible header with the consensus state after it) for their light clients to
/// start from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAnchor {
    /// The chain id.
    pub chain: ChainId,
    /// Its identity hash.
    pub identity: Hash32,
    /// Start of its slot 0.
    pub genesis_time_ms: u64,
    /// Its block interval.
    pub block_interval_ms: u64,
    /// Where a light client of it starts.
    pub anchor: Checkpoint,
}

impl PeerAnchor {
    /// The registration of this chain as a peer with our local terms.
    pub fn registration(
        self,
        owner: Address,
        credit_limit: u128,
        low_watermark: u128,
    ) -> PeerRegistration {
        PeerRegistration {
            chain: self.chain,
            identity: self.identity,
            genesis_time_ms: self.genesis_time_ms,
            block_interval_ms: self.block_interval_ms,
            anchor: self.anchor,
            owner,
            credit_limit,
            low_watermark,
        }
    }
}

/// A governance action; executes once ⌊2n/3⌋+1 active producers approved it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum GovAction {
    /// Register a peer chain.
    RegisterPeer(PeerRegistration),
    /// Change a peer's owner, credit limit and low watermark.
    UpdatePeer {
        /// The peer chain.
        chain: ChainId,
        /// New owner.
        owner: Address,
        /// New credit limit.
        #[serde(with = "dec_u128")]
        credit_limit: u128,
        /// New low watermark.
        #[serde(with = "dec_u128")]
        low_watermark: u128,
    },
    /// Suspend a peer: everything from it bounces, nothing goes to it.
    SuspendPeer {
        /// The peer chain.
        chain: ChainId,
    },
    /// Lift a suspension.
    ResumePeer {
        /// The peer chain.
        chain: ChainId,
    },
    /// Replace the chain parameters (timing fields must stay the same).
    SetParams(crate::params::ChainParams),
    /// Restart our light client of a peer at a newer checkpoint (one that cannot
    /// advance, e.g. registered from an anchor that was not the peer's).
    ResetPeerClient {
        /// The peer chain.
        chain: ChainId,
        /// The checkpoint to start from; above the light client's current one.
        anchor: Checkpoint,
    },
    /// Remove a peer: refused while transfers to it are in flight or its
    /// correspondent account is not zero. Transfers it delivered stay consumed.
    RemovePeer {
        /// The peer chain.
        chain: ChainId,
    },
    /// Set the admission policy for transfers from a peer (DESIGN §13): largest
    /// transfer, value-rate limit, delay above a threshold, reputation threshold.
    SetPeerPolicy {
        /// The peer chain.
        chain: ChainId,
        /// The policy (all off by default).
        policy: crate::interchain::policy::PeerPolicy,
    },
    /// Cancel a transfer from a peer that the policy delays: it bounces
    /// (`cancelled`) and its source refunds it.
    CancelDelayed {
        /// The peer chain.
        chain: ChainId,
        /// The transfer's transaction there.
        tx: Hash32,
    },
    /// Set the limits of the fast path for transfers from a peer (DESIGN §11).
    SetFastPolicy {
        /// The peer chain.
        chain: ChainId,
        /// The limits.
        policy: crate::interchain::fast::FastPolicy,
    },
}

/// What happened to a transaction, committed in `receipts_root`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The transaction.
    pub tx_hash: Hash32,
    /// Its outcome.
    pub outcome: Outcome,
    /// The amount moved (transfers, inbound, settle, stake…; 0 otherwise).
    #[serde(with = "dec_u128")]
    pub amount: u128,
    /// The fee paid.
    #[serde(with = "dec_u128")]
    pub fee: u128,
}

/// Outcome codes of a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// Applied (every local effect).
    Applied,
    /// A cross-chain transfer left: the sender was debited, an in-flight entry created.
    InFlight {
        /// Destination chain.
        destination: ChainId,
    },
    /// An inbound transfer was credited to its recipient.
    Delivered {
        /// Source chain.
        source: ChainId,
        /// Source transaction.
        source_tx: Hash32,
    },
    /// An inbound transfer was refused; the source chain refunds it.
    Bounced {
        /// Source chain.
        source: ChainId,
        /// Source transaction.
        source_tx: Hash32,
        /// Why.
        reason: BounceReason,
    },
    /// A destination acknowledged delivery of our outbound transfer.
    Acknowledged {
        /// Our original transaction.
        tx: Hash32,
    },
    /// A destination bounced our outbound transfer; the sender was refunded.
    Refunded {
        /// Our original transaction.
        tx: Hash32,
    },
    /// A batch of inbound transfers was consumed: each delivered or bounced.
    InboundBatch {
        /// Source chain.
        source: ChainId,
        /// One result per transfer, in the batch's order.
        results: Vec<TransferResult>,
    },
    /// A batch of receipts settled our outbound transfers.
    SettleBatch {
        /// One entry per transfer settled, in order.
        settled: Vec<SettleResult>,
    },
    /// A governance proposal was opened or approved.
    Proposal {
        /// Its id.
        id: u64,
        /// Whether enough producers approved it, so that it executed.
        executed: bool,
    },
    /// A transfer from `source` was delivered on the fast path: credited before its
    /// block is irreversible there, its underwriters' shares locked.
    FastDelivered {
        /// Source chain.
        source: ChainId,
        /// Source transaction.
        source_tx: Hash32,
    },
    /// The shares behind a fast transfer were slashed into the source's
    /// correspondent account.
    FastSlashed {
        /// Source chain.
        source: ChainId,
        /// Source transaction.
        source_tx: Hash32,
    },
    /// An inbound transfer for another chain was admitted and is held for forwarding
    /// (DESIGN §12): its result goes back once its onward leg has settled.
    Held {
        /// Source chain.
        source: ChainId,
        /// Source transaction.
        source_tx: Hash32,
    },
}

impl Outcome {
    /// The results this receipt reports to `chain` about transfers from it: the
    /// `InboundBatch` outcome of an `InboundBatch`, of a `Release` of transfers we
    /// held, or of a `Forward` that bounced one. What the source settles with.
    pub fn results_for(&self, chain: ChainId) -> Option<&[TransferResult]> {
        match self {
            Outcome::InboundBatch { source, results } if *source == chain => Some(results),
            _ => None,
        }
    }
}

/// How one transfer of an `InboundBatch` ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferResult {
    /// The source transaction.
    pub source_tx: Hash32,
    /// Its amount.
    #[serde(with = "dec_u128")]
    pub amount: u128,
    /// `None` when delivered; why it bounced otherwise.
    pub bounced: Option<BounceReason>,
    /// Delivered on the fast path before (DESIGN §11): this proof unlocked its
    /// underwriters' shares and credited nothing.
    #[serde(default)]
    pub fast: bool,
    /// The chain that bounced it, when a chain beyond the one that sends this result
    /// did (a forwarded transfer, DESIGN §12). `None`: the sender of this result.
    #[serde(default)]
    pub bounced_by: Option<ChainId>,
}

/// How one of our transfers was settled by a `SettleBatch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleResult {
    /// Our transfer.
    pub tx: Hash32,
    /// Delivered (acknowledged) or bounced (refunded).
    pub delivered: bool,
}

/// Why an inbound transfer bounced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceReason {
    /// `deliver_by` had passed.
    Expired,
    /// The source chain is suspended here.
    PeerSuspended,
    /// The source's correspondent account could not cover it.
    InsufficientCollateral,
    /// The recipient address is not valid here.
    BadRecipient,
    /// For another chain, and this chain does not forward (DESIGN §12).
    NoForwarding,
    /// For another chain, and this chain has no route to it.
    NoRoute,
    /// Forwarding it would send it back to a chain it has passed.
    Loop,
    /// It has travelled as many hops as allowed.
    HopLimit,
    /// Its amount does not cover the transit fee of a chain that would forward it.
    BelowTransitFee,
    /// Above the receiving chain's `max_transfer` for its source (DESIGN §13).
    AboveMaxTransfer,
    /// The source's reputation is below the receiving chain's threshold.
    LowReputation,
    /// Delayed by the receiving chain's policy, then cancelled by its governance.
    Cancelled,
    /// Proven in an irreversible block of the source, but breaking the rules of a
    /// transfer (a forwarded leg whose path does not end with the chain that sent
    /// it, or too long): the source's producers finalised what its own rules refuse.
    /// Counted as a proof refused in the source's reputation (DESIGN §13).
    Malformed,
}

impl BounceReason {
    /// Its name, as it is spelled in JSON (`insufficient_collateral`…): for logs and
    /// tables.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceReason::Expired => "expired",
            BounceReason::PeerSuspended => "peer_suspended",
            BounceReason::InsufficientCollateral => "insufficient_collateral",
            BounceReason::BadRecipient => "bad_recipient",
            BounceReason::NoForwarding => "no_forwarding",
            BounceReason::NoRoute => "no_route",
            BounceReason::Loop => "loop",
            BounceReason::HopLimit => "hop_limit",
            BounceReason::BelowTransitFee => "below_transit_fee",
            BounceReason::AboveMaxTransfer => "above_max_transfer",
            BounceReason::LowReputation => "low_reputation",
            BounceReason::Cancelled => "cancelled",
            BounceReason::Malformed => "malformed",
        }
    }

    /// Whether a bounce for this reason counts against the source's reputation: a
    /// fact about how the source behaves, not a choice of ours (suspension, policy
    /// limits, a low reputation, a cancelled delay), which would otherwise feed back
    /// into the score that made it.
    pub fn charged_to_source(self) -> bool {
        !matches!(
            self,
            BounceReason::PeerSuspended
                | BounceReason::AboveMaxTransfer
                | BounceReason::LowReputation
                | BounceReason::Cancelled
        )
    }
}

impl std::fmt::Display for BounceReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Receipt {
    /// Canonical encoding (a Merkle leaf of `receipts_root`).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

#[cfg(test)]
mod tests;
