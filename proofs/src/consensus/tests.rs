use super::*;
use crate::{hash::Hash32, keys::SecretKey, merkle};
use proptest::prelude::*;

const GENESIS: u64 = 1_000_000;
const INTERVAL: u64 = 500;

fn rules() -> ChainRules {
    ChainRules {
        chain_id: ChainId(0xe2e4),
        clock: SlotClock {
            genesis_time_ms: GENESIS,
            interval_ms: INTERVAL,
        },
        max_drift_ms: 1_000,
    }
}

fn keys(n: usize, tag: u8) -> Vec<SecretKey> {
    (0..n)
        .map(|i| SecretKey::from_seed(&[tag, i as u8]))
        .collect()
}

fn schedule(version: u32, keys: &[SecretKey]) -> ProducerSchedule {
    ProducerSchedule {
        version,
        producers: keys.iter().map(|k| k.public_key()).collect(),
    }
}

/// A header chain under construction, signed by whichever key is scheduled.
struct Branch {
    keys: Vec<SecretKey>,
    state: ConsensusState,
    head_id: Hash32,
}

impl Branch {
    fn new(keys: Vec<SecretKey>) -> Self {
        let state = ConsensusState::genesis(schedule(0, &keys)).unwrap();
        Branch {
            keys,
            state,
            head_id: Hash32([9; 32]),
        }
    }

    fn key_for(&self, producer: &PublicKey) -> &SecretKey {
        self.keys
            .iter()
            .find(|k| &k.public_key() == producer)
            .unwrap()
    }

    fn unsigned(&self, slot: u64) -> BlockHeader {
        let producer = *self.state.scheduled_producer(slot).unwrap();
        BlockHeader {
            chain_id: rules().chain_id,
            height: self.state.height + 1,
            prev_id: self.head_id,
            timestamp_ms: GENESIS + slot * INTERVAL,
            producer,
            schedule_version: self.state.active.version,
            tx_root: merkle::empty_root(),
            tx_count: 0,
            receipts_root: merkle::empty_root(),
            state_digest: Hash32::ZERO,
            new_schedule: None,
            reveal: Hash32::ZERO,
            commit: Hash32::ZERO,
        }
    }

    fn sign(&self, h: BlockHeader) -> SignedHeader {
        let key = self.key_for(&h.producer).clone();
        h.sign(&key)
    }

    fn check(&self, h: &SignedHeader) -> Result<(), HeaderError> {
        self.state
            .check_header(&self.head_id, h, &rules(), u64::MAX / 2)
    }

    fn push(&mut self, h: SignedHeader) {
        self.check(&h).unwrap();
        let before = self.state.lib;
        self.state = self.state.advance(&h.header, &rules().clock);
        assert!(self.state.lib >= before, "LIB moved backwards");
        self.head_id = h.id();
    }

    fn produce(&mut self, slot: u64) {
        let h = self.sign(self.unsigned(slot));
        self.push(h);
    }
}

/// Brute force: the highest h such that ≥ ⌊2n/3⌋+1 distinct scheduled producers signed
/// some block at height ≥ h on the branch.
fn brute_force_lib(signers: &[(PublicKey, u64)], schedule: &ProducerSchedule) -> u64 {
    let max_h = signers.iter().map(|s| s.1).max().unwrap_or(0);
    (0..=max_h)
        .rev()
        .find(|&h| {
            let distinct: std::collections::BTreeSet<_> = signers
                .iter()
                .filter(|(p, height)| *height >= h && schedule.contains(p))
                .map(|(p, _)| *p)
                .collect();
            distinct.len() >= supermajority(schedule.len())
        })
        .unwrap_or(0)
}

#[test]
fn single_producer_lib_is_head() {
    let mut b = Branch::new(keys(1, 1));
    for slot in 1..=5 {
        b.produce(slot);
        assert_eq!(b.state.lib, b.state.height);
    }
}

#[test]
fn three_producers_need_all_three() {
    let mut b = Branch::new(keys(3, 1));
    b.produce(1);
    b.produce(2);
    assert_eq!(b.state.lib, 0);
    b.produce(3);
    assert_eq!(b.state.lib, 1, "block 1 is built on by all three");
    b.produce(4);
    assert_eq!(b.state.lib, 2);
}

#[test]
fn four_producers_need_three() {
    let mut b = Branch::new(keys(4, 1));
    for slot in 1..=3 {
        b.produce(slot);
    }
    assert_eq!(b.state.lib, 1);
}

