//! Typed records of the state and where they live (the key schema).
//!
//! Every record is stored as its canonical encoding under a short prefixed key. Reads
//! work on anything that implements [`KvRead`] (the committed [`State`] for queries,
//! the [`Overlay`] during a block); writes go through the overlay.

use crate::{
    address::Address,
    error::StateError,
    params::ChainParams,
    state::{Key, Overlay, State},
    tx::{BounceReason, GovAction, PeerRegistration},
};
use distpos_proofs::{
    codec::{self, dec_u128},
    consensus::ConsensusState,
    light_client::{Finalized, LightClient},
    ChainId, Hash32, PublicKey,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

/// Read access to raw state.
pub trait KvRead {
    /// The value under `key`.
    fn get_raw(&self, key: &[u8]) -> Option<&[u8]>;
}

impl KvRead for State {
    fn get_raw(&self, key: &[u8]) -> Option<&[u8]> {
        self.get(key).map(|v| v.as_slice())
    }
}

impl KvRead for Overlay<'_> {
    fn get_raw(&self, key: &[u8]) -> Option<&[u8]> {
        self.get(key)
    }
}

/// Reads and decodes a record.
pub fn read<T: DeserializeOwned + Serialize>(
    kv: &impl KvRead,
    key: &[u8],
) -> Result<Option<T>, StateError> {
    match kv.get_raw(key) {
        None => Ok(None),
        Some(bytes) => codec::decode_canonical(bytes)
            .map(Some)
            .map_err(|error| StateError {
                key: hex::encode(key),
                error,
            }),
    }
}

/// Encodes and writes a record.
pub fn write<T: Serialize>(o: &mut Overlay<'_>, key: Key, value: &T) {
    o.put(key, codec::encode(value));
}

/// The key schema. One prefix per record kind; fixed-width big-endian numbers so that
/// key order is numeric order.
pub mod keys {
    use super::*;

    fn with(prefix: &[u8], parts: &[&[u8]]) -> Key {
        let mut k = prefix.to_vec();
        for p in parts {
            k.extend_from_slice(p);
        }
        k
    }

    /// Chain metadata ([`Meta`]).
    pub const META: &[u8] = b"m/meta";
    /// Chain parameters.
    pub const PARAMS: &[u8] = b"m/params";
    /// The consensus state of our own chain.
    pub const CONSENSUS: &[u8] = b"m/consensus";
    /// The list of every producer account ever registered.
    pub const PRODUCER_LIST: &[u8] = b"m/producers";
    /// Prefix of accounts.
    pub const ACCOUNT: &[u8] = b"a/";
    /// Prefix of producers.
    pub const PRODUCER: &[u8] = b"p/";
    /// Prefix of the signing-key index.
    pub const PRODUCER_KEY: &[u8] = b"k/";
    /// Prefix of peers.
    pub const PEER: &[u8] = b"c/";
    /// Prefix of in-flight outbound transfers.
    pub const IN_FLIGHT: &[u8] = b"f/";
    /// Prefix of consumed inbound transfers.
    pub const CONSUMED: &[u8] = b"i/";
    /// Prefix of proposals.
    pub const PROPOSAL: &[u8] = b"g/";
    /// Prefix of unbonding releases by height.
    pub const UNBONDING: &[u8] = b"u/";
    /// Prefix of remembered transaction ids.
    pub const TX_SEEN: &[u8] = b"t/";
    /// Prefix of transaction expirations (for pruning `TX_SEEN`).
    pub const TX_EXPIRY: &[u8] = b"x/";
    /// Prefix of TaPoS block prefixes.
    pub const TAPOS: &[u8] = b"r/";
    /// Prefix of applied evidence.
    pub const EVIDENCE: &[u8] = b"e/";
    /// Prefix of settled outbound transfers.
    pub const SETTLED: &[u8] = b"z/";
    /// Prefix of peers' irreversible header summaries.
    pub const PEER_HEADER: &[u8] = b"w/";
    /// Prefix of underwriters' bonds, by peer and key.
    pub const BOND: &[u8] = b"b/";
    /// Prefix of fast transfers, by peer and source transaction.
    pub const FAST: &[u8] = b"q/";
    /// Prefix of the fast path's book per peer.
    pub const FAST_BOOK: &[u8] = b"o/";
    /// Inbound transfers held for forwarding (DESIGN §12): `h/<peer><tx>`.
    pub const HELD: &[u8] = b"h/";
    /// Admission policy per peer (DESIGN §13): `y/<peer>`.
    pub const POLICY: &[u8] = b"y/";
    /// Equivocation evidence against peers' producers (DESIGN §13):
    /// `v/<peer><key><slot>`.
    pub const PEER_EVIDENCE: &[u8] = b"v/";

