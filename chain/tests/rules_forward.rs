//! Forwarding through correspondents (DESIGN §12) across three chains: A–B and B–C are
//! registered peers, A and C are not. A transfer from A for C names B `via`; B admits it
//! against A's correspondent account and holds it (its `InboundBatch` receipt leaves it
//! out); B's producer sends it on with a `Forward` (a leg to C of the amount less B's
//! transit fee, exactly as `forward::leg_for` computes it) or back (`Hop::Bounce`); C
//! proves the leg against B's block like any transfer; C's receipt settles B's leg; B's
//! `Release` reports the result (and the chain that bounced it) to A, pays the transit
//! fee on a delivery and gives A's account everything back on a bounce; A settles once.
//! A chain that is not the final one holds a leg again (A–B–C–D), and the result
//! travels back leg by leg. Refusals at B (forwarding off, a loop, the hop limit, an
//! amount the fee eats) bounce at once; a `Forward` or `Release` the ledger does not
//! expect is refused and changes nothing; A refuses a `via` that makes no sense. Some
//! refusals only guard against a peer's rogue producers: those tests forge a block of
//! the peer (a light client checks headers, not execution). Supply holds on every
//! chain at every step.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    block::tx_root,
    interchain::{
        forward::{self, Held, HeldState},
        inbound_record,
        policy::{reputation, REFUSED_WEIGHT},
        settled_record, InboundRecord, SettledRecord,
    },
    ledger::{self, InFlight},
    testkit::{address_of, registration_of, TestChain, GENESIS_TIME_MS},
    tx::{BounceReason, GovAction, Hop, Leg, Outcome, SettleResult, TransferResult},
    Address, Block, Body, ChainParams, ProofError, Receipt, Transaction, TxError,
};
use distpos_proofs::{ChainId, Hash32};

// ---------------------------------------------------------------------------------
// Kit (batch helpers shared with the other interchain tests are in common/interchain).
// ---------------------------------------------------------------------------------

const A: ChainId = ChainId(0xa1);
const B: ChainId = ChainId(0xb2);
const C: ChainId = ChainId(0xc3);
/// A chain the trio does not know (the last of the four-chain line).
const D: ChainId = ChainId(0xd4);
/// B's transit fee.
const TRANSIT_FEE: u128 = 10;
/// What each chain holds for its upstream peer in the usual setup.
const COLLATERAL: u128 = 10_000;

/// The account B's transit fees go to.
fn fee_account() -> Address {
    fresh("transit fees of B")
}

/// The balance of B's transit fee account.
fn fees_earned(b: &TestChain) -> u128 {
    account(b, &fee_account()).balance
}

/// One-producer chains (every block is irreversible when produced, governance executes
/// at once) in a line: each registered with its neighbours at genesis, and with no
/// other chain.
fn line(chains: Vec<(ChainId, ChainParams)>) -> Vec<TestChain> {
    let bare: Vec<TestChain> = chains
        .into_iter()
        .map(|(id, p)| TestChain::new(id.0, 1, USERS, p))
        .collect();
    let owner = |x: &TestChain| address_of(&x.producers[0]);
    (0..bare.len())
        .map(|i| {
            let me = &bare[i];
            let mut g = me.genesis.clone();
            g.peers = [i.checked_sub(1), Some(i + 1)]
                .into_iter()
                .flatten()
                .filter_map(|j| bare.get(j))
                .map(|n| registration_of(n, owner(me)))
                .collect();
            TestChain::from_genesis(g, me.producers.clone(), me.users.clone())
        })
        .collect()
}

/// B's parameters: it forwards, keeping [`TRANSIT_FEE`] for [`fee_account`].
fn forwarder() -> ChainParams {
    params(|p| {
        p.forwarding = true;
        p.transit_fee = TRANSIT_FEE;
        p.transit_fee_to = fee_account();
    })
}

/// Three chains A–B–C in a [`line`] (A and C strangers); B a [`forwarder`] whose
/// parameters `b_params` then changes; C with dev parameters changed by `c_params`.
fn trio_with(
    b_params: impl FnOnce(&mut ChainParams),
    c_params: impl FnOnce(&mut ChainParams),
) -> (TestChain, TestChain, TestChain) {
    let mut pb = forwarder();
    b_params(&mut pb);
    let mut chains = line(vec![
        (A, TestChain::dev_params()),
        (B, pb),
        (C, params(c_params)),
    ])
    .into_iter();
    let mut next = || chains.next().unwrap();
    (next(), next(), next())
}

/// The usual trio: B holds [`COLLATERAL`] for A, and C `c_collateral` for B.
fn setup(c_collateral: u128) -> (TestChain, TestChain, TestChain) {
    let (a, mut b, mut c) = trio_with(|_| {}, |_| {});
    deposit(&mut b, A, COLLATERAL);
    if c_collateral > 0 {
        deposit(&mut c, B, c_collateral);
    }
    assert_three(&a, &b, &c);
    (a, b, c)
}

/// Supply holds on all three chains.
fn assert_three(a: &TestChain, b: &TestChain, c: &TestChain) {
    assert_supply(a);
    assert_supply(b);
    assert_supply(c);
}

fn via_body(
    to: QualifiedAddress,
    amount: u128,
    deliver_by: u64,
    fast_fee: u128,
    via: Option<ChainId>,
) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: Vec::new(),
        deliver_by,
        fast_fee,
        via,
    }
}

/// A's sender sends each `(to, amount, deliver_by)` via B, all in A's next block;
/// returns the transfers and their receipts.
fn send_all_via(
    a: &mut TestChain,
    transfers: &[(QualifiedAddress, u128, u64)],
) -> Vec<(Transaction, Receipt)> {
    let k = key(a, SENDER);
    let txs: Vec<Transaction> = transfers
        .iter()
        .map(|&(to, amount, by)| a.tx(&k, FEE, via_body(to, amount, by, 0, Some(B))))
        .collect();
    let receipts = produce_ok(a, &txs).applied.receipts;
    txs.into_iter().zip(receipts).collect()
}

/// A's sender sends `amount` to `to` via B in A's next block.
fn send_via(
    a: &mut TestChain,
    to: QualifiedAddress,
    amount: u128,
    deliver_by: u64,
) -> (Transaction, Receipt) {
    send_all_via(a, &[(to, amount, deliver_by)]).remove(0)
}

/// The producer of `c` puts the system transaction `body` in its next block, which
/// must include it; returns the transaction and its receipt.
fn include(c: &mut TestChain, body: Body) -> (Transaction, Receipt) {
    include_all(c, vec![body]).remove(0)
}

/// Like [`include`], several system transactions in one block.
fn include_all(c: &mut TestChain, bodies: Vec<Body>) -> Vec<(Transaction, Receipt)> {
    let txs: Vec<Transaction> = bodies.into_iter().map(|b| system(c, b)).collect();
    let receipts = produce_ok(c, &txs).applied.receipts;
    txs.into_iter().zip(receipts).collect()
}

/// The leg to `next` that `c`'s ledger requires for transfer `tx` it holds from
/// `source`, in its next block.
fn leg_of(c: &TestChain, source: ChainId, tx: &Hash32, next: ChainId) -> Leg {
    let h = held_of(c, source, tx).expect("held");
    forward::leg_for(&env_of(c), &h, next).unwrap()
}

fn onward(source: ChainId, source_tx: &Hash32, leg: Leg) -> Body {
    Body::Forward {
        source,
        source_tx: *source_tx,
        hop: Hop::Onward(Box::new(leg)),
    }
}

fn bounce(source: ChainId, source_tx: &Hash32, reason: BounceReason) -> Body {
    Body::Forward {
        source,
        source_tx: *source_tx,
        hop: Hop::Bounce(reason),
    }
}

fn result(
    tx: &Hash32,
    amount: u128,
    bounced: Option<BounceReason>,
    bounced_by: Option<ChainId>,
) -> TransferResult {
    TransferResult {
        source_tx: *tx,
        amount,
        bounced,
        fast: false,
        bounced_by,
    }
}

