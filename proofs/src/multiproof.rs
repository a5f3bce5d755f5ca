//! Strict Merkle multiproofs: many leaves of one tree proven together (interchain v2,
//! DESIGN §6.1: every transfer to one chain in one block, under one proof).
//!
//! Same tree and hashing as [`crate::merkle`] (domain-separated leaves and nodes, an odd
//! level's last node promoted). The proof is the list of sibling hashes the verifier
//! cannot compute itself, level by level from the leaves up and left to right within a
//! level; that is the order `rs_merkle` produces, which proves here. The verifier is
//! written out, strict like the single-leaf one:
//!
//! - **The leaf count comes from the signed header**, never from the prover.
//! - **Indices are strictly increasing** and inside the tree: no duplicate leaf, no
//!   index the prover may reorder to pair a leaf with the wrong position, no empty set.
//! - **Exact shape.** `(leaf_count, indices)` fix which siblings are needed
//!   ([`expected_multiproof_len`]); a proof with one hash more or less is refused before
//!   any hashing, so nothing is ignored and the encoding is canonical.
//! - Work is bounded by the header: at most `leaf_count` indices, and
//!   O(indices × depth) hashes.

use crate::{
    hash::Hash32,
    merkle::{node_hash, MerkleError},
};
use serde::{Deserialize, Serialize};

/// The sibling hashes that prove a set of leaves of one tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiProof {
    /// Hashes the verifier needs, from the leaves' level upward, left to right.
    pub siblings: Vec<Hash32>,
}

