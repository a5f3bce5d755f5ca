//! Per-peer admission policy (DESIGN §13) on the receiving chain B for transfers from
//! A: governance sets it (`SetPeerPolicy`, validated; the bucket starts full), and
//! block application applies it to every transfer of an `InboundBatch` that would
//! otherwise be admitted. A transfer above `max_transfer` bounces
//! (`above_max_transfer`); one the token bucket cannot pay, or above `delay_above`, or
//! from a peer whose reputation is below `min_reputation` with `below_reputation =
//! Delay`, is admitted (A's account pays now) but held `Delayed` and left out of the
//! batch's receipt; below the threshold with `Refuse` it bounces (`low_reputation`).
//! Once due, the producer's `Release` credits the recipient and reports it delivered
//! (before, it is refused); governance may `CancelDelayed` it into a bounce
//! (`cancelled`, by B) that the `Release` reports and A refunds once. A delayed
//! transfer for another chain goes on with a `Forward` once due. `RemovePeer` waits
//! for held transfers. The reputation formula is checked on its own and through the
//! ledger. Supply holds on both chains at every step.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    execute::chain_rules,
    interchain::{
        forward::{self, Held, HeldState},
        inbound_record,
        policy::{
            self, head_time, reputation, BelowReputation, PeerPolicy, PolicyBook, LAG_TOLERATED_MS,
            MAX_DELAY_MS,
        },
        settled_record, InboundRecord, SettledRecord,
    },
    ledger::{self, PeerChain},
    testkit::{address_of, peer_pair, registration_of, TestChain, GENESIS_TIME_MS},
    tx::{BounceReason, GovAction, Hop, Outcome, SettleResult, TransferResult},
    Address, Body, ChainParams, Receipt, Transaction, TxError,
};
use distpos_proofs::{ChainId, Hash32, SecretKey, SignedHeader};

// ---------------------------------------------------------------------------------
// Kit (batch helpers shared with the other interchain tests are in common/interchain).
// ---------------------------------------------------------------------------------

const A: ChainId = ChainId(0xa1);
const B: ChainId = ChainId(0xb2);
/// The third chain of the forwarding test (A–B–C, A and C strangers).
const C: ChainId = ChainId(0xc3);
/// What B holds for A in the usual setup.
const COLLATERAL: u128 = 100_000;
/// Slot length of the test chains.
const INTERVAL: u64 = 100;

/// Chains A and B (one producer each, so governance executes at once and every block
/// is irreversible when produced), registered as each other's peers at genesis.
fn bare_pair() -> (TestChain, TestChain) {
    peer_pair(A.0, B.0, 1, USERS, TestChain::dev_params())
}

/// The usual pair: B holds [`COLLATERAL`] for A.
fn pair() -> (TestChain, TestChain) {
    let (a, mut b) = bare_pair();
    deposit(&mut b, A, COLLATERAL);
    assert_supplies(&a, &b);
    (a, b)
}

/// B's governance sets `policy` for A (executes at once).
fn set_policy(b: &mut TestChain, policy: &PeerPolicy) {
    govern(
        b,
        GovAction::SetPeerPolicy {
            chain: A,
            policy: policy.clone(),
        },
    );
}

/// B's governance cancels the delayed transfer `tx` from A.
fn cancel(tx: &Hash32) -> GovAction {
    GovAction::CancelDelayed { chain: A, tx: *tx }
}

/// B's policy book for A.
fn book_of(b: &TestChain) -> PolicyBook {
    policy::book(&b.state, A).unwrap()
}

fn transfer_body(to: QualifiedAddress, amount: u128, fast_fee: u128) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: Vec::new(),
        deliver_by: 0,
        fast_fee,
        via: None,
    }
}

/// A's sender sends each `(amount, fast_fee)` to `recipient` on B, all in A's next
/// block.
fn send_with_fees(a: &mut TestChain, recipient: Address, amounts: &[(u128, u128)]) -> Vec<Hash32> {
    let k = key(a, SENDER);
    let to = QualifiedAddress::new(B, recipient);
    let txs: Vec<Transaction> = amounts
        .iter()
        .map(|&(amount, fee)| a.tx(&k, FEE, transfer_body(to, amount, fee)))
        .collect();
    produce_ok(a, &txs);
    txs.iter().map(Transaction::hash).collect()
}

/// A's sender sends each of `amounts` to `recipient` on B, all in A's next block.
fn send_all(a: &mut TestChain, recipient: Address, amounts: &[u128]) -> Vec<Hash32> {
    let with: Vec<(u128, u128)> = amounts.iter().map(|&x| (x, 0)).collect();
    send_with_fees(a, recipient, &with)
}

/// The transaction `id` of `c`'s blocks.
fn tx_of(c: &TestChain, id: &Hash32) -> Transaction {
    let (h, i) = c.locate(id).expect("included");
    c.blocks[h as usize - 1].txs[i as usize].clone()
}

/// `c`'s next block will be at `time` at the earliest: if `c` is behind, it produces
/// an empty block in the slot just before.
fn skip_to(c: &mut TestChain, time: u64) {
    assert_eq!((time - GENESIS_TIME_MS) % INTERVAL, 0, "a slot's start");
    if next_time(c) >= time {
        return;
    }
    let slot = (time - GENESIS_TIME_MS) / INTERVAL;
    c.produce_in_slot(slot - 1, &[]).unwrap();
    assert_eq!(next_time(c), time);
}

/// Makes `dst`'s next block no earlier than `src`'s head, so that `src`'s headers are
/// not from the future there (the chains share genesis time and slot length).
fn sync_time(dst: &mut TestChain, src: &TestChain) {
    skip_to(dst, src.head_time().max(next_time(dst)));
}

/// B's producer delivers `ids` (one block of A) as one batch in its next block;
/// returns the batch, its receipt and the height.
fn deliver(b: &mut TestChain, a: &TestChain, ids: &[Hash32]) -> (Transaction, Receipt, u64) {
    sync_time(b, a);
    let txs: Vec<Transaction> = ids.iter().map(|id| tx_of(a, id)).collect();
    let out = deliver_batch(b, a, &txs);
    assert_eq!(out.1.fee, 0, "a batch pays no fee");
    out
}

/// A's producer settles the receipts of B's block `h`; what it settled.
fn settle_on(a: &mut TestChain, b: &TestChain, h: u64) -> Vec<SettleResult> {
    sync_time(a, b);
    match settle_back(a, b, h).outcome {
        Outcome::SettleBatch { settled } => settled,
        other => panic!("not a settlement: {other:?}"),
    }
}

/// The producer of `c` puts the system transaction `body` in its next block, which
/// must include it; returns the transaction and its receipt.
fn include(c: &mut TestChain, body: Body) -> (Transaction, Receipt) {
    let tx = system(c, body);
    let r = produce_ok(c, std::slice::from_ref(&tx))
        .applied
        .receipts
        .remove(0);
    (tx, r)
}

/// The results a receipt reports to A (an `InboundBatch` from it, or a `Release`).
fn results(r: &Receipt) -> Vec<TransferResult> {
    match &r.outcome {
        Outcome::InboundBatch { source, results } if *source == A => results.clone(),
        other => panic!("no results for A: {other:?}"),
    }
}

fn delivered(tx: &Hash32, amount: u128) -> TransferResult {
    TransferResult {
        source_tx: *tx,
        amount,
        bounced: None,
        fast: false,
        bounced_by: None,
    }
}

fn bounced(tx: &Hash32, amount: u128, reason: BounceReason, by: Option<ChainId>) -> TransferResult {
    TransferResult {
        source_tx: *tx,
        amount,
        bounced: Some(reason),
        fast: false,
        bounced_by: by,
    }
}

fn acked(tx: &Hash32) -> SettleResult {
    SettleResult {
        tx: *tx,
        delivered: true,
    }
}

fn refunded(tx: &Hash32) -> SettleResult {
    SettleResult {
        tx: *tx,
        delivered: false,
    }
}

/// The outcome of B's consumed record of `tx` from A.
fn consumed_outcome(b: &TestChain, tx: &Hash32) -> Outcome {
    inbound_record(&b.state, A, tx)
        .unwrap()
        .expect("consumed")
        .outcome
}

/// How A settled `tx`: (bounced, bounced_by).
fn settled_as(a: &TestChain, tx: &Hash32) -> (Option<BounceReason>, Option<ChainId>) {
    let r: SettledRecord = settled_record(&a.state, tx).unwrap().expect("settled");
    (r.bounced, r.bounced_by)
}

/// B's (delivered_in, bounced_in, volume_in) for A.
fn stats(b: &TestChain) -> (u64, u64, u128) {
    let p = peer(b, A).unwrap();
    (p.delivered_in, p.bounced_in, p.volume_in)
}

