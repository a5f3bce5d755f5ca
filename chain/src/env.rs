//! The constants of the block being executed: what every rule of a body reads about
//! its block (chain, height, time, parameters, consensus before it).

use crate::params::ChainParams;
use distpos_proofs::{
    consensus::{ChainRules, ConsensusState},
    ChainId,
};

/// Constants of the block being executed.
#[derive(Clone, Debug)]
pub struct BlockEnv {
    /// Our chain.
    pub chain_id: ChainId,
    /// Height of the block.
    pub height: u64,
    /// Its timestamp (the "now" of every transaction in it).
    pub time_ms: u64,
    /// Parameters in force for this block.
    pub params: ChainParams,
    /// Consensus state before this block (its active schedule governs it).
    pub consensus: ConsensusState,
    /// Header rules of our chain.
    pub rules: ChainRules,
}
