//! Cross-chain rules (DESIGN §2, §5, §6, §6.1), interchain v2: a transfer A → B is
//! delivered on B by an `InboundBatch` (a fee-free system transaction of B's producer)
//! proven against B's light client of A, against A's correspondent account on B, and
//! settled on A by a `SettleBatch` of B's receipt, both ways and with every effect
//! checked; exactly-once delivery and settlement, also within one block; nothing is
//! provable before its source block is irreversible here; inclusion-proof,
//! source-transaction and receipt forgeries, and proven receipts that do not match the
//! in-flight transfer; unknown peers; `PeerHeaders` (the relayer's user transaction)
//! and `HeaderRun` verification and the light client's LIB; determinism.
//! Multiproof shape forgeries and the system-transaction envelope are in
//! `rules_interchain_batch.rs`; bounces, refunds and collateral accounting in
//! `rules_interchain_bounce.rs`.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    block::receipts_root,
    interchain::{inbound_record, settled_record, InboundRecord, SettledRecord},
    ledger,
    testkit::{address_of, peer_pair, registration_of, TestChain},
    tx::{BounceReason, Outcome, SettleResult, TransferResult},
    Address, Body, ProofError, Receipt, Transaction, TxError,
};
use distpos_proofs::{
    consensus::HeaderError,
    light_client::{Finalized, NotYet, Refusal, Rejection},
    merkle,
    multiproof::{prove_many, MultiProof},
    BlockHeader, ChainId, Hash32,
};

// ---------------------------------------------------------------------------------
// Kit (batch helpers shared with the other interchain tests are in common/interchain).
// ---------------------------------------------------------------------------------

const A: ChainId = ChainId(0xa1);
const B: ChainId = ChainId(0xb2);
const C: ChainId = ChainId(0xc3);

/// Chains A and B, registered as each other's peers at genesis.
fn pair(producers: usize) -> (TestChain, TestChain) {
    peer_pair(A.0, B.0, producers, USERS, TestChain::dev_params())
}

/// Chains A, B and C (one producer each), every one a registered peer of the others.
fn trio() -> (TestChain, TestChain, TestChain) {
    let new = |id: ChainId| TestChain::new(id.0, 1, USERS, TestChain::dev_params());
    let (mut a, mut b, mut c) = (new(A), new(B), new(C));
    // The identity hash leaves out the peer list, so registrations can be made first.
    let reg =
        |x: &TestChain, owner: &TestChain| registration_of(x, address_of(&owner.producers[0]));
    a.genesis.peers = vec![reg(&b, &a), reg(&c, &a)];
    b.genesis.peers = vec![reg(&a, &b), reg(&c, &b)];
    c.genesis.peers = vec![reg(&a, &c), reg(&b, &c)];
    let rebuild = |x: TestChain| TestChain::from_genesis(x.genesis, x.producers, x.users);
    (rebuild(a), rebuild(b), rebuild(c))
}

fn is_bad_proof(e: &TxError) -> bool {
    matches!(e, TxError::BadProof(_))
}

fn proof_error(e: &TxError) -> &ProofError {
    match e {
        TxError::BadProof(p) => p,
        other => panic!("not a bad proof: {other:?}"),
    }
}

/// A relayer brings `dst`'s light client of `src` up to `src`'s head with a
/// `PeerHeaders` user transaction; returns the light client's LIB.
fn sync(dst: &mut TestChain, src: &TestChain) -> u64 {
    keep_up(dst, src.height());
    let headers = header_run(dst, src);
    if !headers.is_empty() {
        let r = submit(
            dst,
            Body::PeerHeaders {
                peer: src.chain_id(),
                headers,
            },
        );
        assert_eq!(r.outcome, Outcome::Applied);
    }
    let lc = light_client(dst, src.chain_id());
    assert_eq!(lc.head(), src.height());
    lc.lib()
}

fn transfer_body(to: QualifiedAddress, amount: u128, deliver_by: u64) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: b"cross".to_vec(),
        deliver_by,
        fast_fee: 0,
        via: None,
    }
}

/// User `user` of `src` sends `amount` to `to`, included in the next block.
fn send(src: &mut TestChain, user: usize, to: QualifiedAddress, amount: u128) -> Transaction {
    let k = key(src, user);
    let tx = src.tx(&k, FEE, transfer_body(to, amount, 0));
    produce_ok(src, std::slice::from_ref(&tx));
    tx
}

/// The multiproof of the single transaction `i` of `src`'s block `h`.
fn tx_proof(src: &TestChain, h: u64, i: u32) -> MultiProof {
    prove_many(&tx_leaves(src, h), &[i as usize]).unwrap()
}

/// The `InboundBatch` of `tx` of `src` alone, with its true position and proof and no
/// headers (the destination's light client must hold them already).
fn inbound(src: &TestChain, tx: &Transaction) -> Body {
    let (h, i) = src.locate(&tx.hash()).expect("source transaction included");
    inbound_at(src.chain_id(), tx, tx_proof(src, h, i), h, i)
}

/// An `InboundBatch` of `tx` alone, claimed from `peer` at `(h, i)` with `proof`.
fn inbound_at(peer: ChainId, tx: &Transaction, proof: MultiProof, h: u64, i: u32) -> Body {
    Body::InboundBatch {
        peer,
        headers: vec![],
        source_height: h,
        transfers: vec![tx.clone()],
        indices: vec![i],
        proof,
    }
}

/// A `SettleBatch` of `receipts`, claimed from `peer` at `indices` of its block `h`.
fn settle_at(
    peer: ChainId,
    receipts: Vec<Receipt>,
    proof: MultiProof,
    h: u64,
    indices: Vec<u32>,
) -> Body {
    Body::SettleBatch {
        peer,
        headers: vec![],
        source_height: h,
        receipts,
        indices,
        proof,
    }
}

