//! Irreversibility (LIB), fork choice and the state a header chain carries (DESIGN
//! §4.3, §4.4) — the one implementation that the node (for its own chain) and the light
//! client (for a peer chain) both use.
//!
//! [`ConsensusState`] is everything a verifier needs to judge the next header of a
//! branch, derived from headers alone: the schedule in force, a pending schedule, the
//! highest height each producer has signed on this branch, the LIB, and which recent
//! slots were filled. It holds no block id, so a ledger can store it inside the state
//! that the block's own `state_digest` commits to; callers pass the parent id.
//!
//! Verify, then apply: [`ConsensusState::check_header`] only checks and
//! [`ConsensusState::advance`] only applies a checked header.

use crate::{
    chain_id::ChainId,
    hash::Hash32,
    header::{BlockHeader, SignedHeader},
    keys::{PublicKey, SignatureError},
    schedule::{supermajority, ProducerSchedule, ScheduleError, SlotClock},
};
use serde::{Deserialize, Serialize};
use std::{cmp::Ordering, collections::BTreeMap};

/// The fixed rules a header chain is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRules {
    /// The chain every header must name.
    pub chain_id: ChainId,
    /// Genesis time and block interval.
    pub clock: SlotClock,
    /// How far into the future (beyond `now`) a header's timestamp may be.
    pub max_drift_ms: u64,
}

/// A schedule carried by a header at `height`, waiting for that header to become
/// irreversible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingSchedule {
    /// Height of the header that carried it.
    pub height: u64,
    /// The new schedule.
    pub schedule: ProducerSchedule,
}

/// Why a header cannot extend a branch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header names another chain.
    #[error("header is for chain {got}, expected chain {expected}")]
    WrongChain {
        /// Our chain.
        expected: ChainId,
        /// The header's chain.
        got: ChainId,
    },
    /// The height is not parent height + 1.
    #[error("header height {got} does not follow parent height {parent}")]
    NotNext {
        /// Parent height.
        parent: u64,
        /// Header height.
        got: u64,
    },
    /// `prev_id` is not the parent's id.
    #[error("header's prev_id {got} is not the parent block {expected}")]
    WrongParent {
        /// Parent id.
        expected: Hash32,
        /// Header's prev_id.
        got: Hash32,
    },
    /// The timestamp is not exactly a slot boundary (or precedes genesis).
    #[error("timestamp {0} is not a slot boundary")]
    NotSlotBoundary(u64),
    /// The slot is not after the parent's slot (time must move forward).
    #[error("slot {slot} is not after the parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// Header slot.
        slot: u64,
        /// Parent slot.
        parent_slot: u64,
    },
    /// The timestamp is further in the future than the drift bound allows.
    #[error("timestamp {timestamp} is more than {max_drift_ms} ms after now ({now})")]
    FromFuture {
        /// Header timestamp.
        timestamp: u64,
        /// The verifier's clock.
        now: u64,
        /// The bound.
        max_drift_ms: u64,
    },
    /// The header names a schedule version other than the one in force.
    #[error("header uses schedule version {got}, but version {expected} is in force")]
    WrongScheduleVersion {
        /// Version in force.
        expected: u32,
        /// Header's version.
        got: u32,
    },
    /// The signer is not the producer scheduled for this slot.
    #[error("producer {got} is not scheduled for slot {slot} (expected {expected})")]
    NotScheduled {
        /// Slot.
        slot: u64,
        /// Scheduled key.
        expected: PublicKey,
        /// Header's producer.
        got: PublicKey,
    },
    /// A new schedule was proposed while another is still pending.
    #[error("a schedule change is already pending (from height {0})")]
    SchedulePending(u64),
    /// A new schedule does not carry the next version number.
    #[error("new schedule has version {got}, expected {expected}")]
    BadScheduleVersion {
        /// Next version.
        expected: u32,
        /// Proposed version.
        got: u32,
    },
    /// A new schedule is malformed.
    #[error("new schedule is invalid: {0}")]
    BadSchedule(#[from] ScheduleError),
    /// The signature does not verify.
    #[error("header signature invalid: {0}")]
    BadSignature(#[from] SignatureError),
}

/// The state of one branch of a header chain after its head header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusState {
    /// Height of the head (0 = genesis).
    pub height: u64,
    /// Slot of the head (0 = genesis).
    pub slot: u64,
    /// Last irreversible height. Never decreases.
    pub lib: u64,
    /// The schedule that signs the next block.
    pub active: ProducerSchedule,
    /// A schedule waiting for its header to become irreversible.
    pub pending: Option<PendingSchedule>,
    /// Highest height each producer of the active or pending schedule has signed on
    /// this branch.
    pub last_signed: BTreeMap<PublicKey, u64>,
    /// Bit k set = slot `slot − k` has a block on this branch (k < 128).
    #[serde(with = "crate::codec::dec_u128")]
    pub recent_slots: u128,
}

