//! Chain parameters and the genesis specification (DESIGN §4.2, §5).

use crate::address::Address;
use distpos_proofs::{
    codec::{self, dec_u128},
    hash_domain, ChainId, Hash32, ProducerSchedule, PublicKey,
};
use serde::{Deserialize, Serialize};

/// Parameters fixed at genesis; all but the timing ones can be changed by governance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainParams {
    /// Slot length, 1000–30000 ms (down to 100 for `dev` chains). Fixed at genesis.
    pub block_interval_ms: u64,
    /// A test/development chain (allows short intervals). Fixed at genesis.
    pub dev: bool,
    /// Size of the elected producer set.
    pub max_producers: u32,
    /// Stake a producer must hold to register and to be elected.
    #[serde(with = "dec_u128")]
    pub min_producer_stake: u128,
    /// Lowest fee a transaction may pay.
    #[serde(with = "dec_u128")]
    pub min_fee: u128,
    /// New tokens minted to the producer of each block.
    #[serde(with = "dec_u128")]
    pub block_reward: u128,
    /// Blocks an unstaked amount stays locked.
    pub unbonding_blocks: u64,
    /// Share of stake burned for double signing, in basis points (1/10000).
    pub slash_fraction_bps: u32,
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// How far ahead of a node's clock a block may be.
    pub max_clock_drift_ms: u64,
    /// Blocks a governance proposal stays open.
    pub proposal_lifetime_blocks: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            block_interval_ms: 1_000,
            dev: false,
            max_producers: 21,
            min_producer_stake: 1_000,
            min_fee: 1,
            block_reward: 10,
            unbonding_blocks: 100,
            slash_fraction_bps: 1_000,
            max_block_txs: 20_000,
            max_clock_drift_ms: 500,
            proposal_lifetime_blocks: 1_000,
        }
    }
}

/// Why a genesis or a parameter set is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Interval outside the allowed range.
    #[error("block_interval_ms = {0} is outside 1000..=30000 (100..=30000 for dev chains)")]
    Interval(u64),
    /// `max_producers` outside 1..=101.
    #[error("max_producers = {0} is outside 1..=101")]
    MaxProducers(u32),
    /// `slash_fraction_bps` above 10000.
    #[error("slash_fraction_bps = {0} is above 10000")]
    SlashFraction(u32),
    /// `max_block_txs` of zero.
    #[error("max_block_txs must be at least 1")]
    MaxBlockTxs,
    /// Governance tried to change a parameter fixed at genesis.
    #[error("{0} is fixed at genesis and cannot be changed")]
    Fixed(&'static str),
    /// Chain id 0 is reserved for "this chain" in addresses.
    #[error("chain id 0 is reserved; pick a non-zero chain id")]
    ZeroChainId,
    /// No genesis producer.
    #[error("genesis has no producers")]
    NoProducers,
    /// Too many genesis producers.
    #[error("genesis has {0} producers, more than max_producers")]
    TooManyProducers(usize),
    /// A key or account listed twice.
    #[error("genesis lists {0} twice")]
    Duplicate(String),
    /// A genesis producer's stake is below the minimum.
    #[error("genesis producer {0} has stake below min_producer_stake")]
    LowStake(Address),
    /// Token amounts overflow.
    #[error("genesis token amounts overflow")]
    Overflow,
}

impl ChainParams {
    /// Checks the parameter ranges.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let min = if self.dev { 100 } else { 1_000 };
        if !(min..=30_000).contains(&self.block_interval_ms) {
            return Err(ParamsError::Interval(self.block_interval_ms));
        }
        if !(1..=101).contains(&self.max_producers) {
            return Err(ParamsError::MaxProducers(self.max_producers));
        }
        if self.slash_fraction_bps > 10_000 {
            return Err(ParamsError::SlashFraction(self.slash_fraction_bps));
        }
        if self.max_block_txs == 0 {
            return Err(ParamsError::MaxBlockTxs);
        }
        Ok(())
    }

    /// Checks that `next` may replace `self` by governance.
    pub fn validate_change(&self, next: &ChainParams) -> Result<(), ParamsError> {
        if next.block_interval_ms != self.block_interval_ms {
            return Err(ParamsError::Fixed("block_interval_ms"));
        }
        if next.dev != self.dev {
            return Err(ParamsError::Fixed("dev"));
        }
        next.validate()
    }
}

/// A producer present at genesis. It starts with `stake` locked and voting for itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisProducer {
    /// The producer's account.
    pub account: Address,
    /// The key it signs blocks with.
    pub signing_key: PublicKey,
    /// Where its node can be reached.
    #[serde(default)]
    pub url: String,
    /// Stake locked at genesis.
    #[serde(with = "dec_u128")]
    pub stake: u128,
}

/// A funded account at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its balance.
    #[serde(with = "dec_u128")]
    pub balance: u128,
}

/// The genesis specification of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain's id (non-zero).
    pub chain_id: ChainId,
    /// Start of slot 0.
    pub genesis_time_ms: u64,
    /// Parameters.
    #[serde(default)]
    pub params: ChainParams,
    /// Initial producers, in schedule order.
    pub producers: Vec<GenesisProducer>,
    /// Initial balances.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Peer chains registered from the start. Not part of the identity hash, so two
    /// chains can name each other in their genesis files.
    #[serde(default)]
    pub peers: Vec<crate::tx::PeerRegistration>,
}

impl Genesis {
    /// The chain's identity: the hash of its genesis without the peer list. It is also
    /// the `prev_id` of block 1.
    pub fn identity_hash(&self) -> Hash32 {
        let mut bare = self.clone();
        bare.peers.clear();
        hash_domain(b"DISTPOS/GENESIS/v1", &[&codec::encode(&bare)])
    }

    /// The genesis producer schedule (version 0).
    pub fn schedule(&self) -> ProducerSchedule {
        ProducerSchedule {
            version: 0,
            producers: self.producers.iter().map(|p| p.signing_key).collect(),
        }
    }

    /// Total tokens at genesis, checking for overflow.
    pub fn supply(&self) -> Result<u128, ParamsError> {
        let mut total: u128 = 0;
        for a in &self.accounts {
            total = total.checked_add(a.balance).ok_or(ParamsError::Overflow)?;
        }
        for p in &self.producers {
            total = total.checked_add(p.stake).ok_or(ParamsError::Overflow)?;
        }
        Ok(total)
    }

    /// Checks the genesis is usable.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.chain_id.is_local() {
            return Err(ParamsError::ZeroChainId);
        }
        self.params.validate()?;
        if self.producers.is_empty() {
            return Err(ParamsError::NoProducers);
        }
        if self.producers.len() > self.params.max_producers as usize {
            return Err(ParamsError::TooManyProducers(self.producers.len()));
        }
        let mut keys = std::collections::BTreeSet::new();
        let mut accounts = std::collections::BTreeSet::new();
        for p in &self.producers {
            if !keys.insert(p.signing_key) {
                return Err(ParamsError::Duplicate(format!(
                    "signing key {}",
                    p.signing_key
                )));
            }
            if !accounts.insert(p.account) {
                return Err(ParamsError::Duplicate(format!(
                    "producer account {}",
                    p.account
                )));
            }
            if p.stake < self.params.min_producer_stake {
                return Err(ParamsError::LowStake(p.account));
            }
        }
        let mut funded = std::collections::BTreeSet::new();
        for a in &self.accounts {
            if !funded.insert(a.address) {
                return Err(ParamsError::Duplicate(format!("account {}", a.address)));
            }
        }
        self.supply()?;
        Ok(())
    }
}
