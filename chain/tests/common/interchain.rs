//! Helpers shared by the interchain rule tests (`rules_interchain*.rs`).
#![allow(dead_code)]

use super::*;

use distpos_chain::{testkit::TestChain, Body, Receipt, TxError};
use distpos_proofs::{ChainId, SecretKey};

/// Funded users per chain: 0 sends, 1 deposits collateral, 3 relays.
pub(crate) const USERS: usize = 4;
/// The user that sends transfers.
pub(crate) const SENDER: usize = 0;
/// The user that deposits collateral.
pub(crate) const DEPOSITOR: usize = 1;
/// The user that relays (submits `PeerHeaders`, `Inbound`, `Settle`).
pub(crate) const RELAYER: usize = 3;
/// Fee of a user's transfer (distinct from the relayer's, so balances tell them apart).
pub(crate) const FEE: u128 = 2;
/// Fee of the relayer's transactions.
pub(crate) const RELAY_FEE: u128 = 1;

pub(crate) fn key(c: &TestChain, user: usize) -> SecretKey {
    c.users[user].clone()
}

pub(crate) fn corr(c: &TestChain, of: ChainId) -> i128 {
    peer(c, of).expect("registered peer").corr
}

pub(crate) fn assert_supplies(x: &TestChain, y: &TestChain) {
    assert_supply(x);
    assert_supply(y);
}

/// The relayer of `c` submits `bodies` in the next block; all must be included.
pub(crate) fn submit_all(c: &mut TestChain, bodies: Vec<Body>) -> Vec<Receipt> {
    let relayer = key(c, RELAYER);
    let txs: Vec<Transaction> = bodies
        .into_iter()
        .map(|b| c.tx(&relayer, RELAY_FEE, b))
        .collect();
    produce_ok(c, &txs).applied.receipts
}

/// The relayer of `c` submits `body`; returns its receipt and position.
pub(crate) fn submit(c: &mut TestChain, body: Body) -> (Receipt, (u64, u32)) {
    let r = submit_all(c, vec![body]).remove(0);
    (r, (c.height(), 0))
}

/// The relayer of `c` submits `body`, which the mempool and the block builder must both
/// refuse with the same error, leaving the state exactly as an empty block would.
pub(crate) fn refused(c: &mut TestChain, body: Body) -> TxError {
    let relayer = key(c, RELAYER);
    let tx = c.tx(&relayer, RELAY_FEE, body);
    let mempool = validate(c, &tx).expect_err("the mempool refuses it");
    let mut twin = c.clone();
    twin.produce_empty(1).unwrap();
    let block = produce_rejected(c, &tx);
    assert_eq!(block, mempool, "block building agrees with the mempool");
    assert_eq!(c.state, twin.state, "a refused transaction changes nothing");
    block
}

pub(crate) fn deposit(c: &mut TestChain, of: ChainId, amount: u128) {
    let k = key(c, DEPOSITOR);
    let tx = c.tx(&k, 1, Body::DepositCollateral { peer: of, amount });
    produce_ok(c, &[tx]);
}