/// A's reputation on B at B's next block, from B's ledger.
fn reputation_on(b: &TestChain) -> u32 {
    let rec = peer(b, A).unwrap();
    reputation(&rec, head_time(&b.state, A, &rec), next_time(b))
}

/// B's producer proposes `action`, which the mempool and the block builder both
/// refuse with the same governance error, changing nothing but what an empty block
/// changes; returns the message.
fn gov_refused(c: &mut TestChain, action: GovAction) -> String {
    let p0 = c.producers[0].clone();
    let tx = c.tx(
        &p0,
        1,
        Body::Propose {
            action: Box::new(action),
        },
    );
    let mempool = validate(c, &tx).expect_err("the mempool refuses it");
    let mut twin = c.clone();
    twin.produce_empty(1).unwrap();
    let err = produce_rejected(c, &tx);
    assert_eq!(err, mempool, "block building agrees with the mempool");
    assert_eq!(c.state, twin.state, "a refused proposal changes nothing");
    match err {
        TxError::Governance(m) => m,
        other => panic!("expected a governance refusal, got {other:?}"),
    }
}

fn rate(capacity: u128, per_s: u128) -> PeerPolicy {
    PeerPolicy {
        rate_capacity: capacity,
        rate_per_s: per_s,
        ..PeerPolicy::default()
    }
}

fn delay(above: u128, ms: u64) -> PeerPolicy {
    PeerPolicy {
        delay_above: above,
        delay_ms: ms,
        ..PeerPolicy::default()
    }
}

fn min_reputation(min: u32, below: BelowReputation, delay_ms: u64) -> PeerPolicy {
    PeerPolicy {
        min_reputation: min,
        below_reputation: below,
        delay_ms,
        ..PeerPolicy::default()
    }
}

// ---------------------------------------------------------------------------------
// 1. max_transfer.
// ---------------------------------------------------------------------------------

#[test]
fn a_transfer_above_max_transfer_bounces_and_one_equal_to_it_is_delivered() {
    let (mut a, mut b) = pair();
    let policy = PeerPolicy {
        max_transfer: 1_000,
        ..PeerPolicy::default()
    };
    set_policy(&mut b, &policy);
    assert_eq!(
        book_of(&b),
        PolicyBook {
            policy: policy.clone(),
            ..PolicyBook::default()
        }
    );
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("max transfer");

    // The amount with its fast fee is what counts: 990 + 20 is above the limit.
    let ids = send_with_fees(
        &mut a,
        recipient,
        &[(1_001, 0), (1_000, 0), (999, 0), (990, 20), (980, 20)],
    );
    assert_eq!(
        balance(&a, &sender),
        before - 1_001 - 1_000 - 999 - 1_010 - 1_000 - 5 * FEE
    );
    let (_, r, h) = deliver(&mut b, &a, &ids);
    assert_eq!(
        results(&r),
        vec![
            bounced(&ids[0], 1_001, BounceReason::AboveMaxTransfer, None),
            delivered(&ids[1], 1_000),
            delivered(&ids[2], 999),
            bounced(&ids[3], 1_010, BounceReason::AboveMaxTransfer, None),
            delivered(&ids[4], 1_000),
        ]
    );
    assert_eq!(account(&b, &recipient).balance, 2_999);
    assert_eq!(corr(&b, A), (COLLATERAL - 2_999) as i128);
    assert_eq!(stats(&b), (3, 2, 2_999));
    assert_eq!(
        consumed_outcome(&b, &ids[0]),
        Outcome::Bounced {
            source: A,
            source_tx: ids[0],
            reason: BounceReason::AboveMaxTransfer,
        }
    );
    // Counted as refused; no bucket, nothing delayed.
    assert_eq!(
        book_of(&b),
        PolicyBook {
            policy,
            level: 0,
            level_at_ms: 0,
            delayed: 0,
            refused: 2,
        }
    );
    assert_supplies(&a, &b);

    // A refunds the bounced ones once, naming B.
    let settled = settle_on(&mut a, &b, h);
    assert_eq!(
        settled,
        vec![
            refunded(&ids[0]),
            acked(&ids[1]),
            acked(&ids[2]),
            refunded(&ids[3]),
            acked(&ids[4]),
        ]
    );
    assert_eq!(balance(&a, &sender), before - 2_999 - 5 * FEE);
    assert_eq!(corr(&a, B), 2_999);
    assert_eq!(
        settled_as(&a, &ids[0]),
        (Some(BounceReason::AboveMaxTransfer), Some(B))
    );
    assert_eq!(settled_as(&a, &ids[1]), (None, None));
    assert_supplies(&a, &b);
    let again = settle_batch(&b, h, &[0], false);
    assert_eq!(refused_system(&mut a, again), TxError::NotInFlight(ids[0]));
    assert_eq!(
        balance(&a, &sender),
        before - 2_999 - 5 * FEE,
        "refunded once"
    );
    assert_supplies(&a, &b);
}

#[test]
fn the_usual_refusals_come_first_and_leave_the_policy_untouched() {
    let (mut a, mut b) = bare_pair();
    deposit(&mut b, A, 1_000);
    let policy = PeerPolicy {
        max_transfer: 2_000,
        ..rate(1_000, 100)
    };
    set_policy(&mut b, &policy);
    let recipient = fresh("usual refusals first");

    // Short collateral bounces them (even the one also above max_transfer) before the
    // policy sees them: the bucket is still full for the last one, nothing counted.
    let ids = send_all(&mut a, recipient, &[1_500, 3_000, 1_000]);
    let (_, r, h) = deliver(&mut b, &a, &ids);
    assert_eq!(
        results(&r),
        vec![
            bounced(&ids[0], 1_500, BounceReason::InsufficientCollateral, None),
            bounced(&ids[1], 3_000, BounceReason::InsufficientCollateral, None),
            delivered(&ids[2], 1_000),
        ]
    );
    assert_eq!(
        book_of(&b),
        PolicyBook {
            policy,
            level: 0,
            level_at_ms: b.head_time(),
            delayed: 0,
            refused: 0,
        }
    );
    assert_eq!(corr(&b, A), 0);
    assert_eq!(account(&b, &recipient).balance, 1_000);
    assert_supplies(&a, &b);
    assert_eq!(
        settle_on(&mut a, &b, h),
        vec![refunded(&ids[0]), refunded(&ids[1]), acked(&ids[2])]
    );
    assert_eq!(
        settled_as(&a, &ids[1]),
        (Some(BounceReason::InsufficientCollateral), Some(B))
    );
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 2. The rate limit.
// ---------------------------------------------------------------------------------

#[test]
fn the_rate_limit_delays_what_the_bucket_cannot_pay_until_a_release_when_due() {
    let (mut a, mut b) = pair();
    let policy = rate(1_000, 100);
    set_policy(&mut b, &policy);
    let sender = key(&a, SENDER);
    let origin = QualifiedAddress::new(A, address_of(&sender));
    let before = balance(&a, &sender);
    let recipient = fresh("rate limit");
    let to = QualifiedAddress::new(B, recipient);

    let ids = send_all(&mut a, recipient, &[800, 800, 800]);
    let (batch, r, h_in) = deliver(&mut b, &a, &ids);
    let t = b.head_time();

    // The first is paid by the full bucket (1000 → 200); the second owes 600 (6 s at
    // 100/s), the third queues behind it (1400 owed: 14 s). Only the first is in the
    // receipt; all three are paid for by A's account.
    assert_eq!(
        (results(&r), r.amount),
        (vec![delivered(&ids[0], 800)], 2_400)
    );
    assert_eq!(account(&b, &recipient).balance, 800);
    assert_eq!(corr(&b, A), (COLLATERAL - 2_400) as i128);
    assert_eq!(stats(&b), (1, 0, 800));
    assert_eq!(
        book_of(&b),
        PolicyBook {
            policy: policy.clone(),
            level: -1_400,
            level_at_ms: t,
            delayed: 2,
            refused: 0,
        }
    );
    for (id, until) in [(ids[1], t + 6_000), (ids[2], t + 14_000)] {
        assert_eq!(
            held_of(&b, A, &id),
            Some(Held {
                to,
                origin,
                amount: 800,
                deliver_by: 0,
                path: vec![A],
                height: h_in,
                state: HeldState::Delayed { until },
            })
        );
        assert_eq!(
            inbound_record(&b.state, A, &id).unwrap(),
            Some(InboundRecord {
                tx: batch.hash(),
                sender: origin,
                recipient,
                amount: 800,
                height: h_in,
                outcome: Outcome::Held {
                    source: A,
                    source_tx: id,
                },
            })
        );
    }
    assert_supplies(&a, &b);

    // A settles the first; the delayed ones stay in flight.
    assert_eq!(settle_on(&mut a, &b, h_in), vec![acked(&ids[0])]);
    assert_eq!(corr(&a, B), 800);
    for id in &ids[1..] {
        assert!(ledger::in_flight(&a.state, id).unwrap().is_some());
    }
    assert_supplies(&a, &b);

    // Not before it is due: not at once, not 100 ms before.
    assert_invalid(
        refused_system(&mut b, release(A, &[ids[1]])),
        "nor waited out its delay",
    );
    skip_to(&mut b, t + 5_900);
    assert_invalid(
        refused_system(&mut b, release(A, &[ids[1]])),
        "nor waited out its delay",
    );
    assert_eq!(next_time(&b), t + 6_000);
    // Due now, but a release naming the third too is refused as a whole.
    assert_invalid(
        block_refuses(&b, release(A, &[ids[1], ids[2]])),
        "nor waited out its delay",
    );
    assert_invalid(
        refused_system(&mut b, release(A, &[ids[1], ids[2]])),
        "nor waited out its delay",
    );
    assert_eq!(account(&b, &recipient).balance, 800);
    assert_supplies(&a, &b);

    // The release delivers it: the recipient is credited, A's account was debited at
    // admission already, the receipt reports it delivered.
    let (_, r) = include(&mut b, release(A, &[ids[1]]));
    let h_rel = b.height();
    assert_eq!(
        (results(&r), r.amount),
        (vec![delivered(&ids[1], 800)], 800)
    );
    assert_eq!(account(&b, &recipient).balance, 1_600);
    assert_eq!(corr(&b, A), (COLLATERAL - 2_400) as i128);
    assert_eq!(stats(&b), (2, 0, 1_600));
    assert_eq!(held_of(&b, A, &ids[1]), None);
    assert_eq!(
        consumed_outcome(&b, &ids[1]),
        Outcome::Delivered {
            source: A,
            source_tx: ids[1],
        }
    );
    assert_eq!(book_of(&b).delayed, 2, "a release is no new delay");
    assert_supplies(&a, &b);

    // Once.
    assert_invalid(block_refuses(&b, release(A, &[ids[1]])), "is held");
    assert_invalid(refused_system(&mut b, release(A, &[ids[1]])), "is held");
    assert_eq!(account(&b, &recipient).balance, 1_600);

    // A settles it delivered, once.
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![acked(&ids[1])]);
    assert_eq!(corr(&a, B), 1_600);
    assert_eq!(settled_as(&a, &ids[1]), (None, None));
    let again = settle_batch(&b, h_rel, &[0], false);
    assert_eq!(refused_system(&mut a, again), TxError::NotInFlight(ids[1]));
    assert_eq!(corr(&a, B), 1_600);
    assert_supplies(&a, &b);

    // The third at t + 14 s.
    skip_to(&mut b, t + 13_900);
    assert_invalid(
        refused_system(&mut b, release(A, &[ids[2]])),
        "nor waited out its delay",
    );
    let (_, r) = include(&mut b, release(A, &[ids[2]]));
    assert_eq!(b.head_time(), t + 14_000);
    let h_rel = b.height();
    assert_eq!(results(&r), vec![delivered(&ids[2], 800)]);
    assert_eq!(account(&b, &recipient).balance, 2_400);
    assert_eq!(stats(&b), (3, 0, 2_400));
    assert_supplies(&a, &b);
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![acked(&ids[2])]);
    assert_eq!(balance(&a, &sender), before - 2_400 - 3 * FEE);
    assert_eq!(corr(&a, B), 2_400);
    for id in &ids {
        assert_eq!(ledger::in_flight(&a.state, id).unwrap(), None);
        assert_eq!(held_of(&b, A, id), None);
        assert_eq!(settled_as(&a, id), (None, None));
    }
    assert_supplies(&a, &b);
}