/// Share of recent slots that have blocks, as seen from a given slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participation {
    /// Slots in the window that have a block.
    pub filled: u32,
    /// Slots in the window (up to 128; fewer right after genesis).
    pub window: u32,
}

impl Participation {
    /// Filled share in percent (100 for an empty window: nothing was missed yet).
    pub fn percent(&self) -> u32 {
        (self.filled * 100).checked_div(self.window).unwrap_or(100)
    }
}

impl ConsensusState {
    /// The state at genesis: `schedule` in force, nothing signed, LIB 0.
    pub fn genesis(schedule: ProducerSchedule) -> Result<Self, ScheduleError> {
        schedule.validate()?;
        Ok(Self {
            height: 0,
            slot: 0,
            lib: 0,
            active: schedule,
            pending: None,
            last_signed: BTreeMap::new(),
            recent_slots: 0,
        })
    }

    /// The producer that must sign a block in `slot` on top of this state.
    pub fn scheduled_producer(&self, slot: u64) -> Option<&PublicKey> {
        self.active.producer_for_slot(slot)
    }

    /// Checks that `header` may extend this branch, whose head has id `parent_id`.
    /// `now_ms` is the verifier's clock. Cheap checks run first; the signature last.
    pub fn check_header(
        &self,
        parent_id: &Hash32,
        header: &SignedHeader,
        rules: &ChainRules,
        now_ms: u64,
    ) -> Result<(), HeaderError> {
        let h = &header.header;
        if h.chain_id != rules.chain_id {
            return Err(HeaderError::WrongChain {
                expected: rules.chain_id,
                got: h.chain_id,
            });
        }
        if Some(h.height) != self.height.checked_add(1) {
            return Err(HeaderError::NotNext {
                parent: self.height,
                got: h.height,
            });
        }
        if &h.prev_id != parent_id {
            return Err(HeaderError::WrongParent {
                expected: *parent_id,
                got: h.prev_id,
            });
        }
        let slot = rules
            .clock
            .slot_at_boundary(h.timestamp_ms)
            .ok_or(HeaderError::NotSlotBoundary(h.timestamp_ms))?;
        if slot <= self.slot {
            return Err(HeaderError::SlotNotAfterParent {
                slot,
                parent_slot: self.slot,
            });
        }
        if h.timestamp_ms > now_ms.saturating_add(rules.max_drift_ms) {
            return Err(HeaderError::FromFuture {
                timestamp: h.timestamp_ms,
                now: now_ms,
                max_drift_ms: rules.max_drift_ms,
            });
        }
        self.check_signer(h, slot)?;
        if let Some(next) = &h.new_schedule {
            if let Some(p) = &self.pending {
                return Err(HeaderError::SchedulePending(p.height));
            }
            let want = self.active.version.wrapping_add(1);
            if next.version != want {
                return Err(HeaderError::BadScheduleVersion {
                    expected: want,
                    got: next.version,
                });
            }
            next.validate()?;
        }
        header.verify_signature()?;
        Ok(())
    }

