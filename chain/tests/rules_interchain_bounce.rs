//! Cross-chain bounces and collateral (DESIGN §5, §6 steps 5 and 7, §6.1), interchain
//! v2: a transfer in an `InboundBatch` bounces when collateral is short, the peer is
//! suspended, `deliver_by` has passed or the recipient is invalid, and the batch's
//! receipt says which transfer bounced and why; a bounce is consumed like a delivery,
//! and the `SettleBatch` of that receipt refunds the sender exactly once on the source
//! chain; within a batch, transfers are covered in block order; the correspondent
//! account never goes below minus the credit limit, which governance can raise.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    interchain::{inbound_record, settled_record, SettledRecord},
    ledger,
    supply::audit_supply,
    testkit::{address_of, peer_pair, TestChain},
    tx::{BounceReason, GovAction, Outcome, SettleResult, TransferResult},
    Address, Body, Receipt, Transaction, TxError,
};
use distpos_proofs::ChainId;

// ---------------------------------------------------------------------------------
// Kit (batch helpers shared with the other interchain tests are in common/interchain).
// ---------------------------------------------------------------------------------

const A: ChainId = ChainId(0xa1);
const B: ChainId = ChainId(0xb2);

/// Chains A and B (one producer each, so governance executes at once and every block
/// is irreversible when produced), registered as each other's peers at genesis.
fn pair() -> (TestChain, TestChain) {
    peer_pair(A.0, B.0, 1, USERS, TestChain::dev_params())
}

fn transfer_body(to: QualifiedAddress, amount: u128, deliver_by: u64) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: Vec::new(),
        deliver_by,
        fast_fee: 0,
        via: None,
    }
}

/// The sender of `src` sends each `(to, amount, deliver_by)`, all in the next block.
fn send_all(src: &mut TestChain, transfers: &[(QualifiedAddress, u128, u64)]) -> Vec<Transaction> {
    let k = key(src, SENDER);
    let txs: Vec<Transaction> = transfers
        .iter()
        .map(|&(to, amount, by)| src.tx(&k, FEE, transfer_body(to, amount, by)))
        .collect();
    produce_ok(src, &txs);
    txs
}

fn send(src: &mut TestChain, to: QualifiedAddress, amount: u128) -> Transaction {
    send_all(src, &[(to, amount, 0)]).remove(0)
}

/// Delivers `txs` (one block of `src`) on `dst` as one batch in its next block, with
/// the headers that prove them; returns the batch's receipt and the height.
fn deliver_all(dst: &mut TestChain, src: &TestChain, txs: &[Transaction]) -> (Receipt, u64) {
    let (_, receipt, h) = deliver_batch(dst, src, txs);
    assert_eq!(receipt.fee, 0, "a batch pays no fee");
    (receipt, h)
}

/// How each transfer of an `InboundBatch` receipt from A ended.
fn results(r: &Receipt) -> Vec<TransferResult> {
    match &r.outcome {
        Outcome::InboundBatch { source, results } if *source == A => results.clone(),
        other => panic!("not a batch from A: {other:?}"),
    }
}

/// Settles every batch receipt of `dst`'s block `h` on `src`, in one `SettleBatch`;
/// returns its receipt.
fn settle_block(src: &mut TestChain, dst: &TestChain, h: u64) -> Receipt {
    let r = settle_back(src, dst, h);
    assert_eq!(r.fee, 0, "a batch pays no fee");
    r
}

/// What a `SettleBatch` receipt settled.
fn settled(r: &Receipt) -> Vec<SettleResult> {
    match &r.outcome {
        Outcome::SettleBatch { settled } => settled.clone(),
        other => panic!("not a settlement: {other:?}"),
    }
}

fn bounced(tx: &Transaction, reason: BounceReason) -> TransferResult {
    TransferResult {
        source_tx: tx.hash(),
        amount: amount_of(tx),
        bounced: Some(reason),
        fast: false,
        bounced_by: None,
    }
}