#[test]
fn the_bucket_refills_with_block_time_up_to_its_capacity_and_later_transfers_queue() {
    let (mut a, mut b) = pair();
    let policy = rate(1_000, 100);
    set_policy(&mut b, &policy);
    let recipient = fresh("bucket");

    // The full bucket pays 1000 at once.
    let first = send_all(&mut a, recipient, &[1_000]);
    let (_, r, _) = deliver(&mut b, &a, &first);
    let t0 = b.head_time();
    assert_eq!(results(&r), vec![delivered(&first[0], 1_000)]);
    assert_eq!((book_of(&b).level, book_of(&b).level_at_ms), (0, t0));

    // 5 s later it holds 500: 400 and 100 pass, 1 more owes 1 (10 ms at 100/s).
    skip_to(&mut b, t0 + 5_000);
    let ids = send_all(&mut a, recipient, &[400, 100, 1]);
    let (_, r, _) = deliver(&mut b, &a, &ids);
    let t1 = b.head_time();
    assert_eq!(t1, t0 + 5_000);
    assert_eq!(
        results(&r),
        vec![delivered(&ids[0], 400), delivered(&ids[1], 100)]
    );
    assert_eq!(
        held_state(&b, A, &ids[2]),
        HeldState::Delayed { until: t1 + 10 }
    );
    let bk = book_of(&b);
    assert_eq!((bk.level, bk.level_at_ms, bk.delayed), (-1, t1, 1));
    assert_eq!(account(&b, &recipient).balance, 1_500);
    assert_supplies(&a, &b);

    // A transfer a second later queues behind that debt: -1 + 100 - 200 = -101.
    skip_to(&mut b, t1 + 1_000);
    let late = send_all(&mut a, recipient, &[200]);
    let (_, r, _) = deliver(&mut b, &a, &late);
    let t2 = b.head_time();
    assert_eq!(t2, t1 + 1_000);
    assert_eq!(results(&r), vec![]);
    assert_eq!(
        held_state(&b, A, &late[0]),
        HeldState::Delayed { until: t2 + 1_010 }
    );
    let bk = book_of(&b);
    assert_eq!((bk.level, bk.level_at_ms, bk.delayed), (-101, t2, 2));

    // The first delayed one is due already; the second 1010 ms after t2.
    include(&mut b, release(A, &[ids[2]]));
    assert_eq!(account(&b, &recipient).balance, 1_501);
    skip_to(&mut b, t2 + 1_000);
    assert_invalid(
        refused_system(&mut b, release(A, &[late[0]])),
        "nor waited out its delay",
    );
    // t2 + 1100 ≥ t2 + 1010.
    let (_, r) = include(&mut b, release(A, &[late[0]]));
    assert_eq!(results(&r), vec![delivered(&late[0], 200)]);
    assert_eq!(account(&b, &recipient).balance, 1_701);
    assert_supplies(&a, &b);

    // An hour later the bucket is full, not more: 1000 passes, 1 more waits 10 ms.
    let t3 = t2 + 3_600_000;
    skip_to(&mut b, t3);
    let full = send_all(&mut a, recipient, &[1_000, 1]);
    let (_, r, _) = deliver(&mut b, &a, &full);
    assert_eq!(b.head_time(), t3);
    assert_eq!(results(&r), vec![delivered(&full[0], 1_000)]);
    assert_eq!(
        held_state(&b, A, &full[1]),
        HeldState::Delayed { until: t3 + 10 }
    );
    let bk = book_of(&b);
    assert_eq!((bk.level, bk.level_at_ms, bk.delayed), (-1, t3, 3));
    include(&mut b, release(A, &[full[1]]));
    assert_eq!(account(&b, &recipient).balance, 2_702);
    assert_supplies(&a, &b);

    // Setting the policy again fills the bucket (the debt is forgiven) and keeps the
    // counters. The wait is rounded up: 1 owed at 300/s is 4 ms, not 3.
    let faster = rate(300, 300);
    set_policy(&mut b, &faster);
    assert_eq!(
        book_of(&b),
        PolicyBook {
            policy: faster,
            level: 0,
            level_at_ms: 0,
            delayed: 3,
            refused: 0,
        }
    );
    let more = send_all(&mut a, recipient, &[301]);
    let (_, r, _) = deliver(&mut b, &a, &more);
    let t4 = b.head_time();
    assert_eq!(results(&r), vec![]);
    assert_eq!(
        held_state(&b, A, &more[0]),
        HeldState::Delayed { until: t4 + 4 }
    );
    assert_eq!(book_of(&b).level, -1);
    include(&mut b, release(A, &[more[0]]));
    assert_eq!(account(&b, &recipient).balance, 3_003);
    assert_eq!(corr(&b, A), (COLLATERAL - 3_003) as i128);
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 3. A delay above a threshold, cancelled by governance.
// ---------------------------------------------------------------------------------

#[test]
fn a_delayed_transfer_cancelled_by_governance_bounces_and_a_refunds_it_once() {
    let (mut a, mut b) = pair();
    let policy = delay(1_000, 30_000);
    set_policy(&mut b, &policy);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("delay and cancel");

    let ids = send_all(&mut a, recipient, &[1_000, 1_001, 5_000]);
    let (_, r, h_in) = deliver(&mut b, &a, &ids);
    let t = b.head_time();
    assert_eq!(
        (results(&r), r.amount),
        (vec![delivered(&ids[0], 1_000)], 7_001)
    );
    for id in &ids[1..] {
        assert_eq!(
            held_state(&b, A, id),
            HeldState::Delayed { until: t + 30_000 }
        );
    }
    assert_eq!(
        book_of(&b),
        PolicyBook {
            policy,
            level: 0,
            level_at_ms: 0,
            delayed: 2,
            refused: 0,
        }
    );
    assert_eq!(corr(&b, A), (COLLATERAL - 7_001) as i128);
    assert_eq!(account(&b, &recipient).balance, 1_000);
    assert_supplies(&a, &b);
    assert_eq!(settle_on(&mut a, &b, h_in), vec![acked(&ids[0])]);

    // Only a delayed transfer can be cancelled: not an unknown one, not one
    // delivered at once.
    let m = gov_refused(&mut b, cancel(&Hash32([7; 32])));
    assert!(m.contains("is delayed"), "{m}");
    let m = gov_refused(&mut b, cancel(&ids[0]));
    assert!(m.contains("is delayed"), "{m}");
    // Nor one from another chain id.
    let m = gov_refused(
        &mut b,
        GovAction::CancelDelayed {
            chain: C,
            tx: ids[1],
        },
    );
    assert!(m.contains("is delayed"), "{m}");

    // Governance cancels the second: it is settled as bounced (cancelled) by B, still
    // held (the supply counts it) until a release reports it.
    govern(&mut b, cancel(&ids[1]));
    assert_eq!(
        held_state(&b, A, &ids[1]),
        HeldState::Settled {
            bounced: Some((BounceReason::Cancelled, B)),
            fee: 0,
        }
    );
    assert_eq!(corr(&b, A), (COLLATERAL - 7_001) as i128);
    assert_supplies(&a, &b);
    let m = gov_refused(&mut b, cancel(&ids[1]));
    assert!(m.contains("is delayed"), "cancelled once: {m}");

    // The release may report it at once; it gives A's account the amount back.
    let (_, r) = include(&mut b, release(A, &[ids[1]]));
    let h_rel = b.height();
    assert!(b.head_time() < t + 30_000);
    assert_eq!(
        (results(&r), r.amount),
        (
            vec![bounced(&ids[1], 1_001, BounceReason::Cancelled, Some(B))],
            1_001
        )
    );
    assert_eq!(corr(&b, A), (COLLATERAL - 6_000) as i128);
    assert_eq!(account(&b, &recipient).balance, 1_000, "nobody credited");
    assert_eq!(stats(&b), (1, 1, 1_000));
    assert_eq!(held_of(&b, A, &ids[1]), None);
    assert_eq!(
        consumed_outcome(&b, &ids[1]),
        Outcome::Bounced {
            source: A,
            source_tx: ids[1],
            reason: BounceReason::Cancelled,
        }
    );
    assert_supplies(&a, &b);
    assert_invalid(refused_system(&mut b, release(A, &[ids[1]])), "is held");
    assert_eq!(corr(&b, A), (COLLATERAL - 6_000) as i128, "given back once");
    let m = gov_refused(&mut b, cancel(&ids[1]));
    assert!(m.contains("is delayed"), "released: {m}");

    // A refunds it once; its record names B.
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![refunded(&ids[1])]);
    assert_eq!(balance(&a, &sender), before - 1_000 - 5_000 - 3 * FEE);
    assert_eq!(
        settled_record(&a.state, &ids[1]).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: Some(BounceReason::Cancelled),
            bounced_by: Some(B),
            height: a.height(),
            amount: 1_001,
        })
    );
    assert_eq!(peer(&a, B).unwrap().refunded_out, 1);
    let again = settle_batch(&b, h_rel, &[0], false);
    assert_eq!(refused_system(&mut a, again), TxError::NotInFlight(ids[1]));
    assert_eq!(
        balance(&a, &sender),
        before - 1_000 - 5_000 - 3 * FEE,
        "refunded once"
    );
    assert_supplies(&a, &b);

    // The third is not cancelled: delivered when due.
    skip_to(&mut b, t + 29_900);
    assert_invalid(
        refused_system(&mut b, release(A, &[ids[2]])),
        "nor waited out its delay",
    );
    let (_, r) = include(&mut b, release(A, &[ids[2]]));
    let h_rel = b.height();
    assert_eq!(results(&r), vec![delivered(&ids[2], 5_000)]);
    assert_eq!(account(&b, &recipient).balance, 6_000);
    assert_eq!(stats(&b), (2, 1, 6_000));
    let m = gov_refused(&mut b, cancel(&ids[2]));
    assert!(m.contains("is delayed"), "released: {m}");
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![acked(&ids[2])]);
    assert_eq!(corr(&a, B), 6_000);
    assert_eq!(corr(&b, A), (COLLATERAL - 6_000) as i128);
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 4. Reputation.
// ---------------------------------------------------------------------------------

