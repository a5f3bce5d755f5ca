//! Interchain v2 (DESIGN §6.1): every transfer to a chain in one block travels as one
//! `InboundBatch` with one multiproof and the header run that proves it; the receipts
//! come back as one `SettleBatch`. Both are system transactions of the block producer:
//! no nonce, no fee, never from a mempool. A batch applies all or nothing and never
//! twice; anything forged is refused and changes nothing.
// Helpers outside `#[test]` functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    interchain::{inbound_record, settled_record},
    testkit::{address_of, peer_pair, TestChain},
    tx::{BounceReason, Outcome, SettleResult, TransferResult},
    Body, Receipt, Transaction, TxError,
};
use distpos_proofs::{
    light_client::{NotYet, Rejection},
    multiproof::{prove_many, MultiProof},
    ChainId, Hash32,
};

const A: u32 = 0xa1;
const B: u32 = 0xb2;

fn pair(producers: usize) -> (TestChain, TestChain) {
    peer_pair(A, B, producers, USERS, TestChain::dev_params())
}

/// User `SENDER` of `a` sends `amounts` to user 0 of `b`, with a local transfer in
/// the middle; the block is made irreversible. Returns the transfers to `b` and their
/// positions in the block.
fn send(a: &mut TestChain, b: &TestChain, amounts: &[u128]) -> (u64, Vec<Transaction>, Vec<u32>) {
    let sender = key(a, SENDER);
    let to = QualifiedAddress {
        chain: b.chain_id(),
        address: address_of(&b.users[0]),
    };
    let mut txs = Vec::new();
    for (i, amount) in amounts.iter().enumerate() {
        if i == 1 {
            txs.push(a.tx(&sender, FEE, transfer(address_of(&a.users[2]), 1)));
        }
        txs.push(a.tx(&sender, FEE, transfer_to(to, *amount)));
    }
    produce_ok(a, &txs);
    let h = a.height();
    while a.lib() < h {
        a.produce_empty(1).unwrap();
    }
    let block = &a.blocks[h as usize - 1];
    let (indices, transfers): (Vec<u32>, Vec<Transaction>) = block
        .txs
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(&t.body, Body::Transfer { to, .. } if to.chain == b.chain_id()))
        .map(|(i, t)| (i as u32, t.clone()))
        .unzip();
    (h, transfers, indices)
}

/// A change to an honest batch: its transfers, indices, proof and height.
type Forgery<'a> = dyn Fn(&mut Vec<Transaction>, &mut Vec<u32>, &mut MultiProof, &mut u64) + 'a;

fn deposit_for(b: &mut TestChain, of: ChainId, amount: u128) {
    deposit(b, of, amount);
}

#[test]
fn a_block_of_transfers_is_delivered_under_one_proof_and_settled_under_another() {
    let (mut a, mut b) = pair(3);
    deposit_for(&mut b, a.chain_id(), 1_000);
    let (h, transfers, indices) = send(&mut a, &b, &[10, 20, 30]);
    assert_eq!(indices, vec![0, 2, 3], "the local transfer sits at 1");
    let hashes: Vec<Hash32> = transfers.iter().map(Transaction::hash).collect();
    let recipient = address_of(&b.users[0]);
    let before = account(&b, &recipient).balance;

    // B: one system transaction, carrying A's headers, delivers all three.
    let batch = system(&b, inbound_batch(&a, 1, h, transfers, indices));
    let built = produce_ok(&mut b, std::slice::from_ref(&batch));
    let receipt = built.applied.receipts[0].clone();
    assert_eq!(receipt.fee, 0);
    assert_eq!(receipt.amount, 60);
    assert_eq!(
        receipt.outcome,
        Outcome::InboundBatch {
            source: a.chain_id(),
            results: hashes
                .iter()
                .zip([10u128, 20, 30])
                .map(|(h, amount)| TransferResult {
                    source_tx: *h,
                    amount,
                    bounced: None,
                    fast: false,
                    bounced_by: None,
                })
                .collect(),
        }
    );
    assert_eq!(account(&b, &recipient).balance, before + 60);
    assert_eq!(corr(&b, a.chain_id()), 1_000 - 60);
    for h in &hashes {
        let rec = inbound_record(&b.state, a.chain_id(), h).unwrap().unwrap();
        assert_eq!(rec.tx, batch.hash());
    }
    // System transactions use no nonce: the producers' accounts are untouched.
    for k in &b.producers {
        assert_eq!(account(&b, &address_of(k)).nonce, 0);
    }
    let hb = b.height();
    while b.lib() < hb {
        b.produce_empty(1).unwrap();
    }

    // A: one system transaction settles the three from B's receipt.
    let in_flight_before = corr(&a, b.chain_id());
    let settle = system(&a, settle_batch(&b, hb, &[0], true));
    let built = produce_ok(&mut a, std::slice::from_ref(&settle));
    assert_eq!(
        built.applied.receipts[0].outcome,
        Outcome::SettleBatch {
            settled: hashes
                .iter()
                .map(|h| SettleResult {
                    tx: *h,
                    delivered: true
                })
                .collect()
        }
    );
    assert_eq!(corr(&a, b.chain_id()), in_flight_before + 60);
    for h in &hashes {
        assert!(settled_record(&a.state, h).unwrap().unwrap().delivered());
    }
    assert_supplies(&a, &b);

    // Replayed, the settlement settles nothing and is refused whole.
    let again = refused_system(&mut a, settle_batch(&b, hb, &[0], false));
    assert!(matches!(again, TxError::NotInFlight(_)), "{again:?}");
}