fn delivered(tx: &Transaction, amount: u128) -> TransferResult {
    TransferResult {
        source_tx: tx.hash(),
        amount,
        bounced: None,
        fast: false,
        bounced_by: None,
    }
}

fn acked(tx: &Transaction) -> SettleResult {
    SettleResult {
        tx: tx.hash(),
        delivered: true,
    }
}

fn finalized_of(c: &TestChain, h: u64) -> Finalized {
    let s = &c.blocks[h as usize - 1].header;
    Finalized {
        height: h,
        id: s.id(),
        tx_root: s.header.tx_root,
        tx_count: s.header.tx_count,
        receipts_root: s.header.receipts_root,
        timestamp_ms: s.header.timestamp_ms,
    }
}

/// The account of the producer of `c`'s next slot, and its balance.
fn next_producer(c: &TestChain) -> (Address, u128) {
    let k = c.signer_for_slot(c.next_slot(0)).expect("a producer");
    let addr = address_of(&k);
    (addr, account(c, &addr).balance)
}

// ---------------------------------------------------------------------------------
// 1. The happy path, both ways.
// ---------------------------------------------------------------------------------

/// One transfer src → dst through all seven steps of DESIGN §6 (in batches, §6.1),
/// checking every effect.
fn round_trip(src: &mut TestChain, dst: &mut TestChain, amount: u128, tag: &str) {
    let (s, d) = (src.chain_id(), dst.chain_id());
    let sender = key(src, SENDER);
    let recipient = fresh(tag);
    let before = balance(src, &sender);
    let (src_peer, dst_peer) = (peer(src, d).unwrap(), peer(dst, s).unwrap());
    let reward = src.genesis.params.block_reward;

    // 1–2: included on the source: sender debited, in flight.
    let tx = send(src, SENDER, QualifiedAddress::new(d, recipient), amount);
    assert_eq!(balance(src, &sender), before - amount - FEE);
    let entry = ledger::in_flight(&src.state, &tx.hash()).unwrap().unwrap();
    assert_eq!((entry.destination, entry.amount), (d, amount));
    assert_supplies(src, dst);

    // 3–5: irreversible on the source, proven and delivered on the destination by its
    // producer, in a batch carrying the source headers that prove it.
    let (h, _) = src.locate(&tx.hash()).unwrap();
    finalize(src, h);
    keep_up(dst, src.height());
    let (producer, paid) = next_producer(dst);
    let (batch, receipt, hd) = deliver_batch(dst, src, std::slice::from_ref(&tx));
    assert_eq!((batch.nonce, batch.fee), (0, 0));
    assert_eq!(
        receipt,
        Receipt {
            tx_hash: batch.hash(),
            outcome: Outcome::InboundBatch {
                source: s,
                results: vec![delivered(&tx, amount)],
            },
            amount,
            fee: 0,
        }
    );
    // No fee, no nonce: the producer that included it earns the block reward alone.
    let p = account(dst, &producer);
    assert_eq!((p.balance, p.nonce), (paid + reward, 0));
    assert_eq!(account(dst, &recipient).balance, amount);
    assert!(
        light_client(dst, s).lib() >= h,
        "the run it carried was followed"
    );
    let p = peer(dst, s).unwrap();
    assert_eq!(p.corr, dst_peer.corr - amount as i128);
    assert_eq!(
        (p.delivered_in, p.volume_in, p.bounced_in),
        (
            dst_peer.delivered_in + 1,
            dst_peer.volume_in + amount,
            dst_peer.bounced_in
        )
    );
    // The return path: the sender qualified with the chain that proved it.
    let record = inbound_record(&dst.state, s, &tx.hash()).unwrap().unwrap();
    assert_eq!(
        record,
        InboundRecord {
            tx: batch.hash(),
            sender: QualifiedAddress::new(s, address_of(&sender)),
            recipient,
            amount,
            height: hd,
            outcome: Outcome::Delivered {
                source: s,
                source_tx: tx.hash(),
            },
        }
    );
    let checksum = address_of(&sender).to_checksum_hex();
    assert_eq!(record.sender.to_string(), format!("{s}x{}", &checksum[2..]));
    assert_supplies(src, dst);

    // 6–7: irreversible on the destination, its receipt settles on the source.
    finalize(dst, hd);
    keep_up(src, dst.height());
    let (producer, paid) = next_producer(src);
    let body = settle_of(src, dst, hd);
    let settle = system(src, body);
    let ack = produce_ok(src, std::slice::from_ref(&settle))
        .applied
        .receipts
        .remove(0);
    assert_eq!(
        ack,
        Receipt {
            tx_hash: settle.hash(),
            outcome: Outcome::SettleBatch {
                settled: vec![acked(&tx)],
            },
            amount,
            fee: 0,
        }
    );
    assert_eq!(account(src, &producer).balance, paid + reward);
    assert_eq!(ledger::in_flight(&src.state, &tx.hash()).unwrap(), None);
    assert_eq!(
        settled_record(&src.state, &tx.hash()).unwrap(),
        Some(SettledRecord {
            destination: d,
            bounced: None,
            bounced_by: None,
            height: src.height(),
            amount,
        })
    );
    let p = peer(src, d).unwrap();
    assert_eq!(p.corr, src_peer.corr + amount as i128);
    assert_eq!(
        (p.sent_out, p.volume_out, p.acked_out, p.refunded_out),
        (
            src_peer.sent_out + 1,
            src_peer.volume_out + amount,
            src_peer.acked_out + 1,
            src_peer.refunded_out
        )
    );
    assert_eq!(balance(src, &sender), before - amount - FEE, "no refund");
    assert_supplies(src, dst);
}

