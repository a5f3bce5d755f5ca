//! Cross-chain rules (DESIGN §2, §5, §6): a transfer A → B proven against B's light
//! client of A, delivered against A's correspondent account on B and settled on A, both
//! ways; exactly-once delivery and settlement; proof, source-transaction and receipt
//! forgeries; `PeerHeaders` verification and the light client's LIB; determinism.
//! Bounces, refunds and collateral accounting are in `rules_interchain_bounce.rs`.
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
    tx::{BounceReason, Outcome},
    Address, Body, Receipt, Transaction, TxError,
};
use distpos_proofs::{
    consensus::HeaderError,
    light_client::{Finalized, LightClient, Refusal, Rejection},
    merkle::{self, MerkleProof},
    BlockHeader, ChainId, Hash32,
};

// ---------------------------------------------------------------------------------
// Kit (shared in spirit with rules_interchain_bounce.rs; each test binary is alone).
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

fn light_client(c: &TestChain, of: ChainId) -> LightClient {
    peer(c, of).expect("registered peer").light_client
}

fn is_bad_proof(e: &TxError) -> bool {
    matches!(e, TxError::BadProof(_))
}

/// Both test chains share genesis time and slot length, so once `c` is at least at
/// `height`, peer headers up to `height` are not from the future at its next block.
fn keep_up(c: &mut TestChain, height: u64) {
    while c.height() < height {
        c.produce_empty(1).unwrap();
    }
}

/// Produces on `c` until its block `height` is irreversible.
fn finalize(c: &mut TestChain, height: u64) {
    while c.lib() < height {
        c.produce_empty(1).unwrap();
    }
}

