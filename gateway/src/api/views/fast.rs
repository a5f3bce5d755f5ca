//! `GET /v1/underwriters`: the fast path (DESIGN §11) as this chain holds it — per
//! peer chain, governance's policy and the book's totals, and every underwriter's
//! bond with what is locked behind fast transfers not yet proven.

use crate::node::NodeError;
use distpos_chain::{
    interchain::fast::{Bond, FastBook},
    ledger::keys,
    State,
};
use distpos_proofs::{codec, ChainId, PublicKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The view, for one peer or every registered one.
pub fn underwriters(state: &State, only: Option<ChainId>) -> Result<Value, NodeError> {
    let mut bonds: BTreeMap<ChainId, Vec<Value>> = BTreeMap::new();
    for (k, v) in state.scan_prefix(keys::BOND) {
        let Some(rest) = k.strip_prefix(keys::BOND) else {
            continue;
        };
        let (Some(peer), Some(key)) = (
            keys::chain_of(rest),
            rest.get(4..)
                .and_then(|b| <[u8; 33]>::try_from(b).ok())
                .map(PublicKey),
        ) else {
            continue;
        };
        if only.is_some_and(|o| o != peer) {
            continue;
        }
        let b: Bond = codec::decode_canonical(v).map_err(|error| distpos_chain::StateError {
            key: hex::encode(k),
            error,
        })?;
        bonds.entry(peer).or_default().push(json!({
            "signing_key": key,
            "owner": b.owner,
            "amount": b.amount.to_string(),
            "locked": b.locked.to_string(),
            "free": b.free().to_string(),
        }));
    }
    let mut peers = Vec::new();
    for (k, _) in state.scan_prefix(keys::PEER) {
        let Some(peer) = k.strip_prefix(keys::PEER).and_then(keys::chain_of) else {
            continue;
        };
        if only.is_some_and(|o| o != peer) {
            continue;
        }
        let book: FastBook = distpos_chain::interchain::fast::book(state, peer)?;
        peers.push(json!({
            "chain": peer,
            "enabled": book.policy.max_amount > 0,
            "policy": book.policy,
            "bonded": book.bonded.to_string(),
            "outstanding": book.outstanding.to_string(),
            "delivered": book.delivered,
            "proven": book.proven,
            "slashed": book.slashed,
            "returned": book.returned,
            "bonds": bonds.remove(&peer).unwrap_or_default(),
        }));
    }
    Ok(json!({ "peers": peers }))
}