fn both_ways(producers: usize) {
    let (mut a, mut b) = pair(producers);
    let relayers = (
        balance(&a, &key(&a, RELAYER)),
        balance(&b, &key(&b, RELAYER)),
    );
    deposit(&mut b, A, 5_000);
    assert_eq!(corr(&b, A), 5_000);
    assert_supplies(&a, &b);
    round_trip(&mut a, &mut b, 3_000, "recipient on b");
    // B now holds a claim of 3 000 on A: it covers a transfer the other way, with no
    // deposit on A at all.
    assert_eq!((corr(&a, B), corr(&b, A)), (3_000, 2_000));
    round_trip(&mut b, &mut a, 2_000, "recipient on a");
    assert_eq!((corr(&a, B), corr(&b, A)), (1_000, 4_000));
    // Batches need no relaying account: no relayer paid anything.
    assert_eq!(
        (
            balance(&a, &key(&a, RELAYER)),
            balance(&b, &key(&b, RELAYER))
        ),
        relayers
    );
}

#[test]
fn a_transfer_goes_a_to_b_and_another_b_to_a_against_the_claim_it_created() {
    both_ways(1);
}

#[test]
fn with_three_producers_both_ways_wait_for_irreversibility() {
    both_ways(3);
}

// ---------------------------------------------------------------------------------
// 2. Exactly once.
// ---------------------------------------------------------------------------------

#[test]
fn an_inbound_transfer_is_consumed_once_and_a_settle_applies_once() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 10_000);
    let recipient = fresh("once");
    let tx = send(&mut a, SENDER, QualifiedAddress::new(B, recipient), 1_000);
    let (_, r, hb) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        r.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&tx, 1_000)],
        }
    );

    let err = refused_system(&mut b, inbound(&a, &tx));
    assert_eq!(err, TxError::AlreadyConsumed(A, tx.hash()));
    assert_eq!(account(&b, &recipient).balance, 1_000);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.corr, p.delivered_in, p.volume_in), (9_000, 1, 1_000));

    let ack = settle_back(&mut a, &b, hb);
    assert_eq!(
        ack.outcome,
        Outcome::SettleBatch {
            settled: vec![acked(&tx)],
        }
    );
    let err = refused_system(&mut a, settle_batch(&b, hb, &[0], false));
    assert_eq!(err, TxError::NotInFlight(tx.hash()));
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.acked_out, p.refunded_out), (1_000, 1, 0));
    assert_supplies(&a, &b);
}

#[test]
fn the_same_inbound_or_settle_twice_in_one_block_applies_once() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 10_000);
    let recipient = fresh("twice");
    let tx = send(&mut a, SENDER, QualifiedAddress::new(B, recipient), 700);
    // The batch with the headers that prove it, the same transfer without them (another
    // transaction), then an exact copy of the first: system transactions leave no
    // replay entry, so only consumption stops the copies.
    let body = inbound_of(&mut b, &a, std::slice::from_ref(&tx));
    let first = system(&b, body);
    let second = system(&b, inbound(&a, &tx));
    assert_ne!(first.hash(), second.hash());
    let built = b
        .produce(&[first.clone(), second.clone(), first.clone()])
        .unwrap();
    assert_eq!(built.block.txs, vec![first.clone()]);
    let consumed = TxError::AlreadyConsumed(A, tx.hash());
    assert_eq!(
        built.rejected,
        vec![(second.hash(), consumed.clone()), (first.hash(), consumed)]
    );
    assert_eq!(account(&b, &recipient).balance, 700);
    assert_eq!(corr(&b, A), 9_300);
    assert_eq!(peer(&b, A).unwrap().delivered_in, 1);

    let hb = b.height();
    let body = settle_of(&mut a, &b, hb);
    let first = system(&a, body);
    let second = system(&a, settle_batch(&b, hb, &[0], false));
    assert_ne!(first.hash(), second.hash());
    let built = a
        .produce(&[first.clone(), second.clone(), first.clone()])
        .unwrap();
    assert_eq!(built.block.txs, vec![first.clone()]);
    let settled = TxError::NotInFlight(tx.hash());
    assert_eq!(
        built.rejected,
        vec![(second.hash(), settled.clone()), (first.hash(), settled)]
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.acked_out), (700, 1));
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 3. Not provable before the source block is irreversible here.
// ---------------------------------------------------------------------------------

#[test]
fn an_inbound_before_its_source_block_is_irreversible_here_is_not_yet_provable() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 10_000);
    a.produce_empty(2).unwrap();
    let recipient = fresh("early");
    let tx = send(&mut a, SENDER, QualifiedAddress::new(B, recipient), 500);
    let (h, _) = a.locate(&tx.hash()).unwrap();
    assert_eq!(h, 3);
    // A's block is irreversible on A, but B has none of A's headers yet.
    keep_up(&mut b, a.height());
    assert_eq!(light_client(&b, A).lib(), 0);
    let err = refused_system(&mut b, inbound(&a, &tx));
    assert_eq!(
        err,
        TxError::NotYetProvable(NotYet::Unseen { height: h, head: 0 })
    );
    // Nor with a header run that stops short of the block.
    let Body::InboundBatch {
        transfers,
        indices,
        proof,
        ..
    } = inbound(&a, &tx)
    else {
        unreachable!()
    };
    let short = Body::InboundBatch {
        peer: A,
        headers: a.headers(1, h - 1),
        source_height: h,
        transfers,
        indices,
        proof,
    };
    let err = refused_system(&mut b, short);
    assert_eq!(
        err,
        TxError::NotYetProvable(NotYet::Unseen {
            height: h,
            head: h - 1
        })
    );
    assert_eq!(
        light_client(&b, A).head(),
        0,
        "the refused run was not kept"
    );
    assert_eq!(inbound_record(&b.state, A, &tx.hash()).unwrap(), None);
    // With the whole run, the same delivery goes through.
    let (_, r, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        r.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&tx, 500)],
        }
    );
    assert_eq!(account(&b, &recipient).balance, 500);
}

