//! Helpers shared by the interchain rule tests (`rules_interchain*.rs`): the users of a
//! test chain, the relayer's `PeerHeaders` (a user transaction), and the system
//! transactions of interchain v2 (DESIGN §6.1) — an `InboundBatch` of transfers proven
//! by one multiproof against a peer block's `tx_root`, and a `SettleBatch` of the
//! peer's receipts proven against its `receipts_root` — which only the producer of a
//! block's slot puts in, with nonce 0 and fee 0.
#![allow(dead_code)]

use super::*;

use distpos_chain::{
    apply_block,
    block::tx_root,
    build_block,
    env::BlockEnv,
    execute::chain_rules,
    interchain::forward::{self, Held, HeldState},
    ledger,
    testkit::TestChain,
    tx::Outcome,
    Block, BlockError, Body, Receipt, TxError,
};
use distpos_proofs::{
    light_client::LightClient, merkle::leaf_hash, multiproof::prove_many, ChainId, Hash32,
    SecretKey, SignedHeader,
};

/// Funded users per chain: 0 sends, 1 deposits collateral, 3 relays `PeerHeaders`.
pub(crate) const USERS: usize = 4;
/// The user that sends transfers.
pub(crate) const SENDER: usize = 0;
/// The user that deposits collateral.
pub(crate) const DEPOSITOR: usize = 1;
/// The user that relays peer headers (`PeerHeaders`, a user transaction with a fee;
/// batches are system transactions and need no relayer account).
pub(crate) const RELAYER: usize = 3;
/// Fee of a user's transfer (distinct from the relayer's, so balances tell them apart).
pub(crate) const FEE: u128 = 2;
/// Fee of the relayer's `PeerHeaders`.
pub(crate) const RELAY_FEE: u128 = 1;

pub(crate) fn key(c: &TestChain, user: usize) -> SecretKey {
    c.users[user].clone()
}

pub(crate) fn corr(c: &TestChain, of: ChainId) -> i128 {
    peer(c, of).expect("registered peer").corr
}

pub(crate) fn light_client(c: &TestChain, of: ChainId) -> LightClient {
    peer(c, of).expect("registered peer").light_client
}

pub(crate) fn assert_supplies(x: &TestChain, y: &TestChain) {
    assert_supply(x);
    assert_supply(y);
}

/// The relayer of `c` submits `bodies` (user transactions) in the next block; all must
/// be included.
pub(crate) fn submit_all(c: &mut TestChain, bodies: Vec<Body>) -> Vec<Receipt> {
    let relayer = key(c, RELAYER);
    let txs: Vec<Transaction> = bodies
        .into_iter()
        .map(|b| c.tx(&relayer, RELAY_FEE, b))
        .collect();
    produce_ok(c, &txs).applied.receipts
}

/// The relayer of `c` submits `body`; returns its receipt.
pub(crate) fn submit(c: &mut TestChain, body: Body) -> Receipt {
    submit_all(c, vec![body]).remove(0)
}

/// The relayer of `c` submits `body` (a user transaction), which the mempool and the
/// block builder must both refuse with the same error, leaving the state exactly as an
/// empty block would.
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

/// A system transaction for `c`'s next block: signed by the producer of that slot,
/// nonce 0, fee 0.
pub(crate) fn system(c: &TestChain, body: Body) -> Transaction {
    let key = c
        .signer_for_slot(c.next_slot(0))
        .expect("a producer for the slot");
    c.unsigned(0, 0, body).sign(&key)
}

/// A system transaction `c`'s producer would not include: why. The mempool never
/// admits one; the block is built without it, and nothing changes but what an empty
/// block changes.
pub(crate) fn refused_system(c: &mut TestChain, body: Body) -> TxError {
    let tx = system(c, body);
    assert_eq!(validate(c, &tx), Err(TxError::SystemOutsideBlock));
    let mut twin = c.clone();
    twin.produce_empty(1).unwrap();
    let err = produce_rejected(c, &tx);
    assert_eq!(c.state, twin.state, "a refused batch changes nothing");
    err
}

