//! v2 batches on a node in memory: checked on arrival, held within bounds, put in the
//! producer's next block with the headers that prove them, forgotten once applied.

use super::*;
use crate::{metrics::Metrics, store::Store};
use distpos_chain::{
    address::QualifiedAddress,
    testkit::{address_of, peer_pair, TestChain},
    ChainParams,
};
use distpos_proofs::{merkle::leaf_hash, multiproof::prove_many};

fn dev() -> ChainParams {
    TestChain::dev_params()
}

/// A and B (one producer each); B holds 1,000 of collateral for A, and A's user 0 sent
/// `amounts` to B's user 0 in one block, now irreversible. Returns that delivery.
fn setup(amounts: &[u128]) -> (TestChain, TestChain, BatchDelivery) {
    let (mut a, mut b) = peer_pair(0xa9, 0xb9, 1, 2, dev());
    let dep = b.tx(
        &b.users[1].clone(),
        1,
        Body::DepositCollateral {
            peer: a.chain_id(),
            amount: 1_000,
        },
    );
    b.produce(&[dep]).unwrap();
    let to = QualifiedAddress {
        chain: b.chain_id(),
        address: address_of(&b.users[0]),
    };
    let sender = a.users[0].clone();
    let txs: Vec<Transaction> = amounts
        .iter()
        .map(|n| {
            a.tx(
                &sender,
                1,
                Body::Transfer {
                    to,
                    amount: *n,
                    memo: vec![],
                    deliver_by: 0,
                },
            )
        })
        .collect();
    a.produce(&txs).unwrap();
    let h = a.height();
    a.produce_empty(1).unwrap();
    let leaves: Vec<_> = a.blocks[h as usize - 1]
        .txs
        .iter()
        .map(|t| leaf_hash(&t.encode()))
        .collect();
    let indices: Vec<usize> = (0..txs.len()).collect();
    let d = BatchDelivery {
        source_chain: a.chain_id(),
        height: h,
        transfers: txs,
        indices: indices.iter().map(|&i| i as u32).collect(),
        proof: prove_many(&leaves, &indices).unwrap(),
        headers: vec![],
    };
    (a, b, d)
}

/// A producing node of `b`, following it.
fn node_of(b: &TestChain) -> Node {
    let mut node = Node::open(
        b.genesis.clone(),
        Store::in_memory(),
        Some(b.producers[0].clone()),
        1_000,
        Metrics::new(),
    )
    .unwrap();
    for blk in &b.blocks {
        node.on_block(blk.clone(), blk.header.header.timestamp_ms)
            .unwrap();
    }
    node
}

#[test]
fn a_forged_batch_is_refused_on_arrival_and_nothing_is_held() {
    let (a, b, mut d) = setup(&[5, 6]);
    let mut node = node_of(&b);
    node.buffer_peer_headers(a.chain_id(), &a.headers(1, a.height()));
    d.indices[1] += 1;
    let err = node
        .handle_batch_delivery(d, b.head_time())
        .expect_err("a forged index is refused");
    assert!(
        matches!(err, NodeError::Tx(TxError::BadProof(_))),
        "{err:?}"
    );
    assert!(node.relay.batches.is_empty());
}

#[test]
fn a_batch_waits_for_headers_then_goes_into_the_next_block_once() {
    let (a, b, d) = setup(&[5, 6, 7]);
    let mut node = node_of(&b);
    let now = b.head_time();
    let ack = node.handle_batch_delivery(d.clone(), now).unwrap();
    assert_eq!(
        ack.status,
        AckStatus::Pending,
        "no header of A held yet: {ack:?}"
    );
    assert_eq!(node.relay.batches.len(), 1);
    assert_eq!(
        node.reads().latest().reserved.get(&a.chain_id()),
        Some(&18),
        "its amount counts as reserved while it waits"
    );
    // The headers arrive (header sync, or a later delivery's hint).
    node.buffer_peer_headers(a.chain_id(), &a.headers(1, a.height()));
    let again = node.handle_batch_delivery(d.clone(), now).unwrap();
    assert_eq!(again.status, AckStatus::Pending, "held as it was");

    let slot = b.next_slot(0);
    let block = node
        .produce(slot, b.slot_time(slot), None)
        .unwrap()
        .expect("our slot");
    let kinds: Vec<bool> = block.txs.iter().map(|t| t.body.is_system()).collect();
    assert_eq!(kinds, vec![true, true], "a header run, then the batch");
    assert!(matches!(block.txs[0].body, Body::HeaderRun { .. }));
    assert!(node.relay.batches.is_empty(), "applied: forgotten");
    let bob = address_of(&b.users[0]);
    let credited = ledger::account(&node.state, &bob).unwrap().balance
        - ledger::account(&b.state, &bob).unwrap().balance;
    assert_eq!(credited, 18);
    let producer = address_of(&b.producers[0]);
    assert_eq!(
        ledger::account(&node.state, &producer).unwrap().nonce,
        ledger::account(&b.state, &producer).unwrap().nonce,
        "system transactions use no nonce"
    );
    // Delivered again: consumed already, nothing held.
    let ack = node.handle_batch_delivery(d, b.slot_time(slot)).unwrap();
    assert_eq!(ack.status, AckStatus::AlreadyConsumed);
    assert!(node.relay.batches.is_empty());
}

#[test]
fn what_a_peer_can_make_us_hold_is_bounded() {
    let (a, b, d) = setup(&[5]);
    let mut node = node_of(&b);
    let now = b.head_time();
    // Batches for blocks our light client has not seen: each held as pending...
    for k in 0..MAX_PENDING_BATCHES_PER_PEER {
        let mut far = d.clone();
        far.height = 1_000 + k as u64;
        let ack = node.handle_batch_delivery(far, now).unwrap();
        assert_eq!(ack.status, AckStatus::Pending);
    }
    // ...up to the bound, then refused until some are applied or expire.
    let mut one_more = d.clone();
    one_more.height = 5_000;
    assert!(matches!(
        node.handle_batch_delivery(one_more, now),
        Err(NodeError::Busy(_))
    ));
    assert_eq!(node.relay.batches.len(), MAX_PENDING_BATCHES_PER_PEER);
    // Past their lifetime they go.
    node.prune_batches(&[], now + BATCH_LIFETIME_MS + 1);
    assert!(node.relay.batches.is_empty());
    // Headers beyond the buffer's bound are not kept.
    let many: Vec<SignedHeader> = (0..MAX_BUFFERED_HEADERS + 10)
        .map(|i| {
            let mut h = a.headers(1, 1).remove(0);
            h.header.height = 10 + i as u64;
            h
        })
        .collect();
    node.buffer_peer_headers(a.chain_id(), &many);
    assert_eq!(
        node.relay.peer_headers[&a.chain_id()].len(),
        MAX_BUFFERED_HEADERS
    );
}