#[test]
fn with_three_producers_a_known_but_reversible_header_is_not_yet_provable() {
    let (mut a, mut b) = pair(3);
    deposit(&mut b, A, 10_000);
    let recipient = fresh("reversible");
    let tx = send(&mut a, SENDER, QualifiedAddress::new(B, recipient), 500);
    let (h, _) = a.locate(&tx.hash()).unwrap();
    let mut waited = 0;
    while a.lib() < h {
        // B's light client follows A's head but the block is not irreversible yet.
        let lib = sync(&mut b, &a);
        assert_eq!(lib, a.lib());
        assert!(light_client(&b, A).head() >= h && lib < h);
        let err = refused_system(&mut b, inbound(&a, &tx));
        assert_eq!(
            err,
            TxError::NotYetProvable(NotYet::NotIrreversible { height: h, lib })
        );
        a.produce_empty(1).unwrap();
        waited += 1;
    }
    assert!(
        waited >= 2,
        "3 producers: LIB trails the head by two blocks"
    );
    let (_, r, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        r.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&tx, 500)],
        }
    );
    assert_eq!(account(&b, &recipient).balance, 500);
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 4. Proofs, source transactions and receipts that must be refused.
// ---------------------------------------------------------------------------------

/// Forgeries of a single-transfer batch's proof or claimed position. (Multiproof shape
/// forgeries — a hash more or less, a forged, unsorted or repeated index, a transfer
/// not in the block, another block's height — are in `rules_interchain_batch.rs`.)
#[test]
fn a_forged_or_misplaced_inclusion_proof_is_a_bad_proof() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 10_000);
    a.produce_empty(1).unwrap(); // block 1 is empty
    let recipients: Vec<Address> = (0..3).map(|i| fresh(&format!("proof {i}"))).collect();
    let txs: Vec<Transaction> = (0..3)
        .map(|i| {
            let k = key(&a, i);
            a.tx(
                &k,
                FEE,
                transfer_body(QualifiedAddress::new(B, recipients[i]), 100 + i as u128, 0),
            )
        })
        .collect();
    produce_ok(&mut a, &txs);
    let h = a.height();
    sync(&mut b, &a);
    let proof0 = tx_proof(&a, h, 0);
    assert_eq!(proof0.siblings.len(), 2);

    let flip = |p: &MultiProof, s: usize, byte: usize, bit: u8| {
        let mut p = p.clone();
        p.siblings[s].0[byte] ^= 1 << bit;
        p
    };
    let mut forged_tx = txs[0].clone();
    if let Body::Transfer { amount, .. } = &mut forged_tx.body {
        *amount = 1_000_000;
    }
    let cases: Vec<(&str, Body)> = vec![
        (
            "flipped bit, first sibling",
            inbound_at(A, &txs[0], flip(&proof0, 0, 0, 0), h, 0),
        ),
        (
            "flipped bit, last sibling",
            inbound_at(A, &txs[0], flip(&proof0, 1, 31, 7), h, 0),
        ),
        (
            "empty proof",
            inbound_at(A, &txs[0], MultiProof { siblings: vec![] }, h, 0),
        ),
        (
            "another tx's index and proof",
            inbound_at(A, &txs[0], tx_proof(&a, h, 2), h, 2),
        ),
        (
            "index = tx_count",
            inbound_at(A, &txs[0], proof0.clone(), h, 3),
        ),
        (
            "index u32::MAX",
            inbound_at(A, &txs[0], proof0.clone(), h, u32::MAX),
        ),
        (
            "another tx, this proof",
            inbound_at(A, &txs[1], proof0.clone(), h, 0),
        ),
        ("empty block", inbound_at(A, &txs[0], proof0.clone(), 1, 0)),
        ("height 0", inbound_at(A, &txs[0], proof0.clone(), 0, 0)),
        (
            "amount altered",
            inbound_at(A, &forged_tx, proof0.clone(), h, 0),
        ),
    ];
    for (what, body) in cases {
        let err = refused_system(&mut b, body);
        assert!(is_bad_proof(&err), "{what}: {err:?}");
    }
    for tx in &txs {
        assert_eq!(inbound_record(&b.state, A, &tx.hash()).unwrap(), None);
    }
    // The true proofs verify: the promoted last leaf of an odd level alone, then the
    // other two together.
    assert_eq!(tx_proof(&a, h, 2).siblings.len(), 1);
    let (_, last, _) = deliver_batch(&mut b, &a, &txs[2..]);
    let (_, first_two, _) = deliver_batch(&mut b, &a, &txs[..2]);
    assert_eq!(
        last.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&txs[2], 102)],
        }
    );
    assert_eq!(
        first_two.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&txs[0], 100), delivered(&txs[1], 101)],
        }
    );
    for (i, r) in recipients.iter().enumerate() {
        assert_eq!(account(&b, r).balance, 100 + i as u128);
    }
    assert_eq!(corr(&b, A), 10_000 - 303);
    assert_supplies(&a, &b);
}

