//! The producer schedule and slots (DESIGN §4.2): which key may sign a block at a given
//! time, and the seeded shuffle that orders a newly elected set.
//!
//! Time is divided into slots of `interval_ms` from the genesis time; slot `s` belongs
//! to `producers[s mod n]` of the schedule in force. A round is `n` consecutive slots
//! (`round = slot / n`).

use crate::{hash::hash_domain, hash::Hash32, keys::PublicKey};
use serde::{Deserialize, Serialize};

/// An ordered list of producer signing keys with a version number. Version 0 is the
/// genesis schedule; every change increments it by one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSchedule {
    /// Increments by one at each change.
    pub version: u32,
    /// Signing keys in slot order.
    pub producers: Vec<PublicKey>,
}

/// Why a schedule is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A schedule must name at least one producer.
    #[error("producer schedule is empty")]
    Empty,
    /// The same key appears twice (it would be counted twice for finality).
    #[error("producer {0} appears twice in the schedule")]
    Duplicate(PublicKey),
    /// More producers than the protocol allows in one schedule.
    #[error("schedule has {0} producers; at most {MAX_SCHEDULE_LEN} are allowed")]
    TooLong(usize),
}

/// Upper bound on schedule length, whatever a chain's `max_producers` says.
pub const MAX_SCHEDULE_LEN: usize = 101;

impl ProducerSchedule {
    /// Checks the schedule is non-empty, bounded, and names each key once.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.producers.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if self.producers.len() > MAX_SCHEDULE_LEN {
            return Err(ScheduleError::TooLong(self.producers.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.producers {
            if !seen.insert(*p) {
                return Err(ScheduleError::Duplicate(*p));
            }
        }
        Ok(())
    }

    /// Number of producers.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when the schedule names no producer (never valid; see [`Self::validate`]).
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The producer scheduled for `slot`, `None` only for an empty schedule.
    pub fn producer_for_slot(&self, slot: u64) -> Option<&PublicKey> {
        let n = self.producers.len() as u64;
        if n == 0 {
            return None;
        }
        // n ≤ MAX_SCHEDULE_LEN in valid schedules, so the index fits usize.
        self.producers.get((slot % n) as usize)
    }

    /// True if `key` is in the schedule.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.producers.contains(key)
    }

    /// The round a slot belongs to under this schedule.
    pub fn round_of(&self, slot: u64) -> u64 {
        slot / (self.producers.len().max(1) as u64)
    }

    /// How many distinct producers make a block irreversible: ⌊2n/3⌋+1.
    pub fn threshold(&self) -> usize {
        supermajority(self.producers.len())
    }
}

/// ⌊2n/3⌋+1: the smallest number of producers that is more than two thirds of `n`.
pub fn supermajority(n: usize) -> usize {
    n * 2 / 3 + 1
}

/// Maps time to slots. All times are unix milliseconds, passed in by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotClock {
    /// Genesis time; slot 0 starts here (no block is ever produced in slot 0).
    pub genesis_time_ms: u64,
    /// Slot length.
    pub interval_ms: u64,
}

impl SlotClock {
    /// The slot containing time `t`, `None` before genesis or with a zero interval.
    pub fn slot_of(&self, t_ms: u64) -> Option<u64> {
        if self.interval_ms == 0 {
            return None;
        }
        t_ms.checked_sub(self.genesis_time_ms)
            .map(|d| d / self.interval_ms)
    }

    /// The start time of `slot` (saturating at u64::MAX).
    pub fn slot_start(&self, slot: u64) -> u64 {
        self.genesis_time_ms
            .saturating_add(slot.saturating_mul(self.interval_ms))
    }

    /// The slot of `t_ms` if `t_ms` is exactly a slot boundary, else `None`.
    pub fn slot_at_boundary(&self, t_ms: u64) -> Option<u64> {
        let slot = self.slot_of(t_ms)?;
        (self.slot_start(slot) == t_ms).then_some(slot)
    }
}