/// The results a receipt reports to `source` (an `InboundBatch` from it, a `Release`
/// to it, or a bouncing `Forward`).
fn results_to(r: &Receipt, source: ChainId) -> Vec<TransferResult> {
    match &r.outcome {
        Outcome::InboundBatch { source: s, results } if *s == source => results.clone(),
        other => panic!("no results for {source}: {other:?}"),
    }
}

/// What a `SettleBatch` receipt settled.
fn settled(r: &Receipt) -> Vec<SettleResult> {
    match &r.outcome {
        Outcome::SettleBatch { settled } => settled.clone(),
        other => panic!("not a settlement: {other:?}"),
    }
}

fn settle(tx: &Hash32, delivered: bool) -> SettleResult {
    SettleResult { tx: *tx, delivered }
}

/// Makes the head block of `src` carry `txs` instead of what its ledger applied, and
/// signs it again with its producer's key: what a peer's rogue producers could publish
/// (a light client checks headers, not execution). `src` must not produce after this.
fn forge_head(src: &mut TestChain, txs: Vec<Transaction>) {
    produce_ok(src, &[]);
    let key = src.producers[0].clone();
    let last = src.blocks.last_mut().unwrap();
    let mut h = last.header.header.clone();
    h.tx_root = tx_root(&txs);
    h.tx_count = txs.len() as u32;
    *last = Block {
        header: h.sign(&key),
        txs,
    };
}

// ---------------------------------------------------------------------------------
// 1. Two hops, delivered.
// ---------------------------------------------------------------------------------

#[test]
fn two_hops_deliver_the_amount_less_the_fee_and_each_chain_settles_once() {
    let (mut a, mut b, mut c) = setup(COLLATERAL);
    let sender = key(&a, SENDER);
    let origin = QualifiedAddress::new(A, address_of(&sender));
    let before = balance(&a, &sender);
    let recipient = fresh("two hops");
    let to = QualifiedAddress::new(C, recipient);
    let deliver_by = next_time(&a) + 600_000;

    // On A: in flight to B, the next hop, not to C.
    let (tx, r) = send_via(&mut a, to, 1_000, deliver_by);
    let id = tx.hash();
    assert_eq!(
        (&r.outcome, r.amount),
        (&Outcome::InFlight { destination: B }, 1_000)
    );
    assert_eq!(balance(&a, &sender), before - 1_000 - FEE);
    assert_eq!(
        ledger::in_flight(&a.state, &id).unwrap(),
        Some(InFlight {
            destination: B,
            sender: address_of(&sender),
            recipient,
            amount: 1_000,
            deliver_by,
            height: a.height(),
            forwarding: None,
        })
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.sent_out, p.volume_out), (1, 1_000));
    assert_three(&a, &b, &c);

    // On B: paid for by A's account and held; the batch's receipt leaves it out.
    let (batch, r, h_in) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!((results_to(&r, A), r.amount), (vec![], 1_000));
    assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.delivered_in, p.bounced_in, p.volume_in), (0, 0, 0));
    assert_eq!(
        held_of(&b, A, &id),
        Some(Held {
            to,
            origin,
            amount: 1_000,
            deliver_by,
            path: vec![A],
            height: h_in,
            state: HeldState::AwaitingHop,
        })
    );
    assert_eq!(
        inbound_record(&b.state, A, &id).unwrap(),
        Some(InboundRecord {
            tx: batch.hash(),
            sender: origin,
            recipient,
            amount: 1_000,
            height: h_in,
            outcome: Outcome::Held {
                source: A,
                source_tx: id,
            },
        })
    );
    assert_eq!(account(&b, &recipient).balance, 0, "nobody credited on B");
    assert_three(&a, &b, &c);

    // That receipt settles nothing on A; the batch cannot be replayed; there is
    // nothing to release yet.
    let r = settle_back(&mut a, &b, h_in);
    assert_eq!(settled(&r), vec![]);
    assert!(ledger::in_flight(&a.state, &id).unwrap().is_some());
    let again = inbound_of(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        refused_system(&mut b, again),
        TxError::AlreadyConsumed(A, id)
    );
    assert_invalid(
        refused_system(&mut b, release(A, &[id])),
        "has not settled onward",
    );

    // B's producer forwards it: a leg to C of the amount less the fee, the deadline
    // shortened by the margin, B on its path.
    let leg = leg_of(&b, A, &id, C);
    assert_eq!(
        leg,
        Leg {
            next: C,
            to,
            amount: 1_000 - TRANSIT_FEE,
            deliver_by: deliver_by - 5_000,
            path: vec![A, B],
            origin,
        }
    );
    let (fwd, r) = include(&mut b, onward(A, &id, leg.clone()));
    let leg_id = fwd.hash();
    assert_eq!(
        (&r.outcome, r.amount),
        (&Outcome::InFlight { destination: C }, 990)
    );
    assert_eq!(
        ledger::in_flight(&b.state, &leg_id).unwrap(),
        Some(InFlight {
            destination: C,
            sender: Address::ZERO,
            recipient,
            amount: 990,
            deliver_by: deliver_by - 5_000,
            height: b.height(),
            forwarding: Some((A, id)),
        })
    );
    assert_eq!(
        held_state(&b, A, &id),
        HeldState::Forwarded {
            leg: leg_id,
            next: C,
            fee: TRANSIT_FEE,
        }
    );
    let p = peer(&b, C).unwrap();
    assert_eq!((p.sent_out, p.volume_out, p.corr), (1, 990, 0));
    assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);
    assert_three(&a, &b, &c);

    // It is forwarded once; and still not releasable.
    assert_invalid(
        refused_system(&mut b, onward(A, &id, leg)),
        "awaits its next hop",
    );
    assert_invalid(
        refused_system(&mut b, release(A, &[id])),
        "has not settled onward",
    );

    // On C: the leg is proven against B's block like any transfer, and delivered to
    // the final recipient against B's account.
    let (c_batch, r, h_c) = deliver_batch(&mut c, &b, std::slice::from_ref(&fwd));
    assert_eq!(
        (results_to(&r, B), r.amount),
        (vec![result(&leg_id, 990, None, None)], 990)
    );
    assert_eq!(account(&c, &recipient).balance, 990);
    assert_eq!(corr(&c, B), (COLLATERAL - 990) as i128);
    assert_eq!(
        inbound_record(&c.state, B, &leg_id).unwrap(),
        Some(InboundRecord {
            tx: c_batch.hash(),
            sender: origin,
            recipient,
            amount: 990,
            height: h_c,
            outcome: Outcome::Delivered {
                source: B,
                source_tx: leg_id,
            },
        })
    );
    assert_three(&a, &b, &c);

    // On B: C's receipt settles the leg: C's account with B is credited, and the held
    // transfer learns it was delivered (only the fee is still held).
    let r = settle_back(&mut b, &c, h_c);
    assert_eq!(settled(&r), vec![settle(&leg_id, true)]);
    assert_eq!(corr(&b, C), 990);
    assert_eq!(peer(&b, C).unwrap().acked_out, 1);
    assert_eq!(ledger::in_flight(&b.state, &leg_id).unwrap(), None);
    assert_eq!(
        settled_record(&b.state, &leg_id).unwrap(),
        Some(SettledRecord {
            destination: C,
            bounced: None,
            bounced_by: None,
            height: b.height(),
            amount: 990,
        })
    );
    assert_eq!(
        held_state(&b, A, &id),
        HeldState::Settled {
            bounced: None,
            fee: TRANSIT_FEE,
        }
    );
    assert_eq!(fees_earned(&b), 0, "the fee is earned by the release");
    assert_three(&a, &b, &c);

    // A release naming the transfer twice is refused as a whole, and makes a block
    // invalid.
    assert_invalid(block_refuses(&b, release(A, &[id, id])), "is held");
    assert_invalid(refused_system(&mut b, release(A, &[id, id])), "is held");
    assert_eq!(fees_earned(&b), 0);

    // B's release reports it delivered to A and pays the transit fee.
    let (_, r) = include(&mut b, release(A, &[id]));
    let h_rel = b.height();
    assert_eq!(
        (results_to(&r, A), r.amount),
        (vec![result(&id, 1_000, None, None)], 1_000)
    );
    assert_eq!(fees_earned(&b), TRANSIT_FEE);
    assert_eq!(held_of(&b, A, &id), None);
    assert_eq!(
        inbound_record(&b.state, A, &id).unwrap().unwrap().outcome,
        Outcome::Delivered {
            source: A,
            source_tx: id,
        }
    );
    let p = peer(&b, A).unwrap();
    assert_eq!(
        (p.corr, p.delivered_in, p.bounced_in, p.volume_in),
        ((COLLATERAL - 1_000) as i128, 1, 0, 1_000)
    );
    assert_three(&a, &b, &c);

    // A second release is refused and changes nothing; a block with it is invalid.
    assert_invalid(block_refuses(&b, release(A, &[id])), "is held");
    assert_invalid(refused_system(&mut b, release(A, &[id])), "is held");
    assert_eq!(fees_earned(&b), TRANSIT_FEE);

    // On A: the release's receipt settles the transfer as delivered, once.
    let r = settle_back(&mut a, &b, h_rel);
    assert_eq!(settled(&r), vec![settle(&id, true)]);
    assert_eq!(balance(&a, &sender), before - 1_000 - FEE);
    assert_eq!(corr(&a, B), 1_000);
    assert_eq!(ledger::in_flight(&a.state, &id).unwrap(), None);
    assert_eq!(
        settled_record(&a.state, &id).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: None,
            bounced_by: None,
            height: a.height(),
            amount: 1_000,
        })
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.acked_out, p.refunded_out), (1, 0));
    assert_three(&a, &b, &c);

    let err = refused_system(&mut a, settle_batch(&b, h_rel, &[0], false));
    assert_eq!(err, TxError::NotInFlight(id));
    assert_eq!(corr(&a, B), 1_000, "acknowledged once");
    assert_eq!(peer(&a, B).unwrap().acked_out, 1);
    assert_three(&a, &b, &c);
}