#[test]
fn a_source_transaction_that_is_not_a_transfer_from_the_peer_to_us_is_a_bad_proof() {
    let (mut a, mut b, mut c) = trio();
    deposit(&mut b, A, 10_000);
    deposit(&mut b, C, 10_000);
    let r = fresh("not for b");
    let (u0, u1) = (key(&a, 0), key(&a, 1));
    let on_a = vec![
        // A true transfer A → B, first in the block.
        a.tx(&u1, FEE, transfer_body(QualifiedAddress::new(B, r), 10, 0)),
        a.tx(&u0, FEE, Body::Stake { amount: 10 }),
        a.tx(&u0, FEE, transfer_body(QualifiedAddress::local(r), 10, 0)),
        a.tx(&u0, FEE, transfer_body(QualifiedAddress::new(A, r), 10, 0)),
        a.tx(&u0, FEE, transfer_body(QualifiedAddress::new(C, r), 10, 0)),
        a.tx(
            &u1,
            1,
            Body::DepositCollateral {
                peer: B,
                amount: 10,
            },
        ),
    ];
    let built = produce_ok(&mut a, &on_a);
    assert_eq!(
        built.applied.receipts[4].outcome,
        Outcome::InFlight { destination: C }
    );
    // A real transfer C → B, and B's own transfer to itself.
    let from_c = send(&mut c, SENDER, QualifiedAddress::new(B, r), 10);
    let own_key = key(&b, SENDER);
    let own = b.tx(
        &own_key,
        FEE,
        transfer_body(QualifiedAddress::new(B, r), 10, 0),
    );
    produce_ok(&mut b, std::slice::from_ref(&own));
    // A's block at the height of B's own transfer is irreversible on B too, so that
    // transfer claimed as A's is checked against A's header, not postponed.
    keep_up(&mut a, b.height());
    sync(&mut b, &a);
    sync(&mut b, &c);

    // A transaction that is no transfer at all, or a transfer to another chain than B.
    let not_a_transfer = |e: &TxError| matches!(proof_error(e), ProofError::NotATransfer);
    let elsewhere = |e: &TxError| match proof_error(e) {
        ProofError::WrongDestination { ours, got } => *ours == B && *got != B,
        _ => false,
    };
    let cases = [
        ("a stake", false),
        ("a local transfer", true),
        ("an A-qualified transfer", true),
        ("a transfer to C", true),
        ("a deposit", false),
    ];
    for ((what, is_transfer), tx) in cases.iter().zip(&on_a[1..]) {
        let err = refused_system(&mut b, inbound(&a, tx));
        let want = if *is_transfer {
            elsewhere(&err)
        } else {
            not_a_transfer(&err)
        };
        assert!(want, "{what}: {err:?}");
    }
    // The true transfer alongside one that is not: the batch is refused whole.
    let h = a.locate(&on_a[0].hash()).unwrap().0;
    let mixed = inbound_batch(&a, a.height() + 1, h, on_a[..2].to_vec(), vec![0, 1]);
    let err = refused_system(&mut b, mixed);
    assert!(not_a_transfer(&err), "{err:?}");
    // A transaction of chain C (valid, with C's true proof) claimed to come from A.
    let (hc, ic) = c.locate(&from_c.hash()).unwrap();
    let err = refused_system(&mut b, inbound_at(A, &from_c, tx_proof(&c, hc, ic), hc, ic));
    assert!(is_bad_proof(&err), "{err:?}");
    // Our own transaction passed off as A's.
    let (hb, ib) = b.locate(&own.hash()).unwrap();
    let own_proof = tx_proof(&b, hb, ib);
    let err = refused_system(&mut b, inbound_at(A, &own, own_proof, hb, ib));
    assert!(is_bad_proof(&err), "{err:?}");
    assert_eq!(account(&b, &r).balance, 10, "only B's own local transfer");
    let p = peer(&b, A).unwrap();
    assert_eq!((p.delivered_in, p.bounced_in, p.corr), (0, 0, 10_000));

    // The C transfer, claimed as coming from C, is delivered.
    let (_, rc, _) = deliver_batch(&mut b, &c, std::slice::from_ref(&from_c));
    assert_eq!(
        rc.outcome,
        Outcome::InboundBatch {
            source: C,
            results: vec![delivered(&from_c, 10)],
        }
    );
    assert_eq!(account(&b, &r).balance, 20);
    let rec = inbound_record(&b.state, C, &from_c.hash())
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.sender,
        QualifiedAddress::new(C, address_of(&key(&c, SENDER)))
    );
    assert_eq!(inbound_record(&b.state, A, &from_c.hash()).unwrap(), None);
    // And A's true transfer alone.
    let (_, ra, _) = deliver_batch(&mut b, &a, &on_a[..1]);
    assert_eq!(
        ra.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&on_a[0], 10)],
        }
    );
    assert_eq!(account(&b, &r).balance, 30);
    assert_supply(&b);
}

#[test]
fn an_unknown_peer_is_refused_for_headers_inbound_and_settle() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 10_000);
    let tx = send(
        &mut a,
        SENDER,
        QualifiedAddress::new(B, fresh("unknown")),
        10,
    );
    keep_up(&mut b, a.height());
    let (h, i) = a.locate(&tx.hash()).unwrap();
    for who in [C, B, ChainId::LOCAL] {
        // A's true batch, with and without the run of A's headers, claimed from `who`.
        for headers in [vec![], a.headers(1, a.height())] {
            let batch = Body::InboundBatch {
                peer: who,
                headers,
                source_height: h,
                transfers: vec![tx.clone()],
                indices: vec![i],
                proof: tx_proof(&a, h, i),
            };
            assert_eq!(refused_system(&mut b, batch), TxError::UnknownPeer(who));
        }
        let err = refused(
            &mut b,
            Body::PeerHeaders {
                peer: who,
                headers: a.headers(1, 1),
            },
        );
        assert_eq!(err, TxError::UnknownPeer(who));
        let err = refused_system(
            &mut b,
            Body::HeaderRun {
                peer: who,
                headers: a.headers(1, 1),
            },
        );
        assert_eq!(err, TxError::UnknownPeer(who));
    }
    assert_eq!(light_client(&b, A).head(), 0);
    let (_, _, hb) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    sync(&mut a, &b);
    let Body::SettleBatch {
        receipts,
        indices,
        proof,
        ..
    } = settle_batch(&b, hb, &[0], false)
    else {
        unreachable!()
    };
    let err = refused_system(&mut a, settle_at(C, receipts, proof, hb, indices));
    assert_eq!(err, TxError::UnknownPeer(C));
    assert!(ledger::in_flight(&a.state, &tx.hash()).unwrap().is_some());
}