/// A relayer brings `dst`'s light client of `src` up to `src`'s head; returns its LIB.
fn sync(dst: &mut TestChain, src: &TestChain) -> u64 {
    keep_up(dst, src.height());
    let head = light_client(dst, src.chain_id()).head();
    if head < src.height() {
        let headers = src.headers(head + 1, src.height());
        let (r, _) = submit(
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
    }
}

/// User `user` of `src` sends `amount` to `to`, included in the next block.
fn send(src: &mut TestChain, user: usize, to: QualifiedAddress, amount: u128) -> Transaction {
    let k = key(src, user);
    let tx = src.tx(&k, FEE, transfer_body(to, amount, 0));
    produce_ok(src, std::slice::from_ref(&tx));
    tx
}

/// The `Inbound` body for `tx` of `src`, with its true position and proof.
fn inbound(src: &TestChain, tx: &Transaction) -> Body {
    let (h, i) = src.locate(&tx.hash()).expect("source transaction included");
    inbound_at(src.chain_id(), tx, src.tx_proof(h, i), h, i)
}

fn inbound_at(peer: ChainId, tx: &Transaction, proof: MerkleProof, h: u64, i: u32) -> Body {
    Body::Inbound {
        peer,
        source_tx: Box::new(tx.clone()),
        proof,
        source_height: h,
        source_index: i,
    }
}

/// The `Settle` body for `dst`'s receipt at `(h, i)`, with its proof.
fn settle(dst: &TestChain, (h, i): (u64, u32)) -> Body {
    let receipt = dst.receipts[h as usize - 1][i as usize].clone();
    settle_at(dst.chain_id(), receipt, dst.receipt_proof(h, i), h, i)
}

fn settle_at(peer: ChainId, receipt: Receipt, proof: MerkleProof, h: u64, i: u32) -> Body {
    Body::Settle {
        peer,
        receipt,
        proof,
        source_height: h,
        source_index: i,
    }
}

/// Headers, then the `Inbound` of `tx` on `dst`.
fn deliver(dst: &mut TestChain, src: &TestChain, tx: &Transaction) -> (Receipt, (u64, u32)) {
    sync(dst, src);
    submit(dst, inbound(src, tx))
}

/// Headers of `dst`, then the `Settle` of its receipt at `at` on `src`.
fn settle_back(src: &mut TestChain, dst: &TestChain, at: (u64, u32)) -> Receipt {
    sync(src, dst);
    submit(src, settle(dst, at)).0
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

// ---------------------------------------------------------------------------------
// 1. The happy path, both ways.
// ---------------------------------------------------------------------------------

/// One transfer src → dst through all seven steps of DESIGN §6, checking every effect.
fn round_trip(src: &mut TestChain, dst: &mut TestChain, amount: u128, tag: &str) {
    let (s, d) = (src.chain_id(), dst.chain_id());
    let sender = key(src, SENDER);
    let recipient = fresh(tag);
    let before = balance(src, &sender);
    let (src_peer, dst_peer) = (peer(src, d).unwrap(), peer(dst, s).unwrap());

    // 1–2: included on the source: sender debited, in flight.
    let tx = send(src, SENDER, QualifiedAddress::new(d, recipient), amount);
    assert_eq!(balance(src, &sender), before - amount - FEE);
    let entry = ledger::in_flight(&src.state, &tx.hash()).unwrap().unwrap();
    assert_eq!((entry.destination, entry.amount), (d, amount));
    assert_supplies(src, dst);

    // 3–5: irreversible on the source, proven and delivered on the destination.
    let (h, _) = src.locate(&tx.hash()).unwrap();
    finalize(src, h);
    let (receipt, at) = deliver(dst, src, &tx);
    let inbound_tx = dst.blocks[at.0 as usize - 1].txs[0].hash();
    let delivered = Outcome::Delivered {
        source: s,
        source_tx: tx.hash(),
    };
    assert_eq!(
        receipt,
        Receipt {
            tx_hash: inbound_tx,
            outcome: delivered.clone(),
            amount,
            fee: RELAY_FEE,
        }
    );
    assert_eq!(account(dst, &recipient).balance, amount);
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
            tx: inbound_tx,
            sender: QualifiedAddress::new(s, address_of(&sender)),
            recipient,
            amount,
            height: at.0,
            outcome: delivered,
        }
    );
    let checksum = address_of(&sender).to_checksum_hex();
    assert_eq!(record.sender.to_string(), format!("{s}x{}", &checksum[2..]));
    assert_supplies(src, dst);

    // 6–7: irreversible on the destination, the receipt settles on the source.
    finalize(dst, at.0);
    let ack = settle_back(src, dst, at);
    assert_eq!(ack.outcome, Outcome::Acknowledged { tx: tx.hash() });
    assert_eq!(ack.amount, amount);
    assert_eq!(ledger::in_flight(&src.state, &tx.hash()).unwrap(), None);
    assert_eq!(
        settled_record(&src.state, &tx.hash()).unwrap(),
        Some(SettledRecord {
            destination: d,
            delivered: true,
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
    deposit(&mut b, A, 5_000);
    assert_eq!(corr(&b, A), 5_000);
    assert_supplies(&a, &b);
    round_trip(&mut a, &mut b, 3_000, "recipient on b");
    // B now holds a claim of 3 000 on A: it covers a transfer the other way, with no
    // deposit on A at all.
    assert_eq!((corr(&a, B), corr(&b, A)), (3_000, 2_000));
    round_trip(&mut b, &mut a, 2_000, "recipient on a");
    assert_eq!((corr(&a, B), corr(&b, A)), (1_000, 4_000));
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
    let (r, at) = deliver(&mut b, &a, &tx);
    assert!(matches!(r.outcome, Outcome::Delivered { .. }));

    let err = refused(&mut b, inbound(&a, &tx));
    assert_eq!(err, TxError::AlreadyConsumed(A, tx.hash()));
    assert_eq!(account(&b, &recipient).balance, 1_000);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.corr, p.delivered_in, p.volume_in), (9_000, 1, 1_000));

    let ack = settle_back(&mut a, &b, at);
    assert_eq!(ack.outcome, Outcome::Acknowledged { tx: tx.hash() });
    let err = refused(&mut a, settle(&b, at));
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
    sync(&mut b, &a);
    let relayer = key(&b, RELAYER);
    let first = b.tx(&relayer, RELAY_FEE, inbound(&a, &tx));
    let second = b.tx(&relayer, RELAY_FEE, inbound(&a, &tx));
    assert_ne!(first.hash(), second.hash());
    let built = b.produce(&[first.clone(), second.clone()]).unwrap();
    assert_eq!(built.block.txs, vec![first]);
    assert_eq!(
        built.rejected,
        vec![(second.hash(), TxError::AlreadyConsumed(A, tx.hash()))]
    );
    assert_eq!(account(&b, &recipient).balance, 700);
    assert_eq!(corr(&b, A), 9_300);
    assert_eq!(peer(&b, A).unwrap().delivered_in, 1);

    let at = (b.height(), 0);
    sync(&mut a, &b);
    let relayer = key(&a, RELAYER);
    let first = a.tx(&relayer, RELAY_FEE, settle(&b, at));
    let second = a.tx(&relayer, RELAY_FEE, settle(&b, at));
    let built = a.produce(&[first.clone(), second.clone()]).unwrap();
    assert_eq!(built.block.txs, vec![first]);
    assert_eq!(
        built.rejected,
        vec![(second.hash(), TxError::NotInFlight(tx.hash()))]
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.acked_out), (700, 1));
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 4. Proofs, source transactions and receipts that must be refused.
// ---------------------------------------------------------------------------------

#[test]
fn an_inbound_before_its_source_block_is_irreversible_here_is_not_yet_provable() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 10_000);
    let recipient = fresh("early");
    let tx = send(&mut a, SENDER, QualifiedAddress::new(B, recipient), 500);
    // A's block is irreversible on A, but B has none of A's headers yet.
    keep_up(&mut b, a.height());
    assert_eq!(light_client(&b, A).lib(), 0);
    let err = refused(&mut b, inbound(&a, &tx));
    assert!(matches!(err, TxError::NotYetProvable(_)), "{err:?}");
    assert_eq!(inbound_record(&b.state, A, &tx.hash()).unwrap(), None);
    // Once the headers are in, the same delivery goes through.
    let (r, _) = deliver(&mut b, &a, &tx);
    assert_eq!(
        r.outcome,
        Outcome::Delivered {
            source: A,
            source_tx: tx.hash()
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
        let err = refused(&mut b, inbound(&a, &tx));
        assert!(matches!(err, TxError::NotYetProvable(_)), "{err:?}");
        a.produce_empty(1).unwrap();
        waited += 1;
    }
    assert!(
        waited >= 2,
        "3 producers: LIB trails the head by two blocks"
    );
    let (r, _) = deliver(&mut b, &a, &tx);
    assert!(matches!(r.outcome, Outcome::Delivered { .. }));
    assert_eq!(account(&b, &recipient).balance, 500);
    assert_supplies(&a, &b);
}

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
    let proof0 = a.tx_proof(h, 0);
    assert_eq!(proof0.siblings.len(), 2);

    let flip = |p: &MerkleProof, s: usize, byte: usize, bit: u8| {
        let mut p = p.clone();
        p.siblings[s].0[byte] ^= 1 << bit;
        p
    };
    let mut forged_tx = txs[0].clone();
    if let Body::Transfer { amount, .. } = &mut forged_tx.body {
        *amount = 1_000_000;
    }
    // Correctly signed by the same sender, but never included on A.
    let resigned = a
        .unsigned(
            txs[0].nonce,
            FEE,
            transfer_body(QualifiedAddress::new(B, recipients[0]), 1_000_000, 0),
        )
        .sign(&key(&a, 0));
    let mut short = proof0.clone();
    short.siblings.pop();
    let mut long = proof0.clone();
    long.siblings.push(Hash32([7; 32]));
    let cases: Vec<(&str, Body)> = vec![
        (
            "flipped bit, first sibling",
            inbound_at(A, &txs[0], flip(&proof0, 0, 0, 0), h, 0),
        ),
        (
            "flipped bit, last sibling",
            inbound_at(A, &txs[0], flip(&proof0, 1, 31, 7), h, 0),
        ),
        ("missing sibling", inbound_at(A, &txs[0], short, h, 0)),
        ("extra sibling", inbound_at(A, &txs[0], long, h, 0)),
        (
            "empty proof",
            inbound_at(A, &txs[0], MerkleProof { siblings: vec![] }, h, 0),
        ),
        ("wrong index", inbound_at(A, &txs[0], proof0.clone(), h, 1)),
        (
            "another tx's index and proof",
            inbound_at(A, &txs[0], a.tx_proof(h, 2), h, 2),
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
        (
            "re-signed, never included",
            inbound_at(A, &resigned, proof0.clone(), h, 0),
        ),
    ];
    for (what, body) in cases {
        let err = refused(&mut b, body);
        assert!(is_bad_proof(&err), "{what}: {err:?}");
    }
    for tx in &txs {
        assert_eq!(inbound_record(&b.state, A, &tx.hash()).unwrap(), None);
    }
    // The true proofs, including the promoted last leaf of an odd level, do verify.
    let receipts = submit_all(&mut b, txs.iter().map(|t| inbound(&a, t)).collect());
    for (i, r) in receipts.iter().enumerate() {
        assert_eq!(
            r.outcome,
            Outcome::Delivered {
                source: A,
                source_tx: txs[i].hash()
            }
        );
        assert_eq!(account(&b, &recipients[i]).balance, 100 + i as u128);
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
        built.applied.receipts[3].outcome,
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
    sync(&mut b, &a);
    sync(&mut b, &c);

    let labels = [
        "a stake",
        "a local transfer",
        "an A-qualified transfer",
        "a transfer to C",
        "a deposit",
    ];
    for (what, tx) in labels.iter().zip(&on_a) {
        let err = refused(&mut b, inbound(&a, tx));
        assert!(is_bad_proof(&err), "{what}: {err:?}");
    }
    // A transaction of chain C (valid, with C's true proof) claimed to come from A.
    let (hc, ic) = c.locate(&from_c.hash()).unwrap();
    let err = refused(&mut b, inbound_at(A, &from_c, c.tx_proof(hc, ic), hc, ic));
    assert!(is_bad_proof(&err), "{err:?}");
    // Our own transaction passed off as A's.
    let (hb, ib) = b.locate(&own.hash()).unwrap();
    let own_proof = b.tx_proof(hb, ib);
    let err = refused(&mut b, inbound_at(A, &own, own_proof, hb, ib));
    assert!(is_bad_proof(&err), "{err:?}");
    assert_eq!(account(&b, &r).balance, 10, "only B's own local transfer");
    let p = peer(&b, A).unwrap();
    assert_eq!((p.delivered_in, p.bounced_in, p.corr), (0, 0, 10_000));

    // The C transfer, claimed as coming from C, is delivered.
    let (rc, _) = submit(&mut b, inbound(&c, &from_c));
    assert!(matches!(rc.outcome, Outcome::Delivered { source: C, .. }));
    assert_eq!(account(&b, &r).balance, 20);
    let rec = inbound_record(&b.state, C, &from_c.hash())
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.sender,
        QualifiedAddress::new(C, address_of(&key(&c, SENDER)))
    );
    assert_eq!(inbound_record(&b.state, A, &from_c.hash()).unwrap(), None);
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
    sync(&mut b, &a);
    let (h, i) = a.locate(&tx.hash()).unwrap();
    for who in [C, B, ChainId::LOCAL] {
        let err = refused(&mut b, inbound_at(who, &tx, a.tx_proof(h, i), h, i));
        assert_eq!(err, TxError::UnknownPeer(who));
        let err = refused(
            &mut b,
            Body::PeerHeaders {
                peer: who,
                headers: a.headers(1, 1),
            },
        );
        assert_eq!(err, TxError::UnknownPeer(who));
    }
    let (_, at) = submit(&mut b, inbound(&a, &tx));
    sync(&mut a, &b);
    let Body::Settle { receipt, proof, .. } = settle(&b, at) else {
        unreachable!()
    };
    let err = refused(&mut a, settle_at(C, receipt, proof, at.0, at.1));
    assert_eq!(err, TxError::UnknownPeer(C));
    assert!(ledger::in_flight(&a.state, &tx.hash()).unwrap().is_some());
}

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
    let receipts = submit_all(&mut b, vec![inbound(&a, &from_a), inbound(&c, &from_c)]);
    assert!(matches!(receipts[0].outcome, Outcome::Delivered { source, .. } if source == A));
    assert!(matches!(receipts[1].outcome, Outcome::Delivered { source, .. } if source == C));
    let h = b.height();
    sync(&mut a, &b);
    // C's block at height h is irreversible on A too, so a B receipt claimed as C's is
    // checked against C's header, not postponed.
    keep_up(&mut c, h);
    sync(&mut a, &c);

    let good = b.receipts[h as usize - 1][0].clone();
    let proof = b.receipt_proof(h, 0);
    let altered = |f: &dyn Fn(&mut Receipt)| {
        let mut r = good.clone();
        f(&mut r);
        settle_at(B, r, proof.clone(), h, 0)
    };
    let mut flipped = proof.clone();
    flipped.siblings[0].0[5] ^= 0x10;
    let deposit_at = b.locate(&b.blocks[0].txs[0].hash()).unwrap();
    let cases: Vec<(&str, Body)> = vec![
        ("amount + 1", altered(&|r| r.amount += 1)),
        ("amount - 1", altered(&|r| r.amount -= 1)),
        ("fee", altered(&|r| r.fee += 1)),
        (
            "delivered turned into bounced (a refund of a delivered transfer)",
            altered(&|r| {
                r.outcome = Outcome::Bounced {
                    source: A,
                    source_tx: from_a.hash(),
                    reason: BounceReason::InsufficientCollateral,
                }
            }),
        ),
        (
            "flipped sibling bit",
            settle_at(B, good.clone(), flipped, h, 0),
        ),
        (
            "wrong index",
            settle_at(B, good.clone(), proof.clone(), h, 1),
        ),
        (
            "wrong height",
            settle_at(B, good.clone(), proof.clone(), h - 1, 0),
        ),
        // C's delivery on B, genuinely proven: it settles a transfer of chain C.
        ("another source chain", settle(&b, (h, 1))),
        // B's genuine receipt, submitted as C's.
        (
            "proven against the wrong peer",
            settle_at(C, good.clone(), proof.clone(), h, 0),
        ),
        // A genuine receipt that is not a delivery or a bounce.
        ("a deposit receipt", settle(&b, deposit_at)),
    ];
    for (what, body) in cases {
        let err = refused(&mut a, body);
        assert!(is_bad_proof(&err), "{what}: {err:?}");
    }
    assert!(ledger::in_flight(&a.state, &from_a.hash())
        .unwrap()
        .is_some());
    assert_eq!(balance(&a, &sender), before - 400 - FEE);
    assert_eq!(corr(&a, B), 0);

    let (ack, _) = submit(&mut a, settle(&b, (h, 0)));
    assert_eq!(ack.outcome, Outcome::Acknowledged { tx: from_a.hash() });
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
    let receipt = |outcome: Outcome, amount: u128| Receipt {
        tx_hash: Hash32([9; 32]),
        outcome,
        amount,
        fee: 0,
    };
    let forged = vec![
        receipt(
            Outcome::Delivered {
                source: A,
                source_tx: to_b.hash(),
            },
            101,
        ),
        receipt(
            Outcome::Bounced {
                source: A,
                source_tx: to_c.hash(),
                reason: BounceReason::Expired,
            },
            200,
        ),
        receipt(
            Outcome::Delivered {
                source: A,
                source_tx: to_b.hash(),
            },
            100,
        ),
    ];
    let header = forge_next_header(&b, &forged);
    let h = header.header.height;
    keep_up(&mut a, h);
    let (r, _) = submit(
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
    let body = |i: usize| {
        let proof = merkle::prove(&leaves, i).unwrap();
        settle_at(B, forged[i].clone(), proof, h, i as u32)
    };
    let err = refused(&mut a, body(0));
    assert!(is_bad_proof(&err), "amount differs: {err:?}");
    let err = refused(&mut a, body(1));
    assert!(is_bad_proof(&err), "went to C, not B: {err:?}");
    assert!(ledger::in_flight(&a.state, &to_c.hash()).unwrap().is_some());
    // Only the semantic checks stopped them: the matching receipt settles.
    let (ack, _) = submit(&mut a, body(2));
    assert_eq!(ack.outcome, Outcome::Acknowledged { tx: to_b.hash() });
    assert_eq!(corr(&a, B), 100);
    assert_eq!(corr(&a, C), 0);
    assert_supply(&a);
}