/// Why a multiproof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultiProofError {
    /// No leaf is claimed.
    #[error("a multiproof must prove at least one leaf")]
    NoLeaves,
    /// The indices are not strictly increasing (unsorted or repeated).
    #[error("leaf indices must be strictly increasing (position {position})")]
    IndicesNotIncreasing {
        /// Where the order breaks.
        position: usize,
    },
    /// One leaf per index.
    #[error("{indices} indices but {leaves} leaves")]
    LeafCountMismatch {
        /// Indices given.
        indices: usize,
        /// Leaves given.
        leaves: usize,
    },
    /// What a single proof would be refused for (empty tree, index out of range, wrong
    /// number of hashes, wrong root).
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// Checks the indices against the tree: non-empty, strictly increasing, in range.
fn check_indices(leaf_count: u64, indices: &[u64]) -> Result<(), MultiProofError> {
    if leaf_count == 0 {
        return Err(MerkleError::EmptyTree.into());
    }
    if indices.is_empty() {
        return Err(MultiProofError::NoLeaves);
    }
    for (position, pair) in indices.windows(2).enumerate() {
        if pair[0] >= pair[1] {
            return Err(MultiProofError::IndicesNotIncreasing {
                position: position + 1,
            });
        }
    }
    match indices.last() {
        Some(&last) if last >= leaf_count => Err(MerkleError::IndexOutOfRange {
            index: last,
            leaf_count,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Walks the tree from the claimed positions to the root, calling `pair` for every
/// parent: `pair(left, right)` with `None` for a sibling the proof must supply. One
/// pass fixes both the proof's shape and the verification.
fn walk<T: Copy>(
    leaf_count: u64,
    mut level: Vec<(u64, T)>,
    mut pair: impl FnMut(Option<T>, Option<T>, bool) -> Result<T, MultiProofError>,
) -> Result<T, MultiProofError> {
    let mut len = leaf_count;
    // Each pass halves `len` (rounding up): at most 64 passes.
    while len > 1 {
        let mut next = Vec::with_capacity(level.len() / 2 + 1);
        let mut i = 0;
        while i < level.len() {
            let (idx, h) = level[i];
            let parent = if idx % 2 == 0 {
                if idx + 1 < len {
                    // Left child: its right sibling is the next known node, or proven.
                    match level.get(i + 1) {
                        Some(&(j, r)) if j == idx + 1 => {
                            i += 1;
                            pair(Some(h), Some(r), false)?
                        }
                        _ => pair(Some(h), None, false)?,
                    }
                } else {
                    // The last node of an odd level: promoted.
                    pair(Some(h), None, true)?
                }
            } else {
                // Right child whose left sibling is not known (else it paired above).
                pair(None, Some(h), false)?
            };
            next.push((idx / 2, parent));
            i += 1;
        }
        level = next;
        len = len / 2 + len % 2;
    }
    match level.as_slice() {
        [(0, root)] => Ok(*root),
        // Unreachable with checked indices; refused rather than trusted.
        _ => Err(MerkleError::RootMismatch.into()),
    }
}

/// How many sibling hashes a multiproof of `indices` in a tree of `leaf_count` leaves
/// has, or why those indices cannot be proven.
pub fn expected_multiproof_len(leaf_count: u64, indices: &[u64]) -> Result<usize, MultiProofError> {
    check_indices(leaf_count, indices)?;
    let mut needed = 0usize;
    walk(
        leaf_count,
        indices.iter().map(|&i| (i, ())).collect(),
        |l, r, promoted| {
            if !promoted && (l.is_none() || r.is_none()) {
                needed += 1;
            }
            Ok(())
        },
    )?;
    Ok(needed)
}

/// The multiproof of `indices` (strictly increasing, in range) over `leaves` (leaf
/// hashes); `None` if the indices cannot be proven.
pub fn prove_many(leaves: &[Hash32], indices: &[usize]) -> Option<MultiProof> {
    let count = u64::try_from(leaves.len()).ok()?;
    let idx: Vec<u64> = indices
        .iter()
        .map(|&i| u64::try_from(i).ok())
        .collect::<Option<_>>()?;
    let expected = expected_multiproof_len(count, &idx).ok()?;
    let raw: Vec<[u8; 32]> = leaves.iter().map(|l| l.0).collect();
    let tree = rs_merkle::MerkleTree::<crate::merkle::DomainHasher>::from_leaves(&raw);
    let siblings: Vec<Hash32> = tree
        .proof(indices)
        .proof_hashes()
        .iter()
        .copied()
        .map(Hash32)
        .collect();
    // Never hand out a proof our own verifier would refuse on shape.
    (siblings.len() == expected).then_some(MultiProof { siblings })
}

/// Checks that `leaves[k]` is leaf number `indices[k]` of the tree of `leaf_count`
/// leaves whose root is `root`, for every `k`.
///
/// `leaves` must be [`crate::merkle::leaf_hash`]es of the items, computed by the
/// caller, and `leaf_count` must come from the signed header.
pub fn verify_many(
    root: &Hash32,
    leaf_count: u64,
    indices: &[u64],
    leaves: &[Hash32],
    proof: &MultiProof,
) -> Result<(), MultiProofError> {
    if indices.len() != leaves.len() {
        return Err(MultiProofError::LeafCountMismatch {
            indices: indices.len(),
            leaves: leaves.len(),
        });
    }
    let expected = expected_multiproof_len(leaf_count, indices)?;
    let got = proof.siblings.len();
    if got != expected {
        return Err(MerkleError::WrongProofLength { expected, got }.into());
    }
    let mut siblings = proof.siblings.iter();
    let mut next = || {
        siblings
            .next()
            .copied()
            .ok_or(MultiProofError::Merkle(MerkleError::WrongProofLength {
                expected,
                got,
            }))
    };
    let computed = walk(
        leaf_count,
        indices
            .iter()
            .copied()
            .zip(leaves.iter().copied())
            .collect(),
        |l, r, promoted| match (l, r) {
            (Some(h), None) if promoted => Ok(h),
            (Some(l), Some(r)) => Ok(node_hash(&l, &r)),
            (Some(l), None) => Ok(node_hash(&l, &next()?)),
            (None, Some(r)) => Ok(node_hash(&next()?, &r)),
            (None, None) => Err(MerkleError::RootMismatch.into()),
        },
    )?;
    if computed == *root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch.into())
    }
}

#[cfg(test)]
mod tests;