// ---------------------------------------------------------------------------------
// 2. The second hop bounces.
// ---------------------------------------------------------------------------------

#[test]
fn a_bounce_on_the_second_hop_comes_back_whole_and_names_the_chain_that_bounced() {
    // C holds no collateral for B (and extends no credit): the leg bounces there.
    let (mut a, mut b, mut c) = setup(0);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let recipient = fresh("second hop bounces");
    let (tx, _) = send_via(&mut a, QualifiedAddress::new(C, recipient), 1_000, 0);
    let id = tx.hash();

    let (_, r, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(results_to(&r, A), vec![]);
    let leg = leg_of(&b, A, &id, C);
    let (fwd, _) = include(&mut b, onward(A, &id, leg));
    let leg_id = fwd.hash();
    assert_three(&a, &b, &c);

    // On C: bounced for want of B's collateral.
    let (_, r, h_c) = deliver_batch(&mut c, &b, std::slice::from_ref(&fwd));
    assert_eq!(
        results_to(&r, B),
        vec![result(
            &leg_id,
            990,
            Some(BounceReason::InsufficientCollateral),
            None
        )]
    );
    assert_eq!(account(&c, &recipient).balance, 0);
    let p = peer(&c, B).unwrap();
    assert_eq!((p.corr, p.bounced_in, p.delivered_in), (0, 1, 0));
    assert_three(&a, &b, &c);

    // On B: the leg settles bounced (no sender to refund here: the hold takes the
    // amount back), C's account is not credited.
    let r = settle_back(&mut b, &c, h_c);
    assert_eq!(settled(&r), vec![settle(&leg_id, false)]);
    let p = peer(&b, C).unwrap();
    assert_eq!((p.corr, p.acked_out, p.refunded_out), (0, 0, 1));
    assert_eq!(ledger::in_flight(&b.state, &leg_id).unwrap(), None);
    assert_eq!(
        settled_record(&b.state, &leg_id).unwrap(),
        Some(SettledRecord {
            destination: C,
            bounced: Some(BounceReason::InsufficientCollateral),
            bounced_by: Some(C),
            height: b.height(),
            amount: 990,
        })
    );
    assert_eq!(
        held_state(&b, A, &id),
        HeldState::Settled {
            bounced: Some((BounceReason::InsufficientCollateral, C)),
            fee: TRANSIT_FEE,
        }
    );
    assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);
    assert_three(&a, &b, &c);

    // B's release reports the bounce and who bounced it, and A's account gets
    // everything back (the fee is not kept).
    assert_invalid(refused_system(&mut b, release(A, &[id, id])), "is held");
    let (_, r) = include(&mut b, release(A, &[id]));
    let h_rel = b.height();
    assert_eq!(
        (results_to(&r, A), r.amount),
        (
            vec![result(
                &id,
                1_000,
                Some(BounceReason::InsufficientCollateral),
                Some(C)
            )],
            1_000
        )
    );
    assert_eq!(corr(&b, A), COLLATERAL as i128);
    assert_eq!(fees_earned(&b), 0);
    assert_eq!(held_of(&b, A, &id), None);
    assert_eq!(
        inbound_record(&b.state, A, &id).unwrap().unwrap().outcome,
        Outcome::Bounced {
            source: A,
            source_tx: id,
            reason: BounceReason::InsufficientCollateral,
        }
    );
    let p = peer(&b, A).unwrap();
    assert_eq!((p.delivered_in, p.bounced_in, p.volume_in), (0, 1, 0));
    assert_three(&a, &b, &c);
    assert_invalid(refused_system(&mut b, release(A, &[id])), "is held");
    assert_eq!(corr(&b, A), COLLATERAL as i128, "given back once");

    // On A: refunded once; the record names C.
    let r = settle_back(&mut a, &b, h_rel);
    assert_eq!(settled(&r), vec![settle(&id, false)]);
    assert_eq!(balance(&a, &sender), before - FEE, "the amount came back");
    assert_eq!(corr(&a, B), 0);
    assert_eq!(
        settled_record(&a.state, &id).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: Some(BounceReason::InsufficientCollateral),
            bounced_by: Some(C),
            height: a.height(),
            amount: 1_000,
        })
    );
    let p = peer(&a, B).unwrap();
    assert_eq!((p.acked_out, p.refunded_out), (0, 1));
    assert_three(&a, &b, &c);

    let err = refused_system(&mut a, settle_batch(&b, h_rel, &[0], false));
    assert_eq!(err, TxError::NotInFlight(id));
    assert_eq!(balance(&a, &sender), before - FEE, "refunded once");
    assert_three(&a, &b, &c);
}

// ---------------------------------------------------------------------------------
// 3. Refusals at B bounce at once.
// ---------------------------------------------------------------------------------

/// How A sends in a refusal case, and how B stands.
struct Case {
    amount: u128,
    /// The recipient on C.
    recipient: Address,
    /// The deadline is the time of A's block (passed when B sees it).
    expiring: bool,
    /// What B holds for A.
    collateral: u128,
}

impl Case {
    fn new(amount: u128) -> Self {
        Self {
            amount,
            recipient: fresh("refused"),
            expiring: false,
            collateral: COLLATERAL,
        }
    }
}

/// On a trio whose B has its parameters changed by `b_params`, A sends `amount` to C
/// via B: B's batch must bounce it at once with `reason`, holding nothing and leaving
/// A's account alone; A refunds it from that receipt, naming B.
fn bounced_at_b(b_params: impl FnOnce(&mut ChainParams), amount: u128, reason: BounceReason) {
    bounced_at_b_in(b_params, |_| {}, Case::new(amount), reason);
}