    /// Checks that `h` (in `slot`) names the schedule in force and the producer it
    /// schedules for that slot (the signature itself is checked by the caller).
    pub fn check_signer(&self, h: &BlockHeader, slot: u64) -> Result<(), HeaderError> {
        if h.schedule_version != self.active.version {
            return Err(HeaderError::WrongScheduleVersion {
                expected: self.active.version,
                got: h.schedule_version,
            });
        }
        // A valid state never has an empty schedule (genesis() and the checks below
        // refuse one), so `None` cannot happen; treat it as "not scheduled".
        let expected = self
            .scheduled_producer(slot)
            .copied()
            .unwrap_or(PublicKey([0; 33]));
        if h.producer != expected {
            return Err(HeaderError::NotScheduled {
                slot,
                expected,
                got: h.producer,
            });
        }
        Ok(())
    }

    /// Applies a header that passed [`Self::check_header`]: records its signer, moves
    /// the LIB, and adopts a pending schedule once its header is irreversible.
    pub fn advance(&self, h: &BlockHeader, clock: &SlotClock) -> ConsensusState {
        let mut next = self.clone();
        let slot = clock.slot_of(h.timestamp_ms).unwrap_or(self.slot + 1);
        let gap = slot.saturating_sub(self.slot);
        next.recent_slots = if gap >= 128 {
            0
        } else {
            self.recent_slots << gap
        };
        next.recent_slots |= 1;
        next.height = h.height;
        next.slot = slot;
        next.last_signed.insert(h.producer, h.height);
        if let Some(schedule) = &h.new_schedule {
            next.pending = Some(PendingSchedule {
                height: h.height,
                schedule: schedule.clone(),
            });
        }
        next.lib = next.lib.max(lib_of(&next.active, &next.last_signed));
        if let Some(p) = next.pending.take() {
            if p.height <= next.lib {
                next.active = p.schedule;
            } else {
                next.pending = Some(p);
            }
        }
        let (active, pending) = (&next.active, &next.pending);
        next.last_signed.retain(|k, _| {
            active.contains(k) || pending.as_ref().is_some_and(|p| p.schedule.contains(k))
        });
        next
    }

    /// Participation over the (up to) 128 slots before `now_slot`.
    pub fn participation(&self, now_slot: u64) -> Participation {
        let window = now_slot.saturating_sub(1).min(128) as u32;
        let d = now_slot.saturating_sub(self.slot);
        // Bit k of `recent_slots` is slot `self.slot − k`; the window is slots
        // now−1 … now−window, i.e. bits (1−d) … (window−d) where non-negative.
        let mut filled = 0u32;
        for j in 1..=u64::from(window) {
            // j < d: a slot after our head, so empty on this branch.
            if let Some(k) = j.checked_sub(d) {
                if k < 128 && (self.recent_slots >> k) & 1 == 1 {
                    filled += 1;
                }
            }
        }
        Participation { filled, window }
    }
}

/// LIB of a branch: for each producer of `schedule` take the highest height it signed
/// (0 if none); sorted descending, the ⌊2n/3⌋+1-th value.
pub fn lib_of(schedule: &ProducerSchedule, last_signed: &BTreeMap<PublicKey, u64>) -> u64 {
    let mut heights: Vec<u64> = schedule
        .producers
        .iter()
        .map(|p| last_signed.get(p).copied().unwrap_or(0))
        .collect();
    heights.sort_unstable_by(|a, b| b.cmp(a));
    heights
        .get(supermajority(heights.len()) - 1)
        .copied()
        .unwrap_or(0)
}

/// What fork choice compares about a branch head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkTip {
    /// LIB of the branch.
    pub lib: u64,
    /// Head height.
    pub height: u64,
    /// Head id.
    pub id: Hash32,
}