/// The leaves of `c`'s block `height` under `tx_root`.
pub(crate) fn tx_leaves(c: &TestChain, height: u64) -> Vec<Hash32> {
    c.blocks[height as usize - 1]
        .txs
        .iter()
        .map(|t| leaf_hash(&t.encode()))
        .collect()
}

/// The leaves of `c`'s block `height` under `receipts_root`.
pub(crate) fn receipt_leaves(c: &TestChain, height: u64) -> Vec<Hash32> {
    c.receipts[height as usize - 1]
        .iter()
        .map(|r| leaf_hash(&r.encode()))
        .collect()
}

/// `InboundBatch` of `transfers` at `indices` of `source`'s block `height`, with their
/// multiproof and `source`'s headers from `headers_from` to its head (none when
/// `headers_from` is above the head).
pub(crate) fn inbound_batch(
    source: &TestChain,
    headers_from: u64,
    height: u64,
    transfers: Vec<Transaction>,
    indices: Vec<u32>,
) -> Body {
    let at: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
    Body::InboundBatch {
        peer: source.chain_id(),
        headers: if headers_from > source.height() {
            vec![]
        } else {
            source.headers(headers_from, source.height())
        },
        source_height: height,
        proof: prove_many(&tx_leaves(source, height), &at).unwrap(),
        transfers,
        indices,
    }
}

/// `SettleBatch` of the receipts of `dest`'s block `height` at `at` (with every header
/// of `dest` when `with_headers`).
pub(crate) fn settle_batch(
    dest: &TestChain,
    height: u64,
    at: &[usize],
    with_headers: bool,
) -> Body {
    Body::SettleBatch {
        peer: dest.chain_id(),
        headers: if with_headers {
            dest.headers(1, dest.height())
        } else {
            vec![]
        },
        source_height: height,
        receipts: at
            .iter()
            .map(|&i| dest.receipts[height as usize - 1][i].clone())
            .collect(),
        indices: at.iter().map(|&i| i as u32).collect(),
        proof: prove_many(&receipt_leaves(dest, height), at).unwrap(),
    }
}

/// Both test chains share genesis time and slot length, so once `c` is at least at
/// `height`, peer headers up to `height` are not from the future at its next block.
pub(crate) fn keep_up(c: &mut TestChain, height: u64) {
    while c.height() < height {
        c.produce_empty(1).unwrap();
    }
}

/// Produces on `c` until its block `height` is irreversible.
pub(crate) fn finalize(c: &mut TestChain, height: u64) {
    while c.lib() < height {
        c.produce_empty(1).unwrap();
    }
}

/// The headers of `src` that `dst`'s light client of it has not followed yet: the run
/// a batch carries.
pub(crate) fn header_run(dst: &TestChain, src: &TestChain) -> Vec<SignedHeader> {
    let head = light_client(dst, src.chain_id()).head();
    if head < src.height() {
        src.headers(head + 1, src.height())
    } else {
        vec![]
    }
}

/// The `InboundBatch` of `txs` (all in one block of `src`, in block order) for `dst`'s
/// next block, carrying the header run `dst` lacks; `dst` first catches up with `src`'s
/// time so that the run is not from the future.
pub(crate) fn inbound_of(dst: &mut TestChain, src: &TestChain, txs: &[Transaction]) -> Body {
    keep_up(dst, src.height());
    let at: Vec<(u64, u32)> = txs
        .iter()
        .map(|t| src.locate(&t.hash()).expect("source transaction included"))
        .collect();
    let height = at[0].0;
    assert!(
        at.iter().all(|&(h, _)| h == height),
        "one batch carries transfers of one block"
    );
    let head = light_client(dst, src.chain_id()).head();
    inbound_batch(
        src,
        head + 1,
        height,
        txs.to_vec(),
        at.iter().map(|&(_, i)| i).collect(),
    )
}

