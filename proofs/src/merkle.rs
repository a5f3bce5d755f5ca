//! Strict Merkle commitments and single-leaf inclusion proofs.
//!
//! A block header commits to an ordered list of items (transactions, receipts, …) by
//! the root of a binary Merkle tree over them, and a light client checks that one item
//! is in that list with a [`MerkleProof`] and [`verify_inclusion`]. Trees are built with
//! `rs_merkle` in its usual shape: leaves at the bottom, pairs hashed left to right, and
//! the last node of an odd-sized level *promoted* unchanged to the level above (never
//! hashed with itself, so no two lists share a root by duplication).
//!
//! The verifier is written here, not taken from `rs_merkle`, because it must be strict:
//!
//! - **Domain separation.** A leaf is `sha256(0x00 ‖ item)` ([`leaf_hash`]) and an inner
//!   node `sha256(0x01 ‖ left ‖ right)` ([`node_hash`]), so no inner node can be passed
//!   off as a leaf (or the reverse) without a SHA-256 collision. Callers must compute the
//!   leaf with [`leaf_hash`] from the item they hold, never accept a leaf hash from the
//!   prover.
//! - **The leaf count comes from the signed header**, never from the prover. The count
//!   fixes the tree's shape, and a proof (only hashes) does not pin it down: with a count
//!   of its choosing a prover could present an inner node as a leaf of a smaller tree, or
//!   a real leaf at another index (leaf 4 of 5 has the same path as leaf 1 of 2). With
//!   the true count, every index has its own path, so none of that verifies.
//! - **Exact proof shape.** For a given `(leaf_count, index)` the path has exactly
//!   [`expected_proof_len`] siblings; any other length is rejected outright, so there are
//!   no trailing, missing or ignored hashes, and the proof encodes canonically.
//!
//! The empty list has the domain-separated root [`empty_root`], which is neither a leaf
//! nor a node hash.

use crate::hash::{hash_domain, sha256, Hash32};
use serde::{Deserialize, Serialize};

/// Domain prefix of a leaf hash.
const LEAF_PREFIX: u8 = 0x00;
/// Domain prefix of an inner-node hash.
const NODE_PREFIX: u8 = 0x01;
/// Domain of the root of an empty tree.
const EMPTY_DOMAIN: &[u8] = b"DISTPOS/MERKLE/EMPTY/v1";

/// The leaf hash of an item: `sha256(0x00 ‖ item)`.
pub fn leaf_hash(item: &[u8]) -> Hash32 {
    hash_domain(&[LEAF_PREFIX], &[item])
}

/// The hash of an inner node: `sha256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    hash_domain(&[NODE_PREFIX], &[&left.0, &right.0])
}

/// The root of a tree with zero leaves: `sha256("DISTPOS/MERKLE/EMPTY/v1")`.
pub fn empty_root() -> Hash32 {
    hash_domain(EMPTY_DOMAIN, &[])
}

/// The `rs_merkle` hasher for this tree: inner nodes are [`node_hash`], and a node
/// without a right sibling is promoted unchanged. Leaves are passed in already hashed
/// (with [`leaf_hash`]), so [`rs_merkle::Hasher::hash`] is never used on items.
#[derive(Clone)]
pub(crate) struct DomainHasher;

impl rs_merkle::Hasher for DomainHasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        sha256(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => node_hash(&Hash32(*left), &Hash32(*right)).0,
            None => *left,
        }
    }
}

/// Builds the `rs_merkle` tree over leaf hashes.
fn build_tree(leaves: &[Hash32]) -> rs_merkle::MerkleTree<DomainHasher> {
    let raw: Vec<[u8; 32]> = leaves.iter().map(|l| l.0).collect();
    rs_merkle::MerkleTree::<DomainHasher>::from_leaves(&raw)
}

/// The root over `leaves`, which are already leaf hashes (see [`leaf_hash`]); the
/// [`empty_root`] when there are none.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return empty_root();
    }
    build_tree(leaves).root().map_or_else(empty_root, Hash32)
}

/// The root over raw items: [`leaf_hash`] of each, then [`merkle_root`].
pub fn merkle_root_of_items<T: AsRef<[u8]>>(items: &[T]) -> Hash32 {
    let leaves: Vec<Hash32> = items.iter().map(|i| leaf_hash(i.as_ref())).collect();
    merkle_root(&leaves)
}