#[test]
fn a_batch_is_never_applied_twice_nor_in_part() {
    let (mut a, mut b) = pair(1);
    deposit_for(&mut b, a.chain_id(), 1_000);
    let (h, transfers, indices) = send(&mut a, &b, &[5, 6, 7]);
    // The first two alone: a block may be split into several batches.
    let first = system(
        &b,
        inbound_batch(&a, 1, h, transfers[..2].to_vec(), indices[..2].to_vec()),
    );
    produce_ok(&mut b, &[first]);
    // The whole block again: two of its transfers were consumed, so none is.
    let err = refused_system(
        &mut b,
        inbound_batch(&a, a.height() + 1, h, transfers.clone(), indices.clone()),
    );
    assert!(matches!(err, TxError::AlreadyConsumed(..)), "{err:?}");
    // The rest alone goes through.
    let rest = system(
        &b,
        inbound_batch(
            &a,
            a.height() + 1,
            h,
            transfers[2..].to_vec(),
            indices[2..].to_vec(),
        ),
    );
    produce_ok(&mut b, &[rest]);
    assert_eq!(corr(&b, a.chain_id()), 1_000 - 18);
    assert_supply(&b);
}

#[test]
fn forged_batches_are_refused_and_change_nothing() {
    let (mut a, mut b) = pair(1);
    deposit_for(&mut b, a.chain_id(), 1_000);
    let (h, transfers, indices) = send(&mut a, &b, &[5, 6]);
    // A later block of A, irreversible too, to claim the transfers in.
    a.produce_empty(2).unwrap();
    let honest = inbound_batch(&a, 1, h, transfers.clone(), indices.clone());
    let Body::InboundBatch { headers, proof, .. } = honest.clone() else {
        unreachable!()
    };
    let other = a.tx(
        &key(&a, SENDER),
        FEE,
        transfer_to(
            QualifiedAddress {
                chain: b.chain_id(),
                address: address_of(&b.users[0]),
            },
            6,
        ),
    );
    let peer_a = a.chain_id();
    let with = |f: &Forgery<'_>| {
        let (mut t, mut i, mut p, mut height) =
            (transfers.clone(), indices.clone(), proof.clone(), h);
        f(&mut t, &mut i, &mut p, &mut height);
        Body::InboundBatch {
            peer: peer_a,
            headers: headers.clone(),
            source_height: height,
            transfers: t,
            indices: i,
            proof: p,
        }
    };
    let bad_proof = |e: &TxError| matches!(e, TxError::BadProof(_));
    // A forged index: the transfers claimed at other positions.
    let e = refused_system(&mut b, with(&|_, i, _, _| i[1] += 1));
    assert!(bad_proof(&e), "{e:?}");
    // Indices out of order, or one repeated.
    let e = refused_system(
        &mut b,
        with(&|t, i, _, _| {
            t.swap(0, 1);
            i.swap(0, 1);
        }),
    );
    assert!(bad_proof(&e), "{e:?}");
    let e = refused_system(
        &mut b,
        with(&|t, i, _, _| {
            t[1] = t[0].clone();
            i[1] = i[0];
        }),
    );
    assert!(bad_proof(&e), "{e:?}");
    // A transfer that is not in that block (a new one of the same sender).
    let e = refused_system(&mut b, with(&|t, _, _, _| t[1] = other.clone()));
    assert!(bad_proof(&e), "{e:?}");
    // A hash more, a hash less.
    let e = refused_system(&mut b, with(&|_, _, p, _| p.siblings.push(Hash32([9; 32]))));
    assert!(bad_proof(&e), "{e:?}");
    let e = refused_system(
        &mut b,
        with(&|_, _, p, _| {
            p.siblings.pop();
        }),
    );
    assert!(bad_proof(&e), "{e:?}");
    // Another block's height: its header does not commit to these transfers.
    let e = refused_system(&mut b, with(&|_, _, _, height| *height += 1));
    assert!(bad_proof(&e), "{e:?}");
    // One index per transfer, and at least one transfer.
    let e = refused_system(
        &mut b,
        with(&|_, i, _, _| {
            i.pop();
        }),
    );
    assert!(matches!(e, TxError::Invalid(_)), "{e:?}");
    let e = refused_system(
        &mut b,
        with(&|t, i, _, _| {
            t.clear();
            i.clear();
        }),
    );
    assert!(matches!(e, TxError::Invalid(_)), "{e:?}");
    // The honest one still goes through after all that.
    let honest = system(&b, honest);
    produce_ok(&mut b, &[honest]);
    assert_eq!(corr(&b, a.chain_id()), 1_000 - 11);
}