/// Receipts altered, misplaced or of another chain's transfers. (A proven receipt that
/// is no batch at all, such as a deposit's, is in `rules_interchain_batch.rs`.)
#[test]
fn settle_with_an_altered_misplaced_or_foreign_receipt_is_a_bad_proof() {
    let (mut a, mut b, mut c) = trio();
    deposit(&mut b, A, 10_000);
    deposit(&mut b, C, 10_000);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let from_a = send(
        &mut a,
        SENDER,
        QualifiedAddress::new(B, fresh("settle a")),
        400,
    );
    let from_c = send(
        &mut c,
        SENDER,
        QualifiedAddress::new(B, fresh("settle c")),
        300,
    );
    sync(&mut b, &a);
    sync(&mut b, &c);
    // One block of B delivers both: A's batch at 0, C's at 1.
    let batches = [
        system(&b, inbound(&a, &from_a)),
        system(&b, inbound(&c, &from_c)),
    ];
    let receipts = produce_ok(&mut b, &batches).applied.receipts;
    assert_eq!(
        receipts[0].outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![delivered(&from_a, 400)],
        }
    );
    assert_eq!(
        receipts[1].outcome,
        Outcome::InboundBatch {
            source: C,
            results: vec![delivered(&from_c, 300)],
        }
    );
    let h = b.height();
    sync(&mut a, &b);
    // C's block at height h is irreversible on A too, so a B receipt claimed as C's is
    // checked against C's header, not postponed.
    keep_up(&mut c, h);
    sync(&mut a, &c);

    let good = b.receipts[h as usize - 1][0].clone();
    let proof = prove_many(&receipt_leaves(&b, h), &[0]).unwrap();
    let altered = |f: &dyn Fn(&mut Receipt)| {
        let mut r = good.clone();
        f(&mut r);
        settle_at(B, vec![r], proof.clone(), h, vec![0])
    };
    let result = |f: &dyn Fn(&mut TransferResult)| {
        altered(&|r| {
            if let Outcome::InboundBatch { results, .. } = &mut r.outcome {
                f(&mut results[0]);
            }
        })
    };
    let mut flipped = proof.clone();
    flipped.siblings[0].0[5] ^= 0x10;
    let cases: Vec<(&str, Body)> = vec![
        ("amount + 1", altered(&|r| r.amount += 1)),
        ("amount - 1", altered(&|r| r.amount -= 1)),
        ("fee", altered(&|r| r.fee += 1)),
        (
            "delivered turned into bounced (a refund of a delivered transfer)",
            result(&|t| t.bounced = Some(BounceReason::InsufficientCollateral)),
        ),
        ("transfer amount + 1", result(&|t| t.amount += 1)),
        (
            "source turned into C",
            altered(&|r| {
                if let Outcome::InboundBatch { source, .. } = &mut r.outcome {
                    *source = C;
                }
            }),
        ),
        (
            "flipped sibling bit",
            settle_at(B, vec![good.clone()], flipped, h, vec![0]),
        ),
        (
            "wrong index",
            settle_at(B, vec![good.clone()], proof.clone(), h, vec![1]),
        ),
        (
            "wrong height",
            settle_at(B, vec![good.clone()], proof.clone(), h - 1, vec![0]),
        ),
        // C's delivery on B, genuinely proven: it settles a transfer of chain C.
        ("another source chain", settle_batch(&b, h, &[1], false)),
        // Both, genuinely proven: the foreign one takes the other down with it.
        ("ours and another's", settle_batch(&b, h, &[0, 1], false)),
        // B's genuine receipt, submitted as C's.
        (
            "proven against the wrong peer",
            settle_at(C, vec![good.clone()], proof.clone(), h, vec![0]),
        ),
    ];
    for (what, body) in cases {
        let err = refused_system(&mut a, body);
        assert!(is_bad_proof(&err), "{what}: {err:?}");
    }
    assert!(ledger::in_flight(&a.state, &from_a.hash())
        .unwrap()
        .is_some());
    assert_eq!(balance(&a, &sender), before - 400 - FEE);
    assert_eq!(corr(&a, B), 0);

    let settle = system(&a, settle_batch(&b, h, &[0], false));
    let ack = produce_ok(&mut a, &[settle]).applied.receipts.remove(0);
    assert_eq!(
        ack.outcome,
        Outcome::SettleBatch {
            settled: vec![acked(&from_a)],
        }
    );
    assert_eq!(corr(&a, B), 400);
    assert_supply(&a);
}

/// A header of `chain`'s next block, signed by its scheduled producer, committing to
/// `receipts` (as a dishonest producer of that chain could).
fn forge_next_header(chain: &TestChain, receipts: &[Receipt]) -> distpos_proofs::SignedHeader {
    let slot = chain.next_slot(0);
    let key = chain.signer_for_slot(slot).unwrap();
    BlockHeader {
        chain_id: chain.chain_id(),
        height: chain.height() + 1,
        prev_id: chain.state.head_id,
        timestamp_ms: chain.slot_time(slot),
        producer: key.public_key(),
        schedule_version: 0,
        tx_root: Hash32([1; 32]),
        tx_count: receipts.len() as u32,
        receipts_root: receipts_root(receipts),
        state_digest: Hash32::ZERO,
        new_schedule: None,
        reveal: Hash32::ZERO,
        commit: Hash32::ZERO,
    }
    .sign(&key)
}

