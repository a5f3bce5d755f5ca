//! Stake-weighted approval voting with one-level proxies, and the election (DESIGN §4.2).
//!
//! Each producer's `total_votes` is kept up to date incrementally: every change to an
//! account goes through [`update_account`], which moves the account's old weight off
//! the producers it approved and its new weight onto them, and moves its stake between
//! proxies. An account with a proxy casts no votes itself; its stake is added to the
//! proxy's `proxied_weight`. A proxy cannot have a proxy, so weight moves one level
//! only. Changes take effect at the next election (the next round boundary).

use crate::{
    address::Address,
    error::{StateError, TxError},
    ledger::{self, keys, Account},
    params::ChainParams,
    state::Overlay,
};
use distpos_proofs::{schedule::shuffle, Hash32, PublicKey};

/// Replaces the record of `addr` with `f(record)`, keeping every vote total and proxy
/// weight consistent.
pub(crate) fn update_account(
    o: &mut Overlay<'_>,
    addr: &Address,
    f: impl FnOnce(&mut Account) -> Result<(), TxError>,
) -> Result<(), TxError> {
    let old = ledger::account(o, addr)?;
    let mut new = old.clone();
    f(&mut new)?;
    ledger::put_account(o, addr, &new);
    reweigh(o, &old, &new)
}

fn reweigh(o: &mut Overlay<'_>, old: &Account, new: &Account) -> Result<(), TxError> {
    let (old_w, new_w) = (old.vote_weight(), new.vote_weight());
    if old_w != new_w || old.votes != new.votes {
        for p in &old.votes {
            adjust_total(o, p, old_w, false)?;
        }
        for p in &new.votes {
            adjust_total(o, p, new_w, true)?;
        }
    }
    if old.proxy != new.proxy || old.stake != new.stake {
        let changed = old.proxy != new.proxy;
        if let Some(p) = old.proxy {
            let stake = old.stake;
            update_account(o, &p, |acct| {
                acct.proxied_weight = acct
                    .proxied_weight
                    .checked_sub(stake)
                    .ok_or(TxError::Overflow)?;
                if changed {
                    acct.delegators = acct.delegators.saturating_sub(1);
                }
                Ok(())
            })?;
        }
        if let Some(p) = new.proxy {
            let stake = new.stake;
            update_account(o, &p, |acct| {
                acct.proxied_weight = acct
                    .proxied_weight
                    .checked_add(stake)
                    .ok_or(TxError::Overflow)?;
                if changed {
                    acct.delegators = acct.delegators.saturating_add(1);
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

fn adjust_total(
    o: &mut Overlay<'_>,
    producer: &Address,
    weight: u128,
    add: bool,
) -> Result<(), TxError> {
    if weight == 0 {
        return Ok(());
    }
    let mut p = ledger::producer(o, producer)?
        .ok_or_else(|| TxError::Invalid(format!("vote for unknown producer {producer}")))?;
    p.total_votes = if add {
        p.total_votes.checked_add(weight)
    } else {
        p.total_votes.checked_sub(weight)
    }
    .ok_or(TxError::Overflow)?;
    ledger::write(o, keys::producer(producer), &p);
    Ok(())
}

/// The elected producers, best first: registered, not slashed, with at least
/// `min_producer_stake` staked and some approval; ranked by approval-weighted stake,
/// ties by address; at most `max_producers`.
pub fn elect(
    o: &impl ledger::KvRead,
    params: &ChainParams,
) -> Result<Vec<(Address, PublicKey)>, StateError> {
    let mut candidates = Vec::new();
    for addr in ledger::producer_list(o)? {
        let Some(p) = ledger::producer(o, &addr)? else {
            continue;
        };
        if !p.registered || p.slashed || p.total_votes == 0 {
            continue;
        }
        if ledger::account(o, &addr)?.stake < params.min_producer_stake {
            continue;
        }
        candidates.push((p.total_votes, addr, p.signing_key));
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.truncate(params.max_producers as usize);
    Ok(candidates.into_iter().map(|(_, a, k)| (a, k)).collect())
}

/// The schedule order for an elected set: the keys shuffled by the round seed.
pub fn order_schedule(elected: &[(Address, PublicKey)], seed: &Hash32) -> Vec<PublicKey> {
    let mut keys: Vec<PublicKey> = elected.iter().map(|(_, k)| *k).collect();
    keys.sort();
    shuffle(&mut keys, seed);
    keys
}

#[cfg(test)]
mod tests;
