//! Test and benchmark support: a simulated peer chain that produces correctly signed
//! headers over real Merkle trees, by whichever producer is scheduled. Pure like the
//! rest of the crate; never used by production code paths.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::{
    chain_id::ChainId,
    consensus::{ChainRules, ConsensusState},
    hash::Hash32,
    header::{BlockHeader, SignedHeader},
    keys::{PublicKey, SecretKey},
    light_client::{Checkpoint, ProofBundle, TrustAnchor},
    merkle,
    schedule::{ProducerSchedule, SlotClock},
};

/// Genesis time of simulated chains.
pub const GENESIS: u64 = 1_000_000;
/// Block interval of simulated chains.
pub const INTERVAL: u64 = 500;
/// A verifier clock far after every simulated header.
pub const NOW: u64 = u64::MAX / 4;

/// The trust anchor of a simulated chain with genesis schedule `k`.
pub fn anchor(k: &[SecretKey]) -> TrustAnchor {
    TrustAnchor {
        chain_id: ChainId(0xa11),
        identity: Hash32([0x1d; 32]),
        clock: SlotClock {
            genesis_time_ms: GENESIS,
            interval_ms: INTERVAL,
        },
        max_drift_ms: 1_000,
        checkpoint: Checkpoint::genesis(ProducerSchedule {
            version: 0,
            producers: k.iter().map(|k| k.public_key()).collect(),
        })
        .unwrap(),
    }
}

/// A peer chain that produces signed headers over real Merkle trees. Blocks carry
/// `items` as transactions and `r‖item` as receipts.
#[derive(Clone, Debug)]
pub struct HeaderChainSim {
    /// See the type docs.
    pub keys: Vec<SecretKey>,
    /// See the type docs.
    pub rules: ChainRules,
    /// See the type docs.
    pub state: ConsensusState,
    /// See the type docs.
    pub head_id: Hash32,
    /// See the type docs.
    pub slot: u64,
    /// See the type docs.
    pub headers: Vec<SignedHeader>,
    /// See the type docs.
    pub items: Vec<Vec<Vec<u8>>>,
}

impl HeaderChainSim {
    /// See the type docs.
    pub fn new(keys: Vec<SecretKey>) -> Self {
        let a = anchor(&keys);
        HeaderChainSim {
            rules: ChainRules {
                chain_id: a.chain_id,
                clock: a.clock,
                max_drift_ms: a.max_drift_ms,
            },
            state: a.checkpoint.consensus.clone(),
            head_id: a.identity,
            slot: 0,
            keys,
            headers: Vec::new(),
            items: Vec::new(),
        }
    }

    /// The trust anchor of this chain at its head (a checkpoint whose header is the
    /// head; at genesis when there is none).
    pub fn anchor_at_head(&self) -> TrustAnchor {
        TrustAnchor {
            checkpoint: Checkpoint {
                header: self.headers.last().cloned(),
                consensus: self.state.clone(),
            },
            ..anchor(&self.keys)
        }
    }

    /// See the type docs.
    pub fn key_of(&self, p: &PublicKey) -> SecretKey {
        self.keys
            .iter()
            .find(|k| &k.public_key() == p)
            .unwrap()
            .clone()
    }

    /// See the type docs.
    pub fn unsigned(&self, skip: u64, items: &[Vec<u8>]) -> BlockHeader {
        let slot = self.slot + 1 + skip;
        BlockHeader {
            chain_id: self.rules.chain_id,
            height: self.state.height + 1,
            prev_id: self.head_id,
            timestamp_ms: GENESIS + slot * INTERVAL,
            producer: *self.state.scheduled_producer(slot).unwrap(),
            schedule_version: self.state.active.version,
            tx_root: merkle::merkle_root_of_items(items),
            tx_count: items.len() as u32,
            receipts_root: merkle::merkle_root_of_items(
                &items
                    .iter()
                    .map(|i| [b"r".as_slice(), i].concat())
                    .collect::<Vec<_>>(),
            ),
            state_digest: Hash32::ZERO,
            new_schedule: None,
            reveal: Hash32::ZERO,
            commit: Hash32::ZERO,
        }
    }

    /// See the type docs.
    pub fn push(&mut self, h: BlockHeader, items: Vec<Vec<u8>>) -> SignedHeader {
        let key = self.key_of(&h.producer);
        let signed = h.sign(&key);
        self.state
            .check_header(&self.head_id, &signed, &self.rules, NOW)
            .unwrap();
        self.state = self.state.advance(&signed.header, &self.rules.clock);
        self.slot = self.state.slot;
        self.head_id = signed.id();
        self.headers.push(signed.clone());
        self.items.push(items);
        signed
    }

    /// See the type docs.
    pub fn block(&mut self, n_items: usize) -> SignedHeader {
        let h = self.state.height + 1;
        let items: Vec<Vec<u8>> = (0..n_items)
            .map(|i| format!("tx {h}/{i}").into_bytes())
            .collect();
        let u = self.unsigned(0, &items);
        self.push(u, items)
    }

    /// See the type docs.
    pub fn bundle(&self, height: u64, index: usize) -> ProofBundle {
        let items = &self.items[height as usize - 1];
        let leaves: Vec<Hash32> = items.iter().map(|i| merkle::leaf_hash(i)).collect();
        ProofBundle {
            height,
            index: index as u32,
            item: items[index].clone(),
            proof: merkle::prove(&leaves, index).unwrap(),
        }
    }
}
