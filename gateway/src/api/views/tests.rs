//! The views read a snapshot: built here from a node in memory, with no HTTP.

use super::{transfers::cross_chain, *};
use crate::{
    metrics::Metrics,
    node::Node,
    queue::{ItemState, OutboundQueue, QueueItem},
    store::Store,
};
use distpos_adapters::{BatchDelivery, TransferStage};
use distpos_chain::{
    address::QualifiedAddress,
    testkit::{address_of, peer_pair, TestChain},
    verify_tx_signature, Body,
};

fn follower(chain: &TestChain) -> Node {
    let mut node = Node::open(
        chain.genesis.clone(),
        Store::in_memory(),
        None,
        100,
        Metrics::new(),
    )
    .unwrap();
    for b in &chain.blocks {
        node.on_block(b.clone(), b.header.header.timestamp_ms)
            .unwrap();
    }
    node
}

#[test]
fn status_and_account_views_show_the_last_commit_and_the_mempool() {
    let mut chain = TestChain::new(0xc1, 1, 2, TestChain::dev_params());
    chain.produce_empty(3).unwrap();
    let mut node = follower(&chain);
    let sender = chain.users[0].clone();
    let tx = chain.tx(
        &sender,
        1,
        Body::Transfer {
            to: QualifiedAddress::local(address_of(&chain.users[1])),
            amount: 3,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        },
    );
    let check = verify_tx_signature(&tx).unwrap();
    let now = chain.head_time();
    node.submit_checked_many(vec![(tx, check)], now)
        .pop()
        .unwrap()
        .unwrap();

    let snap = node.reads().latest();
    let s = status(&snap, now).unwrap();
    assert_eq!((s.head.height, s.head.id), (3, chain.state.head_id));
    assert_eq!(s.lib.height, 3, "one producer: its own blocks are final");
    assert_eq!(s.lib.id, chain.state.head_id);
    assert_eq!(s.mempool_txs, 1);
    assert_eq!(s.chain_id, chain.chain_id());
    assert_eq!(s.participation.filled, 3);

    let a = account(&snap, &address_of(&sender)).unwrap();
    assert_eq!(a.account.nonce, 0);
    assert_eq!(a.next_nonce, 2, "the pending transaction counts");

    let p = producers(&snap, now).unwrap();
    assert_eq!(p.producers.len(), 1);
    assert!(p.producers[0].active);
}

#[test]
fn an_outbound_transfer_goes_from_in_flight_to_forwarding_to_delivered() {
    let (mut a, b) = peer_pair(0xc2, 0xc3, 1, 2, TestChain::dev_params());
    let sent = a.tx(
        &a.users[0].clone(),
        1,
        Body::Transfer {
            to: QualifiedAddress {
                chain: b.chain_id(),
                address: address_of(&b.users[0]),
            },
            amount: 9,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        },
    );
    a.produce(std::slice::from_ref(&sent)).unwrap();
    let node = follower(&a);
    let snap = node.reads().latest();
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let queue = OutboundQueue::open(&db).unwrap();
    let hash = sent.hash();

    let v = cross_chain(&snap, &queue, &hash).unwrap().expect("ours");
    assert_eq!(
        (v.direction, v.stage),
        ("outbound", TransferStage::InFlight)
    );
    assert_eq!(v.peer, b.chain_id());

    let mut item = QueueItem::batch_delivery(
        BatchDelivery {
            source_chain: a.chain_id(),
            height: 1,
            transfers: vec![sent.clone()],
            indices: vec![0],
            proof: distpos_proofs::multiproof::MultiProof { siblings: vec![] },
            headers: vec![],
        },
        b.chain_id(),
        0,
    );
    queue.enqueue(std::slice::from_ref(&item), 1).unwrap();
    let v = cross_chain(&snap, &queue, &hash).unwrap().unwrap();
    assert_eq!(v.stage, TransferStage::Forwarding);

    item.state = ItemState::Delivered;
    queue.update_many(&[item]).unwrap();
    let v = cross_chain(&snap, &queue, &hash).unwrap().unwrap();
    assert_eq!(v.stage, TransferStage::Delivered);

    assert!(
        cross_chain(&snap, &queue, &Hash32([7; 32]))
            .unwrap()
            .is_none(),
        "a hash we never saw is no transfer"
    );
}

#[test]
fn a_refunded_transfer_shows_why_it_bounced_on_both_sides() {
    let t = crate::node::transfer_log::tests::round_trip();
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let queue = OutboundQueue::open(&db).unwrap();
    let reason = distpos_chain::tx::BounceReason::InsufficientCollateral;

    // The source: refunded, with the reason the destination's receipt gave.
    let source = follower(&t.a).reads().latest();
    let v = cross_chain(&source, &queue, &t.bounced.hash())
        .unwrap()
        .unwrap();
    assert_eq!(
        (v.direction, v.stage, v.bounce_reason),
        ("outbound", TransferStage::Refunded, Some(reason))
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["stage"], "refunded", "{json}");
    assert_eq!(json["bounce_reason"], "insufficient_collateral", "{json}");
    assert_eq!(
        json["settled"]["bounced"], "insufficient_collateral",
        "{json}"
    );
    let v = cross_chain(&source, &queue, &t.delivered.hash())
        .unwrap()
        .unwrap();
    assert_eq!(
        (v.stage, v.bounce_reason),
        (TransferStage::SettledDelivered, None)
    );

    // The destination: bounced, with the same name.
    let dest = follower(&t.b).reads().latest();
    let v = cross_chain(&dest, &queue, &t.bounced.hash())
        .unwrap()
        .unwrap();
    assert_eq!(
        (v.direction, v.stage, v.bounce_reason),
        ("inbound", TransferStage::Bounced, Some(reason))
    );
    let v = cross_chain(&dest, &queue, &t.delivered.hash())
        .unwrap()
        .unwrap();
    assert_eq!((v.stage, v.bounce_reason), (TransferStage::Delivered, None));
}