/// Like [`bounced_at_b`], for `case`, after `on_b` acted on B.
fn bounced_at_b_in(
    b_params: impl FnOnce(&mut ChainParams),
    on_b: impl FnOnce(&mut TestChain),
    case: Case,
    reason: BounceReason,
) {
    let (mut a, mut b, c) = trio_with(b_params, |_| {});
    if case.collateral > 0 {
        deposit(&mut b, A, case.collateral);
    }
    on_b(&mut b);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    let amount = case.amount;
    let deliver_by = if case.expiring { next_time(&a) } else { 0 };
    let to = QualifiedAddress::new(C, case.recipient);
    let (tx, _) = send_via(&mut a, to, amount, deliver_by);
    let id = tx.hash();

    let (_, r, h) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(
        (results_to(&r, A), r.amount),
        (vec![result(&id, amount, Some(reason), None)], amount)
    );
    assert_eq!(held_of(&b, A, &id), None);
    let p = peer(&b, A).unwrap();
    assert_eq!(
        (p.corr, p.bounced_in, p.delivered_in),
        (case.collateral as i128, 1, 0)
    );
    assert_eq!(
        inbound_record(&b.state, A, &id).unwrap().unwrap().outcome,
        Outcome::Bounced {
            source: A,
            source_tx: id,
            reason,
        }
    );
    assert_eq!(peer(&b, C).unwrap().sent_out, 0, "nothing went on");
    assert_three(&a, &b, &c);

    let r = settle_back(&mut a, &b, h);
    assert_eq!(settled(&r), vec![settle(&id, false)]);
    assert_eq!(balance(&a, &sender), before - FEE);
    assert_eq!(
        settled_record(&a.state, &id).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: Some(reason),
            bounced_by: Some(B),
            height: a.height(),
            amount,
        })
    );
    assert_three(&a, &b, &c);
}

#[test]
fn a_chain_that_does_not_forward_bounces_no_forwarding() {
    bounced_at_b(|p| p.forwarding = false, 1_000, BounceReason::NoForwarding);
}

#[test]
fn a_transfer_that_has_travelled_max_hops_bounces_hop_limit() {
    // One leg (A to B) travelled, one allowed.
    bounced_at_b(|p| p.max_hops = 1, 1_000, BounceReason::HopLimit);
}

#[test]
fn an_amount_the_transit_fee_eats_bounces_below_transit_fee() {
    bounced_at_b(|_| {}, TRANSIT_FEE, BounceReason::BelowTransitFee);
    bounced_at_b(|_| {}, 1, BounceReason::BelowTransitFee);
}

#[test]
fn the_usual_checks_come_first_for_a_transfer_to_forward() {
    // Collateral is checked for a transfer held here as for one delivered here.
    let short = Case {
        collateral: 999,
        ..Case::new(1_000)
    };
    bounced_at_b_in(|_| {}, |_| {}, short, BounceReason::InsufficientCollateral);
    // Expiry, suspension and a zero recipient before anything forwarding-specific
    // (here forwarding is off, which would bounce it too).
    let off = |p: &mut ChainParams| p.forwarding = false;
    let late = Case {
        expiring: true,
        ..Case::new(1_000)
    };
    bounced_at_b_in(off, |_| {}, late, BounceReason::Expired);
    let suspend = |b: &mut TestChain| govern(b, GovAction::SuspendPeer { chain: A });
    bounced_at_b_in(off, suspend, Case::new(1_000), BounceReason::PeerSuspended);
    let nobody = Case {
        recipient: Address::ZERO,
        ..Case::new(1_000)
    };
    bounced_at_b_in(off, |_| {}, nobody, BounceReason::BadRecipient);
}