fn delivered(tx: &Transaction) -> TransferResult {
    TransferResult {
        source_tx: tx.hash(),
        amount: amount_of(tx),
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

fn refunded(tx: &Transaction) -> SettleResult {
    SettleResult {
        tx: tx.hash(),
        delivered: false,
    }
}

fn amount_of(tx: &Transaction) -> u128 {
    match &tx.body {
        Body::Transfer { amount, .. } => *amount,
        other => panic!("not a transfer: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------

#[test]
fn short_collateral_bounces_and_the_sender_is_refunded_exactly_once() {
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 999);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("short");
    let tx = send(&mut a, QualifiedAddress::new(B, recipient), 1_000);
    assert_supplies(&a, &b);

    let (r, h) = deliver_all(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        (results(&r), r.amount),
        (
            vec![bounced(&tx, BounceReason::InsufficientCollateral)],
            1_000
        )
    );
    assert_eq!(account(&b, &recipient).balance, 0);
    let p = peer(&b, A).unwrap();
    assert_eq!(
        (p.corr, p.bounced_in, p.delivered_in, p.volume_in),
        (999, 1, 0, 0)
    );
    let record = inbound_record(&b.state, A, &tx.hash()).unwrap().unwrap();
    assert_eq!(record.sender, QualifiedAddress::new(A, address_of(&sender)));
    assert_eq!(
        (record.amount, &record.outcome),
        (
            1_000,
            &Outcome::Bounced {
                source: A,
                source_tx: tx.hash(),
                reason: BounceReason::InsufficientCollateral,
            }
        )
    );
    assert_supplies(&a, &b);

    // A bounce consumes the transfer too: more collateral does not make it deliverable.
    deposit(&mut b, A, 10_000);
    let again = inbound_of(&mut b, &a, std::slice::from_ref(&tx));
    let err = refused_system(&mut b, again);
    assert_eq!(err, TxError::AlreadyConsumed(A, tx.hash()));
    assert_eq!(account(&b, &recipient).balance, 0);

    let refund = settle_block(&mut a, &b, h);
    assert_eq!(
        (settled(&refund), refund.amount),
        (vec![refunded(&tx)], 1_000)
    );
    assert_eq!(balance(&a, &sender), before - FEE, "the amount came back");
    assert_eq!(ledger::in_flight(&a.state, &tx.hash()).unwrap(), None);
    assert_eq!(
        settled_record(&a.state, &tx.hash()).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: Some(BounceReason::InsufficientCollateral),
            bounced_by: Some(B),
            height: a.height(),
            amount: 1_000,
        })
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.refunded_out, p.acked_out), (0, 1, 0));
    assert_supplies(&a, &b);

    let err = refused_system(&mut a, settle_batch(&b, h, &[0], false));
    assert_eq!(err, TxError::NotInFlight(tx.hash()));
    assert_eq!(balance(&a, &sender), before - FEE, "refunded once");
    assert_eq!(peer(&a, B).unwrap().refunded_out, 1);
}

#[test]
fn a_suspended_peer_bounces_everything_until_resumed() {
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 10_000);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("suspended");
    govern(&mut b, GovAction::SuspendPeer { chain: A });
    assert!(peer(&b, A).unwrap().suspended);

    let first = send(&mut a, QualifiedAddress::new(B, recipient), 100);
    let (r, h1) = deliver_all(&mut b, &a, std::slice::from_ref(&first));
    assert_eq!(
        results(&r),
        vec![bounced(&first, BounceReason::PeerSuspended)]
    );
    assert_eq!(account(&b, &recipient).balance, 0);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.corr, p.bounced_in, p.delivered_in), (10_000, 1, 0));
    assert_supplies(&a, &b);

    govern(&mut b, GovAction::ResumePeer { chain: A });
    let second = send(&mut a, QualifiedAddress::new(B, recipient), 100);
    let (r, h2) = deliver_all(&mut b, &a, std::slice::from_ref(&second));
    assert_eq!(results(&r), vec![delivered(&second)]);
    assert_eq!(account(&b, &recipient).balance, 100);
    assert_eq!(corr(&b, A), 9_900);

    let refund = settle_block(&mut a, &b, h1);
    assert_eq!(settled(&refund), vec![refunded(&first)]);
    let ack = settle_block(&mut a, &b, h2);
    assert_eq!(settled(&ack), vec![acked(&second)]);
    assert_eq!(balance(&a, &sender), before - 100 - 2 * FEE);
    assert_eq!(corr(&a, B), 100);
    assert_supplies(&a, &b);
}

#[test]
fn a_passed_deliver_by_bounces_as_expired_and_the_deadline_itself_is_in_time() {
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 10_000);
    // B will deliver in its block 20; both chains share genesis time and slot length.
    let t = b.slot_time(20);
    let to = QualifiedAddress::new(B, fresh("deadline"));
    let txs = send_all(
        &mut a,
        &[(to, 10, t - 1), (to, 20, t), (to, 40, 0), (to, 80, 1)],
    );
    while next_time(&b) < t {
        b.produce_empty(1).unwrap();
    }
    assert_eq!(next_time(&b), t);
    let (r, h) = deliver_all(&mut b, &a, &txs);
    assert_eq!(b.blocks[h as usize - 1].header.header.timestamp_ms, t);
    assert_eq!(
        results(&r),
        vec![
            bounced(&txs[0], BounceReason::Expired),
            delivered(&txs[1]),
            delivered(&txs[2]),
            bounced(&txs[3], BounceReason::Expired),
        ]
    );
    assert_eq!(account(&b, &to.address).balance, 60);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.corr, p.delivered_in, p.bounced_in), (9_940, 2, 2));

    let s = settle_block(&mut a, &b, h);
    assert_eq!(
        settled(&s),
        vec![
            refunded(&txs[0]),
            acked(&txs[1]),
            acked(&txs[2]),
            refunded(&txs[3]),
        ]
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.acked_out, p.refunded_out), (60, 2, 2));
    assert_supplies(&a, &b);
}