/// The producer of `dst` delivers `txs` of `src` as one batch in its next block;
/// returns the batch, its receipt and the height.
pub(crate) fn deliver_batch(
    dst: &mut TestChain,
    src: &TestChain,
    txs: &[Transaction],
) -> (Transaction, Receipt, u64) {
    let body = inbound_of(dst, src, txs);
    let batch = system(dst, body);
    let receipt = produce_ok(dst, std::slice::from_ref(&batch))
        .applied
        .receipts
        .remove(0);
    (batch, receipt, dst.height())
}

/// The `SettleBatch`, for `src`'s next block, of every receipt of `dst`'s block `height`
/// that reports on transfers from `src` (its `InboundBatch`es from `src`), carrying the
/// header run of `dst` that `src` lacks.
pub(crate) fn settle_of(src: &mut TestChain, dst: &TestChain, height: u64) -> Body {
    keep_up(src, dst.height());
    let at: Vec<usize> = dst.receipts[height as usize - 1]
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(r.outcome, Outcome::InboundBatch { source, .. } if source == src.chain_id())
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        !at.is_empty(),
        "no batch from {} in that block",
        src.chain_id()
    );
    let mut body = settle_batch(dst, height, &at, false);
    if let Body::SettleBatch { headers, .. } = &mut body {
        *headers = header_run(src, dst);
    }
    body
}

/// The producer of `src` settles the receipts of `dst`'s block `height` in its next
/// block; returns the receipt of the `SettleBatch`.
pub(crate) fn settle_back(src: &mut TestChain, dst: &TestChain, height: u64) -> Receipt {
    let body = settle_of(src, dst, height);
    let settle = system(src, body);
    produce_ok(src, &[settle]).applied.receipts.remove(0)
}

// Shared by the forwarding and policy rule tests (held transfers, releases, blocks a
// producer would not build).

/// Expects `TxError::Invalid` whose message contains `what`.
pub(crate) fn assert_invalid(err: TxError, what: &str) {
    match err {
        TxError::Invalid(m) => assert!(m.contains(what), "{m:?} does not say {what:?}"),
        other => panic!("expected Invalid({what:?}), got {other:?}"),
    }
}

/// A block of `c`'s next slot carrying the system transaction `body` (which the block
/// builder would have left out) is invalid: why. Nothing is committed.
pub(crate) fn block_refuses(c: &TestChain, body: Body) -> TxError {
    let tx = system(c, body);
    let slot = c.next_slot(0);
    let (key, time) = (c.signer_for_slot(slot).unwrap(), c.slot_time(slot));
    let empty = build_block(&c.state, &key, time, &[]).unwrap().block;
    let mut h = empty.header.header.clone();
    h.tx_root = tx_root(std::slice::from_ref(&tx));
    h.tx_count = 1;
    let block = Block {
        header: h.sign(&key),
        txs: vec![tx.clone()],
    };
    match apply_block(&c.state, &block, time) {
        Err(BlockError::Tx { index, hash, error }) => {
            assert_eq!((index, hash), (0, tx.hash()));
            error
        }
        other => panic!("the block should be invalid: {other:?}"),
    }
}

/// The constants of `c`'s next block (what its `Forward` is checked against).
pub(crate) fn env_of(c: &TestChain) -> BlockEnv {
    let consensus = ledger::consensus(&c.state).unwrap();
    BlockEnv {
        chain_id: c.chain_id(),
        height: consensus.height + 1,
        time_ms: next_time(c),
        params: ledger::params(&c.state).unwrap(),
        rules: chain_rules(&c.state).unwrap(),
        consensus,
    }
}

/// What `c` holds of transfer `tx` from `source`.
pub(crate) fn held_of(c: &TestChain, source: ChainId, tx: &Hash32) -> Option<Held> {
    forward::held(&c.state, source, tx).unwrap()
}

/// The state of transfer `tx` from `source` that `c` holds.
pub(crate) fn held_state(c: &TestChain, source: ChainId, tx: &Hash32) -> HeldState {
    held_of(c, source, tx).expect("held").state
}

/// The producer's `Release` of `txs` from `source`.
pub(crate) fn release(source: ChainId, txs: &[Hash32]) -> Body {
    Body::Release {
        source,
        txs: txs.to_vec(),
    }
}
