//! Election and schedule changes (DESIGN §4.2, §4.3): a newly voted candidate enters
//! the schedule through `new_schedule` at a round boundary, the change takes effect
//! once that header is irreversible, the new producer then signs blocks; with a full
//! set the least-voted producer leaves; unvoting removes a candidate.
// Helpers outside `#[test]` functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use distpos_chain::{
    ledger,
    testkit::{address_of, TestChain, PRODUCER_STAKE},
    Address, Body,
};
use distpos_proofs::{ProducerSchedule, PublicKey, SecretKey};
use std::collections::BTreeSet;

fn key_set(keys: &[PublicKey]) -> BTreeSet<PublicKey> {
    keys.iter().copied().collect()
}

/// Produces empty blocks until one carries `new_schedule` (at most `max` blocks);
/// checks it is the first block of a round and that no pending change existed.
/// Returns the carrying height and the schedule.
fn produce_until_new_schedule(c: &mut TestChain, max: usize) -> (u64, ProducerSchedule) {
    for _ in 0..max {
        let before = ledger::consensus(&c.state).unwrap();
        let built = c.produce(&[]).unwrap();
        let h = &built.block.header.header;
        if let Some(s) = &h.new_schedule {
            let slot = c.next_slot(0) - 1;
            assert_ne!(
                before.active.round_of(slot),
                before.active.round_of(before.slot),
                "new_schedule must come in the first block of a round"
            );
            assert!(before.pending.is_none());
            assert_eq!(s.version, before.active.version + 1);
            return (h.height, s.clone());
        }
    }
    panic!("no new_schedule within {max} blocks");
}

/// Produces empty blocks until `schedule` is active, checking that it becomes active
/// exactly when the block that carried it (`at`) is irreversible.
fn produce_until_active(c: &mut TestChain, at: u64, schedule: &ProducerSchedule) {
    for _ in 0..20 {
        let cons = ledger::consensus(&c.state).unwrap();
        if cons.lib >= at {
            assert_eq!(&cons.active, schedule);
            assert!(cons.pending.is_none());
            return;
        }
        assert_ne!(&cons.active, schedule, "active before irreversible");
        assert_eq!(
            cons.pending.as_ref().map(|p| (p.height, &p.schedule)),
            Some((at, schedule))
        );
        c.produce(&[]).unwrap();
    }
    panic!("schedule never became active");
}

/// Has user 0 stake `stake`, register with a new signing key and vote for `votes`
/// (itself included by the caller). Returns (account, signing key).
fn candidate(c: &mut TestChain, stake: u128, votes: &[Address]) -> (Address, SecretKey) {
    let u0 = c.users[0].clone();
    let key = SecretKey::from_seed(b"candidate signing key");
    let txs = vec![
        c.tx(&u0, 1, Body::Stake { amount: stake }),
        c.tx(
            &u0,
            1,
            Body::RegisterProducer {
                signing_key: key.public_key(),
                url: "https://candidate.example".into(),
            },
        ),
        c.tx(
            &u0,
            1,
            Body::Vote {
                producers: votes.to_vec(),
            },
        ),
    ];
    produce_ok(c, &txs);
    c.extra_signers.push(key.clone());
    (address_of(&u0), key)
}

/// A 3-producer chain where user 0 became the 4th active producer.
fn with_fourth_producer() -> (TestChain, Address, SecretKey, ProducerSchedule) {
    let mut c = TestChain::new(CHAIN, 3, 1, TestChain::dev_params());
    c.produce_empty(1).unwrap(); // slot 1: round 0
    let me = address_of(&c.users[0]);
    let (addr, key) = candidate(&mut c, 50_000, &[me]); // slot 2: still round 0
    assert!(c.blocks[1].header.header.new_schedule.is_none());
    assert_eq!(producer(&c, &addr).total_votes, 50_000);
    let (at, schedule) = produce_until_new_schedule(&mut c, 1); // slot 3: round 1
    assert_eq!(at, 3);
    let mut want: Vec<PublicKey> = c.producers.iter().map(SecretKey::public_key).collect();
    want.push(key.public_key());
    assert_eq!(key_set(&schedule.producers), key_set(&want));
    assert_eq!(schedule.version, 1);
    produce_until_active(&mut c, at, &schedule);
    (c, addr, key, schedule)
}

