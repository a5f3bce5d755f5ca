//! The state at genesis.

use crate::{
    error::TxError,
    governance,
    ledger::{self, keys, Meta, Producer},
    params::{Genesis, ParamsError},
    state::{Overlay, State},
    votes::update_account,
};
use distpos_proofs::{consensus::ConsensusState, Hash32};

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
        ledger::write(&mut o, keys::peer(reg.chain), &governance::new_peer(reg)?);
    }
    let changes = o.into_changes();
    let mut state = State::new();
    state.apply(&changes);
    state.head_id = identity;
    state.digest = Hash32::ZERO;
    Ok(state)
}