impl ForkTip {
    /// Fork choice (DESIGN §4.3): the higher LIB, then the greater height, then the
    /// lower block id. `Greater` means `self` is preferred.
    pub fn prefer(&self, other: &ForkTip) -> Ordering {
        self.lib
            .cmp(&other.lib)
            .then(self.height.cmp(&other.height))
            .then(other.id.cmp(&self.id))
    }
}

/// Participation below which a producer stops producing (DESIGN §4.2): a minority
/// partition must not grow a chain.
pub const MIN_PARTICIPATION_PERCENT: u32 = 33;

/// The outage rule (DESIGN §14): a producer that sees participation below
/// [`MIN_PARTICIPATION_PERCENT`] may still produce when the nodes of ⌊2n/3⌋+1 of the
/// scheduled producers (itself included) are reachable and agree on its head — then
/// no partition exists and the chain was simply stopped. Otherwise it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutageQuorum {
    /// Scheduled producers whose nodes agree on our head (ourselves included).
    pub agreeing: usize,
    /// How many must (⌊2n/3⌋+1 of the schedule).
    pub needed: usize,
}

impl OutageQuorum {
    /// Counts the scheduled producers among `agreeing` (keys of nodes that answered
    /// with our head, and our own key); keys outside the schedule and repeats count
    /// for nothing.
    pub fn count<'a>(
        schedule: &ProducerSchedule,
        agreeing: impl IntoIterator<Item = &'a PublicKey>,
    ) -> Self {
        let set: std::collections::BTreeSet<&PublicKey> = agreeing
            .into_iter()
            .filter(|k| schedule.contains(k))
            .collect();
        Self {
            agreeing: set.len(),
            needed: supermajority(schedule.producers.len()),
        }
    }

    /// True when production may resume.
    pub fn met(&self) -> bool {
        self.agreeing >= self.needed
    }
}

/// Proof that a producer signed two different headers for one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoubleSign {
    /// The equivocating signing key.
    pub producer: PublicKey,
    /// The slot it signed twice.
    pub slot: u64,
}

/// Why two headers are not evidence of double signing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// One of the headers is for another chain.
    #[error("evidence header is for chain {0}, not ours")]
    WrongChain(ChainId),
    /// Different signers.
    #[error("evidence headers are signed by different producers")]
    DifferentProducers,
    /// Different slots (or a timestamp that is not a slot boundary).
    #[error("evidence headers are not for the same slot")]
    DifferentSlots,
    /// The two headers are the same block.
    #[error("evidence headers are the same block")]
    SameBlock,
    /// A signature does not verify.
    #[error("evidence header signature invalid: {0}")]
    BadSignature(#[from] SignatureError),
}

/// Checks that `a` and `b` are two different headers signed by one producer for one
/// slot of our chain (DESIGN §4.4).
pub fn check_double_sign(
    a: &SignedHeader,
    b: &SignedHeader,
    rules: &ChainRules,
) -> Result<DoubleSign, EvidenceError> {
    for h in [a, b] {
        if h.header.chain_id != rules.chain_id {
            return Err(EvidenceError::WrongChain(h.header.chain_id));
        }
    }
    if a.header.producer != b.header.producer {
        return Err(EvidenceError::DifferentProducers);
    }
    let slot_a = rules.clock.slot_at_boundary(a.header.timestamp_ms);
    let slot_b = rules.clock.slot_at_boundary(b.header.timestamp_ms);
    let slot = match (slot_a, slot_b) {
        (Some(x), Some(y)) if x == y => x,
        _ => return Err(EvidenceError::DifferentSlots),
    };
    if a.id() == b.id() {
        return Err(EvidenceError::SameBlock);
    }
    a.verify_signature()?;
    b.verify_signature()?;
    Ok(DoubleSign {
        producer: a.header.producer,
        slot,
    })
}

#[cfg(test)]
mod tests;