/// Shuffles `items` in place with Fisher–Yates, driven by `seed` (the hash of the
/// previous round's reveals). Deterministic: every node computes the same order.
pub fn shuffle<T>(items: &mut [T], seed: &Hash32) {
    for i in (1..items.len()).rev() {
        let j = (random_u64(seed, i as u64) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The `i`-th 64-bit draw from `seed`. The modulo bias of reducing a 64-bit draw to a
/// schedule index (n ≤ 101) is below 2⁻⁵⁷, which is negligible here.
fn random_u64(seed: &Hash32, i: u64) -> u64 {
    let h = hash_domain(b"DISTPOS/SHUFFLE/v1", &[&seed.0, &i.to_be_bytes()]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.0[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash::sha256, keys::SecretKey};
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<PublicKey> {
        (0..n)
            .map(|i| SecretKey::from_seed(&[i as u8]).public_key())
            .collect()
    }

    #[test]
    fn slots_rotate_through_the_schedule() {
        let s = ProducerSchedule {
            version: 0,
            producers: keys(3),
        };
        assert_eq!(s.producer_for_slot(0), Some(&s.producers[0]));
        assert_eq!(s.producer_for_slot(4), Some(&s.producers[1]));
        assert_eq!(s.producer_for_slot(u64::MAX), Some(&s.producers[0])); // 2^64-1 ≡ 0 mod 3
        assert_eq!(s.round_of(5), 1);
        assert_eq!(
            ProducerSchedule {
                version: 0,
                producers: vec![]
            }
            .producer_for_slot(1),
            None
        );
    }

    #[test]
    fn supermajority_thresholds() {
        assert_eq!(supermajority(1), 1);
        assert_eq!(supermajority(2), 2);
        assert_eq!(supermajority(3), 3);
        assert_eq!(supermajority(4), 3);
        assert_eq!(supermajority(21), 15);
    }

    #[test]
    fn schedule_validation() {
        assert_eq!(
            ProducerSchedule {
                version: 0,
                producers: vec![]
            }
            .validate(),
            Err(ScheduleError::Empty)
        );
        let k = keys(2);
        let dup = ProducerSchedule {
            version: 0,
            producers: vec![k[0], k[1], k[0]],
        };
        assert_eq!(dup.validate(), Err(ScheduleError::Duplicate(k[0])));
        assert_eq!(
            ProducerSchedule {
                version: 0,
                producers: k
            }
            .validate(),
            Ok(())
        );
    }

    #[test]
    fn clock() {
        let c = SlotClock {
            genesis_time_ms: 1_000,
            interval_ms: 500,
        };
        assert_eq!(c.slot_of(999), None);
        assert_eq!(c.slot_of(1_000), Some(0));
        assert_eq!(c.slot_of(2_499), Some(2));
        assert_eq!(c.slot_at_boundary(2_500), Some(3));
        assert_eq!(c.slot_at_boundary(2_501), None);
        assert_eq!(
            SlotClock {
                genesis_time_ms: 0,
                interval_ms: 0
            }
            .slot_of(5),
            None
        );
        assert_eq!(c.slot_start(u64::MAX), u64::MAX);
    }

    proptest! {
        #[test]
        fn shuffle_is_a_permutation(n in 0usize..40, seed: [u8; 32]) {
            let mut v: Vec<usize> = (0..n).collect();
            shuffle(&mut v, &Hash32(seed));
            let mut sorted = v.clone();
            sorted.sort();
            prop_assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        }

        #[test]
        fn shuffle_is_deterministic(seed: [u8; 32]) {
            let mut a: Vec<usize> = (0..21).collect();
            let mut b = a.clone();
            shuffle(&mut a, &Hash32(seed));
            shuffle(&mut b, &Hash32(seed));
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn shuffle_depends_on_the_seed() {
        // Over many seeds, a 21-element shuffle must produce many distinct orders and
        // move every position: a constant or seed-blind shuffle fails both.
        let mut orders = std::collections::BTreeSet::new();
        let mut first_positions = std::collections::BTreeSet::new();
        for i in 0u32..200 {
            let mut v: Vec<usize> = (0..21).collect();
            shuffle(&mut v, &sha256(&i.to_le_bytes()));
            first_positions.insert(v[0]);
            orders.insert(v);
        }
        assert_eq!(orders.len(), 200);
        assert_eq!(first_positions.len(), 21);
    }
}