#[test]
fn a_voted_candidate_enters_the_schedule_and_produces() {
    let (mut c, addr, key, schedule) = with_fourth_producer();
    let cons = ledger::consensus(&c.state).unwrap();
    assert_eq!(cons.active, schedule);
    // 8 consecutive slots with 4 producers: everyone signs exactly twice.
    let before = producer(&c, &addr).produced;
    let from = c.blocks.len();
    c.produce_empty(8).unwrap();
    let by_new = c.blocks[from..]
        .iter()
        .filter(|b| b.header.header.producer == key.public_key())
        .count();
    assert_eq!(by_new, 2);
    assert_eq!(producer(&c, &addr).produced, before + 2);
    assert_eq!(producer(&c, &addr).missed, 0);
    // A follower that only imports the blocks agrees.
    let mut follower = TestChain::from_genesis(c.genesis.clone(), vec![], vec![]);
    for b in &c.blocks {
        follower.import(b).unwrap();
    }
    assert_eq!(follower.state, c.state);
}

#[test]
fn with_a_full_set_the_least_voted_producer_leaves() {
    let mut c = TestChain::new(CHAIN, 3, 1, params(|p| p.max_producers = 3));
    let (p0, p1, p2) = (
        address_of(&c.producers[0]),
        address_of(&c.producers[1]),
        address_of(&c.producers[2]),
    );
    c.produce_empty(1).unwrap();
    let me = address_of(&c.users[0]);
    let (addr, key) = candidate(&mut c, 200_000, &[me, p0, p1]);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE + 200_000);
    assert_eq!(producer(&c, &p2).total_votes, PRODUCER_STAKE);
    assert_eq!(producer(&c, &addr).total_votes, 200_000);
    let (at, schedule) = produce_until_new_schedule(&mut c, 3);
    let want = key_set(&[
        c.producers[0].public_key(),
        c.producers[1].public_key(),
        key.public_key(),
    ]);
    assert_eq!(key_set(&schedule.producers), want);
    produce_until_active(&mut c, at, &schedule);
    let p2_produced = producer(&c, &p2).produced;
    let p2_missed = producer(&c, &p2).missed;
    let from = c.blocks.len();
    c.produce_empty(6).unwrap();
    assert!(c.blocks[from..]
        .iter()
        .all(|b| b.header.header.producer != c.producers[2].public_key()));
    assert_eq!(producer(&c, &p2).produced, p2_produced);
    assert_eq!(
        producer(&c, &p2).missed,
        p2_missed,
        "not scheduled, so not missing"
    );
    assert_eq!(producer(&c, &addr).produced, 2);
    // The same election gives the same set, so no further change is announced.
    assert!(c.blocks[from..]
        .iter()
        .all(|b| b.header.header.new_schedule.is_none()));
}

#[test]
fn unvoting_removes_a_candidate_at_the_following_election() {
    let (mut c, addr, key, v1) = with_fourth_producer();
    let u0 = c.users[0].clone();
    let unvote = c.tx(&u0, 1, Body::Vote { producers: vec![] });
    produce_ok(&mut c, &[unvote]);
    assert_eq!(producer(&c, &addr).total_votes, 0);
    // Rescinding takes effect at the next election, not at once.
    assert_eq!(ledger::consensus(&c.state).unwrap().active, v1);
    let (at, v2) = produce_until_new_schedule(&mut c, 4);
    assert_eq!(v2.version, 2);
    let genesis_keys: Vec<PublicKey> = c.producers.iter().map(SecretKey::public_key).collect();
    assert_eq!(key_set(&v2.producers), key_set(&genesis_keys));
    produce_until_active(&mut c, at, &v2);
    let produced = producer(&c, &addr).produced;
    c.produce_empty(6).unwrap();
    assert_eq!(producer(&c, &addr).produced, produced);
    assert!(!ledger::consensus(&c.state)
        .unwrap()
        .active
        .contains(&key.public_key()));
    // Still registered, just not elected.
    assert!(producer(&c, &addr).registered);
}

#[test]
fn unregistering_also_removes_a_producer_at_the_next_election() {
    let (mut c, addr, key, _) = with_fourth_producer();
    let u0 = c.users[0].clone();
    let tx = c.tx(&u0, 1, Body::UnregisterProducer);
    produce_ok(&mut c, &[tx]);
    assert!(!producer(&c, &addr).registered);
    let (at, v2) = produce_until_new_schedule(&mut c, 4);
    assert!(!v2.contains(&key.public_key()));
    produce_until_active(&mut c, at, &v2);
    // Votes for an unregistered producer are refused.
    let u0 = c.users[0].clone();
    let vote = c.tx(
        &u0,
        1,
        Body::Vote {
            producers: vec![addr],
        },
    );
    assert_eq!(
        validate(&c, &vote),
        Err(distpos_chain::TxError::NotAProducer(addr))
    );
}