    /// Key of an account.
    pub fn account(a: &Address) -> Key {
        with(ACCOUNT, &[&a.0])
    }
    /// Key of a producer.
    pub fn producer(a: &Address) -> Key {
        with(PRODUCER, &[&a.0])
    }
    /// Key of the signing-key index entry.
    pub fn producer_key(k: &PublicKey) -> Key {
        with(PRODUCER_KEY, &[&k.0])
    }
    /// Key of a peer chain.
    pub fn peer(c: ChainId) -> Key {
        with(PEER, &[&c.0.to_be_bytes()])
    }
    /// The peer chain of a key under [`PEER`] (or the chain that starts a key under
    /// [`BOND`], [`FAST`] or [`FAST_BOOK`]), given without its prefix.
    pub fn chain_of(rest: &[u8]) -> Option<ChainId> {
        Some(ChainId(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)))
    }
    /// Key of an in-flight transfer.
    pub fn in_flight(tx: &Hash32) -> Key {
        with(IN_FLIGHT, &[&tx.0])
    }
    /// Key of a consumed inbound transfer.
    pub fn consumed(peer: ChainId, tx: &Hash32) -> Key {
        with(CONSUMED, &[&peer.0.to_be_bytes(), &tx.0])
    }
    /// Key of a proposal.
    pub fn proposal(id: u64) -> Key {
        with(PROPOSAL, &[&id.to_be_bytes()])
    }
    /// Key of the unbonding releases due at `height`.
    pub fn unbonding(height: u64) -> Key {
        with(UNBONDING, &[&height.to_be_bytes()])
    }
    /// Key of a remembered transaction id.
    pub fn tx_seen(tx: &Hash32) -> Key {
        with(TX_SEEN, &[&tx.0])
    }
    /// Key of an expiration entry.
    pub fn tx_expiry(expiration: u64, tx: &Hash32) -> Key {
        with(TX_EXPIRY, &[&expiration.to_be_bytes(), &tx.0])
    }
    /// Key of a TaPoS entry.
    pub fn tapos(num: u16) -> Key {
        with(TAPOS, &[&num.to_be_bytes()])
    }
    /// Key of a settled outbound transfer.
    pub fn settled(tx: &Hash32) -> Key {
        with(SETTLED, &[&tx.0])
    }
    /// Key of a peer's irreversible header summary at `height`.
    pub fn peer_header(peer: ChainId, height: u64) -> Key {
        with(PEER_HEADER, &[&peer.0.to_be_bytes(), &height.to_be_bytes()])
    }
    /// Key of an underwriter's bond for transfers from `peer`.
    pub fn bond(peer: ChainId, k: &PublicKey) -> Key {
        with(BOND, &[&peer.0.to_be_bytes(), &k.0])
    }
    /// Key of the fast record of transfer `tx` from `peer`.
    pub fn fast(peer: ChainId, tx: &Hash32) -> Key {
        with(FAST, &[&peer.0.to_be_bytes(), &tx.0])
    }
    /// Key of the fast path's book for `peer`.
    pub fn fast_book(peer: ChainId) -> Key {
        with(FAST_BOOK, &[&peer.0.to_be_bytes()])
    }
    /// Key of the admission policy of `peer`.
    pub fn policy(peer: ChainId) -> Key {
        with(POLICY, &[&peer.0.to_be_bytes()])
    }
    /// Key of a transfer from `peer` held for forwarding.
    pub fn held(peer: ChainId, tx: &Hash32) -> Key {
        with(HELD, &[&peer.0.to_be_bytes(), &tx.0])
    }
    /// The prefix of every key of equivocation evidence against producers of `peer`.
    pub fn peer_evidence_of(peer: ChainId) -> Key {
        with(PEER_EVIDENCE, &[&peer.0.to_be_bytes()])
    }
    /// Key of equivocation evidence against a producer of `peer` (DESIGN §13).
    pub fn peer_evidence(peer: ChainId, k: &PublicKey, slot: u64) -> Key {
        with(
            PEER_EVIDENCE,
            &[&peer.0.to_be_bytes(), &k.0, &slot.to_be_bytes()],
        )
    }
    /// Key of an applied evidence entry.
    pub fn evidence(k: &PublicKey, slot: u64) -> Key {
        with(EVIDENCE, &[&k.0, &slot.to_be_bytes()])
    }
}