#[test]
fn a_proven_receipt_must_still_match_the_in_flight_transfer() {
    let (mut a, b, _c) = trio();
    let to_b = send(
        &mut a,
        SENDER,
        QualifiedAddress::new(B, fresh("forged b")),
        100,
    );
    let to_c = send(
        &mut a,
        SENDER,
        QualifiedAddress::new(C, fresh("forged c")),
        200,
    );
    // B's producer commits to receipts B never earned: the wrong amount for A's transfer
    // to B, and a bounce of A's transfer to C (which B never saw).
    let receipt = |tx: &Transaction, amount: u128, bounced: Option<BounceReason>| Receipt {
        tx_hash: Hash32([9; 32]),
        outcome: Outcome::InboundBatch {
            source: A,
            results: vec![TransferResult {
                source_tx: tx.hash(),
                amount,
                bounced,
                fast: false,
                bounced_by: None,
            }],
        },
        amount,
        fee: 0,
    };
    let forged = vec![
        receipt(&to_b, 101, None),
        receipt(&to_c, 200, Some(BounceReason::Expired)),
        receipt(&to_b, 100, None),
    ];
    let header = forge_next_header(&b, &forged);
    let h = header.header.height;
    keep_up(&mut a, h);
    let r = submit(
        &mut a,
        Body::PeerHeaders {
            peer: B,
            headers: vec![header],
        },
    );
    assert_eq!((r.outcome, r.amount), (Outcome::Applied, 1));
    let leaves: Vec<Hash32> = forged
        .iter()
        .map(|r| merkle::leaf_hash(&r.encode()))
        .collect();
    let body = |at: &[usize]| {
        settle_at(
            B,
            at.iter().map(|&i| forged[i].clone()).collect(),
            prove_many(&leaves, at).unwrap(),
            h,
            at.iter().map(|&i| i as u32).collect(),
        )
    };
    let err = refused_system(&mut a, body(&[0]));
    assert!(
        matches!(
            proof_error(&err),
            ProofError::AmountMismatch {
                expected: 100,
                got: 101
            }
        ),
        "amount differs: {err:?}"
    );
    let err = refused_system(&mut a, body(&[1]));
    assert_eq!(
        proof_error(&err),
        &ProofError::WrongPeer {
            tx: to_c.hash(),
            went: C,
            peer: B,
        },
        "went to C, not B"
    );
    // Together with the matching one, they take it down with them.
    let err = refused_system(&mut a, body(&[0, 1, 2]));
    assert!(is_bad_proof(&err), "{err:?}");
    assert!(ledger::in_flight(&a.state, &to_c.hash()).unwrap().is_some());
    // Only the semantic checks stopped them: the matching receipt settles.
    let settle = system(&a, body(&[2]));
    let ack = produce_ok(&mut a, &[settle]).applied.receipts.remove(0);
    assert_eq!(
        ack.outcome,
        Outcome::SettleBatch {
            settled: vec![acked(&to_b)],
        }
    );
    assert_eq!(corr(&a, B), 100);
    assert_eq!(corr(&a, C), 0);
    assert_supply(&a);
}

// ---------------------------------------------------------------------------------
// 5. PeerHeaders and HeaderRun.
// ---------------------------------------------------------------------------------

#[test]
fn peer_headers_move_the_light_client_to_the_peers_own_lib() {
    let (mut a, mut b) = pair(3);
    let mut libs = vec![0];
    for _ in 0..9 {
        a.produce_empty(1).unwrap();
        libs.push(a.lib());
    }
    assert_eq!(libs[9], 7);
    keep_up(&mut b, a.height());
    // A twin of B follows the same runs as its producers' `HeaderRun`s.
    let mut twin = b.clone();
    let mut stored = 0;
    for (from, to) in [(1u64, 2u64), (3, 5), (6, 9)] {
        let r = submit(
            &mut b,
            Body::PeerHeaders {
                peer: A,
                headers: a.headers(from, to),
            },
        );
        let lc = light_client(&b, A);
        assert_eq!((lc.head(), lc.lib()), (to, libs[to as usize]));
        assert_eq!(r.outcome, Outcome::Applied);
        assert_eq!(
            r.amount,
            u128::from(libs[to as usize] - stored),
            "newly final"
        );
        let run = system(
            &twin,
            Body::HeaderRun {
                peer: A,
                headers: a.headers(from, to),
            },
        );
        let tr = produce_ok(&mut twin, &[run]).applied.receipts.remove(0);
        assert_eq!((tr.outcome, tr.amount, tr.fee), (r.outcome, r.amount, 0));
        assert_eq!(light_client(&twin, A), lc);
        stored = libs[to as usize];
        for x in 1..=to {
            let want = (x <= stored).then(|| finalized_of(&a, x));
            assert_eq!(
                ledger::peer_header(&b.state, A, x).unwrap(),
                want,
                "height {x}"
            );
            assert_eq!(ledger::peer_header(&twin.state, A, x).unwrap(), want);
        }
    }
    // Headers already followed, even reaching back below the checkpoint, change nothing.
    let before = light_client(&b, A);
    let r = submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(1, 9),
        },
    );
    assert_eq!((r.outcome, r.amount), (Outcome::Applied, 0));
    assert_eq!(light_client(&b, A), before);
}

