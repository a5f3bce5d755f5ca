//! The underwritten fast path (DESIGN §11), the parts a destination checks from the
//! source chain's headers alone: that a header above our light client's last
//! irreversible block was signed by the producer its schedule names for that slot
//! ([`check_unfinal`]), and that an underwriter endorsed a transfer in that block for a
//! given share ([`Endorsement`]).
//!
//! An unfinal header proves less than an irreversible one: its block may still be
//! orphaned. What makes it safe to act on is the bonds behind the endorsements, which
//! the destination's ledger locks and can slash; nothing here decides that.

use crate::{
    consensus::HeaderError, hash_domain, keys, light_client::LightClient, ChainId, Hash32,
    PublicKey, SecretKey, Signature, SignatureError, SignedHeader,
};
use serde::{Deserialize, Serialize};

/// Domain of an endorsement's signed hash.
const ENDORSEMENT_DOMAIN: &[u8] = b"DISTPOS/FAST/ENDORSE/v1";

/// What an underwriter signs: "I stand behind `share` of transfer `tx`, from `source`
/// to `destination`, in block `block_id` at `height` of `source`."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndorsedTransfer {
    /// The source chain (where the block is).
    pub source: ChainId,
    /// The destination chain (where the bond is).
    pub destination: ChainId,
    /// The transfer's hash.
    pub tx: Hash32,
    /// The block of `source` that contains it.
    pub block_id: Hash32,
    /// Its height.
    pub height: u64,
}

impl EndorsedTransfer {
    /// The hash an underwriter signs for `share` of this transfer.
    pub fn signing_hash(&self, share: u128) -> Hash32 {
        hash_domain(
            ENDORSEMENT_DOMAIN,
            &[
                &self.source.0.to_be_bytes(),
                &self.destination.0.to_be_bytes(),
                &self.tx.0,
                &self.block_id.0,
                &self.height.to_be_bytes(),
                &share.to_be_bytes(),
            ],
        )
    }

    /// Signs `share` of this transfer with `key`.
    pub fn endorse(&self, key: &SecretKey, share: u128) -> Endorsement {
        Endorsement {
            signing_key: key.public_key(),
            share,
            signature: key.sign(&self.signing_hash(share)),
        }
    }
}

/// One underwriter's guarantee for a share of a transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endorsement {
    /// The key of the underwriter's bond on the destination.
    pub signing_key: PublicKey,
    /// The amount it stands behind.
    #[serde(with = "crate::codec::dec_u128")]
    pub share: u128,
    /// Its signature over [`EndorsedTransfer::signing_hash`].
    pub signature: Signature,
}

impl Endorsement {
    /// Checks the signature for `what`.
    pub fn verify(&self, what: &EndorsedTransfer) -> Result<(), SignatureError> {
        keys::verify(
            &self.signing_key,
            &what.signing_hash(self.share),
            &self.signature,
        )
    }
}

/// Why a header cannot carry a fast transfer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnfinalError {
    /// The block is irreversible here already: the ordinary proof applies.
    #[error(
        "height {height} is irreversible here already (light client LIB {lib}): deliver it as a batch"
    )]
    AlreadyIrreversible {
        /// The header's height.
        height: u64,
        /// Our light client's LIB.
        lib: u64,
    },
    /// The header is not after the irreversible block in time.
    #[error("slot {slot} is not after the irreversible block's slot {lib_slot}")]
    BeforeLib {
        /// The header's slot.
        slot: u64,
        /// The slot of our light client's LIB.
        lib_slot: u64,
    },
    /// The header itself does not check.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// Checks that `header` may be a block of the peer above `lc`'s last irreversible
/// block: the peer's chain, a height and slot above the LIB, not from the future (at
/// `now_ms`), the schedule in force at `lc`'s head, the producer that schedule names for
/// the slot, and its signature. Linkage to our branch is not required (the header may
/// be ahead of it, or on another fork): bonds, not finality, back what it carries.
pub fn check_unfinal(
    lc: &LightClient,
    header: &SignedHeader,
    now_ms: u64,
) -> Result<(), UnfinalError> {
    let h = &header.header;
    let rules = &lc.rules;
    if h.chain_id != rules.chain_id {
        return Err(HeaderError::WrongChain {
            expected: rules.chain_id,
            got: h.chain_id,
        }
        .into());
    }
    if h.height <= lc.lib() {
        return Err(UnfinalError::AlreadyIrreversible {
            height: h.height,
            lib: lc.lib(),
        });
    }
    // A header our light client already follows was checked when it arrived.
    if lc
        .branch
        .iter()
        .any(|(b, _)| b.header.height == h.height && b.id() == header.id())
    {
        return Ok(());
    }
    let slot = rules
        .clock
        .slot_at_boundary(h.timestamp_ms)
        .ok_or(HeaderError::NotSlotBoundary(h.timestamp_ms))?;
    if slot <= lc.base.slot {
        return Err(UnfinalError::BeforeLib {
            slot,
            lib_slot: lc.base.slot,
        });
    }
    if h.timestamp_ms > now_ms.saturating_add(rules.max_drift_ms) {
        return Err(HeaderError::FromFuture {
            timestamp: h.timestamp_ms,
            now: now_ms,
            max_drift_ms: rules.max_drift_ms,
        }
        .into());
    }
    lc.head_state().check_signer(h, slot)?;
    header.verify_signature().map_err(HeaderError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests;