/// A record with these counts and this account (the rest as registered): `bounced`
/// for insufficient collateral, a reason of the peer's own.
fn record(base: &PeerChain, delivered_in: u64, bounced: u64, corr: i128) -> PeerChain {
    let mut r = PeerChain {
        delivered_in,
        corr,
        ..base.clone()
    };
    for _ in 0..bounced {
        r.count_bounce(BounceReason::InsufficientCollateral);
    }
    r
}

#[test]
fn a_transfer_whose_deadline_passes_while_delayed_goes_back_expired_at_no_cost_to_a() {
    let (mut a, mut b) = pair();
    set_policy(&mut b, &delay(1_000, 30_000));
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("delayed past its deadline");

    // A deadline 10 s after A's block: B admits it in time, then delays it 30 s.
    let deliver_by = next_time(&a) + 10_000;
    let body = Body::Transfer {
        to: QualifiedAddress::new(B, recipient),
        amount: 5_000,
        memo: Vec::new(),
        deliver_by,
        fast_fee: 0,
        via: None,
    };
    let tx = a.tx(&sender, FEE, body);
    produce_ok(&mut a, std::slice::from_ref(&tx));
    let id = tx.hash();
    let (_, r, _) = deliver(&mut b, &a, &[id]);
    let t = b.head_time();
    assert!(t <= deliver_by, "admitted before its deadline");
    assert_eq!(results(&r), vec![]);
    assert_eq!(
        held_state(&b, A, &id),
        HeldState::Delayed { until: t + 30_000 }
    );
    let held = held_of(&b, A, &id).unwrap();
    assert_eq!(held.releasable(B, t + 29_999), None, "still waiting");
    assert_eq!(
        held.releasable(B, t + 30_000),
        Some(Some((BounceReason::Expired, B)))
    );

    // Once due, the release sends it back (expired, by B), not to the recipient.
    skip_to(&mut b, t + 30_000);
    let (_, r) = include(&mut b, release(A, &[id]));
    let h_rel = b.height();
    assert_eq!(
        results(&r),
        vec![bounced(&id, 5_000, BounceReason::Expired, Some(B))]
    );
    assert_eq!(account(&b, &recipient).balance, 0);
    assert_eq!(corr(&b, A), COLLATERAL as i128);
    assert_eq!(held_of(&b, A, &id), None);
    // Our delay, not A's doing: counted as a bounce, not against A's reputation.
    let p = peer(&b, A).unwrap();
    assert_eq!((p.bounced_in, p.charged_bounces()), (1, 0));
    assert_eq!(reputation_on(&b), 100);
    assert_supplies(&a, &b);

    // A refunds its sender once, naming B.
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![refunded(&id)]);
    assert_eq!(settled_as(&a, &id), (Some(BounceReason::Expired), Some(B)));
    assert_eq!(balance(&a, &sender), before - FEE);
    assert_supplies(&a, &b);
}