/// An account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable tokens.
    #[serde(with = "dec_u128")]
    pub balance: u128,
    /// Nonce of the last transaction (the next must be this + 1).
    pub nonce: u64,
    /// Staked tokens.
    #[serde(with = "dec_u128")]
    pub stake: u128,
    /// Tokens unbonding (released after `unbonding_blocks`).
    #[serde(with = "dec_u128")]
    pub unbonding: u128,
    /// Producers this account approves.
    pub votes: Vec<Address>,
    /// The account voting this account's stake, if any.
    pub proxy: Option<Address>,
    /// Stake of the accounts that chose this account as their proxy.
    #[serde(with = "dec_u128")]
    pub proxied_weight: u128,
    /// How many accounts chose this account as their proxy.
    pub delegators: u32,
}

impl Account {
    /// The weight this account's votes carry: its stake plus what was proxied to it,
    /// or nothing while it has a proxy of its own.
    pub fn vote_weight(&self) -> u128 {
        if self.proxy.is_some() {
            0
        } else {
            self.stake.saturating_add(self.proxied_weight)
        }
    }
}

/// A producer candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    /// The key it signs blocks with.
    pub signing_key: PublicKey,
    /// Its node's URL.
    pub url: String,
    /// Currently a candidate.
    pub registered: bool,
    /// Slashed for double signing: never elected again.
    pub slashed: bool,
    /// Approval-weighted stake voting for it.
    #[serde(with = "dec_u128")]
    pub total_votes: u128,
    /// Blocks produced.
    pub produced: u64,
    /// Slots it was scheduled for and missed.
    pub missed: u64,
    /// Its current commit (`sha256(secret)`), zero before its first block.
    pub last_commit: Hash32,
    /// Height of its last block on this branch (whose commit the next reveal opens).
    pub last_block_height: u64,
}

impl Producer {
    /// A newly registered producer with `signing_key`.
    pub fn new(signing_key: PublicKey, url: String) -> Self {
        Self {
            signing_key,
            url,
            registered: true,
            slashed: false,
            total_votes: 0,
            produced: 0,
            missed: 0,
            last_commit: Hash32::ZERO,
            last_block_height: 0,
        }
    }
}

/// An open governance proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Id.
    pub id: u64,
    /// What it does.
    pub action: GovAction,
    /// Who proposed it.
    pub proposer: Address,
    /// Producers that approved it (the proposer first).
    pub approvals: Vec<Address>,
    /// Last height at which it may be approved.
    pub expires_at: u64,
}

/// A registered peer chain and its correspondent account (DESIGN §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerChain {
    /// Registration data.
    pub registration: PeerRegistration,
    /// Suspended by governance.
    pub suspended: bool,
    /// Correspondent balance, signed: collateral + acknowledged outbound − delivered
    /// inbound. Negative = credit we extended.
    #[serde(with = "crate::amount::dec_i128")]
    pub corr: i128,
    /// Collateral deposited in total.
    #[serde(with = "dec_u128")]
    pub deposited: u128,
    /// Inbound transfers delivered.
    pub delivered_in: u64,
    /// Inbound transfers bounced (here, or further on for transfers we forwarded).
    pub bounced_in: u64,
    /// Inbound transfers this chain bounced, by reason (DESIGN §13: the reasons
    /// [`BounceReason::charged_to_source`] weigh on the peer's reputation; a
    /// `malformed` one is a proof refused). Not here, only in `bounced_in`: those
    /// bounced further on, and those that expired while our policy delayed them.
    pub bounces: BTreeMap<BounceReason, u64>,
    /// Equivocations among the peer's producers we hold evidence of (one per producer
    /// and slot, under [`keys::peer_evidence`]).
    pub equivocations: u64,
    /// Volume delivered inbound.
    #[serde(with = "dec_u128")]
    pub volume_in: u128,
    /// Outbound transfers sent.
    pub sent_out: u64,
    /// Volume sent outbound.
    #[serde(with = "dec_u128")]
    pub volume_out: u128,
    /// Outbound transfers acknowledged.
    pub acked_out: u64,
    /// Outbound transfers refunded.
    pub refunded_out: u64,
    /// Our light client of the peer (its irreversible header summaries are stored
    /// separately, under [`keys::peer_header`]).
    pub light_client: LightClient,
}

impl PeerChain {
    /// Counts an inbound transfer this chain bounced.
    pub fn count_bounce(&mut self, reason: BounceReason) {
        self.bounced_in += 1;
        *self.bounces.entry(reason).or_default() += 1;
    }

    /// Bounces that weigh on the peer's reputation
    /// ([`BounceReason::charged_to_source`]).
    pub fn charged_bounces(&self) -> u64 {
        self.bounces
            .iter()
            .filter(|(r, _)| r.charged_to_source())
            .map(|(_, n)| *n)
            .fold(0, u64::saturating_add)
    }

    /// Transfers proven in the peer's irreversible blocks that we refused as
    /// malformed.
    pub fn refused_proofs(&self) -> u64 {
        self.bounces
            .get(&BounceReason::Malformed)
            .copied()
            .unwrap_or(0)
    }
}

