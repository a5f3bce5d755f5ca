//! The supply invariant (DESIGN §4.5): every token is in exactly one place.

use crate::{
    error::StateError,
    ledger::{self, keys, Account, InFlight, PeerChain},
    state::State,
};
use distpos_proofs::codec;
use serde::Serialize;

/// Where the tokens are, summed over the whole state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SupplyReport {
    /// Σ balances.
    pub balances: u128,
    /// Σ stakes.
    pub stakes: u128,
    /// Σ unbonding (from accounts).
    pub unbonding: u128,
    /// Σ unbonding queue entries (must equal `unbonding`).
    pub unbonding_queue: u128,
    /// Σ in-flight outbound transfers.
    pub in_flight: u128,
    /// Σ correspondent balances (signed).
    pub correspondents: i128,
    /// Σ underwriters' bonds (fast path; locked shares included).
    pub bonds: u128,
    /// Σ what transfers held for forwarding stand for (DESIGN §12).
    pub held: u128,
    /// Genesis supply + minted − burned.
    pub expected: u128,
}

impl SupplyReport {
    /// The sum of every place a token can be.
    pub fn total(&self) -> i128 {
        let unsigned =
            self.balances + self.stakes + self.unbonding + self.in_flight + self.bonds + self.held;
        unsigned as i128 + self.correspondents
    }

    /// True when the invariant holds.
    pub fn holds(&self) -> bool {
        self.total() == self.expected as i128 && self.unbonding == self.unbonding_queue
    }
}

fn decode<T: serde::de::DeserializeOwned + Serialize>(k: &[u8], v: &[u8]) -> Result<T, StateError> {
    codec::decode_canonical(v).map_err(|error| StateError {
        key: hex::encode(k),
        error,
    })
}

/// Sums every token in `state`.
pub fn audit_supply(state: &State) -> Result<SupplyReport, StateError> {
    let meta = ledger::meta(state)?;
    let mut r = SupplyReport {
        expected: meta.genesis_supply + meta.minted - meta.burned,
        ..Default::default()
    };
    for (k, v) in state.scan_prefix(keys::ACCOUNT) {
        let a: Account = decode(k, v)?;
        r.balances += a.balance;
        r.stakes += a.stake;
        r.unbonding += a.unbonding;
    }
    for (k, v) in state.scan_prefix(keys::UNBONDING) {
        let due: Vec<(crate::address::Address, u128)> = decode(k, v)?;
        r.unbonding_queue += due.iter().map(|d| d.1).sum::<u128>();
    }
    for (k, v) in state.scan_prefix(keys::IN_FLIGHT) {
        let f: InFlight = decode(k, v)?;
        r.in_flight += f.amount;
    }
    for (k, v) in state.scan_prefix(keys::PEER) {
        let p: PeerChain = decode(k, v)?;
        r.correspondents += p.corr;
    }
    for (k, v) in state.scan_prefix(keys::BOND) {
        let b: crate::interchain::fast::Bond = decode(k, v)?;
        r.bonds += b.amount;
    }
    for (k, v) in state.scan_prefix(keys::HELD) {
        let h: crate::interchain::forward::Held = decode(k, v)?;
        r.held += h.holding();
    }
    Ok(r)
}
