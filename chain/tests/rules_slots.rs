//! Slots, missed slots and participation (DESIGN §4.2): skipped slots are counted
//! against exactly the producers scheduled for them, and participation is the share of
//! the last (up to) 128 slots that have a block.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use distpos_chain::{
    ledger,
    testkit::{address_of, TestChain},
};
use distpos_proofs::consensus::Participation;

/// (missed, produced) of producers 0, 1, 2.
fn tallies(c: &TestChain) -> Vec<(u64, u64)> {
    c.producers
        .iter()
        .map(|k| {
            let p = producer(c, &address_of(k));
            (p.missed, p.produced)
        })
        .collect()
}

fn participation(c: &TestChain, slot: u64) -> Participation {
    ledger::consensus(&c.state).unwrap().participation(slot)
}

#[test]
fn skipped_slots_are_counted_against_their_producers() {
    let mut c = TestChain::new(CHAIN, 3, 0, TestChain::dev_params());
    // Genesis schedule: slot s belongs to producer s mod 3.
    for s in 0..6u64 {
        let k = c.signer_for_slot(s).unwrap();
        assert_eq!(k.public_key(), c.producers[(s % 3) as usize].public_key());
    }
    assert_eq!(
        participation(&c, 1),
        Participation {
            filled: 0,
            window: 0
        }
    );
    assert_eq!(participation(&c, 1).percent(), 100);

    c.produce_in_slot(c.next_slot(0), &[]).unwrap(); // slot 1: p1
    assert_eq!(tallies(&c), vec![(0, 0), (0, 1), (0, 0)]);

    c.produce_in_slot(c.next_slot(2), &[]).unwrap(); // skips 2 (p2), 3 (p0); slot 4: p1
    assert_eq!(ledger::consensus(&c.state).unwrap().slot, 4);
    assert_eq!(tallies(&c), vec![(1, 0), (0, 2), (1, 0)]);

    c.produce_in_slot(c.next_slot(4), &[]).unwrap(); // skips 5 (p2), 6 (p0), 7 (p1), 8 (p2); slot 9: p0
    assert_eq!(ledger::consensus(&c.state).unwrap().slot, 9);
    assert_eq!(tallies(&c), vec![(2, 1), (1, 2), (3, 0)]);

    // Blocks in slots 1, 4, 9 out of the 9 slots before slot 10.
    let p = participation(&c, 10);
    assert_eq!(
        p,
        Participation {
            filled: 3,
            window: 9
        }
    );
    assert_eq!(p.percent(), 33);
    // Seen from slot 9 itself: slots 1..=8 hold 2 blocks.
    assert_eq!(
        participation(&c, 9),
        Participation {
            filled: 2,
            window: 8
        }
    );
    // Seen from later, the empty slots after the head count as missed too.
    assert_eq!(
        participation(&c, 13),
        Participation {
            filled: 3,
            window: 12
        }
    );

    // A long gap: all but the last block fall out of the 128-slot window.
    c.produce_in_slot(c.next_slot(200), &[]).unwrap();
    let head = ledger::consensus(&c.state).unwrap().slot;
    assert_eq!(head, 210);
    assert_eq!(
        participation(&c, head + 1),
        Participation {
            filled: 1,
            window: 128
        }
    );
    // Slots 10..=209: 66 are ≡ 0, 67 ≡ 1 and 67 ≡ 2 (mod 3).
    let (m0, m1, m2) = (2 + 66, 1 + 67, 3 + 67);
    assert_eq!(
        tallies(&c).iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![m0, m1, m2]
    );
    assert_eq!(m0 + m1 + m2, 6 + 200);
}

#[test]
fn a_full_window_has_full_participation() {
    let mut c = TestChain::new(CHAIN, 3, 0, TestChain::dev_params());
    c.produce_empty(130).unwrap();
    let next = c.next_slot(0);
    assert_eq!(
        participation(&c, next),
        Participation {
            filled: 128,
            window: 128
        }
    );
    assert!(tallies(&c).iter().all(|&(missed, _)| missed == 0));
    // One skipped slot shows up as one missing block in the window.
    c.produce_in_slot(c.next_slot(1), &[]).unwrap();
    let next = c.next_slot(0);
    assert_eq!(
        participation(&c, next),
        Participation {
            filled: 127,
            window: 128
        }
    );
    assert_eq!(tallies(&c).iter().map(|t| t.0).sum::<u64>(), 1);
}
