//! Block headers and block ids (DESIGN §4.1).
//!
//! `block_id = sha256("DISTPOS/HDR/v1" ‖ canonical encoding of the unsigned header)`, and
//! the producer signs the block id. The header carries the chain id, so a header (and
//! its signature) is bound to one chain.

use crate::{
    chain_id::ChainId,
    codec,
    hash::{hash_domain, Hash32},
    keys::{self, PublicKey, SecretKey, Signature, SignatureError},
    schedule::ProducerSchedule,
};
use serde::{Deserialize, Serialize};

/// Domain of block ids.
pub const HEADER_DOMAIN: &[u8] = b"DISTPOS/HDR/v1";

/// The unsigned block header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// The chain this block belongs to.
    pub chain_id: ChainId,
    /// Height; the first block after genesis has height 1.
    pub height: u64,
    /// Id of the parent block (the chain's genesis id for height 1).
    pub prev_id: Hash32,
    /// Unix ms, exactly a slot boundary.
    pub timestamp_ms: u64,
    /// Signing key of the producer.
    pub producer: PublicKey,
    /// Version of the schedule this block was produced under.
    pub schedule_version: u32,
    /// Merkle root over the block's transactions (leaves: canonical signed tx bytes).
    pub tx_root: Hash32,
    /// Number of transactions (and of receipts): the leaf count of both trees.
    pub tx_count: u32,
    /// Merkle root over one receipt per transaction.
    pub receipts_root: Hash32,
    /// `sha256(prev state_digest ‖ hash of this block's state changes)`.
    pub state_digest: Hash32,
    /// A newly elected schedule, carried by the first block of a round when the set
    /// changed; it takes effect once this header is irreversible.
    pub new_schedule: Option<ProducerSchedule>,
    /// The secret whose hash this producer committed to in its previous block.
    pub reveal: Hash32,
    /// `sha256(secret)` of the secret this producer will reveal next.
    pub commit: Hash32,
}

impl BlockHeader {
    /// The block id: the hash the producer signs.
    pub fn id(&self) -> Hash32 {
        hash_domain(HEADER_DOMAIN, &[&codec::encode(self)])
    }

    /// Signs the header.
    pub fn sign(self, key: &SecretKey) -> SignedHeader {
        let signature = key.sign(&self.id());
        SignedHeader {
            header: self,
            signature,
        }
    }
}

/// A header with its producer's signature over the block id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// The producer's low-S signature over `header.id()`.
    pub signature: Signature,
}

impl SignedHeader {
    /// The block id.
    pub fn id(&self) -> Hash32 {
        self.header.id()
    }

    /// Checks the signature is by `header.producer` over the block id.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        keys::verify(&self.header.producer, &self.id(), &self.signature)
    }

    /// The 4 bytes of the id used as TaPoS `ref_block_prefix` (bytes 8..12, little
    /// endian; DESIGN §3.2).
    pub fn tapos_prefix(&self) -> u32 {
        tapos_prefix(&self.id())
    }
}

/// `ref_block_prefix` of a block id: u32 little-endian of bytes 8..12.
pub fn tapos_prefix(id: &Hash32) -> u32 {
    u32::from_le_bytes([id.0[8], id.0[9], id.0[10], id.0[11]])
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(key: &SecretKey) -> BlockHeader {
        BlockHeader {
            chain_id: ChainId(0xe2e4),
            height: 7,
            prev_id: Hash32([1; 32]),
            timestamp_ms: 1_700_000_000_000,
            producer: key.public_key(),
            schedule_version: 0,
            tx_root: Hash32([2; 32]),
            tx_count: 0,
            receipts_root: Hash32([3; 32]),
            state_digest: Hash32([4; 32]),
            new_schedule: None,
            reveal: Hash32::ZERO,
            commit: Hash32([5; 32]),
        }
    }

    #[test]
    fn signature_binds_every_field() {
        let key = SecretKey::from_seed(b"p1");
        let signed = sample(&key).sign(&key);
        assert_eq!(signed.verify_signature(), Ok(()));
        let mut other_chain = signed.clone();
        other_chain.header.chain_id = ChainId(0xe2e5);
        assert_eq!(
            other_chain.verify_signature(),
            Err(SignatureError::Mismatch)
        );
        let mut other_height = signed.clone();
        other_height.header.height += 1;
        assert_eq!(
            other_height.verify_signature(),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn encoding_round_trips_canonically() {
        let key = SecretKey::from_seed(b"p1");
        let signed = sample(&key).sign(&key);
        let bytes = codec::encode(&signed);
        assert_eq!(
            codec::decode_canonical::<SignedHeader>(&bytes),
            Ok(signed.clone())
        );
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(serde_json::from_str::<SignedHeader>(&json).unwrap(), signed);
    }

    #[test]
    fn tapos_prefix_reads_bytes_8_to_12() {
        let mut id = [0u8; 32];
        id[8..12].copy_from_slice(&[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(tapos_prefix(&Hash32(id)), 0x1234_5678);
    }
}