#[test]
fn the_zero_address_bounces_as_a_bad_recipient() {
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 10_000);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let tx = send(&mut a, QualifiedAddress::new(B, Address::ZERO), 50);
    let (r, h) = deliver_all(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(results(&r), vec![bounced(&tx, BounceReason::BadRecipient)]);
    assert_eq!(account(&b, &Address::ZERO).balance, 0);
    assert_eq!(corr(&b, A), 10_000);
    assert_eq!(peer(&b, A).unwrap().bounced_in, 1);
    let refund = settle_block(&mut a, &b, h);
    assert_eq!(settled(&refund), vec![refunded(&tx)]);
    assert_eq!(balance(&a, &sender), before - FEE);
    assert_supplies(&a, &b);
}

#[test]
fn transfers_beyond_the_collateral_bounce_and_corr_never_goes_negative_without_credit() {
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 1_000);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let (r1, r2) = (fresh("collateral 1"), fresh("collateral 2"));
    let (to1, to2) = (QualifiedAddress::new(B, r1), QualifiedAddress::new(B, r2));

    // Together 1 100 > 1 000: the first (in block order) is delivered, the second bounces.
    let txs = send_all(&mut a, &[(to1, 700, 0), (to2, 400, 0)]);
    let (r, h1) = deliver_all(&mut b, &a, &txs);
    assert_eq!(
        results(&r),
        vec![
            delivered(&txs[0]),
            bounced(&txs[1], BounceReason::InsufficientCollateral)
        ]
    );
    assert_eq!(
        (account(&b, &r1).balance, account(&b, &r2).balance),
        (700, 0)
    );
    assert_eq!(corr(&b, A), 300);
    assert_supplies(&a, &b);

    // Exactly the rest is delivered; then not a single token more.
    let exact = send(&mut a, to2, 300);
    let (r, h_exact) = deliver_all(&mut b, &a, std::slice::from_ref(&exact));
    assert_eq!(results(&r), vec![delivered(&exact)]);
    assert_eq!(corr(&b, A), 0);
    let one = send(&mut a, to2, 1);
    let (r, h_one) = deliver_all(&mut b, &a, std::slice::from_ref(&one));
    assert_eq!(
        results(&r),
        vec![bounced(&one, BounceReason::InsufficientCollateral)]
    );
    assert_eq!(corr(&b, A), 0);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.delivered_in, p.bounced_in, p.volume_in), (2, 2, 1_000));
    assert_eq!(account(&b, &r2).balance, 300);
    assert_supplies(&a, &b);

    // Back on A: 1 000 acknowledged, 401 refunded.
    for h in [h1, h_exact, h_one] {
        settle_block(&mut a, &b, h);
    }
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.acked_out, p.refunded_out), (1_000, 2, 2));
    assert_eq!(balance(&a, &sender), before - 1_000 - 4 * FEE);
    for tx in txs.iter().chain([&exact, &one]) {
        assert_eq!(ledger::in_flight(&a.state, &tx.hash()).unwrap(), None);
    }
    assert_supplies(&a, &b);
}