/// An outbound transfer waiting for the destination's receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Destination chain.
    pub destination: ChainId,
    /// Sender on our chain (refunded on bounce).
    pub sender: Address,
    /// Recipient on the destination.
    pub recipient: Address,
    /// Amount.
    #[serde(with = "dec_u128")]
    pub amount: u128,
    /// Deadline (0 = none).
    pub deliver_by: u64,
    /// Height of the block that included it.
    pub height: u64,
    /// For a leg we forward (DESIGN §12): the chain and transaction of the transfer
    /// it carries on, which its settlement decides (no sender here to refund).
    #[serde(default)]
    pub forwarding: Option<(ChainId, Hash32)>,
}

/// Chain-wide bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Our chain id.
    pub chain_id: ChainId,
    /// Genesis time.
    pub genesis_time_ms: u64,
    /// Identity hash.
    pub identity: Hash32,
    /// Supply at genesis.
    #[serde(with = "dec_u128")]
    pub genesis_supply: u128,
    /// Block rewards minted so far.
    #[serde(with = "dec_u128")]
    pub minted: u128,
    /// Stake burned by slashing so far.
    #[serde(with = "dec_u128")]
    pub burned: u128,
    /// Time of the head block.
    pub time_ms: u64,
    /// Running hash of this round's reveals.
    pub seed_acc: Hash32,
    /// Next proposal id.
    pub next_proposal: u64,
}

/// Reads the metadata (present in every initialised state).
pub fn meta(kv: &impl KvRead) -> Result<Meta, StateError> {
    read(kv, keys::META)?.ok_or_else(|| missing(keys::META))
}

/// Reads the parameters.
pub fn params(kv: &impl KvRead) -> Result<ChainParams, StateError> {
    read(kv, keys::PARAMS)?.ok_or_else(|| missing(keys::PARAMS))
}

/// Reads the consensus state of our chain.
pub fn consensus(kv: &impl KvRead) -> Result<ConsensusState, StateError> {
    read(kv, keys::CONSENSUS)?.ok_or_else(|| missing(keys::CONSENSUS))
}

/// Reads an account (the default, empty account if absent).
pub fn account(kv: &impl KvRead, a: &Address) -> Result<Account, StateError> {
    Ok(read(kv, &keys::account(a))?.unwrap_or_default())
}

/// Writes an account (deleting it when it is empty again).
pub fn put_account(o: &mut Overlay<'_>, a: &Address, acct: &Account) {
    if acct == &Account::default() {
        o.delete(keys::account(a));
    } else {
        write(o, keys::account(a), acct);
    }
}

/// Reads a producer.
pub fn producer(kv: &impl KvRead, a: &Address) -> Result<Option<Producer>, StateError> {
    read(kv, &keys::producer(a))
}

/// The account owning a signing key.
pub fn producer_by_key(kv: &impl KvRead, k: &PublicKey) -> Result<Option<Address>, StateError> {
    read(kv, &keys::producer_key(k))
}

/// Every account that ever registered as producer.
pub fn producer_list(kv: &impl KvRead) -> Result<Vec<Address>, StateError> {
    Ok(read(kv, keys::PRODUCER_LIST)?.unwrap_or_default())
}

/// Reads a peer chain.
pub fn peer(kv: &impl KvRead, c: ChainId) -> Result<Option<PeerChain>, StateError> {
    read(kv, &keys::peer(c))
}

/// A peer's irreversible header summary at `height`.
pub fn peer_header(
    kv: &impl KvRead,
    peer: ChainId,
    height: u64,
) -> Result<Option<Finalized>, StateError> {
    read(kv, &keys::peer_header(peer, height))
}

/// The open governance proposals, oldest first (at most `limit`).
pub fn proposals(state: &State, limit: usize) -> Result<Vec<Proposal>, StateError> {
    state
        .scan_prefix(keys::PROPOSAL)
        .take(limit)
        .map(|(k, v)| {
            codec::decode_canonical(v).map_err(|error| StateError {
                key: hex::encode(k),
                error,
            })
        })
        .collect()
}

/// Whether an inbound transfer from `peer` was consumed.
pub fn consumed(kv: &impl KvRead, peer: ChainId, tx: &Hash32) -> bool {
    kv.get_raw(&keys::consumed(peer, tx)).is_some()
}

/// Reads an in-flight transfer.
pub fn in_flight(kv: &impl KvRead, tx: &Hash32) -> Result<Option<InFlight>, StateError> {
    read(kv, &keys::in_flight(tx))
}

fn missing(key: &[u8]) -> StateError {
    StateError {
        key: hex::encode(key),
        error: codec::CodecError::Malformed("record missing: state not initialised".into()),
    }
}