#[test]
fn reputation_loses_points_for_each_fact_against_the_peer() {
    let (_, b) = bare_pair();
    let base = peer(&b, A).unwrap();
    let now = 10_000_000_000;
    let fresh_head = Some(now - 1_000);
    let r = |d, x, c, head| reputation(&record(&base, d, x, c), head, now);

    assert_eq!(r(0, 0, 1, None), 100, "no facts against it");
    assert_eq!(r(7, 0, 1, fresh_head), 100);
    // Bounces for reasons of its own: 40 × share, rounded down (the penalty).
    assert_eq!(r(3, 1, 1, None), 90, "1 of 4: 10");
    assert_eq!(r(2, 1, 1, None), 87, "1 of 3: 13.3 → 13");
    assert_eq!(r(1, 1, 1, None), 80);
    assert_eq!(r(0, 5, 1, None), 60, "all bounced");
    // Our own choices are not facts about the peer: they count as bounces, not
    // against its reputation (a refusal never lowers the score that caused it).
    let mut ours = record(&base, 1, 0, 1);
    for reason in [
        BounceReason::PeerSuspended,
        BounceReason::AboveMaxTransfer,
        BounceReason::LowReputation,
        BounceReason::Cancelled,
    ] {
        assert!(!reason.charged_to_source(), "{reason}");
        ours.count_bounce(reason);
    }
    assert_eq!((ours.bounced_in, ours.charged_bounces()), (4, 0));
    assert_eq!(reputation(&ours, None, now), 100);
    for reason in [
        BounceReason::Expired,
        BounceReason::InsufficientCollateral,
        BounceReason::BadRecipient,
        BounceReason::NoForwarding,
        BounceReason::NoRoute,
        BounceReason::Loop,
        BounceReason::HopLimit,
        BounceReason::BelowTransitFee,
        BounceReason::Malformed,
    ] {
        assert!(reason.charged_to_source(), "{reason}");
    }
    // Proofs refused (`malformed` bounces): 10 each, at most 30, on top of their
    // share.
    let mut refused = record(&base, 9, 0, 1);
    refused.count_bounce(BounceReason::Malformed);
    assert_eq!(refused.refused_proofs(), 1);
    assert_eq!(
        reputation(&refused, None, now),
        100 - 4 - 10,
        "1 of 10 bounced"
    );
    for _ in 0..9 {
        refused.count_bounce(BounceReason::Malformed);
    }
    assert_eq!(
        reputation(&refused, None, now),
        100 - 21 - 30,
        "10 of 19 bounced (21), 10 refused (capped at 30)"
    );
    // Evidence of equivocation among its producers: 40, however much.
    let mut equivocated = record(&base, 0, 0, 1);
    equivocated.equivocations = 1;
    assert_eq!(reputation(&equivocated, None, now), 60);
    equivocated.equivocations = 7;
    assert_eq!(reputation(&equivocated, None, now), 60);
    // The account at or below zero.
    assert_eq!(r(0, 0, 0, None), 80);
    assert_eq!(r(0, 0, -1, None), 80);
    // The light client's head: tolerated up to 10 minutes, not more; a head ahead of
    // now is no lag; no head known is no lag.
    assert_eq!(r(0, 0, 1, Some(now - LAG_TOLERATED_MS)), 100);
    assert_eq!(r(0, 0, 1, Some(now - LAG_TOLERATED_MS - 1)), 70);
    assert_eq!(r(0, 0, 1, Some(now + 5_000)), 100);
    // A peer with slow blocks is tolerated 128 of its intervals when that is longer.
    let mut slow = record(&base, 0, 0, 1);
    slow.registration.block_interval_ms = 10_000;
    assert_eq!(reputation(&slow, Some(now - 1_280_000), now), 100);
    assert_eq!(reputation(&slow, Some(now - 1_280_001), now), 70);
    assert_eq!(base.registration.block_interval_ms * 128, 12_800);
    // Together, down to 0.
    assert_eq!(r(1, 1, 0, Some(0)), 30);
    assert_eq!(r(0, 3, -10, Some(0)), 10);
    equivocated.corr = 0;
    assert_eq!(reputation(&equivocated, Some(0), now), 10);
    refused.corr = 0;
    assert_eq!(reputation(&refused, Some(0), now), 0, "49 − 20 − 30");
}

#[test]
fn below_the_reputation_threshold_transfers_are_refused_or_delayed() {
    let (mut a, mut b) = bare_pair();
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("reputation");

    // No collateral yet: the first bounces (insufficient collateral); with it, the
    // second is delivered. One of two bounced: 100 − 20.
    let t1 = send_all(&mut a, recipient, &[100]);
    let (_, r, h1) = deliver(&mut b, &a, &t1);
    assert_eq!(
        results(&r),
        vec![bounced(
            &t1[0],
            100,
            BounceReason::InsufficientCollateral,
            None
        )]
    );
    deposit(&mut b, A, COLLATERAL);
    let t2 = send_all(&mut a, recipient, &[100]);
    let (_, r, h2) = deliver(&mut b, &a, &t2);
    assert_eq!(results(&r), vec![delivered(&t2[0], 100)]);
    assert_eq!(stats(&b), (1, 1, 100));
    let rec = peer(&b, A).unwrap();
    assert_eq!(
        head_time(&b.state, A, &rec),
        Some(a.head_time()),
        "the light client follows A's head"
    );
    assert_eq!(reputation_on(&b), 80);

    // A threshold of 80 admits a reputation of 80.
    set_policy(&mut b, &min_reputation(80, BelowReputation::Refuse, 0));
    let t3 = send_all(&mut a, recipient, &[100]);
    let (_, r, h3) = deliver(&mut b, &a, &t3);
    assert_eq!(results(&r), vec![delivered(&t3[0], 100)]);
    // 1 of 3 bounced: 100 − 13.
    assert_eq!(reputation_on(&b), 87);
    assert_eq!(book_of(&b).refused, 0);

    // 88 refuses 87: both bounce, and the refusals do not lower it further.
    set_policy(&mut b, &min_reputation(88, BelowReputation::Refuse, 0));
    let t45 = send_all(&mut a, recipient, &[100, 200]);
    let (_, r, h45) = deliver(&mut b, &a, &t45);
    assert_eq!(
        results(&r),
        vec![
            bounced(&t45[0], 100, BounceReason::LowReputation, None),
            bounced(&t45[1], 200, BounceReason::LowReputation, None),
        ]
    );
    assert_eq!(
        consumed_outcome(&b, &t45[1]),
        Outcome::Bounced {
            source: A,
            source_tx: t45[1],
            reason: BounceReason::LowReputation,
        }
    );
    let bk = book_of(&b);
    assert_eq!((bk.refused, bk.delayed), (2, 0));
    assert_eq!(stats(&b), (2, 3, 200));
    assert_eq!(corr(&b, A), (COLLATERAL - 200) as i128);
    assert_eq!(account(&b, &recipient).balance, 200);
    // Still 1 of 3 bounced for reasons of A's own.
    assert_eq!(reputation_on(&b), 87);
    assert_eq!(
        peer(&b, A)
            .unwrap()
            .bounces
            .get(&BounceReason::LowReputation),
        Some(&2)
    );
    assert_supplies(&a, &b);

    // With `Delay`, they wait at least a minute instead (delay_ms 0 or less than a
    // minute), or delay_ms when longer.
    set_policy(&mut b, &min_reputation(88, BelowReputation::Delay, 0));
    let t6 = send_all(&mut a, recipient, &[300]);
    let (_, r, _) = deliver(&mut b, &a, &t6);
    let t = b.head_time();
    assert_eq!(results(&r), vec![]);
    assert_eq!(
        held_state(&b, A, &t6[0]),
        HeldState::Delayed { until: t + 60_000 }
    );
    set_policy(&mut b, &min_reputation(88, BelowReputation::Delay, 90_000));
    let t7 = send_all(&mut a, recipient, &[400]);
    let (_, r, _) = deliver(&mut b, &a, &t7);
    let t_7 = b.head_time();
    assert_eq!(results(&r), vec![]);
    assert_eq!(
        held_state(&b, A, &t7[0]),
        HeldState::Delayed {
            until: t_7 + 90_000
        }
    );
    let bk = book_of(&b);
    assert_eq!((bk.refused, bk.delayed), (2, 2));
    assert_eq!(stats(&b), (2, 3, 200), "a delay is neither");
    assert_eq!(corr(&b, A), (COLLATERAL - 900) as i128);
    assert_eq!(account(&b, &recipient).balance, 200);
    assert_supplies(&a, &b);

    // A settles what was reported: the bounces are refunded, naming B.
    assert_eq!(settle_on(&mut a, &b, h1), vec![refunded(&t1[0])]);
    assert_eq!(settle_on(&mut a, &b, h2), vec![acked(&t2[0])]);
    assert_eq!(settle_on(&mut a, &b, h3), vec![acked(&t3[0])]);
    assert_eq!(
        settle_on(&mut a, &b, h45),
        vec![refunded(&t45[0]), refunded(&t45[1])]
    );
    assert_eq!(
        settled_as(&a, &t45[0]),
        (Some(BounceReason::LowReputation), Some(B))
    );
    assert_eq!(balance(&a, &sender), before - 200 - 700 - 7 * FEE);
    assert_supplies(&a, &b);

    // Released when due, delivered.
    skip_to(&mut b, t + 59_900);
    assert_invalid(
        refused_system(&mut b, release(A, &[t6[0]])),
        "nor waited out its delay",
    );
    let (_, r) = include(&mut b, release(A, &[t6[0]]));
    let h_rel = b.height();
    assert_eq!(results(&r), vec![delivered(&t6[0], 300)]);
    assert_eq!(account(&b, &recipient).balance, 500);
    assert_eq!(stats(&b), (3, 3, 500));
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![acked(&t6[0])]);
    assert_eq!(corr(&a, B), 500);
    assert_supplies(&a, &b);
}

