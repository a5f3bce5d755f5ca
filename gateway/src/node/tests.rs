//! The node without a disk, a port or a clock: a store in memory, blocks built by the
//! chain's test kit and imported as a peer's would be, and the time passed in.

use super::*;
use distpos_adapters::BatchReceipts;
use distpos_chain::{
    address::QualifiedAddress,
    testkit::{address_of, peer_pair, TestChain},
    verify_tx_signature, ChainParams,
};
use distpos_proofs::ChainId;

const A: u32 = 0xa1;
const B: u32 = 0xb1;

fn dev() -> ChainParams {
    TestChain::dev_params()
}

/// A node of `chain`'s chain, following it (no blocks yet), relaying with `key`.
fn node_of(chain: &TestChain, key: Option<SecretKey>) -> Node {
    Node::open(
        chain.genesis.clone(),
        Store::in_memory(),
        key,
        1_000,
        Metrics::new(),
    )
    .expect("open a node in memory")
}

/// Imports `chain`'s blocks the node does not have yet, each at its own time.
fn follow(node: &mut Node, chain: &TestChain) {
    for b in &chain.blocks[node.head_height as usize..] {
        let at = b.header.header.timestamp_ms;
        node.on_block(b.clone(), at).expect("a valid block imports");
    }
    assert_eq!(
        node.state.head_id, chain.state.head_id,
        "node follows the chain"
    );
}

/// The chain includes what waits in the node's mempool, and the node imports it.
fn include_mempool(node: &mut Node, chain: &mut TestChain) -> usize {
    let txs = node.mempool.candidates(1_000);
    chain
        .produce(&txs)
        .expect("the node's transactions are valid");
    follow(node, chain);
    txs.len()
}

fn submit(node: &mut Node, tx: Transaction, now: u64) -> Result<(Hash32, bool), NodeError> {
    let check = verify_tx_signature(&tx)?;
    node.submit_checked_many(vec![(tx, check)], now)
        .pop()
        .expect("one result per transaction")
}

fn transfer(to: QualifiedAddress, amount: u128) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: vec![],
        deliver_by: 0,
        fast_fee: 0,
        via: None,
    }
}

#[test]
fn admission_refuses_with_typed_errors_and_admits_the_rest_once() {
    let mut chain = TestChain::new(A, 1, 3, dev());
    let mut node = node_of(&chain, None);
    let now = chain.slot_time(1);
    let to = QualifiedAddress::local(address_of(&chain.users[1]));
    let sender = chain.users[0].clone();

    let good = chain.tx(&sender, 1, transfer(to, 5));
    assert_eq!(
        submit(&mut node, good.clone(), now).unwrap(),
        (good.hash(), true)
    );
    assert_eq!(
        submit(&mut node, good.clone(), now).unwrap(),
        (good.hash(), false),
        "the same transaction again is no news"
    );

    let mut other_chain = chain.unsigned(2, 1, transfer(to, 5));
    other_chain.chain_id = ChainId(0xdead);
    let other_chain = other_chain.sign(&sender);
    assert!(matches!(
        submit(&mut node, other_chain, now),
        Err(NodeError::Tx(TxError::WrongChain { .. }))
    ));

    let far_ahead = chain.unsigned(9, 1, transfer(to, 5)).sign(&sender);
    assert!(matches!(
        submit(&mut node, far_ahead, now),
        Err(NodeError::Tx(TxError::BadNonce { .. }))
    ));

    let broke = chain.tx(&chain.users[2].clone(), 1, transfer(to, u128::MAX / 2));
    assert!(matches!(
        submit(&mut node, broke, now),
        Err(NodeError::Tx(TxError::InsufficientFunds { .. }))
    ));

    let same_nonce = chain.unsigned(1, 1, transfer(to, 6)).sign(&sender);
    assert!(
        matches!(
            submit(&mut node, same_nonce, now),
            Err(NodeError::Mempool(MempoolError::NonceTaken {
                nonce: 1,
                ..
            }))
        ),
        "a second transaction with a taken nonce must pay more"
    );

    assert_eq!(node.mempool.len(), 1, "only the good one waits");
    let snap = node.reads().latest();
    assert!(snap.mempool.contains(&good.hash()));
    assert_eq!(snap.mempool.len(), 1);
}