#[test]
fn forged_disconnected_or_foreign_peer_headers_are_refused() {
    let (mut a, mut b) = pair(1);
    a.produce_empty(5).unwrap();
    keep_up(&mut b, a.height());
    let c = {
        let mut c = TestChain::new(C.0, 1, 1, TestChain::dev_params());
        c.produce_empty(2).unwrap();
        c
    };
    let hs = a.headers(1, 5);
    let mut bad_sig = hs[0].clone();
    bad_sig.signature.0[10] ^= 0x01;
    let mut bad_root = hs[0].clone();
    bad_root.header.tx_root.0[0] ^= 0x80;
    let mut other_signer = hs[0].clone();
    other_signer.signature = b.producers[0].sign(&other_signer.id());
    let impostor = {
        let mut h = hs[0].header.clone();
        h.producer = b.producers[0].public_key();
        h.sign(&b.producers[0])
    };
    let cases = vec![
        ("flipped signature byte", vec![bad_sig.clone()]),
        ("field changed under the signature", vec![bad_root]),
        ("signed by another key", vec![other_signer]),
        ("signed by an unscheduled producer", vec![impostor]),
        (
            "not consecutive",
            vec![hs[0].clone(), hs[1].clone(), hs[3].clone()],
        ),
        ("unknown parent", hs[2..5].to_vec()),
        (
            "a valid header after a forged one",
            vec![bad_sig, hs[1].clone()],
        ),
        ("another chain's headers", c.headers(1, 2)),
    ];
    let untouched = light_client(&b, A);
    for (what, headers) in cases {
        // As the relayer's `PeerHeaders`, and as a producer's `HeaderRun`.
        let err = refused(
            &mut b,
            Body::PeerHeaders {
                peer: A,
                headers: headers.clone(),
            },
        );
        assert!(matches!(err, TxError::PeerHeaders(_)), "{what}: {err:?}");
        let run = refused_system(&mut b, Body::HeaderRun { peer: A, headers });
        assert_eq!(run, err, "{what}");
        assert_eq!(light_client(&b, A), untouched, "{what}");
    }
    let err = refused(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: vec![],
        },
    );
    assert!(matches!(err, TxError::Invalid(_)), "{err:?}");
    let err = refused_system(
        &mut b,
        Body::HeaderRun {
            peer: A,
            headers: vec![],
        },
    );
    assert!(matches!(err, TxError::Invalid(_)), "{err:?}");

    // 1..=2 connect; then 4..=5 leave a gap; 3..=5 close it.
    submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(1, 2),
        },
    );
    let err = refused(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(4, 5),
        },
    );
    assert!(matches!(err, TxError::PeerHeaders(_)), "{err:?}");
    assert_eq!(light_client(&b, A).lib(), 2);
    submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(3, 5),
        },
    );
    assert_eq!(light_client(&b, A).lib(), a.lib());
    assert_eq!(a.lib(), 5);
}

#[test]
fn peer_headers_from_the_future_are_refused_until_our_block_time_catches_up() {
    let (mut a, mut b) = pair(1);
    a.produce_empty(20).unwrap();
    let drift = 1_000; // max(1 s, the peer's 100 ms interval)
    let interval = a.genesis.params.block_interval_ms;
    // The highest A header B's next block may accept: dated at most `drift` after it.
    let acceptable = |b: &TestChain| (next_time(b) + drift - a.slot_time(0)) / interval;
    let limit = acceptable(&b);
    assert!(limit < 20);
    let err = refused(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(1, limit + 1),
        },
    );
    assert!(
        matches!(
            err,
            TxError::PeerHeaders(ref r) if matches!(**r, Refusal::Rejected(Rejection::Header {
                error: HeaderError::FromFuture { .. },
                ..
            }))
        ),
        "{err:?}"
    );
    assert_eq!(light_client(&b, A).head(), 0, "nothing of it was kept");
    // Exactly at the drift bound is fine.
    let limit = acceptable(&b);
    submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(1, limit),
        },
    );
    assert_eq!(light_client(&b, A).lib(), limit);
    // Later, B's clock has caught up.
    keep_up(&mut b, 20);
    submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(limit + 1, 20),
        },
    );
    assert_eq!(light_client(&b, A).lib(), 20);
}

// ---------------------------------------------------------------------------------
// 6. Determinism.
// ---------------------------------------------------------------------------------

#[test]
fn followers_replaying_both_chains_reach_the_same_state() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 1_000);
    let k = key(&a, SENDER);
    let (ok, short) = (
        a.tx(
            &k,
            FEE,
            transfer_body(QualifiedAddress::new(B, fresh("det ok")), 600, 0),
        ),
        a.tx(
            &k,
            FEE,
            transfer_body(QualifiedAddress::new(B, fresh("det short")), 600, 0),
        ),
    );
    produce_ok(&mut a, &[ok.clone(), short.clone()]);
    let (_, r, h) = deliver_batch(&mut b, &a, &[ok.clone(), short.clone()]);
    assert_eq!(
        r.outcome,
        Outcome::InboundBatch {
            source: A,
            results: vec![
                delivered(&ok, 600),
                TransferResult {
                    source_tx: short.hash(),
                    amount: 600,
                    bounced: Some(BounceReason::InsufficientCollateral),
                    fast: false,
                    bounced_by: None,
                },
            ],
        }
    );
    let settled = settle_back(&mut a, &b, h);
    assert_eq!(
        settled.outcome,
        Outcome::SettleBatch {
            settled: vec![
                acked(&ok),
                SettleResult {
                    tx: short.hash(),
                    delivered: false,
                },
            ],
        }
    );
    assert_supplies(&a, &b);

    for chain in [&a, &b] {
        let mut follower = TestChain::from_genesis(chain.genesis.clone(), vec![], vec![]);
        for block in &chain.blocks {
            follower.import(block).unwrap();
        }
        assert_eq!(follower.state.digest, chain.state.digest);
        assert_eq!(follower.state, chain.state);
        assert_eq!(follower.receipts, chain.receipts);
    }
}
