//! Double-sign evidence and slashing (DESIGN §4.4): two different headers signed by
//! one producer for one slot burn `slash_fraction_bps` of its stake exactly once, mark
//! it slashed and keep it out of the next schedule; anything else is not evidence.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use distpos_chain::{
    apply_block, build_block, ledger,
    supply::audit_supply,
    testkit::{address_of, TestChain, PRODUCER_STAKE},
    Body, TxError,
};
use distpos_proofs::{
    consensus::EvidenceError, ChainId, Hash32, SecretKey, SignatureError, SignedHeader,
};

/// A 3-producer chain with 3 blocks (slots 1, 2, 3 by producers 1, 2, 0).
fn setup() -> TestChain {
    let mut c = TestChain::new(CHAIN, 3, 2, TestChain::dev_params());
    c.produce_empty(3).unwrap();
    c
}

/// The header of block `i` and a different one for the same slot, both signed by the
/// producer of block `i`.
fn double_sign(c: &TestChain, i: usize) -> (SignedHeader, SignedHeader, SecretKey) {
    let a = c.blocks[i].header.clone();
    let key = c
        .producers
        .iter()
        .find(|k| k.public_key() == a.header.producer)
        .unwrap()
        .clone();
    let mut b = a.header.clone();
    b.tx_count += 1;
    b.state_digest = Hash32([7; 32]);
    (a, b.sign(&key), key)
}

fn evidence(a: &SignedHeader, b: &SignedHeader) -> Body {
    Body::Evidence {
        header_a: Box::new(a.clone()),
        header_b: Box::new(b.clone()),
    }
}

#[test]
fn double_signing_burns_the_slash_fraction_of_stake_once() {
    let mut c = setup();
    let u0 = c.users[0].clone();
    let (a, b, key) = double_sign(&c, 0);
    let cheater = address_of(&key);
    let before = account(&c, &cheater);
    let burned_before = ledger::meta(&c.state).unwrap().burned;
    let tx = c.tx(&u0, 1, evidence(&a, &b));
    let built = produce_ok(&mut c, &[tx]);
    // 1000 bps of 100_000.
    let penalty = PRODUCER_STAKE / 10;
    assert_eq!(built.applied.receipts[0].amount, penalty);
    let after = account(&c, &cheater);
    assert_eq!(after.stake, before.stake - penalty);
    // Only stake is taken (the cheater also happens to produce this block: slot 4).
    assert_eq!(producer_key_of(&c, &built).public_key(), key.public_key());
    assert_eq!(after.balance, before.balance + 10 + 1);
    assert_eq!(after.unbonding, 0);
    assert_eq!(
        ledger::meta(&c.state).unwrap().burned,
        burned_before + penalty
    );
    let p = producer(&c, &cheater);
    assert!(p.slashed);
    assert_eq!(
        p.total_votes,
        PRODUCER_STAKE - penalty,
        "its own vote weighs less"
    );
    assert_supply(&c);

    // The same evidence, swapped, or another pair for the same slot: applied already.
    let mut other = a.header.clone();
    other.receipts_root = Hash32([9; 32]);
    let other = other.sign(&key);
    for (x, y) in [(&a, &b), (&b, &a), (&a, &other)] {
        let again = c.unsigned(2, 1, evidence(x, y)).sign(&u0);
        assert_eq!(validate(&c, &again), Err(TxError::EvidenceApplied(1)));
    }
    let again = c.tx(&u0, 1, evidence(&b, &a));
    assert_eq!(
        produce_rejected(&mut c, &again),
        TxError::EvidenceApplied(1)
    );
    assert_eq!(account(&c, &cheater).stake, PRODUCER_STAKE - penalty);
    assert_supply(&c);
}

#[test]
fn a_slashed_producer_leaves_the_next_schedule() {
    let mut c = setup();
    let u0 = c.users[0].clone();
    let (a, b, key) = double_sign(&c, 1);
    let tx = c.tx(&u0, 1, evidence(&a, &b));
    produce_ok(&mut c, &[tx]);
    let mut announced = None;
    for _ in 0..6 {
        let built = c.produce(&[]).unwrap();
        if let Some(s) = built.block.header.header.new_schedule {
            announced = Some(s);
            break;
        }
    }
    let s = announced.expect("a schedule change at the next round boundary");
    assert_eq!(s.len(), 2);
    assert!(!s.contains(&key.public_key()));
    // Re-registering does not clear the mark.
    let reg = c.tx(
        &key,
        1,
        Body::RegisterProducer {
            signing_key: key.public_key(),
            url: String::new(),
        },
    );
    produce_ok(&mut c, &[reg]);
    assert!(producer(&c, &address_of(&key)).slashed);
    assert!(
        !distpos_chain::votes::elect(&c.state, &ledger::params(&c.state).unwrap())
            .unwrap()
            .iter()
            .any(|(addr, _)| addr == &address_of(&key))
    );
}