#[test]
fn an_account_at_or_below_zero_costs_20() {
    let (mut a, mut b) = bare_pair();
    // No collateral, but credit: transfers are covered, the account is at 0.
    let owner = peer(&b, A).unwrap().registration.owner;
    govern(
        &mut b,
        GovAction::UpdatePeer {
            chain: A,
            owner,
            credit_limit: 10_000,
            low_watermark: 100,
        },
    );
    assert_eq!(corr(&b, A), 0);
    assert_eq!(reputation_on(&b), 80);
    let recipient = fresh("credit");

    set_policy(&mut b, &min_reputation(80, BelowReputation::Refuse, 0));
    let ok = send_all(&mut a, recipient, &[1_000]);
    let (_, r, _) = deliver(&mut b, &a, &ok);
    assert_eq!(results(&r), vec![delivered(&ok[0], 1_000)]);
    assert_eq!(corr(&b, A), -1_000);
    assert_eq!(reputation_on(&b), 80);

    set_policy(&mut b, &min_reputation(81, BelowReputation::Refuse, 0));
    let no = send_all(&mut a, recipient, &[1_000]);
    let (_, r, _) = deliver(&mut b, &a, &no);
    assert_eq!(
        results(&r),
        vec![bounced(&no[0], 1_000, BounceReason::LowReputation, None)]
    );
    assert_eq!(corr(&b, A), -1_000);
    assert_eq!(account(&b, &recipient).balance, 1_000);
    assert_eq!(book_of(&b).refused, 1);
    assert_supplies(&a, &b);
}

#[test]
fn a_light_client_more_than_ten_minutes_behind_costs_30() {
    let (mut a, mut b) = pair();
    set_policy(&mut b, &min_reputation(71, BelowReputation::Refuse, 0));
    let recipient = fresh("lag");

    // B delivers A's block exactly ten minutes after it: tolerated.
    let ok = send_all(&mut a, recipient, &[100]);
    let t_ok = a.head_time();
    skip_to(&mut b, t_ok + LAG_TOLERATED_MS);
    let (_, r, h_ok) = deliver(&mut b, &a, &ok);
    assert_eq!(b.head_time(), t_ok + LAG_TOLERATED_MS);
    assert_eq!(results(&r), vec![delivered(&ok[0], 100)]);

    // A's next block, 100 ms later, is delivered 100 ms too late: 100 − 30 < 71.
    let late = send_all(&mut a, recipient, &[100]);
    let t_late = a.head_time();
    assert_eq!(t_late, t_ok + INTERVAL);
    skip_to(&mut b, t_late + LAG_TOLERATED_MS + INTERVAL);
    let (_, r, h_late) = deliver(&mut b, &a, &late);
    assert_eq!(
        results(&r),
        vec![bounced(&late[0], 100, BounceReason::LowReputation, None)]
    );
    let rec = peer(&b, A).unwrap();
    assert_eq!(head_time(&b.state, A, &rec), Some(t_late));
    assert_eq!(book_of(&b).refused, 1);
    assert_eq!(account(&b, &recipient).balance, 100);
    assert_supplies(&a, &b);

    assert_eq!(settle_on(&mut a, &b, h_ok), vec![acked(&ok[0])]);
    assert_eq!(settle_on(&mut a, &b, h_late), vec![refunded(&late[0])]);
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 5. RemovePeer waits for held transfers.
// ---------------------------------------------------------------------------------

#[test]
fn a_peer_with_a_delayed_transfer_held_cannot_be_removed_until_it_is_released() {
    let (mut a, mut b) = bare_pair();
    // Exactly the collateral the transfer takes: the account is at 0 once it is
    // admitted, so only the hold keeps A registered.
    deposit(&mut b, A, 2_000);
    set_policy(&mut b, &delay(1_000, 1_000));
    let recipient = fresh("remove");
    let ids = send_all(&mut a, recipient, &[2_000]);
    let (_, r, _) = deliver(&mut b, &a, &ids);
    let t = b.head_time();
    assert_eq!(results(&r), vec![]);
    assert_eq!(corr(&b, A), 0);

    let remove = GovAction::RemovePeer { chain: A };
    let m = gov_refused(&mut b, remove.clone());
    assert!(m.contains("held"), "{m}");
    assert!(peer(&b, A).is_some());

    skip_to(&mut b, t + 1_000);
    let (_, r) = include(&mut b, release(A, &[ids[0]]));
    let h_rel = b.height();
    assert_eq!(results(&r), vec![delivered(&ids[0], 2_000)]);
    assert_eq!(account(&b, &recipient).balance, 2_000);
    assert_supplies(&a, &b);

    govern(&mut b, remove);
    assert!(peer(&b, A).is_none());
    assert_eq!(
        book_of(&b),
        PolicyBook::default(),
        "its policy goes with it"
    );
    assert_supply(&b);

    // A settles the release it had proven before.
    assert_eq!(settle_on(&mut a, &b, h_rel), vec![acked(&ids[0])]);
    assert_eq!(corr(&a, B), 2_000);
    assert_supplies(&a, &b);
}

// ---------------------------------------------------------------------------------
// 6. Validation.
// ---------------------------------------------------------------------------------

#[test]
fn governance_refuses_a_policy_out_of_range_or_for_an_unknown_peer() {
    let (_, mut b) = pair();
    let refuse = |b: &mut TestChain, policy: PeerPolicy, what: &str| {
        let m = gov_refused(b, GovAction::SetPeerPolicy { chain: A, policy });
        assert!(m.contains(what), "{m:?} does not say {what:?}");
    };
    refuse(&mut b, rate(1_000, 0), "rate_per_s");
    refuse(&mut b, delay(1_000, 0), "delay_ms above 0");
    refuse(&mut b, delay(1_000, MAX_DELAY_MS + 1), "above a day");
    refuse(
        &mut b,
        PeerPolicy {
            delay_ms: MAX_DELAY_MS + 1,
            ..PeerPolicy::default()
        },
        "above a day",
    );
    refuse(
        &mut b,
        min_reputation(101, BelowReputation::Refuse, 0),
        "out of 100",
    );
    refuse(&mut b, rate(u128::MAX, 1), "rate_capacity is too large");
    assert_eq!(book_of(&b), PolicyBook::default(), "nothing set");
    let p0 = b.producers[0].clone();
    let unknown = b.tx(
        &p0,
        1,
        Body::Propose {
            action: Box::new(GovAction::SetPeerPolicy {
                chain: C,
                policy: PeerPolicy::default(),
            }),
        },
    );
    assert_eq!(validate(&b, &unknown), Err(TxError::UnknownPeer(C)));
    assert_eq!(produce_rejected(&mut b, &unknown), TxError::UnknownPeer(C));

    // The edges are accepted.
    let edge = PeerPolicy {
        max_transfer: 1,
        rate_capacity: i128::MAX as u128,
        rate_per_s: 1,
        delay_above: 1,
        delay_ms: MAX_DELAY_MS,
        min_reputation: 100,
        below_reputation: BelowReputation::Delay,
    };
    assert_eq!(edge.validate(), Ok(()));
    set_policy(&mut b, &edge);
    assert_eq!(book_of(&b).policy, edge);
    let reset = PeerPolicy::default();
    set_policy(&mut b, &reset);
    assert_eq!(book_of(&b), PolicyBook::default());
    assert_supply(&b);
}

// ---------------------------------------------------------------------------------
// 7. A delayed transfer for another chain goes on with a Forward once due.
// ---------------------------------------------------------------------------------

/// B's transit fee in the forwarding test.
const TRANSIT_FEE: u128 = 10;

/// A–B–C, one producer each, A and C strangers; B forwards for a fee; B holds
/// [`COLLATERAL`] for A and C holds it for B.
fn trio() -> (TestChain, TestChain, TestChain) {
    let pb = params(|p: &mut ChainParams| {
        p.forwarding = true;
        p.transit_fee = TRANSIT_FEE;
        p.transit_fee_to = fresh("transit fees of B");
    });
    let bare = [
        TestChain::new(A.0, 1, USERS, TestChain::dev_params()),
        TestChain::new(B.0, 1, USERS, pb),
        TestChain::new(C.0, 1, USERS, TestChain::dev_params()),
    ];
    let with = |i: usize, peers: &[usize]| {
        let me = &bare[i];
        let mut g = me.genesis.clone();
        g.peers = peers
            .iter()
            .map(|&j| registration_of(&bare[j], address_of(&me.producers[0])))
            .collect();
        TestChain::from_genesis(g, me.producers.clone(), me.users.clone())
    };
    let (a, mut b, mut c) = (with(0, &[1]), with(1, &[0, 2]), with(2, &[1]));
    deposit(&mut b, A, COLLATERAL);
    deposit(&mut c, B, COLLATERAL);
    (a, b, c)
}

#[test]
fn a_delayed_transfer_for_another_chain_is_forwarded_once_due_or_cancelled() {
    let (mut a, mut b, mut c) = trio();
    set_policy(&mut b, &delay(500, 2_000));
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("delayed onward");
    let to = QualifiedAddress::new(C, recipient);
    let txs: Vec<Transaction> = [1_000u128, 2_000]
        .iter()
        .map(|&amount| {
            a.tx(
                &sender,
                FEE,
                Body::Transfer {
                    to,
                    amount,
                    memo: Vec::new(),
                    deliver_by: 0,
                    fast_fee: 0,
                    via: Some(B),
                },
            )
        })
        .collect();
    produce_ok(&mut a, &txs);
    let (go, stop) = (txs[0].hash(), txs[1].hash());

    let (_, r, _) = deliver_batch(&mut b, &a, &txs);
    let t = b.head_time();
    assert_eq!(results(&r), vec![]);
    for id in [go, stop] {
        assert_eq!(
            held_state(&b, A, &id),
            HeldState::Delayed { until: t + 2_000 }
        );
    }
    assert_eq!(corr(&b, A), (COLLATERAL - 3_000) as i128);
    assert_supply(&b);

    // Before it is due, no Forward; a Release never delivers it here.
    let h = held_of(&b, A, &go).unwrap();
    let leg = forward::leg_for(&env_of(&b), &h, C).unwrap();
    let onward = |leg: &distpos_chain::tx::Leg| Body::Forward {
        source: A,
        source_tx: go,
        hop: Hop::Onward(Box::new(leg.clone())),
    };
    assert_invalid(refused_system(&mut b, onward(&leg)), "awaits its next hop");
    assert_invalid(
        refused_system(
            &mut b,
            Body::Forward {
                source: A,
                source_tx: go,
                hop: Hop::Bounce(BounceReason::NoRoute),
            },
        ),
        "awaits its next hop",
    );
    assert!(!h.awaits_hop(B, t + 1_999));
    assert!(h.awaits_hop(B, t + 2_000));
    assert_eq!(h.releasable(B, t + 2_000), None, "not for B");

    // The other is cancelled while it waits.
    govern(&mut b, cancel(&stop));
    skip_to(&mut b, t + 2_000);
    assert_invalid(
        refused_system(&mut b, release(A, &[go])),
        "nor waited out its delay",
    );

    // Due: it goes on as B's leg (the fee kept), the cancelled one is reported back.
    let leg = forward::leg_for(&env_of(&b), &h, C).unwrap();
    let (fwd, r) = include(&mut b, onward(&leg));
    assert_eq!(
        (&r.outcome, r.amount),
        (&Outcome::InFlight { destination: C }, 1_000 - TRANSIT_FEE)
    );
    assert_eq!(
        held_state(&b, A, &go),
        HeldState::Forwarded {
            leg: fwd.hash(),
            next: C,
            fee: TRANSIT_FEE,
        }
    );
    let (_, r) = include(&mut b, release(A, &[stop]));
    let h_stop = b.height();
    assert_eq!(
        results(&r),
        vec![bounced(&stop, 2_000, BounceReason::Cancelled, Some(B))]
    );
    assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);
    assert_supply(&b);

    // C delivers the leg; B settles it and releases the result to A.
    sync_time(&mut c, &b);
    let (_, r, h_c) = deliver_batch(&mut c, &b, std::slice::from_ref(&fwd));
    assert_eq!(
        r.outcome,
        Outcome::InboundBatch {
            source: B,
            results: vec![TransferResult {
                source_tx: fwd.hash(),
                amount: 1_000 - TRANSIT_FEE,
                bounced: None,
                fast: false,
                bounced_by: None,
            }],
        }
    );
    assert_eq!(account(&c, &recipient).balance, 1_000 - TRANSIT_FEE);
    sync_time(&mut b, &c);
    settle_back(&mut b, &c, h_c);
    let (_, r) = include(&mut b, release(A, &[go]));
    let h_go = b.height();
    assert_eq!(results(&r), vec![delivered(&go, 1_000)]);
    assert_supply(&b);
    assert_supply(&c);

    // A: the cancelled one refunded (by B), the other delivered.
    assert_eq!(settle_on(&mut a, &b, h_stop), vec![refunded(&stop)]);
    assert_eq!(settle_on(&mut a, &b, h_go), vec![acked(&go)]);
    assert_eq!(
        settled_as(&a, &stop),
        (Some(BounceReason::Cancelled), Some(B))
    );
    assert_eq!(balance(&a, &sender), before - 1_000 - 2 * FEE);
    assert_eq!(corr(&a, B), 1_000);
    assert_supply(&a);
    assert_supply(&b);
    assert_supply(&c);
}