proptest! {
    #[test]
    fn lib_matches_brute_force_and_never_decreases(
        n in 1usize..8,
        gaps in proptest::collection::vec(1u64..5, 1..60),
    ) {
        let mut b = Branch::new(keys(n, 2));
        let mut signers = Vec::new();
        let mut slot = 0;
        for g in gaps {
            slot += g;
            let before = b.state.lib;
            b.produce(slot);
            signers.push((*b.state.active.producer_for_slot(slot).unwrap(), b.state.height));
            prop_assert!(b.state.lib >= before);
            prop_assert_eq!(b.state.lib, brute_force_lib(&signers, &b.state.active));
        }
    }
}

#[test]
fn schedule_change_takes_effect_only_when_irreversible() {
    let old = keys(3, 1);
    let new = keys(2, 7);
    let mut all = old.clone();
    all.extend(new.iter().cloned());
    let mut b = Branch {
        keys: all,
        ..Branch::new(old)
    };
    let mut h = b.unsigned(1);
    h.new_schedule = Some(schedule(1, &new));
    b.push(b.sign(h));
    assert!(b.state.pending.is_some());
    b.produce(2);
    // Block 1 is not irreversible yet, so the old schedule still signs slot 3; a header
    // from the new schedule is refused.
    let mut early = b.unsigned(3);
    early.producer = new[1].public_key();
    early.schedule_version = 1;
    assert!(matches!(
        b.check(&new[1].clone().pipe(|k| early.clone().sign(&k))),
        Err(HeaderError::WrongScheduleVersion {
            expected: 0,
            got: 1
        })
    ));
    b.produce(3);
    assert_eq!(b.state.lib, 1);
    assert_eq!(
        b.state.active.version, 1,
        "adopted once block 1 is irreversible"
    );
    assert!(b.state.pending.is_none());
    // Slot 4 now belongs to the new schedule (4 mod 2 = 0).
    assert_eq!(b.state.scheduled_producer(4), Some(&new[0].public_key()));
    b.produce(4);
    b.produce(5);
    assert_eq!(b.state.lib, 4);
    assert!(
        !b.state.last_signed.contains_key(&b.keys[0].public_key()),
        "old signers pruned"
    );
}

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn header_rejections_name_the_reason() {
    let mut b = Branch::new(keys(3, 1));
    b.produce(1);
    let good = b.unsigned(2);
    assert_eq!(b.check(&b.sign(good.clone())), Ok(()));

    let bad = |f: &dyn Fn(&mut BlockHeader)| {
        let mut h = good.clone();
        f(&mut h);
        b.check(&b.sign(h))
    };
    assert!(matches!(
        bad(&|h| h.chain_id = ChainId(1)),
        Err(HeaderError::WrongChain { .. })
    ));
    assert!(matches!(
        bad(&|h| h.height = 5),
        Err(HeaderError::NotNext { .. })
    ));
    assert!(matches!(
        bad(&|h| h.prev_id = Hash32([1; 32])),
        Err(HeaderError::WrongParent { .. })
    ));
    assert!(matches!(
        bad(&|h| h.timestamp_ms += 1),
        Err(HeaderError::NotSlotBoundary(_))
    ));
    assert!(matches!(
        bad(&|h| h.timestamp_ms = GENESIS + INTERVAL),
        Err(HeaderError::SlotNotAfterParent { .. })
    ));
    assert!(matches!(
        bad(&|h| h.schedule_version = 3),
        Err(HeaderError::WrongScheduleVersion { .. })
    ));
    assert!(matches!(
        bad(&|h| h.new_schedule = Some(ProducerSchedule {
            version: 1,
            producers: vec![]
        })),
        Err(HeaderError::BadSchedule(ScheduleError::Empty))
    ));
    assert!(matches!(
        bad(&|h| h.new_schedule = Some(schedule(5, &keys(2, 3)))),
        Err(HeaderError::BadScheduleVersion {
            expected: 1,
            got: 5
        })
    ));

    // A producer that is in the schedule but not for this slot.
    let mut wrong_slot = good.clone();
    wrong_slot.producer = b.keys[0].public_key();
    let signed = wrong_slot.sign(&b.keys[0]);
    assert!(matches!(
        b.check(&signed),
        Err(HeaderError::NotScheduled { slot: 2, .. })
    ));

    // A signature by another key, a flipped signature byte, a high-S twin.
    let mut forged = good.clone().sign(&b.keys[0]);
    assert!(matches!(
        b.check(&forged),
        Err(HeaderError::BadSignature(_))
    ));
    forged = b.sign(good.clone());
    forged.signature.0[10] ^= 1;
    assert!(matches!(
        b.check(&forged),
        Err(HeaderError::BadSignature(_))
    ));
    let mut twin = b.sign(good.clone());
    twin.signature = crate::keys::high_s_twin(&twin.signature).unwrap();
    assert_eq!(
        b.check(&twin),
        Err(HeaderError::BadSignature(SignatureError::HighS))
    );

    // From the far future relative to the verifier's clock.
    let future = b.sign(good.clone());
    let now = good.timestamp_ms - 1_001;
    assert!(matches!(
        b.state.check_header(&b.head_id, &future, &rules(), now),
        Err(HeaderError::FromFuture { .. })
    ));
    assert_eq!(
        b.state.check_header(&b.head_id, &future, &rules(), now + 1),
        Ok(())
    );
}