#[test]
fn slashing_takes_stake_but_not_unbonding_tokens() {
    let mut c = setup();
    let u0 = c.users[0].clone();
    let (a, b, key) = double_sign(&c, 2);
    let unstake = c.tx(&key, 1, Body::Unstake { amount: 20_000 });
    produce_ok(&mut c, &[unstake]);
    let tx = c.tx(&u0, 1, evidence(&a, &b));
    produce_ok(&mut c, &[tx]);
    let acct = account(&c, &address_of(&key));
    assert_eq!(acct.stake, 80_000 - 8_000);
    assert_eq!(acct.unbonding, 20_000);
    assert_eq!(ledger::meta(&c.state).unwrap().burned, 8_000);
    assert_supply(&c);
}

#[test]
fn invalid_evidence_is_refused() {
    let mut c = setup();
    c.produce_empty(3).unwrap(); // slots 4, 5, 6: producers 1, 2, 0 sign again
    let u0 = c.users[0].clone();
    let (a, b, key) = double_sign(&c, 0);
    let check = |x: &SignedHeader, y: &SignedHeader| {
        validate(&c, &c.unsigned(1, 1, evidence(x, y)).sign(&u0))
    };
    let bad = |e: EvidenceError| Err(TxError::BadEvidence(e));
    // The same header twice.
    assert_eq!(check(&a, &a), bad(EvidenceError::SameBlock));
    // Two real blocks of the same producer in different slots (1 and 4).
    let later = c.blocks[3].header.clone();
    assert_eq!(later.header.producer, key.public_key());
    assert_eq!(check(&a, &later), bad(EvidenceError::DifferentSlots));
    // A timestamp that is no slot boundary.
    let mut off = a.header.clone();
    off.timestamp_ms += 1;
    assert_eq!(
        check(&a, &off.sign(&key)),
        bad(EvidenceError::DifferentSlots)
    );
    // Different signers.
    assert_eq!(
        check(&a, &c.blocks[1].header),
        bad(EvidenceError::DifferentProducers)
    );
    // A header changed after signing.
    let mut forged = a.clone();
    forged.header.tx_count += 1;
    assert_eq!(
        check(&a, &forged),
        bad(EvidenceError::BadSignature(SignatureError::Mismatch))
    );
    // Another chain's headers.
    let mut x = a.header.clone();
    x.chain_id = ChainId(0xbeef);
    let mut y = b.header.clone();
    y.chain_id = ChainId(0xbeef);
    assert_eq!(
        check(&x.sign(&key), &y.sign(&key)),
        bad(EvidenceError::WrongChain(ChainId(0xbeef)))
    );
    // A key that no producer uses.
    let stranger = SecretKey::from_seed(b"stranger");
    let mut s1 = a.header.clone();
    s1.producer = stranger.public_key();
    let mut s2 = b.header.clone();
    s2.producer = stranger.public_key();
    assert!(matches!(
        check(&s1.sign(&stranger), &s2.sign(&stranger)),
        Err(TxError::UnknownProducerKey(_))
    ));
    // Nothing was slashed.
    assert_eq!(ledger::meta(&c.state).unwrap().burned, 0);
    assert!(audit_supply(&c.state).unwrap().holds());
}

#[test]
fn evidence_undone_by_a_reorg_can_be_applied_again() {
    let mut c = setup();
    let u0 = c.users[0].clone();
    let (a, b, _) = double_sign(&c, 0);
    let tx = c.tx(&u0, 1, evidence(&a, &b));
    let before = c.state.clone();
    let slot = c.next_slot(0);
    let (key, time) = (c.signer_for_slot(slot).unwrap(), c.slot_time(slot));
    let built = build_block(&c.state, &key, time, [&tx]).unwrap();
    assert!(built.rejected.is_empty());
    let applied = apply_block(&c.state, &built.block, time).unwrap();
    let undo = c.state.commit(&applied);
    assert_eq!(validate(&c, &tx), Err(TxError::Duplicate(tx.hash())));
    c.state.revert(&undo);
    assert_eq!(c.state, before);
    validate(&c, &tx).unwrap();
}

#[test]
fn a_producer_is_slashed_once_whatever_the_number_of_double_signed_slots() {
    let mut c = setup();
    c.produce_empty(3).unwrap(); // slots 4, 5, 6 by producers 1, 2, 0
    let (a1, b1, key) = double_sign(&c, 2);
    let (a2, b2, key2) = double_sign(&c, 5);
    assert_eq!(key.public_key(), key2.public_key(), "both by producer 0");
    let cheater = address_of(&key);
    let reporter = c.users[0].clone();
    let first = c.tx(&reporter, 1, evidence(&a1, &b1));
    produce_ok(&mut c, &[first]);
    let once = PRODUCER_STAKE - PRODUCER_STAKE / 10;
    assert_eq!(ledger::account(&c.state, &cheater).unwrap().stake, once);
    let second = c.tx(&reporter, 1, evidence(&a2, &b2));
    assert_eq!(validate(&c, &second), Err(TxError::AlreadySlashed(cheater)));
    assert_eq!(
        ledger::account(&c.state, &cheater).unwrap().stake,
        once,
        "stake taken once"
    );
}