/// An inclusion proof for one leaf: the sibling hashes on its path to the root, bottom
/// up, skipping the levels where the path node had no sibling (was promoted).
///
/// The leaf's index and the tree's leaf count are deliberately not part of the proof:
/// the verifier takes them from the signed header or its own request. The canonical
/// binary encoding is postcard of this struct ([`crate::codec::encode`] /
/// [`crate::codec::decode_canonical`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Sibling hashes, from the leaf's level upward.
    pub siblings: Vec<Hash32>,
}

/// Why an inclusion proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The tree has no leaves, so nothing can be included in it.
    #[error("the tree is empty: no leaf can be proven")]
    EmptyTree,
    /// The claimed index is not a position in the tree.
    #[error("leaf index {index} is out of range for a tree of {leaf_count} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The tree's leaf count.
        leaf_count: u64,
    },
    /// The proof does not have exactly the number of siblings the path needs.
    #[error("proof has {got} sibling hash(es), the path needs exactly {expected}")]
    WrongProofLength {
        /// Siblings the path for this index and leaf count needs.
        expected: usize,
        /// Siblings the proof carries.
        got: usize,
    },
    /// The proof is well-formed but does not lead from the leaf to the root.
    #[error("proof does not lead from the leaf to the committed root")]
    RootMismatch,
}

/// How many siblings the path of leaf `index` in a tree of `leaf_count` leaves has;
/// `None` when `index >= leaf_count`. At most 64.
pub fn expected_proof_len(leaf_count: u64, index: u64) -> Option<usize> {
    if index >= leaf_count {
        return None;
    }
    let (mut idx, mut len, mut needed) = (index, leaf_count, 0usize);
    // Invariant: idx < len. Each pass halves len (rounding up), so at most 64 passes.
    while len > 1 {
        if idx % 2 == 1 || idx < len - 1 {
            needed += 1;
        }
        idx /= 2;
        len = len / 2 + len % 2;
    }
    Some(needed)
}

/// The inclusion proof for `leaves[index]` (`leaves` are leaf hashes); `None` when
/// `index` is out of range. To prove many leaves of one tree, build a [`Prover`] once.
pub fn prove(leaves: &[Hash32], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() {
        return None;
    }
    Prover::new(leaves).prove(index)
}

/// A tree built once, to prove any number of its leaves (building it is linear in
/// the leaves; each proof after that is logarithmic).
pub struct Prover {
    tree: rs_merkle::MerkleTree<DomainHasher>,
    leaf_count: usize,
}

impl Prover {
    /// The tree over `leaves` (leaf hashes).
    pub fn new(leaves: &[Hash32]) -> Self {
        Self {
            tree: build_tree(leaves),
            leaf_count: leaves.len(),
        }
    }

    /// The inclusion proof for leaf `index`; `None` when out of range.
    pub fn prove(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.leaf_count {
            return None;
        }
        let expected = expected_proof_len(
            u64::try_from(self.leaf_count).ok()?,
            u64::try_from(index).ok()?,
        )?;
        // rs_merkle lists a single-leaf proof's helper hashes bottom-up, one per level
        // that has a sibling, which is exactly our order (checked against an
        // independent RFC 9162 path computation in the tests).
        let siblings: Vec<Hash32> = self
            .tree
            .proof(&[index])
            .proof_hashes()
            .iter()
            .copied()
            .map(Hash32)
            .collect();
        // Never hand out a proof our own verifier would reject on shape.
        (siblings.len() == expected).then_some(MerkleProof { siblings })
    }
}