#[test]
fn one_token_above_the_transit_fee_is_held_and_forwarded() {
    let (mut a, mut b, c) = setup(COLLATERAL);
    let (tx, _) = send_via(&mut a, QualifiedAddress::new(C, fresh("above")), 11, 0);
    let (_, r, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(results_to(&r, A), vec![]);
    assert_eq!(
        held_of(&b, A, &tx.hash()).map(|h| h.amount),
        Some(TRANSIT_FEE + 1)
    );
    assert_eq!(leg_of(&b, A, &tx.hash(), C).amount, 1);
    assert_three(&a, &b, &c);
}

#[test]
fn a_transfer_for_a_chain_on_its_path_bounces_loop() {
    // A's ledger refuses a transfer to an A address via B...
    let (mut a, mut b, c) = setup(COLLATERAL);
    let sender = key(&a, SENDER);
    let back_home = QualifiedAddress::new(A, address_of(&a.users[2]));
    let body = via_body(back_home, 500, 0, 0, Some(B));
    assert_invalid(refused(&mut a, body.clone()), "via is for transfers");

    // ...but a block A's producers forged could carry one: B bounces it (its final
    // chain is on its path) without touching A's account.
    let mut rogue = a.clone();
    let t = rogue.tx(&sender, FEE, body);
    forge_head(&mut rogue, vec![t.clone()]);
    let (_, r, _) = deliver_batch(&mut b, &rogue, std::slice::from_ref(&t));
    assert_eq!(
        results_to(&r, A),
        vec![result(&t.hash(), 500, Some(BounceReason::Loop), None)]
    );
    assert_eq!(held_of(&b, A, &t.hash()), None);
    let p = peer(&b, A).unwrap();
    assert_eq!((p.corr, p.bounced_in), (COLLATERAL as i128, 1));
    assert_three(&a, &b, &c);
}

#[test]
fn a_leg_that_comes_back_to_a_chain_it_left_bounces_loop() {
    // A leg from C whose path already names B (C's ledger would never forward it back
    // to a chain on its path; rogue producers of C could).
    let (a, mut b, c) = setup(COLLATERAL);
    let mut rogue = c.clone();
    let origin = QualifiedAddress::new(A, address_of(&a.users[0]));
    let leg = Leg {
        next: B,
        to: QualifiedAddress::new(D, fresh("far away")),
        amount: 500,
        deliver_by: 0,
        path: vec![A, B, C],
        origin,
    };
    let t = system(&rogue, onward(B, &Hash32([7; 32]), leg));
    forge_head(&mut rogue, vec![t.clone()]);
    let (_, r, _) = deliver_batch(&mut b, &rogue, std::slice::from_ref(&t));
    assert_eq!(
        results_to(&r, C),
        vec![result(&t.hash(), 500, Some(BounceReason::Loop), None)]
    );
    assert_eq!(held_of(&b, C, &t.hash()), None);
    let p = peer(&b, C).unwrap();
    assert_eq!((p.corr, p.bounced_in), (0, 1));
    assert_three(&a, &b, &c);
}

#[test]
fn a_leg_not_for_this_chain_is_refused_and_a_malformed_one_bounces_as_a_refused_proof() {
    let (a, mut b, c) = setup(COLLATERAL);
    let origin = QualifiedAddress::new(A, address_of(&a.users[0]));
    let recipient = fresh("leg recipient");
    let leg = |next: ChainId, path: Vec<ChainId>| Leg {
        next,
        to: QualifiedAddress::new(B, recipient),
        amount: 500,
        deliver_by: 0,
        path,
        origin,
    };
    // Rogue producers of C finalise legs C's ledger would never write: one whose path
    // does not end with C, one whose path does not start at its origin's chain (A),
    // and one for A.
    let mut rogue = c.clone();
    let not_last = system(&rogue, onward(B, &Hash32([8; 32]), leg(B, vec![C, A])));
    let not_first = system(&rogue, onward(B, &Hash32([6; 32]), leg(B, vec![C])));
    let elsewhere = system(&rogue, onward(B, &Hash32([9; 32]), leg(A, vec![A, C])));
    forge_head(
        &mut rogue,
        vec![not_last.clone(), not_first.clone(), elsewhere.clone()],
    );

    // Not for B: anyone could carry it here, so it proves nothing against C, and the
    // batch is refused.
    let body = inbound_of(&mut b, &rogue, std::slice::from_ref(&elsewhere));
    assert_eq!(
        refused_system(&mut b, body),
        ProofError::WrongDestination { ours: B, got: A }.into()
    );
    let p = peer(&b, C).unwrap();
    assert_eq!((p.bounced_in, p.refused_proofs()), (0, 0));

    // For B but malformed: only C's producers could have finalised them. Each bounces
    // back to C (`malformed`), is consumed once, and is a proof refused in C's
    // reputation (−10 each); nothing is credited.
    let (_, r, _) = deliver_batch(&mut b, &rogue, &[not_last.clone(), not_first.clone()]);
    assert_eq!(
        results_to(&r, C),
        vec![
            result(&not_last.hash(), 500, Some(BounceReason::Malformed), None),
            result(&not_first.hash(), 500, Some(BounceReason::Malformed), None),
        ]
    );
    let p = peer(&b, C).unwrap();
    assert_eq!(
        (p.corr, p.bounced_in, p.refused_proofs(), p.delivered_in),
        (0, 2, 2, 0)
    );
    assert_eq!(
        p.bounces.get(&BounceReason::Malformed).copied(),
        Some(2),
        "{:?}",
        p.bounces
    );
    assert_eq!(
        reputation(&p, None, b.head_time()),
        100 - 40 - 2 * REFUSED_WEIGHT as u32 - 20,
        "all of C's transfers bounced for reasons of its own, two proofs refused, its \
         account at 0"
    );
    assert_eq!(account(&b, &recipient).balance, 0);
    assert_eq!(held_of(&b, C, &not_last.hash()), None);

    // Counted once: the same proof again is a replay.
    let again = inbound_of(&mut b, &rogue, std::slice::from_ref(&not_last));
    assert!(
        matches!(refused_system(&mut b, again), TxError::AlreadyConsumed(C, h) if h == not_last.hash())
    );
    assert_eq!(peer(&b, C).unwrap().refused_proofs(), 2);
    assert_three(&a, &b, &c);
}

// ---------------------------------------------------------------------------------
// 4. The producer's `Forward`: a bounce, and what the ledger refuses.
// ---------------------------------------------------------------------------------

/// A held on B: the usual setup after A sent `amount` (deadline `deliver_by`) to C via
/// B and B admitted it.
fn held_on_b(amount: u128, deliver_by: u64) -> (TestChain, TestChain, TestChain, Hash32) {
    let (mut a, mut b, c) = setup(COLLATERAL);
    let (tx, _) = send_via(
        &mut a,
        QualifiedAddress::new(C, fresh("held")),
        amount,
        deliver_by,
    );
    let (_, r, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    assert_eq!(results_to(&r, A), vec![]);
    assert_eq!(
        held_state(&b, A, &tx.hash()),
        HeldState::AwaitingHop,
        "held"
    );
    (a, b, c, tx.hash())
}

#[test]
fn a_producer_bounce_gives_a_everything_back_and_a_refunds_once() {
    let (mut a, mut b, c, id) = held_on_b(1_000, 0);
    let sender = key(&a, SENDER);
    let before = balance(&a, &sender);
    assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);

    let (_, r) = include(&mut b, bounce(A, &id, BounceReason::NoRoute));
    let h = b.height();
    assert_eq!(
        (results_to(&r, A), r.amount),
        (
            vec![result(&id, 1_000, Some(BounceReason::NoRoute), None)],
            1_000
        )
    );
    assert_eq!(corr(&b, A), COLLATERAL as i128);
    assert_eq!(held_of(&b, A, &id), None);
    assert_eq!(fees_earned(&b), 0);
    assert_eq!(
        inbound_record(&b.state, A, &id).unwrap().unwrap().outcome,
        Outcome::Bounced {
            source: A,
            source_tx: id,
            reason: BounceReason::NoRoute,
        }
    );
    let p = peer(&b, A).unwrap();
    assert_eq!((p.bounced_in, p.delivered_in), (1, 0));
    assert_eq!(peer(&b, C).unwrap().sent_out, 0);
    assert_three(&a, &b, &c);

    // Nothing left to forward, bounce or release.
    assert_invalid(
        refused_system(&mut b, bounce(A, &id, BounceReason::NoRoute)),
        "awaits its next hop",
    );
    assert_invalid(refused_system(&mut b, release(A, &[id])), "is held");
    assert_eq!(corr(&b, A), COLLATERAL as i128, "given back once");

    let r = settle_back(&mut a, &b, h);
    assert_eq!(settled(&r), vec![settle(&id, false)]);
    assert_eq!(balance(&a, &sender), before + 1_000);
    assert_eq!(
        settled_record(&a.state, &id).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: Some(BounceReason::NoRoute),
            bounced_by: Some(B),
            height: a.height(),
            amount: 1_000,
        })
    );
    let err = refused_system(&mut a, settle_batch(&b, h, &[0], false));
    assert_eq!(err, TxError::NotInFlight(id));
    assert_eq!(balance(&a, &sender), before + 1_000, "refunded once");
    assert_three(&a, &b, &c);
}

#[test]
fn a_producer_may_bounce_for_no_route_a_loop_the_hop_limit_or_expiry_when_due_only() {
    for reason in [
        BounceReason::InsufficientCollateral,
        BounceReason::NoForwarding,
        BounceReason::BelowTransitFee,
        BounceReason::PeerSuspended,
        BounceReason::BadRecipient,
    ] {
        let (_, mut b, _, id) = held_on_b(1_000, 0);
        assert_invalid(
            refused_system(&mut b, bounce(A, &id, reason)),
            "may not bounce",
        );
        assert_eq!(held_state(&b, A, &id), HeldState::AwaitingHop);
        assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);
    }
    // `expired` only when it is: not for a transfer without a deadline, nor for one
    // whose leg still has time to arrive by the block after next.
    for deliver_by in [0, GENESIS_TIME_MS + 600_000] {
        let (_, mut b, _, id) = held_on_b(1_000, deliver_by);
        assert!(!forward::leg_too_late(
            &env_of(&b).params,
            &held_of(&b, A, &id).unwrap(),
            next_time(&b)
        ));
        assert_invalid(
            refused_system(&mut b, bounce(A, &id, BounceReason::Expired)),
            "may not bounce expired",
        );
        assert_eq!(held_state(&b, A, &id), HeldState::AwaitingHop);
    }
    // What routes say is the producer's word.
    for reason in [
        BounceReason::NoRoute,
        BounceReason::Loop,
        BounceReason::HopLimit,
    ] {
        let (a, mut b, c, id) = held_on_b(1_000, 0);
        let (_, r) = include(&mut b, bounce(A, &id, reason));
        assert_eq!(
            results_to(&r, A),
            vec![result(&id, 1_000, Some(reason), None)]
        );
        assert_eq!(corr(&b, A), COLLATERAL as i128);
        assert_three(&a, &b, &c);
    }
}