// ---------------------------------------------------------------------------------
// 5. PeerHeaders.
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
    let mut stored = 0;
    for (from, to) in [(1u64, 2u64), (3, 5), (6, 9)] {
        let (r, _) = submit(
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
        stored = libs[to as usize];
        for x in 1..=to {
            let want = (x <= stored).then(|| finalized_of(&a, x));
            assert_eq!(
                ledger::peer_header(&b.state, A, x).unwrap(),
                want,
                "height {x}"
            );
        }
    }
    // Headers already followed, even reaching back below the checkpoint, change nothing.
    let before = light_client(&b, A);
    let (r, _) = submit(
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
        let err = refused(&mut b, Body::PeerHeaders { peer: A, headers });
        assert!(matches!(err, TxError::PeerHeaders(_)), "{what}: {err:?}");
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
// 7. Determinism.
// ---------------------------------------------------------------------------------

#[test]
fn followers_replaying_both_chains_reach_the_same_state() {
    let (mut a, mut b) = pair(1);
    deposit(&mut b, A, 1_000);
    let ok = send(
        &mut a,
        SENDER,
        QualifiedAddress::new(B, fresh("det ok")),
        600,
    );
    let short = send(
        &mut a,
        SENDER,
        QualifiedAddress::new(B, fresh("det short")),
        600,
    );
    sync(&mut b, &a);
    let receipts = submit_all(&mut b, vec![inbound(&a, &ok), inbound(&a, &short)]);
    assert!(matches!(receipts[0].outcome, Outcome::Delivered { .. }));
    assert!(matches!(receipts[1].outcome, Outcome::Bounced { .. }));
    let h = b.height();
    sync(&mut a, &b);
    let settled = submit_all(&mut a, vec![settle(&b, (h, 0)), settle(&b, (h, 1))]);
    assert_eq!(settled[0].outcome, Outcome::Acknowledged { tx: ok.hash() });
    assert_eq!(settled[1].outcome, Outcome::Refunded { tx: short.hash() });
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