#[test]
fn second_schedule_change_while_pending_is_refused() {
    let mut b = Branch::new(keys(3, 1));
    let mut h = b.unsigned(1);
    h.new_schedule = Some(schedule(1, &keys(2, 4)));
    b.push(b.sign(h));
    let mut again = b.unsigned(2);
    again.new_schedule = Some(schedule(1, &keys(2, 5)));
    assert_eq!(
        b.check(&b.sign(again)),
        Err(HeaderError::SchedulePending(1))
    );
}

#[test]
fn fork_choice_order() {
    let t = |lib, height, id: u8| ForkTip {
        lib,
        height,
        id: Hash32([id; 32]),
    };
    assert_eq!(
        t(2, 5, 0).prefer(&t(1, 9, 0)),
        Ordering::Greater,
        "higher LIB wins"
    );
    assert_eq!(
        t(1, 6, 9).prefer(&t(1, 5, 0)),
        Ordering::Greater,
        "then height"
    );
    assert_eq!(
        t(1, 5, 1).prefer(&t(1, 5, 2)),
        Ordering::Greater,
        "then lower id"
    );
    assert_eq!(t(1, 5, 1).prefer(&t(1, 5, 1)), Ordering::Equal);
}

#[test]
fn participation_counts_recent_slots() {
    let mut b = Branch::new(keys(3, 1));
    assert_eq!(
        b.state.participation(1).percent(),
        100,
        "nothing to miss at the first slot"
    );
    for slot in 1..=30 {
        if slot % 3 != 0 {
            b.produce(slot); // the third producer is down
        }
    }
    let p = b.state.participation(31);
    assert_eq!(p.window, 30);
    assert_eq!(p.filled, 20);
    assert_eq!(p.percent(), 66);
    // Long silence: nothing filled in the last 128 slots.
    assert_eq!(b.state.participation(10_000).filled, 0);
    assert_eq!(b.state.participation(10_000).window, 128);
}

#[test]
fn double_sign_evidence() {
    let mut b = Branch::new(keys(1, 1));
    b.produce(1);
    let h = b.unsigned(2);
    let mut h2 = h.clone();
    h2.tx_count = 1;
    let (a, c) = (b.sign(h.clone()), b.sign(h2));
    let ev = check_double_sign(&a, &c, &rules()).unwrap();
    assert_eq!(ev.slot, 2);
    assert_eq!(
        check_double_sign(&a, &a, &rules()),
        Err(EvidenceError::SameBlock)
    );
    let mut later = h.clone();
    later.timestamp_ms += INTERVAL;
    assert_eq!(
        check_double_sign(&a, &b.sign(later), &rules()),
        Err(EvidenceError::DifferentSlots)
    );
    let mut other_chain = h.clone();
    other_chain.chain_id = ChainId(7);
    assert_eq!(
        check_double_sign(&a, &b.sign(other_chain), &rules()),
        Err(EvidenceError::WrongChain(ChainId(7)))
    );
    let mut forged = c.clone();
    forged.signature.0[3] ^= 1;
    assert!(matches!(
        check_double_sign(&a, &forged, &rules()),
        Err(EvidenceError::BadSignature(_))
    ));
}

#[test]
fn outage_quorum_needs_a_supermajority_of_the_schedule_in_agreement() {
    let ks = keys(4, 0x51);
    let s = schedule(0, &ks);
    let pk: Vec<PublicKey> = ks.iter().map(|k| k.public_key()).collect();
    let q = OutageQuorum::count(&s, &pk[..2]);
    assert_eq!((q.agreeing, q.needed, q.met()), (2, 3, false));
    assert!(OutageQuorum::count(&s, &pk[..3]).met());
    // Repeats and strangers count for nothing.
    let stranger = SecretKey::from_seed(b"stranger").public_key();
    let q = OutageQuorum::count(&s, [&pk[0], &pk[0], &pk[1], &stranger]);
    assert_eq!((q.agreeing, q.met()), (2, false));
    // One producer alone is its own supermajority.
    let one = schedule(0, &ks[..1]);
    assert!(OutageQuorum::count(&one, &pk[..1]).met());
    // Three producers: all three must agree.
    let three = schedule(0, &ks[..3]);
    assert!(!OutageQuorum::count(&three, &pk[..2]).met());
    assert!(OutageQuorum::count(&three, &pk[..3]).met());
}