#[test]
fn a_forward_whose_leg_is_not_the_ledgers_is_refused_and_changes_nothing() {
    let deliver_by = GENESIS_TIME_MS + 600_000;
    let (a, mut b, c, id) = held_on_b(1_000, deliver_by);
    let good = leg_of(&b, A, &id, C);
    let variant = |f: &dyn Fn(&mut Leg)| {
        let mut l = good.clone();
        f(&mut l);
        l
    };
    let wrong = [
        variant(&|l| l.amount = 1_000),
        variant(&|l| l.amount = 989),
        variant(&|l| l.amount = 991),
        variant(&|l| l.path = vec![A]),
        variant(&|l| l.path = vec![B, A]),
        variant(&|l| l.path = vec![A, B, B]),
        variant(&|l| l.deliver_by = deliver_by),
        variant(&|l| l.deliver_by = 0),
        variant(&|l| l.to = QualifiedAddress::new(C, fresh("someone else"))),
        variant(&|l| l.to = QualifiedAddress::new(D, l.to.address)),
        variant(&|l| l.origin = QualifiedAddress::new(A, fresh("not the sender"))),
    ];
    for leg in wrong {
        assert_invalid(refused_system(&mut b, onward(A, &id, leg)), "differs");
    }

    // The next hop must be a registered peer, not on the path, and not B itself.
    let to_d = variant(&|l| l.next = D);
    assert_eq!(
        refused_system(&mut b, onward(A, &id, to_d)),
        TxError::UnknownPeer(D)
    );
    let to_a = variant(&|l| l.next = A);
    assert_invalid(
        refused_system(&mut b, onward(A, &id, to_a)),
        "on the transfer's path",
    );
    let to_b = variant(&|l| l.next = B);
    assert_invalid(
        refused_system(&mut b, onward(A, &id, to_b)),
        "this chain itself",
    );
    // A transfer that is not held, or not from that chain.
    assert_invalid(
        refused_system(&mut b, onward(A, &Hash32([1; 32]), good.clone())),
        "awaits its next hop",
    );
    assert_invalid(
        refused_system(&mut b, onward(C, &id, good.clone())),
        "awaits its next hop",
    );
    assert_eq!(held_state(&b, A, &id), HeldState::AwaitingHop);
    assert_eq!(corr(&b, A), (COLLATERAL - 1_000) as i128);
    assert_eq!(peer(&b, C).unwrap().sent_out, 0);
    assert_three(&a, &b, &c);

    // The ledger's own leg goes.
    let (_, r) = include(&mut b, onward(A, &id, good));
    assert_eq!(r.outcome, Outcome::InFlight { destination: C });
    assert_three(&a, &b, &c);
}