#[test]
fn without_the_headers_that_prove_it_a_batch_waits() {
    let (mut a, mut b) = pair(3);
    deposit_for(&mut b, a.chain_id(), 1_000);
    let (h, transfers, indices) = send(&mut a, &b, &[5]);
    // Headers up to the block itself only: not irreversible yet for B's light client.
    let mut body = inbound_batch(&a, 1, h, transfers.clone(), indices.clone());
    if let Body::InboundBatch { headers, .. } = &mut body {
        headers.truncate(h as usize);
    }
    let e = refused_system(&mut b, body);
    assert!(
        matches!(e, TxError::NotYetProvable(NotYet::NotIrreversible { .. })),
        "{e:?}"
    );
    // No headers at all: not seen yet.
    let e = refused_system(
        &mut b,
        inbound_batch(&a, a.height() + 1, h, transfers.clone(), indices.clone()),
    );
    assert!(
        matches!(e, TxError::NotYetProvable(NotYet::Unseen { .. })),
        "{e:?}"
    );
    // With the whole run it goes through.
    let whole = system(&b, inbound_batch(&a, 1, h, transfers, indices));
    produce_ok(&mut b, &[whole]);
}

#[test]
fn system_transactions_come_only_from_the_block_producer() {
    let (mut a, mut b) = pair(1);
    deposit_for(&mut b, a.chain_id(), 1_000);
    let (h, transfers, indices) = send(&mut a, &b, &[5]);
    let body = inbound_batch(&a, 1, h, transfers, indices);
    // Never through a mempool, whoever signs it.
    let tx = system(&b, body.clone());
    assert_eq!(validate(&b, &tx), Err(TxError::SystemOutsideBlock));
    // Signed by someone else, or with a nonce or a fee.
    let by_user = b.unsigned(0, 0, body.clone()).sign(&key(&b, RELAYER));
    assert_eq!(produce_rejected(&mut b, &by_user), TxError::SystemEnvelope);
    let producer = b.signer_for_slot(b.next_slot(0)).unwrap();
    let with_fee = b.unsigned(0, 1, body.clone()).sign(&producer);
    assert_eq!(produce_rejected(&mut b, &with_fee), TxError::SystemEnvelope);
    let producer = b.signer_for_slot(b.next_slot(0)).unwrap();
    let with_nonce = b.unsigned(1, 0, body).sign(&producer);
    assert_eq!(
        produce_rejected(&mut b, &with_nonce),
        TxError::SystemEnvelope
    );
}

#[test]
fn what_collateral_cannot_cover_bounces_in_order_and_is_refunded_once() {
    let (mut a, mut b) = pair(1);
    deposit_for(&mut b, a.chain_id(), 25);
    let sender_before = balance(&a, &key(&a, SENDER));
    let (h, transfers, indices) = send(&mut a, &b, &[10, 10, 10]);
    let batch = system(&b, inbound_batch(&a, 1, h, transfers, indices));
    let built = produce_ok(&mut b, &[batch]);
    let receipt = built.applied.receipts[0].clone();
    let Outcome::InboundBatch { results, .. } = &receipt.outcome else {
        panic!("{receipt:?}")
    };
    let bounced: Vec<Option<BounceReason>> = results.iter().map(|r| r.bounced).collect();
    assert_eq!(
        bounced,
        vec![None, None, Some(BounceReason::InsufficientCollateral)],
        "the first two fit in 25, the third does not"
    );
    assert_eq!(corr(&b, a.chain_id()), 5);
    let hb = b.height();
    let settle = system(&a, settle_batch(&b, hb, &[0], true));
    produce_ok(&mut a, &[settle]);
    // Three transfers of 10, a local one of 1, four fees: the bounced 10 came back.
    assert_eq!(
        balance(&a, &key(&a, SENDER)),
        sender_before - 20 - 1 - 4 * FEE
    );
    assert_supplies(&a, &b);
}

#[test]
fn only_receipts_of_batches_from_us_settle() {
    let (mut a, mut b) = pair(1);
    deposit_for(&mut b, a.chain_id(), 100);
    // A receipt of B that is no batch at all: B's deposit.
    let hd = b.height();
    let e = refused_system(&mut a, settle_batch(&b, hd, &[0], true));
    assert!(matches!(e, TxError::BadProof(_)), "{e:?}");
    // A receipt claimed against the wrong commitment (its leaf is not in receipts).
    let bogus = Receipt {
        tx_hash: Hash32([1; 32]),
        outcome: Outcome::InboundBatch {
            source: a.chain_id(),
            results: vec![],
        },
        amount: 0,
        fee: 0,
    };
    let e = refused_system(
        &mut a,
        Body::SettleBatch {
            peer: b.chain_id(),
            headers: b.headers(1, b.height()),
            source_height: hd,
            receipts: vec![bogus],
            indices: vec![0],
            proof: prove_many(&receipt_leaves(&b, hd), &[0]).unwrap(),
        },
    );
    assert!(
        matches!(&e, TxError::BadProof(p) if matches!(**p, distpos_chain::ProofError::Rejected(Rejection::MultiProof(_)))),
        "{e:?}"
    );
}
