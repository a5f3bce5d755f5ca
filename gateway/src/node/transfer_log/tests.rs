//! The events of real blocks: a round trip A → B where one transfer is delivered and
//! one bounces, delivered on B and settled back on A by the chains' own rules.

use super::*;
use distpos_chain::{
    address::QualifiedAddress,
    testkit::{address_of, peer_pair, TestChain},
};
use distpos_proofs::{merkle::leaf_hash, multiproof::prove_many};

/// What [`round_trip`] made.
pub(crate) struct RoundTrip {
    /// The source chain, after the settle block (its head).
    pub a: TestChain,
    /// The destination chain, after the delivery block (`delivered_at`).
    pub b: TestChain,
    /// A's transfer of 60 that B delivered.
    pub delivered: Transaction,
    /// A's transfer of 50 that B bounced (collateral short) and A refunded.
    pub bounced: Transaction,
    /// Height of B's block that delivered (and bounced) them.
    pub delivered_at: u64,
}

/// Until `c` is at `height`: a peer's headers up to `height` are then not from the
/// future at `c`'s next block (test chains share genesis time and slot length).
fn keep_up(c: &mut TestChain, height: u64) {
    while c.height() < height {
        c.produce_empty(1).unwrap();
    }
}

/// `body` as a system transaction of `c`'s next block.
fn system(c: &TestChain, body: Body) -> Transaction {
    let key = c.signer_for_slot(c.next_slot(0)).unwrap();
    c.unsigned(0, 0, body).sign(&key)
}

/// A and B (one producer each: every block is irreversible at once); B holds 100 of
/// collateral for A; A sends 60 then 50 to B in one block; B delivers the 60 and
/// bounces the 50 (40 left) in one `InboundBatch`; A settles both in one
/// `SettleBatch`.
pub(crate) fn round_trip() -> RoundTrip {
    let (mut a, mut b) = peer_pair(0xd1, 0xd2, 1, 2, TestChain::dev_params());
    let deposit = b.tx(
        &b.users[1].clone(),
        1,
        Body::DepositCollateral {
            peer: a.chain_id(),
            amount: 100,
        },
    );
    b.produce(&[deposit]).unwrap();
    let to = QualifiedAddress::new(b.chain_id(), address_of(&b.users[0]));
    let sender = a.users[0].clone();
    let sent: Vec<Transaction> = [60, 50]
        .into_iter()
        .map(|amount| {
            a.tx(
                &sender,
                1,
                Body::Transfer {
                    to,
                    amount,
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via: None,
                },
            )
        })
        .collect();
    a.produce(&sent).unwrap();
    let ha = a.height();
    let tx_leaves: Vec<_> = a.blocks[ha as usize - 1]
        .txs
        .iter()
        .map(|t| leaf_hash(&t.encode()))
        .collect();

    keep_up(&mut b, a.height());
    let inbound = Body::InboundBatch {
        peer: a.chain_id(),
        headers: a.headers(1, a.height()),
        source_height: ha,
        transfers: sent.clone(),
        indices: vec![0, 1],
        proof: prove_many(&tx_leaves, &[0, 1]).unwrap(),
    };
    let inbound = system(&b, inbound);
    b.produce(&[inbound]).unwrap();
    let hb = b.height();

    keep_up(&mut a, b.height());
    let receipts = &b.receipts[hb as usize - 1];
    let r_leaves: Vec<_> = receipts.iter().map(|r| leaf_hash(&r.encode())).collect();
    let settle = Body::SettleBatch {
        peer: b.chain_id(),
        headers: b.headers(1, b.height()),
        source_height: hb,
        receipts: vec![receipts[0].clone()],
        indices: vec![0],
        proof: prove_many(&r_leaves, &[0]).unwrap(),
    };
    let settle = system(&a, settle);
    a.produce(&[settle]).unwrap();
    let mut sent = sent.into_iter();
    RoundTrip {
        a,
        b,
        delivered: sent.next().unwrap(),
        bounced: sent.next().unwrap(),
        delivered_at: hb,
    }
}

/// The events of `c`'s block at `height`.
fn events_at(c: &TestChain, height: u64) -> Vec<TransferEvent> {
    let i = height as usize - 1;
    transfer_events(&c.blocks[i].txs, &c.receipts[i])
}

#[test]
fn a_delivering_block_says_delivered_and_bounced_with_the_reason() {
    let t = round_trip();
    let a = t.a.chain_id();
    assert_eq!(
        events_at(&t.b, t.delivered_at),
        vec![
            TransferEvent::Delivered {
                peer: a,
                tx: t.delivered.hash(),
                amount: 60,
            },
            TransferEvent::Bounced {
                peer: a,
                tx: t.bounced.hash(),
                amount: 50,
                reason: BounceReason::InsufficientCollateral,
            },
        ]
    );
}

#[test]
fn a_settling_block_says_acknowledged_and_refunded_with_the_reason() {
    let t = round_trip();
    let b = t.b.chain_id();
    assert_eq!(
        events_at(&t.a, t.a.height()),
        vec![
            TransferEvent::Acknowledged {
                peer: b,
                tx: t.delivered.hash(),
                amount: 60,
            },
            TransferEvent::Refunded {
                peer: b,
                tx: t.bounced.hash(),
                amount: 50,
                reason: BounceReason::InsufficientCollateral,
            },
        ]
    );
}

#[test]
fn other_blocks_say_nothing() {
    let t = round_trip();
    // A's blocks before the settlement (sending is not an outcome logged here), B's
    // deposit and empty blocks.
    for h in 1..t.a.height() {
        assert_eq!(events_at(&t.a, h), vec![], "A's block {h}");
    }
    for h in (1..=t.b.height()).filter(|h| *h != t.delivered_at) {
        assert_eq!(events_at(&t.b, h), vec![], "B's block {h}");
    }
}