// ---------------------------------------------------------------------------------
// Property: under a rate limit every transfer is delivered exactly once in the end.
// ---------------------------------------------------------------------------------

/// The bucket as the policy describes it: full at first, refilled by block time up
/// to its capacity; a transfer it cannot pay is due once the refill pays the debt.
struct Bucket {
    capacity: i128,
    per_s: i128,
    level: i128,
    at: Option<u64>,
}

impl Bucket {
    /// `None`: admitted now; `Some(until)`: delayed.
    fn take(&mut self, now: u64, amount: u128) -> Option<u64> {
        let level = match self.at {
            None => self.capacity,
            Some(at) => (self.level + self.per_s * i128::from(now - at) / 1_000).min(self.capacity),
        };
        self.level = level - amount as i128;
        self.at = Some(now);
        (self.level < 0).then(|| {
            let owed = -self.level * 1_000;
            now + ((owed + self.per_s - 1) / self.per_s) as u64
        })
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Random amounts in a few blocks of A, delivered under a rate limit (with gaps of
    /// block time between the batches): each transfer is delivered at once or delayed
    /// exactly as the bucket says; releasing the delayed ones when due delivers each
    /// once; in the end the recipient has all that was sent, A settled every transfer
    /// once as delivered, and supply held on both chains at every step.
    #[test]
    fn under_a_rate_limit_every_transfer_is_delivered_exactly_once(
        blocks in proptest::collection::vec(
            (proptest::collection::vec(1u128..1_500, 1..5), 0u64..40),
            1..4,
        ),
        capacity in 500u128..2_000,
        per_s in 50u128..1_000,
    ) {
        let (mut a, mut b) = pair();
        set_policy(&mut b, &rate(capacity, per_s));
        let mut bucket = Bucket {
            capacity: capacity as i128,
            per_s: per_s as i128,
            level: 0,
            at: None,
        };
        let sender = key(&a, SENDER);
        let before = balance(&a, &sender);
        let recipient = fresh("property");

        let mut sent = 0u128;
        let mut now_credited = 0u128;
        let mut delayed: Vec<(u64, Hash32, u128)> = Vec::new();
        let mut batches = Vec::new();
        let mut all = Vec::new();
        for (amounts, gap) in &blocks {
            let at = next_time(&b) + gap * INTERVAL;
            skip_to(&mut b, at);
            let ids = send_all(&mut a, recipient, amounts);
            let (_, r, h) = deliver(&mut b, &a, &ids);
            let now = b.head_time();
            let mut expected = Vec::new();
            for (id, &amount) in ids.iter().zip(amounts) {
                match bucket.take(now, amount) {
                    None => {
                        expected.push(delivered(id, amount));
                        now_credited += amount;
                    }
                    Some(until) => {
                        proptest::prop_assert_eq!(
                            held_state(&b, A, id),
                            HeldState::Delayed { until }
                        );
                        delayed.push((until, *id, amount));
                    }
                }
                sent += amount;
                all.push(*id);
            }
            proptest::prop_assert_eq!(results(&r), expected);
            proptest::prop_assert_eq!(book_of(&b).level, bucket.level);
            proptest::prop_assert_eq!(account(&b, &recipient).balance, now_credited);
            proptest::prop_assert_eq!(corr(&b, A), (COLLATERAL - sent) as i128);
            batches.push(h);
            assert_supplies(&a, &b);
        }
        proptest::prop_assert_eq!(book_of(&b).delayed, delayed.len() as u64);

        // Release each group when due (a release of one not due yet is refused).
        delayed.sort();
        let mut releases = Vec::new();
        let mut i = 0;
        while i < delayed.len() {
            // The first block time at which the earliest left is due.
            let due = delayed[i].0.div_ceil(INTERVAL) * INTERVAL;
            if next_time(&b) < due {
                skip_to(&mut b, due - INTERVAL);
                let e = refused_system(&mut b, release(A, &[delayed[i].1]));
                proptest::prop_assert!(matches!(e, TxError::Invalid(_)), "{:?}", e);
            }
            let ids: Vec<Hash32> = delayed[i..]
                .iter()
                .take_while(|d| d.0 <= next_time(&b))
                .map(|d| d.1)
                .collect();
            proptest::prop_assert!(!ids.is_empty());
            let (_, r) = include(&mut b, release(A, &ids));
            let group = &delayed[i..i + ids.len()];
            let rel: u128 = group.iter().map(|d| d.2).sum();
            now_credited += rel;
            proptest::prop_assert_eq!(r.amount, rel);
            proptest::prop_assert_eq!(
                results(&r),
                group.iter().map(|d| delivered(&d.1, d.2)).collect::<Vec<_>>()
            );
            proptest::prop_assert_eq!(account(&b, &recipient).balance, now_credited);
            releases.push(b.height());
            i += ids.len();
            assert_supplies(&a, &b);
        }
        proptest::prop_assert_eq!(now_credited, sent);

        // A settles every block of B that reported, each transfer once, delivered.
        let mut settled_all = Vec::new();
        for h in batches.into_iter().chain(releases) {
            let r = &b.receipts[h as usize - 1];
            let reports = r.iter().any(|x| {
                matches!(
                    &x.outcome,
                    Outcome::InboundBatch { source, results } if *source == A && !results.is_empty()
                )
            });
            if reports {
                settled_all.extend(settle_on(&mut a, &b, h));
                assert_supplies(&a, &b);
            }
        }
        proptest::prop_assert_eq!(settled_all.len(), all.len());
        for id in &all {
            proptest::prop_assert!(settled_all.contains(&acked(id)));
            proptest::prop_assert_eq!(ledger::in_flight(&a.state, id).unwrap(), None);
            proptest::prop_assert_eq!(held_of(&b, A, id), None);
        }
        proptest::prop_assert_eq!(
            balance(&a, &sender),
            before - sent - all.len() as u128 * FEE
        );
        proptest::prop_assert_eq!(corr(&a, B), sent as i128);
        proptest::prop_assert_eq!(stats(&b), (all.len() as u64, 0, sent));
        assert_supplies(&a, &b);
    }
}

// ---------------------------------------------------------------------------------
// 5. Evidence of equivocation among a peer's producers.
// ---------------------------------------------------------------------------------

/// A second header for the slot of `c`'s block `height`, signed by its producer: what
/// an equivocating producer of `c` publishes.
fn twin_header(c: &TestChain, height: u64) -> SignedHeader {
    let real = &c.blocks[height as usize - 1].header;
    let key = c
        .producers
        .iter()
        .find(|k| k.public_key() == real.header.producer)
        .expect("a producer of the chain")
        .clone();
    let mut other = real.header.clone();
    other.tx_root = Hash32([0xee; 32]);
    other.sign(&key)
}

fn peer_evidence(x: &SignedHeader, y: &SignedHeader) -> Body {
    Body::PeerEvidence {
        peer: A,
        header_a: Box::new(x.clone()),
        header_b: Box::new(y.clone()),
    }
}

#[test]
fn evidence_of_a_peer_producer_signing_twice_costs_40_once_and_bad_evidence_changes_nothing() {
    let (mut a, mut b) = pair();
    a.produce_empty(2).unwrap();
    let real = a.blocks[0].header.clone();
    let twin = twin_header(&a, 1);
    assert_eq!(reputation_on(&b), 100);

    // Refused, changing nothing: one block twice, two slots, a key no producer of A
    // uses, a signature that does not verify, headers of another chain, or a chain
    // that is not a peer.
    let next = a.blocks[1].header.clone();
    let stranger = SecretKey::from_seed(b"not a producer of A");
    let by_stranger = |root: u8| {
        let mut h = real.header.clone();
        h.producer = stranger.public_key();
        h.tx_root = Hash32([root; 32]);
        h.sign(&stranger)
    };
    let mut forged = twin.clone();
    forged.header.tx_root = Hash32([0xef; 32]);
    let mut of_b = b.blocks[0].header.clone();
    of_b.header.chain_id = B;
    let cases: Vec<(Body, &str)> = vec![
        (peer_evidence(&real, &real), "same block"),
        (peer_evidence(&real, &next), "not for the same slot"),
        (
            peer_evidence(&by_stranger(1), &by_stranger(2)),
            "no producer",
        ),
        (peer_evidence(&real, &forged), "signature"),
        (peer_evidence(&real, &of_b), "chain"),
        (
            Body::PeerEvidence {
                peer: ChainId(0x5151),
                header_a: Box::new(real.clone()),
                header_b: Box::new(twin.clone()),
            },
            "5151",
        ),
    ];
    for (body, what) in cases {
        let err = refused(&mut b, body);
        assert!(
            err.to_string().contains(what),
            "{err} does not say {what:?}"
        );
    }
    assert_eq!(peer(&b, A).unwrap().equivocations, 0);

    // Two headers of A's producer for one slot: counted once, −40.
    let r = submit(&mut b, peer_evidence(&real, &twin));
    assert_eq!(r.outcome, Outcome::Applied);
    assert_eq!(peer(&b, A).unwrap().equivocations, 1);
    assert_eq!(reputation_on(&b), 60);
    let slot = chain_rules(&a.state)
        .unwrap()
        .clock
        .slot_at_boundary(real.header.timestamp_ms)
        .unwrap();
    assert_eq!(
        refused(&mut b, peer_evidence(&twin, &real)),
        TxError::EvidenceApplied(slot)
    );
    assert_eq!(peer(&b, A).unwrap().equivocations, 1);

    // Under a threshold of 61, A's transfers are refused with a valid proof.
    set_policy(&mut b, &min_reputation(61, BelowReputation::Refuse, 0));
    let recipient = fresh("after equivocation");
    let t = send_all(&mut a, recipient, &[100]);
    let (_, r, _) = deliver(&mut b, &a, &t);
    assert_eq!(
        results(&r),
        vec![bounced(&t[0], 100, BounceReason::LowReputation, None)]
    );
    assert_eq!(
        reputation_on(&b),
        60,
        "a refusal of ours costs A nothing more"
    );
    assert_supplies(&a, &b);
}

#[test]
fn the_light_client_records_a_second_header_for_a_slot_it_follows() {
    // Three producers: A's newest blocks stay above its LIB for a while, on the
    // branch B's light client follows.
    let (mut a, mut b) = peer_pair(A.0, B.0, 3, USERS, TestChain::dev_params());
    a.produce_empty(3).unwrap();
    keep_up(&mut b, a.height());
    submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: a.headers(1, 3),
        },
    );
    let lc = light_client(&b, A);
    assert_eq!(lc.head(), 3);
    assert!(
        lc.lib() < 3,
        "block 3 is not irreversible yet: {}",
        lc.lib()
    );