#[test]
fn an_included_transaction_is_a_duplicate_and_readers_see_each_commit() {
    let mut chain = TestChain::new(A, 1, 2, dev());
    let mut node = node_of(&chain, None);
    let reads = node.reads();
    assert_eq!(reads.latest().head_height, 0);
    let to = QualifiedAddress::local(address_of(&chain.users[1]));
    let tx = chain.tx(&chain.users[0].clone(), 1, transfer(to, 7));
    submit(&mut node, tx.clone(), chain.slot_time(1)).unwrap();
    assert!(reads.latest().mempool.contains(&tx.hash()));

    assert_eq!(include_mempool(&mut node, &mut chain), 1);
    let snap = reads.latest();
    assert_eq!(
        snap.head_height, 1,
        "the reader sees the new head without the node"
    );
    assert_eq!(snap.state.head_id, chain.state.head_id);
    assert!(
        !snap.mempool.contains(&tx.hash()),
        "included: no longer pending"
    );
    assert!(snap.store.tx_location(&tx.hash()).unwrap().is_some());
    assert!(matches!(
        submit(&mut node, tx, chain.slot_time(2)),
        Err(NodeError::Tx(TxError::Duplicate(_)))
    ));
}

#[test]
fn a_node_reopens_its_store_where_it_left_off() {
    let mut chain = TestChain::new(A, 1, 1, dev());
    chain.produce_empty(3).unwrap();
    let store = Store::in_memory();
    let mut node = Node::open(
        chain.genesis.clone(),
        store.clone(),
        None,
        10,
        Metrics::new(),
    )
    .expect("open");
    follow(&mut node, &chain);
    drop(node);
    let again = Node::open(chain.genesis.clone(), store, None, 10, Metrics::new()).expect("reopen");
    assert_eq!(again.head_height, 3);
    assert_eq!(again.state, chain.state);
    assert_eq!(again.reads().latest().head_height, 3);
}

#[test]
fn a_producer_node_signs_each_slot_once() {
    let chain = TestChain::new(A, 1, 1, dev());
    let mut node = node_of(&chain, Some(chain.producers[0].clone()));
    let slot = chain.next_slot(0);
    let now = chain.slot_time(slot);
    let block = node.produce(slot, now, None).unwrap().expect("our slot");
    assert_eq!(block.height(), 1);
    assert_eq!(node.reads().latest().head_height, 1);
    assert!(
        node.produce(slot, now, None).unwrap().is_none(),
        "never a second block for the same slot"
    );
}

/// A node does not verify again the signature of a transaction it admitted (the same
/// bytes, signature included) when a block brings it; a block carrying a known hash
/// under a broken signature is refused all the same, as every other node refuses it.
#[test]
fn import_trusts_only_the_exact_transactions_it_verified() {
    let mut chain = TestChain::new(A, 1, 2, dev());
    let to = QualifiedAddress::local(address_of(&chain.users[1]));
    let good = chain.tx(&chain.users[0].clone(), 1, transfer(to, 5));
    let mut node = node_of(&chain, None);
    let now = chain.slot_time(chain.next_slot(0));
    submit(&mut node, good.clone(), now).unwrap();
    assert!(node.mempool.contains(&good.hash()));

    // The producer's block holds the same transaction under a broken signature (the
    // hash does not cover the signature, so it is the same hash).
    let mut broken = good.clone();
    broken.signature.0[40] ^= 1;
    assert_eq!(broken.hash(), good.hash());
    assert!(verify_tx_signature(&broken).is_err());
    let time = chain.slot_time(chain.next_slot(0));
    let key = chain.signer_for_slot(chain.next_slot(0)).unwrap();
    let check = verify_tx_signature(&good).unwrap();
    let forged =
        distpos_chain::build_block_with(&chain.state, &key, time, [(&broken, Some(check))])
            .unwrap()
            .block;
    // Refused either at import or when it fails to apply (then dropped).
    let _ = node.on_block(forged, time);
    assert_eq!(
        node.head_height, 0,
        "the broken signature was checked and refused"
    );

    // The honest block with the very transaction admitted applies.
    chain.produce(std::slice::from_ref(&good)).unwrap();
    follow(&mut node, &chain);
    assert_eq!(node.head_height, 1);
    assert!(!node.mempool.contains(&good.hash()));
}

