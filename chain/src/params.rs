//! Chain parameters (DESIGN §4.2): what genesis fixes and governance may change.

use crate::address::Address;
use distpos_proofs::codec::dec_u128;
use serde::{Deserialize, Serialize};

/// Most chains a forwarded transfer's path may name (the bound of `max_hops`).
pub const MAX_PATH: usize = 16;

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
    /// Forwarding (DESIGN §12): whether this chain forwards transfers from its peers
    /// to chains they have no relation with (off: such transfers bounce with
    /// `no_forwarding`).
    pub forwarding: bool,
    /// Most legs a transfer may travel, the first included: a transfer that has
    /// left this many chains bounces with `hop_limit` instead of going on.
    pub max_hops: u32,
    /// What this chain keeps of each transfer it forwards.
    #[serde(with = "dec_u128")]
    pub transit_fee: u128,
    /// The account the transit fees go to (required when `transit_fee` is not 0).
    pub transit_fee_to: Address,
    /// How much earlier than the transfer's deadline a forwarded leg must arrive (so
    /// that a bounce can still travel back in time).
    pub forward_margin_ms: u64,
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
            forwarding: false,
            max_hops: 4,
            transit_fee: 0,
            transit_fee_to: Address::ZERO,
            forward_margin_ms: 5_000,
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
    /// `max_hops` outside 1..=16.
    #[error("max_hops = {0} is outside 1..=16")]
    MaxHops(u32),
    /// A transit fee with nobody to receive it.
    #[error("transit_fee is not 0, so transit_fee_to must name an account")]
    TransitFeeTo,
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
        if !(1..=MAX_PATH as u32).contains(&self.max_hops) {
            return Err(ParamsError::MaxHops(self.max_hops));
        }
        if self.transit_fee != 0 && self.transit_fee_to == Address::ZERO {
            return Err(ParamsError::TransitFeeTo);
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