    // A's third producer publishes a second block 3: B's light client sees both.
    let twin = twin_header(&a, 3);
    submit(
        &mut b,
        Body::PeerHeaders {
            peer: A,
            headers: vec![twin.clone()],
        },
    );
    let p = peer(&b, A).unwrap();
    assert_eq!(p.equivocations, 1);
    assert_eq!(
        reputation(&p, head_time(&b.state, A, &p), next_time(&b)),
        100 - 40 - 20,
        "the evidence, and no collateral"
    );
    // Reported again by hand, it is the same evidence.
    let real = a.blocks[2].header.clone();
    assert!(matches!(
        refused(&mut b, peer_evidence(&real, &twin)),
        TxError::EvidenceApplied(_)
    ));
}

#[test]
fn a_removed_peer_takes_its_evidence_with_it() {
    let (mut a, mut b) = bare_pair();
    a.produce_empty(1).unwrap();
    let real = a.blocks[0].header.clone();
    submit(&mut b, peer_evidence(&real, &twin_header(&a, 1)));
    let evidence_of_a = ledger::keys::peer_evidence_of(A);
    assert_eq!(b.state.scan_prefix(&evidence_of_a).count(), 1);
    govern(&mut b, GovAction::RemovePeer { chain: A });
    assert_eq!(peer(&b, A), None);
    assert_eq!(b.state.scan_prefix(&evidence_of_a).count(), 0);
}
