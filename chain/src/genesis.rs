//! A chain's genesis: its specification ([`Genesis`]: parameters, producers, funded
//! accounts, peers registered from the start) and the state it yields.

use crate::address::Address;
use crate::{
    error::TxError,
    governance,
    ledger::{self, keys, Meta, Producer},
    params::{ChainParams, ParamsError},
    state::{Overlay, State},
    votes::update_account,
};
use distpos_proofs::{
    codec::{self, dec_u128},
    consensus::ConsensusState,
    hash_domain, ChainId, Hash32, ProducerSchedule, PublicKey,
};
use serde::{Deserialize, Serialize};

/// Why a genesis cannot be turned into a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// A parameter or listing is invalid.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Something in it could not be applied (e.g. a bad peer registration).
    #[error("genesis cannot be applied: {0}")]
    Apply(#[from] TxError),
}

/// Builds the genesis state: balances, producers (staked and voting for themselves),
/// peers, parameters, and the consensus state with the genesis schedule.
pub fn genesis_state(g: &Genesis) -> Result<State, GenesisError> {
    g.validate()?;
    let empty = State::new();
    let mut o = Overlay::new(&empty);
    let identity = g.identity_hash();
    ledger::write(
        &mut o,
        keys::META.to_vec(),
        &Meta {
            chain_id: g.chain_id,
            genesis_time_ms: g.genesis_time_ms,
            identity,
            genesis_supply: g.supply()?,
            minted: 0,
            burned: 0,
            time_ms: g.genesis_time_ms,
            seed_acc: Hash32::ZERO,
            next_proposal: 0,
        },
    );
    ledger::write(&mut o, keys::PARAMS.to_vec(), &g.params);
    let consensus =
        ConsensusState::genesis(g.schedule()).map_err(|e| ParamsError::Duplicate(e.to_string()))?;
    ledger::write(&mut o, keys::CONSENSUS.to_vec(), &consensus);

    for a in &g.accounts {
        update_account(&mut o, &a.address, |acct| {
            acct.balance = a.balance;
            Ok(())
        })?;
    }
    let mut list = Vec::new();
    for p in &g.producers {
        let record = Producer::new(p.signing_key, p.url.clone());
        ledger::write(&mut o, keys::producer(&p.account), &record);
        ledger::write(&mut o, keys::producer_key(&p.signing_key), &p.account);
        list.push(p.account);
    }
    ledger::write(&mut o, keys::PRODUCER_LIST.to_vec(), &list);
    for p in &g.producers {
        update_account(&mut o, &p.account, |acct| {
            acct.stake = acct.stake.checked_add(p.stake).ok_or(TxError::Overflow)?;
            acct.votes = vec![p.account];
            Ok(())
        })?;
    }
    for reg in &g.peers {
        governance::check_registration(&o, g.chain_id, reg)?;
        governance::add_peer(&mut o, reg)?;
    }
    let changes = o.into_changes();
    let mut state = State::new();
    state.apply(&changes);
    state.head_id = identity;
    state.digest = Hash32::ZERO;
    Ok(state)
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