/// A receipt batch that settles nothing of ours (here: the receipt of an ordinary
/// transaction) is refused on arrival, before any proof work, and nothing is held.
/// (That a settlement is final only once irreversible is
/// `batch_receipts_settle_and_are_final_only_once_irreversible` in the batch tests.)
#[test]
fn a_forged_receipt_batch_is_refused_at_once_and_nothing_waits_for_it() {
    let (a, mut b) = peer_pair(A, B, 1, 4, dev());
    b.produce_empty(2).unwrap();
    let mut node = node_of(&a, Some(a.producers[0].clone()));
    let leaves = [distpos_proofs::merkle::leaf_hash(b"anything")];
    let forged = BatchReceipts {
        receipt_chain: b.chain_id(),
        height: 1,
        receipts: vec![distpos_chain::Receipt {
            tx_hash: Hash32::ZERO,
            outcome: distpos_chain::tx::Outcome::Applied,
            fee: 0,
            amount: 1,
        }],
        indices: vec![0],
        proof: distpos_proofs::multiproof::prove_many(&leaves, &[0]).unwrap(),
        headers: b.headers(1, b.height()),
    };
    assert!(matches!(
        node.handle_batch_receipts(forged, a.slot_time(1)),
        Err(NodeError::Tx(TxError::BadProof(_)))
    ));
    assert!(node.relay.batches.is_empty(), "nothing kept to retry");
    assert!(
        node.relay.peer_headers.is_empty(),
        "its headers are not kept either"
    );
    assert!(node.mempool.is_empty());
}

#[test]
fn the_store_in_memory_and_the_one_on_disk_keep_the_same_chain() {
    let mut chain = TestChain::new(A, 1, 2, dev());
    let to = QualifiedAddress::local(address_of(&chain.users[1]));
    for n in 0..3 {
        let tx = chain.tx(&chain.users[0].clone(), 1, transfer(to, 1 + n));
        chain.produce(&[tx]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let on_disk = Store::open(dir.path()).unwrap();
    let in_memory = Store::in_memory();
    for store in [&on_disk, &in_memory] {
        let mut node = Node::open(
            chain.genesis.clone(),
            store.clone(),
            None,
            10,
            Metrics::new(),
        )
        .unwrap();
        follow(&mut node, &chain);
    }
    let identity = chain.genesis.identity_hash();
    let disk = on_disk.load(&identity).unwrap().expect("saved");
    let memory = in_memory.load(&identity).unwrap().expect("saved");
    assert_eq!(disk, memory);
    assert_eq!(disk.0, chain.state);
    for h in 1..=3 {
        assert_eq!(on_disk.block_at(h).unwrap(), in_memory.block_at(h).unwrap());
        let id = on_disk.id_at(h).unwrap().unwrap();
        assert_eq!(
            on_disk.receipts(&id).unwrap(),
            in_memory.receipts(&id).unwrap()
        );
    }
}

#[test]
fn pending_transactions_count_against_the_balance() {
    let mut chain = TestChain::new(A, 1, 2, dev());
    let mut node = node_of(&chain, None);
    let now = chain.slot_time(1);
    let sender = chain.users[0].clone();
    let balance = ledger::account(&node.state, &address_of(&sender))
        .unwrap()
        .balance;
    let to = QualifiedAddress::local(address_of(&chain.users[1]));
    // Half the balance (minus its fee) fits once...
    let half = balance / 2 - 1;
    let first = chain.tx(&sender, 1, transfer(to, half));
    submit(&mut node, first, now).unwrap();
    let second = chain.tx(&sender, 1, transfer(to, half));
    submit(&mut node, second, now).unwrap();
    // ...and a third, each affordable alone, no longer.
    let third = chain.tx(&sender, 1, transfer(to, half));
    assert!(
        matches!(
            submit(&mut node, third, now),
            Err(NodeError::Tx(TxError::InsufficientFunds { .. }))
        ),
        "the two pending transfers count"
    );
    assert_eq!(node.mempool.len(), 2);
}