#[test]
fn a_leg_whose_shortened_deadline_has_passed_must_bounce_expired() {
    // Admitted at B before its deadline, but the margin B keeps leaves its leg none.
    let (a, mut b, c, id) = {
        let (mut a, mut b, c) = setup(COLLATERAL);
        let deliver_by = next_time(&a) + 3_000;
        let (tx, _) = send_via(
            &mut a,
            QualifiedAddress::new(C, fresh("late")),
            500,
            deliver_by,
        );
        let (_, r, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
        assert_eq!(results_to(&r, A), vec![], "admitted before its deadline");
        (a, b, c, tx.hash())
    };
    let leg = leg_of(&b, A, &id, C);
    assert!(leg.deliver_by <= next_time(&b));
    assert!(forward::leg_too_late(
        &env_of(&b).params,
        &held_of(&b, A, &id).unwrap(),
        next_time(&b)
    ));
    // (A deadline the margin would push below zero stays a deadline, not "none".)
    let mut early = held_of(&b, A, &id).unwrap();
    early.deliver_by = 3_000;
    assert_eq!(
        forward::leg_for(&env_of(&b), &early, C).unwrap().deliver_by,
        1
    );
    assert_invalid(
        refused_system(&mut b, onward(A, &id, leg)),
        "deadline has passed",
    );
    let (_, r) = include(&mut b, bounce(A, &id, BounceReason::Expired));
    assert_eq!(
        results_to(&r, A),
        vec![result(&id, 500, Some(BounceReason::Expired), None)]
    );
    assert_eq!(corr(&b, A), COLLATERAL as i128);
    assert_three(&a, &b, &c);
}

// ---------------------------------------------------------------------------------
// Held again at C (a third hop that does not happen).
// ---------------------------------------------------------------------------------

#[test]
fn a_leg_held_again_and_bounced_beyond_comes_back_naming_that_chain() {
    // C forwards too (for free), but knows no route to D.
    let (mut a, mut b, mut c) = trio_with(|_| {}, |p| p.forwarding = true);
    deposit(&mut b, A, COLLATERAL);
    deposit(&mut c, B, COLLATERAL);
    let sender = key(&a, SENDER);
    let origin = QualifiedAddress::new(A, address_of(&sender));
    let before = balance(&a, &sender);
    let to = QualifiedAddress::new(D, fresh("beyond C"));
    let (tx, _) = send_via(&mut a, to, 1_000, 0);
    let id = tx.hash();
    deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    let leg = leg_of(&b, A, &id, C);
    let (fwd, _) = include(&mut b, onward(A, &id, leg));
    let leg_id = fwd.hash();

    // C holds B's leg (its final chain is D) and says nothing of it yet.
    let (_, r, h_c) = deliver_batch(&mut c, &b, std::slice::from_ref(&fwd));
    assert_eq!((results_to(&r, B), r.amount), (vec![], 990));
    assert_eq!(corr(&c, B), (COLLATERAL - 990) as i128);
    assert_eq!(
        held_of(&c, B, &leg_id),
        Some(Held {
            to,
            origin,
            amount: 990,
            deliver_by: 0,
            path: vec![A, B],
            height: h_c,
            state: HeldState::AwaitingHop,
        })
    );
    assert_eq!(
        forward::leg_for(&env_of(&c), &held_of(&c, B, &leg_id).unwrap(), D)
            .unwrap()
            .path,
        vec![A, B, C]
    );
    // That receipt settles nothing on B.
    let r = settle_back(&mut b, &c, h_c);
    assert_eq!(settled(&r), vec![]);
    assert!(ledger::in_flight(&b.state, &leg_id).unwrap().is_some());
    // C may not send it back to B (on its path), and has no route to D.
    let back = forward::leg_for(&env_of(&c), &held_of(&c, B, &leg_id).unwrap(), B).unwrap();
    assert_invalid(
        refused_system(&mut c, onward(B, &leg_id, back)),
        "on the transfer's path",
    );
    let (_, r) = include(&mut c, bounce(B, &leg_id, BounceReason::NoRoute));
    let h_b = c.height();
    assert_eq!(
        results_to(&r, B),
        vec![result(&leg_id, 990, Some(BounceReason::NoRoute), None)]
    );
    assert_eq!(corr(&c, B), COLLATERAL as i128);
    assert_three(&a, &b, &c);

    // B's leg settles bounced by C; B's release names C; A refunds.
    let r = settle_back(&mut b, &c, h_b);
    assert_eq!(settled(&r), vec![settle(&leg_id, false)]);
    assert_eq!(
        held_state(&b, A, &id),
        HeldState::Settled {
            bounced: Some((BounceReason::NoRoute, C)),
            fee: TRANSIT_FEE,
        }
    );
    let (_, r) = include(&mut b, release(A, &[id]));
    assert_eq!(
        results_to(&r, A),
        vec![result(&id, 1_000, Some(BounceReason::NoRoute), Some(C))]
    );
    assert_eq!(corr(&b, A), COLLATERAL as i128);
    let h_rel = b.height();
    settle_back(&mut a, &b, h_rel);
    assert_eq!(balance(&a, &sender), before - FEE);
    let rec = settled_record(&a.state, &id).unwrap().unwrap();
    assert_eq!(
        (rec.bounced, rec.bounced_by),
        (Some(BounceReason::NoRoute), Some(C))
    );
    assert_three(&a, &b, &c);
}

#[test]
fn a_leg_beyond_the_hop_limit_of_the_next_chain_bounces_there() {
    // C would forward, but allows two legs only: A→B and B→C have been travelled.
    let (mut a, mut b, mut c) = trio_with(
        |_| {},
        |p| {
            p.forwarding = true;
            p.max_hops = 2;
        },
    );
    deposit(&mut b, A, COLLATERAL);
    deposit(&mut c, B, COLLATERAL);
    let (tx, _) = send_via(&mut a, QualifiedAddress::new(D, fresh("too far")), 1_000, 0);
    let id = tx.hash();
    deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    let leg = leg_of(&b, A, &id, C);
    let (fwd, _) = include(&mut b, onward(A, &id, leg));
    let (_, r, h_c) = deliver_batch(&mut c, &b, std::slice::from_ref(&fwd));
    assert_eq!(
        results_to(&r, B),
        vec![result(&fwd.hash(), 990, Some(BounceReason::HopLimit), None)]
    );
    assert_eq!(held_of(&c, B, &fwd.hash()), None);
    assert_eq!(corr(&c, B), COLLATERAL as i128);
    settle_back(&mut b, &c, h_c);
    let (_, r) = include(&mut b, release(A, &[id]));
    assert_eq!(
        results_to(&r, A),
        vec![result(&id, 1_000, Some(BounceReason::HopLimit), Some(C))]
    );
    assert_three(&a, &b, &c);
}

/// C's transit fee in the four-chain line (B keeps [`TRANSIT_FEE`]).
const C_FEE: u128 = 5;

fn c_fee_account() -> Address {
    fresh("transit fees of C")
}

/// A–B–C–D: A sends to D via B; B forwards to C, C holds it again and forwards to D,
/// which holds `d_collateral` for C. The result travels back leg by leg: D's receipt
/// settles C's leg, C's release settles B's, B's release settles A's transfer; a
/// bounce names D all the way back; each forwarder keeps its fee only on a delivery.
fn three_hops(d_collateral: u128) {
    let pc = params(|p| {
        p.forwarding = true;
        p.transit_fee = C_FEE;
        p.transit_fee_to = c_fee_account();
    });
    let mut chains = line(vec![
        (A, TestChain::dev_params()),
        (B, forwarder()),
        (C, pc),
        (D, TestChain::dev_params()),
    ])
    .into_iter();
    let mut next = || chains.next().unwrap();
    let (mut a, mut b, mut c, mut d) = (next(), next(), next(), next());
    let all = |a: &TestChain, b: &TestChain, c: &TestChain, d: &TestChain| {
        assert_three(a, b, c);
        assert_supply(d);
    };
    deposit(&mut b, A, COLLATERAL);
    deposit(&mut c, B, COLLATERAL);
    if d_collateral > 0 {
        deposit(&mut d, C, d_collateral);
    }
    let sender = key(&a, SENDER);
    let origin = QualifiedAddress::new(A, address_of(&sender));
    let before = balance(&a, &sender);
    let recipient = fresh("three hops");
    let to = QualifiedAddress::new(D, recipient);
    let (tx, _) = send_via(&mut a, to, 1_000, 0);
    let id = tx.hash();

    // B holds it and forwards it to C.
    deliver_batch(&mut b, &a, std::slice::from_ref(&tx));
    let leg = leg_of(&b, A, &id, C);
    let (fwd_b, _) = include(&mut b, onward(A, &id, leg));
    let leg_b = fwd_b.hash();
    all(&a, &b, &c, &d);

    // C holds B's leg and forwards it to D, less its own fee, C on the path.
    let (_, r, _) = deliver_batch(&mut c, &b, std::slice::from_ref(&fwd_b));
    assert_eq!(results_to(&r, B), vec![]);
    let leg = leg_of(&c, B, &leg_b, D);
    assert_eq!(
        leg,
        Leg {
            next: D,
            to,
            amount: 1_000 - TRANSIT_FEE - C_FEE,
            deliver_by: 0,
            path: vec![A, B, C],
            origin,
        }
    );
    let (fwd_c, _) = include(&mut c, onward(B, &leg_b, leg));
    let leg_c = fwd_c.hash();
    all(&a, &b, &c, &d);

    // D delivers (or bounces) C's leg; its receipt settles C's leg.
    let delivered = d_collateral >= 985;
    let reason = (!delivered).then_some(BounceReason::InsufficientCollateral);
    let (_, r, h_d) = deliver_batch(&mut d, &c, std::slice::from_ref(&fwd_c));
    assert_eq!(results_to(&r, C), vec![result(&leg_c, 985, reason, None)]);
    assert_eq!(
        inbound_record(&d.state, C, &leg_c).unwrap().unwrap().sender,
        origin
    );
    assert_eq!(
        account(&d, &recipient).balance,
        if delivered { 985 } else { 0 }
    );
    let r = settle_back(&mut c, &d, h_d);
    assert_eq!(settled(&r), vec![settle(&leg_c, delivered)]);
    assert_eq!(
        held_state(&c, B, &leg_b),
        HeldState::Settled {
            bounced: reason.map(|r| (r, D)),
            fee: C_FEE,
        }
    );
    all(&a, &b, &c, &d);

    // C's release settles B's leg, naming D if it bounced.
    let (_, r) = include(&mut c, release(B, &[leg_b]));
    let h_c = c.height();
    let by_d = reason.map(|_| D);
    assert_eq!(results_to(&r, B), vec![result(&leg_b, 990, reason, by_d)]);
    let r = settle_back(&mut b, &c, h_c);
    assert_eq!(settled(&r), vec![settle(&leg_b, delivered)]);
    assert_eq!(
        settled_record(&b.state, &leg_b)
            .unwrap()
            .unwrap()
            .bounced_by,
        by_d
    );
    assert_eq!(
        held_state(&b, A, &id),
        HeldState::Settled {
            bounced: reason.map(|r| (r, D)),
            fee: TRANSIT_FEE,
        }
    );
    all(&a, &b, &c, &d);

    // B's release settles A's transfer, naming D if it bounced.
    let (_, r) = include(&mut b, release(A, &[id]));
    let h_b = b.height();
    assert_eq!(results_to(&r, A), vec![result(&id, 1_000, reason, by_d)]);
    let r = settle_back(&mut a, &b, h_b);
    assert_eq!(settled(&r), vec![settle(&id, delivered)]);
    assert_eq!(
        settled_record(&a.state, &id).unwrap(),
        Some(SettledRecord {
            destination: B,
            bounced: reason,
            bounced_by: by_d,
            height: a.height(),
            amount: 1_000,
        })
    );
    all(&a, &b, &c, &d);

    // Where every token is.
    let (paid, fee_b, fee_c) = if delivered {
        (1_000, TRANSIT_FEE, C_FEE)
    } else {
        (0, 0, 0)
    };
    assert_eq!(balance(&a, &sender), before - FEE - paid);
    assert_eq!(corr(&a, B), paid as i128);
    assert_eq!(corr(&b, A), (COLLATERAL - paid) as i128);
    assert_eq!(corr(&b, C), (paid - fee_b) as i128);
    assert_eq!(fees_earned(&b), fee_b);
    assert_eq!(corr(&c, B), (COLLATERAL - (paid - fee_b)) as i128);
    assert_eq!(corr(&c, D), (paid - fee_b - fee_c) as i128);
    assert_eq!(account(&c, &c_fee_account()).balance, fee_c);
    assert_eq!(corr(&d, C), (d_collateral - (paid - fee_b - fee_c)) as i128);
    for (chain, source, tx) in [(&b, A, id), (&c, B, leg_b)] {
        assert_eq!(held_of(chain, source, &tx), None);
    }
}

#[test]
fn three_hops_deliver_and_each_forwarder_keeps_its_fee() {
    three_hops(COLLATERAL);
}

#[test]
fn a_bounce_two_chains_away_comes_back_naming_that_chain_at_every_hop() {
    three_hops(0);
}

// ---------------------------------------------------------------------------------
// 5. `via` on the first chain.
// ---------------------------------------------------------------------------------

#[test]
fn the_first_chain_refuses_a_via_that_makes_no_sense() {
    let (mut a, _, _) = setup(COLLATERAL);
    let x = fresh("via");
    let at = |chain: ChainId| QualifiedAddress::new(chain, x);

    // Naming the destination itself, this chain, or chain 0.
    assert_invalid(
        refused(&mut a, via_body(at(B), 100, 0, 0, Some(B))),
        "via must name",
    );
    assert_invalid(
        refused(&mut a, via_body(at(C), 100, 0, 0, Some(A))),
        "via must name",
    );
    assert_invalid(
        refused(&mut a, via_body(at(C), 100, 0, 0, Some(ChainId::LOCAL))),
        "via must name",
    );
    // On a local transfer, either spelling.
    assert_invalid(
        refused(
            &mut a,
            via_body(QualifiedAddress::local(x), 100, 0, 0, Some(B)),
        ),
        "via is for transfers to another chain",
    );
    assert_invalid(
        refused(&mut a, via_body(at(A), 100, 0, 0, Some(B))),
        "via is for transfers to another chain",
    );
    // With the fast path.
    assert_invalid(
        refused(&mut a, via_body(at(C), 100, 0, 5, Some(B))),
        "fast_fee must be 0",
    );
    // Through a chain that is not a peer (and straight to one, without via).
    assert_eq!(
        refused(&mut a, via_body(at(D), 100, 0, 0, Some(C))),
        TxError::UnknownPeer(C)
    );
    assert_eq!(
        refused(&mut a, via_body(at(C), 100, 0, 0, None)),
        TxError::UnknownPeer(C)
    );
    // Through a suspended peer.
    govern(&mut a, GovAction::SuspendPeer { chain: B });
    assert_eq!(
        refused(&mut a, via_body(at(C), 100, 0, 0, Some(B))),
        TxError::PeerSuspended(B)
    );
    assert_supply(&a);
}

// ---------------------------------------------------------------------------------
// Property: any mix of fates settles each transfer once, supply holding throughout.
// ---------------------------------------------------------------------------------

/// What becomes of one transfer in the property test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Forwarded, and delivered on C.
    Delivered,
    /// Forwarded, and bounced by C (no collateral there).
    BouncedByC,
    /// Bounced by B's producer (no route).
    NoRoute,
}