/// Checks that `leaf` is leaf number `index` of the tree of `leaf_count` leaves whose
/// root is `root`.
///
/// `leaf` must be [`leaf_hash`] of the item, computed by the caller, and `leaf_count`
/// must come from the signed header, not from the prover (see the module docs). The
/// proof must have exactly [`expected_proof_len`] siblings.
pub fn verify_inclusion(
    root: &Hash32,
    leaf_count: u64,
    index: u64,
    leaf: &Hash32,
    proof: &MerkleProof,
) -> Result<(), MerkleError> {
    if leaf_count == 0 {
        return Err(MerkleError::EmptyTree);
    }
    let expected = expected_proof_len(leaf_count, index)
        .ok_or(MerkleError::IndexOutOfRange { index, leaf_count })?;
    let got = proof.siblings.len();
    if got != expected {
        return Err(MerkleError::WrongProofLength { expected, got });
    }

    let mut siblings = proof.siblings.iter();
    let (mut idx, mut len, mut h) = (index, leaf_count, *leaf);
    // Invariant: idx < len, so `len - 1` cannot underflow and the loop runs at most 64
    // times (len halves, rounding up, every pass).
    while len > 1 {
        if idx % 2 == 1 {
            let sibling = siblings
                .next()
                .ok_or(MerkleError::WrongProofLength { expected, got })?;
            h = node_hash(sibling, &h);
        } else if idx < len - 1 {
            let sibling = siblings
                .next()
                .ok_or(MerkleError::WrongProofLength { expected, got })?;
            h = node_hash(&h, sibling);
        }
        // Otherwise idx is the last node of an odd level: promoted, no sibling.
        idx /= 2;
        len = len / 2 + len % 2;
    }
    // The length check above makes this hold; kept so no sibling is ever ignored.
    if siblings.next().is_some() {
        return Err(MerkleError::WrongProofLength { expected, got });
    }
    if h == *root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_canonical, encode};
    use proptest::prelude::*;

    fn leaves_of(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| leaf_hash(format!("item-{i}").as_bytes()))
            .collect()
    }

    #[test]
    fn a_prover_built_once_proves_every_leaf_like_prove_does() {
        for n in [1usize, 2, 3, 5, 8, 13, 100] {
            let leaves = leaves_of(n);
            let root = merkle_root(&leaves);
            let prover = Prover::new(&leaves);
            for i in 0..n {
                let p = prover.prove(i).unwrap();
                assert_eq!(Some(p.clone()), prove(&leaves, i), "n={n} i={i}");
                assert!(verify_inclusion(&root, n as u64, i as u64, &leaves[i], &p).is_ok());
            }
            assert_eq!(prover.prove(n), None, "out of range");
        }
    }

    /// Largest power of two strictly less than `n` (n >= 2).
    fn split_point(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// Independent root: the RFC 9162 recursive definition (split at the largest power
    /// of two below n), which is the same tree as bottom-up pairing with promotion.
    fn naive_root(leaves: &[Hash32]) -> Hash32 {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n);
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    /// Independent path: RFC 9162 `PATH(m, D[n])`, bottom-up.
    fn naive_path(leaves: &[Hash32], m: usize) -> Vec<Hash32> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split_point(n);
        if m < k {
            let mut p = naive_path(&leaves[..k], m);
            p.push(naive_root(&leaves[k..]));
            p
        } else {
            let mut p = naive_path(&leaves[k..], m - k);
            p.push(naive_root(&leaves[..k]));
            p
        }
    }

    /// Independent verifier: the RFC 9162 §2.1.3.2 bit-shifting algorithm. Returns the
    /// root the path leads to, or `None` when the path has the wrong shape.
    fn rfc_root(leaf_count: u64, index: u64, leaf: &Hash32, path: &[Hash32]) -> Option<Hash32> {
        if index >= leaf_count {
            return None;
        }
        let (mut f, mut s) = (index, leaf_count - 1);
        let mut r = *leaf;
        for p in path {
            if s == 0 {
                return None;
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        (s == 0).then_some(r)
    }

    fn flip(h: &Hash32, bit: usize) -> Hash32 {
        let mut out = *h;
        out.0[bit / 8] ^= 1 << (bit % 8);
        out
    }

    #[test]
    fn golden_vectors() {
        // Cross-checked with `printf ... | sha256sum`.
        assert_eq!(
            leaf_hash(b"").to_string(),
            "0x6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            empty_root().to_string(),
            "0x4856fd23f8e10bdf98127559b403c32981dc034bb336239f0a2ffb8aaa7e277b"
        );
        let (a, b) = (Hash32([0xaa; 32]), Hash32([0xbb; 32]));
        let mut pre = vec![0x01];
        pre.extend_from_slice(&a.0);
        pre.extend_from_slice(&b.0);
        assert_eq!(node_hash(&a, &b), sha256(&pre));
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    }

    #[test]
    fn known_small_trees() {
        let l = leaves_of(4);
        assert_eq!(merkle_root(&[]), empty_root());
        assert_eq!(merkle_root_of_items::<&[u8]>(&[]), empty_root());
        assert_eq!(merkle_root(&l[..1]), l[0]);
        assert_eq!(merkle_root(&l[..2]), node_hash(&l[0], &l[1]));
        // Three leaves: l2 is promoted, not hashed with itself.
        assert_eq!(
            merkle_root(&l[..3]),
            node_hash(&node_hash(&l[0], &l[1]), &l[2])
        );
        assert_ne!(
            merkle_root(&l[..3]),
            node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[2]))
        );
        assert_eq!(
            merkle_root(&l),
            node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3]))
        );
        let items = ["item-0", "item-1", "item-2"];
        assert_eq!(merkle_root_of_items(&items), merkle_root(&l[..3]));
        // The empty root is none of the small roots.
        assert_ne!(empty_root(), leaf_hash(b""));
    }

    #[test]
    fn small_proofs_and_lengths() {
        let l = leaves_of(3);
        assert_eq!(prove(&l, 3), None);
        assert_eq!(prove(&[], 0), None);
        assert_eq!(prove(&l[..1], 0), Some(MerkleProof { siblings: vec![] }));
        assert_eq!(
            prove(&l, 0),
            Some(MerkleProof {
                siblings: vec![l[1], l[2]]
            })
        );
        assert_eq!(
            prove(&l, 2),
            Some(MerkleProof {
                siblings: vec![node_hash(&l[0], &l[1])]
            })
        );
        assert_eq!(expected_proof_len(0, 0), None);
        assert_eq!(expected_proof_len(3, 3), None);
        assert_eq!(expected_proof_len(1, 0), Some(0));
        assert_eq!(expected_proof_len(3, 2), Some(1));
        assert_eq!(expected_proof_len(5, 4), Some(1));
        assert_eq!(expected_proof_len(5, 3), Some(3));
        assert_eq!(expected_proof_len(u64::MAX, 0), Some(64));
        assert_eq!(expected_proof_len(u64::MAX, u64::MAX - 1), Some(63));
        assert_eq!(expected_proof_len(1 << 63, (1 << 63) - 1), Some(63));
    }

    #[test]
    fn proof_encoding_round_trips() {
        let l = leaves_of(5);
        for i in 0..5 {
            let proof = prove(&l, i).unwrap();
            let bytes = encode(&proof);
            assert_eq!(bytes.len(), 1 + 32 * proof.siblings.len());
            assert_eq!(decode_canonical::<MerkleProof>(&bytes), Ok(proof));
        }
    }

    #[test]
    fn inner_node_cannot_pass_as_leaf() {
        let l = leaves_of(4);
        let root = merkle_root(&l);
        let n01 = node_hash(&l[0], &l[1]);
        let n23 = node_hash(&l[2], &l[3]);
        let forged = MerkleProof {
            siblings: vec![n23],
        };

        // Why the leaf count must come from the signed header: if the prover could claim
        // a 2-leaf tree, the inner node n01 would check out as "leaf 0".
        assert_eq!(verify_inclusion(&root, 2, 0, &n01, &forged), Ok(()));

        // (a) With the true count (4), every path has 2 siblings: the forgery is rejected
        // on shape before any hashing.
        assert_eq!(
            verify_inclusion(&root, 4, 0, &n01, &forged),
            Err(MerkleError::WrongProofLength {
                expected: 2,
                got: 1
            })
        );
        // (b) Callers hash the item themselves. Presenting the inner node's preimage
        // 0x01 ‖ l0 ‖ l1 as an item gives leaf_hash(0x00 ‖ 0x01 ‖ l0 ‖ l1) ≠ n01, so even
        // with the forged count the root does not match.
        let mut preimage = vec![0x01];
        preimage.extend_from_slice(&l[0].0);
        preimage.extend_from_slice(&l[1].0);
        assert_eq!(sha256(&preimage), n01);
        let as_item = leaf_hash(&preimage);
        assert_ne!(as_item, n01);
        assert_eq!(
            verify_inclusion(&root, 2, 0, &as_item, &forged),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(
            verify_inclusion(&root, 4, 0, &as_item, &prove(&l, 0).unwrap()),
            Err(MerkleError::RootMismatch)
        );
    }

    #[test]
    fn wrong_leaf_count_is_rejected() {
        let l = leaves_of(5);
        let root = merkle_root(&l);
        // Index 3 of 5: siblings l2, n01, l4.
        let proof = prove(&l, 3).unwrap();
        assert_eq!(verify_inclusion(&root, 5, 3, &l[3], &proof), Ok(()));
        // Deflated to 4: a 4-leaf path has only 2 siblings.
        assert_eq!(
            verify_inclusion(&root, 4, 3, &l[3], &proof),
            Err(MerkleError::WrongProofLength {
                expected: 2,
                got: 3
            })
        );
        // Deflated below the index.
        assert_eq!(
            verify_inclusion(&root, 3, 3, &l[3], &proof),
            Err(MerkleError::IndexOutOfRange {
                index: 3,
                leaf_count: 3
            })
        );
        // Inflated to 9: a 9-leaf path for index 3 has 4 siblings.
        assert_eq!(
            verify_inclusion(&root, 9, 3, &l[3], &proof),
            Err(MerkleError::WrongProofLength {
                expected: 4,
                got: 3
            })
        );
        // Inflated to 6 for the last leaf: l4 is no longer promoted, so it needs l5.
        let last = prove(&l, 4).unwrap();
        assert_eq!(
            verify_inclusion(&root, 6, 4, &l[4], &last),
            Err(MerkleError::WrongProofLength {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            verify_inclusion(&root, 0, 0, &l[0], &MerkleProof { siblings: vec![] }),
            Err(MerkleError::EmptyTree)
        );
        // Every other count, for every index: rejected, except exactly where the wrong
        // count gives the same path shape as the true one (5 vs 6..=8 for indices 0..=3).
        // There the claim "leaf i is at index i" is still true, but the verifier cannot
        // tell the counts apart: see `leaf_count_must_come_from_the_header`.
        let mut accepted = Vec::new();
        for (i, leaf) in l.iter().enumerate() {
            let proof = prove(&l, i).unwrap();
            for count in (0..=40).chain([u64::MAX - 1, u64::MAX]) {
                if count != 5 && verify_inclusion(&root, count, i as u64, leaf, &proof).is_ok() {
                    accepted.push((count, i));
                }
            }
        }
        let same_shape: Vec<(u64, usize)> =
            (0..4).flat_map(|i| (6..=8).map(move |c| (c, i))).collect();
        accepted.sort_unstable_by_key(|&(c, i)| (i, c));
        assert_eq!(accepted, same_shape);
    }

    #[test]
    fn leaf_count_must_come_from_the_header() {
        // The proof carries only hashes, so a prover who could choose the leaf count could
        // move a leaf to another index: l4 of a 5-leaf tree has the one-sibling path
        // [n0123] (left), which is also the path of index 1 of 2 and index 8 of 9.
        let l = leaves_of(5);
        let root = merkle_root(&l);
        let proof = prove(&l, 4).unwrap();
        assert_eq!(proof.siblings.len(), 1);
        assert_eq!(verify_inclusion(&root, 2, 1, &l[4], &proof), Ok(()));
        assert_eq!(verify_inclusion(&root, 9, 8, &l[4], &proof), Ok(()));
        // With the true count, the same claims fail.
        assert_eq!(
            verify_inclusion(&root, 5, 1, &l[4], &proof),
            Err(MerkleError::WrongProofLength {
                expected: 3,
                got: 1
            })
        );
        assert_eq!(
            verify_inclusion(&root, 5, 8, &l[4], &proof),
            Err(MerkleError::IndexOutOfRange {
                index: 8,
                leaf_count: 5
            })
        );
    }

    #[test]
    fn index_out_of_range_is_rejected() {
        let l = leaves_of(5);
        let root = merkle_root(&l);
        let proof = prove(&l, 4).unwrap();
        for index in [5, 6, 100, u64::MAX] {
            assert_eq!(
                verify_inclusion(&root, 5, index, &l[4], &proof),
                Err(MerkleError::IndexOutOfRange {
                    index,
                    leaf_count: 5
                })
            );
        }
    }

    #[test]
    fn extra_or_missing_siblings_are_rejected() {
        let l = leaves_of(5);
        let root = merkle_root(&l);
        for i in 0..5 {
            let proof = prove(&l, i).unwrap();
            let n = proof.siblings.len();

            let mut longer = proof.clone();
            longer.siblings.push(root);
            assert_eq!(
                verify_inclusion(&root, 5, i as u64, &l[i], &longer),
                Err(MerkleError::WrongProofLength {
                    expected: n,
                    got: n + 1
                })
            );

            let mut shorter = proof.clone();
            shorter.siblings.pop();
            assert_eq!(
                verify_inclusion(&root, 5, i as u64, &l[i], &shorter),
                Err(MerkleError::WrongProofLength {
                    expected: n,
                    got: n - 1
                })
            );
            let mut shorter_front = proof.clone();
            shorter_front.siblings.remove(0);
            assert_eq!(
                verify_inclusion(&root, 5, i as u64, &l[i], &shorter_front),
                Err(MerkleError::WrongProofLength {
                    expected: n,
                    got: n - 1
                })
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let l = leaves_of(5);
        let root = merkle_root(&l);
        let mut checked = 0;
        for i in 0..5 {
            let proof = prove(&l, i).unwrap();
            assert_eq!(verify_inclusion(&root, 5, i as u64, &l[i], &proof), Ok(()));
            for bit in 0..256 {
                assert_eq!(
                    verify_inclusion(&root, 5, i as u64, &flip(&l[i], bit), &proof),
                    Err(MerkleError::RootMismatch)
                );
                assert_eq!(
                    verify_inclusion(&flip(&root, bit), 5, i as u64, &l[i], &proof),
                    Err(MerkleError::RootMismatch)
                );
                for s in 0..proof.siblings.len() {
                    let mut bad = proof.clone();
                    bad.siblings[s] = flip(&bad.siblings[s], bit);
                    assert_eq!(
                        verify_inclusion(&root, 5, i as u64, &l[i], &bad),
                        Err(MerkleError::RootMismatch)
                    );
                    checked += 1;
                }
            }
        }
        // Siblings per index in a 5-leaf tree: 3, 3, 3, 3, 1.
        assert_eq!(checked, 13 * 256);
    }

    #[test]
    fn proof_for_another_index_is_rejected() {
        for n in [2usize, 3, 5, 7, 8] {
            let l = leaves_of(n);
            let root = merkle_root(&l);
            for i in 0..n {
                let proof = prove(&l, i).unwrap();
                for j in (0..n).filter(|&j| j != i) {
                    for leaf in [&l[i], &l[j]] {
                        assert!(
                            verify_inclusion(&root, n as u64, j as u64, leaf, &proof).is_err(),
                            "n={n}: proof for {i} accepted at {j}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn huge_leaf_counts_fail_cleanly() {
        let root = Hash32([7; 32]);
        let leaf = Hash32([9; 32]);
        let empty = MerkleProof { siblings: vec![] };
        assert_eq!(
            verify_inclusion(&root, u64::MAX, u64::MAX - 1, &leaf, &empty),
            Err(MerkleError::WrongProofLength {
                expected: 63,
                got: 0
            })
        );
        assert_eq!(
            verify_inclusion(&root, u64::MAX, u64::MAX, &leaf, &empty),
            Err(MerkleError::IndexOutOfRange {
                index: u64::MAX,
                leaf_count: u64::MAX
            })
        );
        let full = MerkleProof {
            siblings: vec![Hash32([1; 32]); 64],
        };
        assert_eq!(
            verify_inclusion(&root, u64::MAX, 0, &leaf, &full),
            Err(MerkleError::RootMismatch)
        );
        // A right-shaped path through a huge tree does verify: the walk is exact at u64::MAX.
        let path = vec![Hash32([1; 32]); 63];
        let top = rfc_root(u64::MAX, u64::MAX - 1, &leaf, &path).unwrap();
        assert_eq!(
            verify_inclusion(
                &top,
                u64::MAX,
                u64::MAX - 1,
                &leaf,
                &MerkleProof { siblings: path }
            ),
            Ok(())
        );
    }

    #[test]
    fn errors_have_messages() {
        let e = MerkleError::WrongProofLength {
            expected: 2,
            got: 3,
        };
        assert_eq!(
            e.to_string(),
            "proof has 3 sibling hash(es), the path needs exactly 2"
        );
        let e = MerkleError::IndexOutOfRange {
            index: 9,
            leaf_count: 4,
        };
        assert!(e.to_string().contains('9') && e.to_string().contains('4'));
    }

    /// Leaf counts: mostly small, sometimes anywhere in u64, sometimes at the top.
    fn any_count() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => 0u64..80,
            2 => any::<u64>(),
            1 => (0u64..4).prop_map(|d| u64::MAX - d),
            1 => (0u32..64).prop_map(|s| 1u64 << s),
        ]
    }

    fn any_hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn prop_every_proof_verifies(
            items in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..=70)
        ) {
            let leaves: Vec<Hash32> = items.iter().map(|i| leaf_hash(i)).collect();
            let root = merkle_root(&leaves);
            prop_assert_eq!(root, naive_root(&leaves));
            prop_assert_eq!(merkle_root_of_items(&items), root);
            let n = leaves.len() as u64;
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = prove(&leaves, i).unwrap();
                // rs_merkle's proof_hashes order is the bottom-up RFC 9162 path.
                prop_assert_eq!(&proof.siblings, &naive_path(&leaves, i));
                prop_assert_eq!(Some(proof.siblings.len()), expected_proof_len(n, i as u64));
                prop_assert_eq!(verify_inclusion(&root, n, i as u64, leaf, &proof), Ok(()));
                prop_assert_eq!(rfc_root(n, i as u64, leaf, &proof.siblings), Some(root));
            }
            prop_assert_eq!(prove(&leaves, leaves.len()), None);
        }

        #[test]
        fn prop_decode_is_canonical(
            bytes in prop_oneof![
                1 => prop::collection::vec(any::<u8>(), 0..200),
                // Valid encodings, sometimes cut short, extended or with one byte changed.
                3 => (
                    prop::collection::vec(any_hash(), 0..5),
                    0usize..4,
                    any::<usize>(),
                    any::<u8>(),
                ).prop_map(|(siblings, how, at, byte)| {
                    let mut b = encode(&MerkleProof { siblings });
                    let at = at % b.len();
                    match how {
                        0 => {}
                        1 => b.truncate(at),
                        2 => b.push(byte),
                        _ => b[at] ^= byte | 1,
                    }
                    b
                }),
            ]
        ) {
            if let Ok(proof) = decode_canonical::<MerkleProof>(&bytes) {
                prop_assert_eq!(encode(&proof), bytes);
            }
        }

        #[test]
        fn prop_decode_accepts_exactly_the_encoding(
            siblings in prop::collection::vec(any_hash(), 0..5),
            junk in prop::collection::vec(any::<u8>(), 1..6),
        ) {
            let proof = MerkleProof { siblings };
            let bytes = encode(&proof);
            prop_assert_eq!(bytes.len(), 1 + 32 * proof.siblings.len());
            prop_assert_eq!(decode_canonical::<MerkleProof>(&bytes), Ok(proof.clone()));
            // Trailing bytes.
            let mut longer = bytes.clone();
            longer.extend_from_slice(&junk);
            prop_assert!(decode_canonical::<MerkleProof>(&longer).is_err());
            // The same length as an over-long varint.
            let mut overlong = vec![0x80 | bytes[0], 0x00];
            overlong.extend_from_slice(&bytes[1..]);
            prop_assert!(decode_canonical::<MerkleProof>(&overlong).is_err());
            // One hash short.
            if bytes.len() > 1 {
                prop_assert!(decode_canonical::<MerkleProof>(&bytes[..bytes.len() - 1]).is_err());
            }
        }

        #[test]
        fn prop_verify_never_panics_and_only_accepts_valid(
            count in any_count(),
            index_sel in prop_oneof![any::<u64>(), (0u64..80)],
            leaf in any_hash(),
            root in any_hash(),
            siblings in prop::collection::vec(any_hash(), 0..70),
            len_delta in prop_oneof![3 => Just(0i64), 2 => -2i64..=2],
            honest_root in any::<bool>(),
        ) {
            // Usually pick an in-range index and a right-length path, so Ok is reachable.
            let index = if count > 0 && index_sel % 5 != 0 { index_sel % count } else { index_sel };
            let mut siblings = siblings;
            if let Some(n) = expected_proof_len(count, index) {
                if len_delta != 0 || siblings.len() < n {
                    let want = (n as i64 + len_delta).max(0) as usize;
                    siblings.resize(want, Hash32([0x33; 32]));
                } else {
                    siblings.truncate(n);
                }
            }
            let reference = rfc_root(count, index, &leaf, &siblings);
            let root = match (honest_root, reference) {
                (true, Some(r)) => r,
                _ => root,
            };
            let proof = MerkleProof { siblings };
            let result = verify_inclusion(&root, count, index, &leaf, &proof);
            prop_assert_eq!(result.is_ok(), reference == Some(root), "{:?}", result);
            if result.is_ok() {
                prop_assert_eq!(Some(proof.siblings.len()), expected_proof_len(count, index));
            }
            match result {
                Err(MerkleError::EmptyTree) => prop_assert_eq!(count, 0),
                Err(MerkleError::IndexOutOfRange { .. }) => prop_assert!(index >= count),
                _ => {}
            }
        }
    }
}