#[test]
fn a_credit_limit_from_governance_lets_corr_go_negative_within_it() {
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 1_000);
    let owner = peer(&b, A).unwrap().registration.owner;
    govern(
        &mut b,
        GovAction::UpdatePeer {
            chain: A,
            owner,
            credit_limit: 500,
            low_watermark: 100,
        },
    );
    assert_eq!(peer(&b, A).unwrap().registration.credit_limit, 500);
    let to = QualifiedAddress::new(B, fresh("credit"));

    // The same pair as without credit: now both are delivered, on 100 of credit.
    let txs = send_all(&mut a, &[(to, 700, 0), (to, 400, 0)]);
    let (r, h1) = deliver_all(&mut b, &a, &txs);
    assert_eq!(results(&r), vec![delivered(&txs[0]), delivered(&txs[1])]);
    assert_eq!(corr(&b, A), -100);
    assert_eq!(account(&b, &to.address).balance, 1_100);
    // Negative correspondent balances are counted with their sign.
    let report = audit_supply(&b.state).unwrap();
    assert_eq!(report.correspondents, -100);
    assert!(report.holds(), "{report:?}");

    // 400 of credit is left: 401 bounces, 400 is delivered, down to exactly -500.
    let txs2 = send_all(&mut a, &[(to, 401, 0), (to, 400, 0), (to, 1, 0)]);
    let (r, h2) = deliver_all(&mut b, &a, &txs2);
    assert_eq!(
        results(&r),
        vec![
            bounced(&txs2[0], BounceReason::InsufficientCollateral),
            delivered(&txs2[1]),
            bounced(&txs2[2], BounceReason::InsufficientCollateral),
        ]
    );
    assert_eq!(corr(&b, A), -500);
    assert_eq!(account(&b, &to.address).balance, 1_500);
    assert_supplies(&a, &b);

    // Lowering the limit below what is used bounces everything until repaid.
    govern(
        &mut b,
        GovAction::UpdatePeer {
            chain: A,
            owner,
            credit_limit: 0,
            low_watermark: 100,
        },
    );
    let tx = send(&mut a, to, 1);
    let (r, h3) = deliver_all(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        results(&r),
        vec![bounced(&tx, BounceReason::InsufficientCollateral)]
    );
    assert_eq!(corr(&b, A), -500);
    assert_supplies(&a, &b);

    for h in [h1, h2, h3] {
        settle_block(&mut a, &b, h);
    }
    let p = peer(&a, B).unwrap();
    assert_eq!((p.corr, p.acked_out, p.refunded_out), (1_500, 3, 3));
    assert_supplies(&a, &b);
}

#[test]
fn receipts_still_settle_after_the_destination_was_suspended_here() {
    // Suspending B on A stops new transfers to B, but transfers already in flight must
    // still end, delivered or refunded (DESIGN §0): their receipts are accepted.
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 100);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let to = QualifiedAddress::new(B, fresh("in flight"));
    let txs = send_all(&mut a, &[(to, 100, 0), (to, 50, 0)]);
    let (r, h) = deliver_all(&mut b, &a, &txs);
    assert_eq!(
        results(&r),
        vec![
            delivered(&txs[0]),
            bounced(&txs[1], BounceReason::InsufficientCollateral)
        ]
    );
    govern(&mut a, GovAction::SuspendPeer { chain: B });
    let s = settle_block(&mut a, &b, h);
    assert_eq!(settled(&s), vec![acked(&txs[0]), refunded(&txs[1])]);
    assert_eq!(balance(&a, &sender), before - 100 - 2 * FEE);
    assert_eq!(corr(&a, B), 100);
    assert_supplies(&a, &b);
}

#[test]
fn the_source_remembers_why_each_refunded_transfer_bounced() {
    // Issue 15: the destination's reason travels back with its receipt; the source's
    // settled record says it (what `GET /v1/txs/{hash}` on the source shows).
    let (mut a, mut b) = pair();
    deposit(&mut b, A, 100);
    let to = QualifiedAddress::new(B, fresh("reasons"));
    let nowhere = QualifiedAddress::new(B, Address::ZERO);
    let txs = send_all(
        &mut a,
        &[(to, 10, 1), (to, 50, 0), (nowhere, 20, 0), (to, 60, 0)],
    );
    let (_, h1) = deliver_all(&mut b, &a, &txs);
    govern(&mut b, GovAction::SuspendPeer { chain: A });
    let late = send(&mut a, to, 5);
    let (_, h2) = deliver_all(&mut b, &a, std::slice::from_ref(&late));
    settle_block(&mut a, &b, h1);
    let settled_at = a.height();
    settle_block(&mut a, &b, h2);

    let expected = [
        (&txs[0], Some(BounceReason::Expired), settled_at),
        (&txs[1], None, settled_at),
        (&txs[2], Some(BounceReason::BadRecipient), settled_at),
        (
            &txs[3],
            Some(BounceReason::InsufficientCollateral),
            settled_at,
        ),
        (&late, Some(BounceReason::PeerSuspended), a.height()),
    ];
    for (tx, reason, height) in expected {
        let record = settled_record(&a.state, &tx.hash()).unwrap().unwrap();
        assert_eq!(
            record,
            SettledRecord {
                destination: B,
                bounced: reason,
                bounced_by: reason.map(|_| B),
                height,
                amount: amount_of(tx),
            }
        );
        assert_eq!(record.delivered(), reason.is_none());
    }
    let p = peer(&a, B).unwrap();
    assert_eq!((p.acked_out, p.refunded_out), (1, 4));
    assert_supplies(&a, &b);
}