fn fate() -> impl proptest::strategy::Strategy<Value = Fate> {
    proptest::prop_oneof![
        proptest::strategy::Just(Fate::Delivered),
        proptest::strategy::Just(Fate::BouncedByC),
        proptest::strategy::Just(Fate::NoRoute),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Transfers sent together via B meet different fates (delivered on C, bounced by
    /// C, bounced by B's producer): each is settled on A exactly once, as what became
    /// of it and naming the chain that bounced it; the fee is earned on deliveries
    /// only; no hold or in-flight entry is left; supply holds on all three chains after
    /// every step.
    #[test]
    fn forwarded_transfers_settle_once_whatever_their_fates(
        plan in proptest::collection::vec((11u128..2_000, fate()), 1..5)
    ) {
        let (mut a, mut b, mut c) = setup(0);
        let sender = key(&a, SENDER);
        let before = balance(&a, &sender);
        let recipient = fresh("property");
        let to = QualifiedAddress::new(C, recipient);
        let sends: Vec<_> = plan.iter().map(|&(amount, _)| (to, amount, 0)).collect();
        let txs: Vec<Transaction> = send_all_via(&mut a, &sends)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_three(&a, &b, &c);

        // B holds them all; its producer forwards or bounces each, in one block.
        let (_, r, _) = deliver_batch(&mut b, &a, &txs);
        proptest::prop_assert_eq!(results_to(&r, A), vec![]);
        assert_three(&a, &b, &c);
        let bodies: Vec<Body> = txs
            .iter()
            .zip(&plan)
            .map(|(t, &(_, f))| match f {
                Fate::NoRoute => bounce(A, &t.hash(), BounceReason::NoRoute),
                _ => onward(A, &t.hash(), leg_of(&b, A, &t.hash(), C)),
            })
            .collect();
        let forwards = include_all(&mut b, bodies);
        let h_fwd = b.height();
        assert_three(&a, &b, &c);

        // C takes each leg in its own batch, with exactly its amount of B's collateral
        // when it is to be delivered, none otherwise.
        let mut c_blocks = Vec::new();
        for ((fwd, _), &(amount, f)) in forwards.iter().zip(&plan) {
            if f == Fate::NoRoute {
                continue;
            }
            if f == Fate::Delivered {
                deposit(&mut c, B, amount - TRANSIT_FEE);
            }
            let (_, r, h) = deliver_batch(&mut c, &b, std::slice::from_ref(fwd));
            let bounced = (f == Fate::BouncedByC).then_some(BounceReason::InsufficientCollateral);
            proptest::prop_assert_eq!(
                results_to(&r, B),
                vec![result(&fwd.hash(), amount - TRANSIT_FEE, bounced, None)]
            );
            proptest::prop_assert_eq!(corr(&c, B), 0);
            c_blocks.push(h);
            assert_three(&a, &b, &c);
        }

        // B settles its legs and releases everything it forwarded, in one release.
        for h in &c_blocks {
            settle_back(&mut b, &c, *h);
            assert_three(&a, &b, &c);
        }
        let released: Vec<Hash32> = txs
            .iter()
            .zip(&plan)
            .filter(|(_, &(_, f))| f != Fate::NoRoute)
            .map(|(t, _)| t.hash())
            .collect();
        let h_rel = if released.is_empty() {
            None
        } else {
            include(&mut b, release(A, &released));
            assert_three(&a, &b, &c);
            Some(b.height())
        };

        // A settles the bounces of the forward block and the release.
        let mut settled_on_a = Vec::new();
        if plan.iter().any(|&(_, f)| f == Fate::NoRoute) {
            settled_on_a.extend(settled(&settle_back(&mut a, &b, h_fwd)));
            assert_three(&a, &b, &c);
        }
        if let Some(h) = h_rel {
            settled_on_a.extend(settled(&settle_back(&mut a, &b, h)));
            assert_three(&a, &b, &c);
        }
        proptest::prop_assert_eq!(settled_on_a.len(), txs.len(), "each settled once");

        let mut delivered_sum = 0u128;
        let mut delivered_count = 0u128;
        for (t, &(amount, f)) in txs.iter().zip(&plan) {
            let rec = settled_record(&a.state, &t.hash()).unwrap().unwrap();
            let expected = match f {
                Fate::Delivered => (None, None),
                Fate::BouncedByC => (Some(BounceReason::InsufficientCollateral), Some(C)),
                Fate::NoRoute => (Some(BounceReason::NoRoute), Some(B)),
            };
            proptest::prop_assert_eq!((rec.bounced, rec.bounced_by), expected);
            proptest::prop_assert!(
                settled_on_a.contains(&settle(&t.hash(), f == Fate::Delivered))
            );
            proptest::prop_assert_eq!(ledger::in_flight(&a.state, &t.hash()).unwrap(), None);
            proptest::prop_assert_eq!(held_of(&b, A, &t.hash()), None);
            if f == Fate::Delivered {
                delivered_sum += amount;
                delivered_count += 1;
            }
        }
        for (fwd, _) in &forwards {
            proptest::prop_assert_eq!(ledger::in_flight(&b.state, &fwd.hash()).unwrap(), None);
        }
        let fees = plan.len() as u128 * FEE;
        proptest::prop_assert_eq!(balance(&a, &sender), before - fees - delivered_sum);
        proptest::prop_assert_eq!(corr(&a, B), delivered_sum as i128);
        proptest::prop_assert_eq!(corr(&b, A), (COLLATERAL - delivered_sum) as i128);
        let legs_delivered = delivered_sum - delivered_count * TRANSIT_FEE;
        proptest::prop_assert_eq!(corr(&b, C), legs_delivered as i128);
        proptest::prop_assert_eq!(fees_earned(&b), delivered_count * TRANSIT_FEE);
        proptest::prop_assert_eq!(account(&c, &recipient).balance, legs_delivered);

        // Settling the release again is refused.
        if let Some(h) = h_rel {
            let err = refused_system(&mut a, settle_batch(&b, h, &[0], false));
            proptest::prop_assert_eq!(err, TxError::NotInFlight(released[0]));
        }
        assert_three(&a, &b, &c);
    }
}
