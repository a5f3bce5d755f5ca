use super::*;
use crate::{
    codec::{decode_canonical, encode},
    merkle::{leaf_hash, merkle_root, prove},
};
use proptest::prelude::*;

fn leaves_of(tag: &str, n: usize) -> Vec<Hash32> {
    (0..n)
        .map(|i| leaf_hash(format!("{tag}-{i}").as_bytes()))
        .collect()
}

fn pick(leaves: &[Hash32], indices: &[usize]) -> (Vec<u64>, Vec<Hash32>) {
    (
        indices.iter().map(|&i| i as u64).collect(),
        indices.iter().map(|&i| leaves[i]).collect(),
    )
}

/// A tree size and a non-empty set of its indices, sorted and unique.
fn tree_and_indices() -> impl Strategy<Value = (usize, Vec<usize>)> {
    (1usize..200).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::btree_set(0..n, 1..=n.min(40))
                .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_honest_multiproof_verifies_with_exactly_the_expected_hashes(
        (n, indices) in tree_and_indices()
    ) {
        let leaves = leaves_of("tx", n);
        let root = merkle_root(&leaves);
        let proof = prove_many(&leaves, &indices).expect("provable");
        let (idx, picked) = pick(&leaves, &indices);
        prop_assert_eq!(
            Ok(proof.siblings.len()),
            expected_multiproof_len(n as u64, &idx)
        );
        prop_assert_eq!(verify_many(&root, n as u64, &idx, &picked, &proof), Ok(()));
        // Round trip through the canonical encoding.
        let back: MultiProof = decode_canonical(&encode(&proof)).unwrap();
        prop_assert_eq!(back, proof);
    }

    #[test]
    fn one_leaf_proves_like_a_single_proof(n in 1usize..300, i in 0usize..300) {
        let i = i % n;
        let leaves = leaves_of("tx", n);
        let single = prove(&leaves, i).unwrap();
        let many = prove_many(&leaves, &[i]).unwrap();
        prop_assert_eq!(many.siblings, single.siblings);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused(
        (n, indices) in tree_and_indices(), which in any::<prop::sample::Index>(), bit in 0usize..256
    ) {
        let leaves = leaves_of("tx", n);
        let root = merkle_root(&leaves);
        let mut proof = prove_many(&leaves, &indices).unwrap();
        let (idx, mut picked) = pick(&leaves, &indices);
        let total = proof.siblings.len() + picked.len();
        let k = which.index(total);
        let target = if k < proof.siblings.len() {
            &mut proof.siblings[k]
        } else {
            &mut picked[k - proof.siblings.len()]
        };
        target.0[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(
            verify_many(&root, n as u64, &idx, &picked, &proof),
            Err(MultiProofError::Merkle(MerkleError::RootMismatch))
        );
    }
}

#[test]
fn forged_indices_are_refused() {
    let leaves = leaves_of("tx", 13);
    let root = merkle_root(&leaves);
    let proof = prove_many(&leaves, &[2, 5, 9]).unwrap();
    let picked = vec![leaves[2], leaves[5], leaves[9]];
    assert_eq!(verify_many(&root, 13, &[2, 5, 9], &picked, &proof), Ok(()));
    // The same leaves claimed at other positions (same number of hashes needed or not).
    for forged in [[2u64, 5, 8], [3, 5, 9], [2, 4, 9], [0, 5, 9]] {
        assert!(
            verify_many(&root, 13, &forged, &picked, &proof).is_err(),
            "{forged:?}"
        );
    }
    // Unsorted, repeated, out of range, empty.
    assert_eq!(
        verify_many(&root, 13, &[5, 2, 9], &picked, &proof),
        Err(MultiProofError::IndicesNotIncreasing { position: 1 })
    );
    assert_eq!(
        verify_many(&root, 13, &[2, 5, 5], &picked, &proof),
        Err(MultiProofError::IndicesNotIncreasing { position: 2 })
    );
    assert_eq!(
        verify_many(&root, 13, &[2, 5, 13], &picked, &proof),
        Err(MultiProofError::Merkle(MerkleError::IndexOutOfRange {
            index: 13,
            leaf_count: 13
        }))
    );
    assert_eq!(
        verify_many(&root, 13, &[], &[], &MultiProof { siblings: vec![] }),
        Err(MultiProofError::NoLeaves)
    );
    assert_eq!(
        verify_many(&root, 0, &[0], &picked[..1], &proof),
        Err(MultiProofError::Merkle(MerkleError::EmptyTree))
    );
}

#[test]
fn a_leaf_twice_or_a_leaf_missing_is_refused() {
    let leaves = leaves_of("tx", 8);
    let root = merkle_root(&leaves);
    let proof = prove_many(&leaves, &[1, 6]).unwrap();
    // The same leaf twice at one index.
    assert_eq!(
        verify_many(
            &root,
            8,
            &[1, 1, 6],
            &[leaves[1], leaves[1], leaves[6]],
            &proof
        ),
        Err(MultiProofError::IndicesNotIncreasing { position: 1 })
    );
    // One leaf fewer (or more) than indices.
    assert_eq!(
        verify_many(&root, 8, &[1, 6], &[leaves[1]], &proof),
        Err(MultiProofError::LeafCountMismatch {
            indices: 2,
            leaves: 1
        })
    );
    // A duplicate of another leaf in place of the real one.
    assert_eq!(
        verify_many(&root, 8, &[1, 6], &[leaves[1], leaves[1]], &proof),
        Err(MultiProofError::Merkle(MerkleError::RootMismatch))
    );
}

#[test]
fn extra_or_missing_hashes_are_refused_before_hashing() {
    let leaves = leaves_of("tx", 21);
    let root = merkle_root(&leaves);
    let proof = prove_many(&leaves, &[0, 7, 20]).unwrap();
    let (idx, picked) = pick(&leaves, &[0, 7, 20]);
    let expected = proof.siblings.len();
    let mut extra = proof.clone();
    extra.siblings.push(leaves[3]);
    assert_eq!(
        verify_many(&root, 21, &idx, &picked, &extra),
        Err(MultiProofError::Merkle(MerkleError::WrongProofLength {
            expected,
            got: expected + 1
        }))
    );
    let mut short = proof;
    short.siblings.pop();
    assert_eq!(
        verify_many(&root, 21, &idx, &picked, &short),
        Err(MultiProofError::Merkle(MerkleError::WrongProofLength {
            expected,
            got: expected - 1
        }))
    );
}

#[test]
fn a_leaf_of_another_block_is_refused() {
    let ours = leaves_of("block-1", 10);
    let theirs = leaves_of("block-2", 10);
    let root = merkle_root(&ours);
    let proof = prove_many(&ours, &[3, 4]).unwrap();
    assert_eq!(
        verify_many(&root, 10, &[3, 4], &[ours[3], theirs[4]], &proof),
        Err(MultiProofError::Merkle(MerkleError::RootMismatch))
    );
    // A proof of the other block does not prove against ours either.
    let other = prove_many(&theirs, &[3, 4]).unwrap();
    assert!(verify_many(&root, 10, &[3, 4], &[theirs[3], theirs[4]], &other).is_err());
}

#[test]
fn proving_every_leaf_needs_no_hash_at_all() {
    for n in [1usize, 2, 3, 7, 16, 33] {
        let leaves = leaves_of("tx", n);
        let all: Vec<usize> = (0..n).collect();
        let proof = prove_many(&leaves, &all).unwrap();
        assert!(proof.siblings.is_empty(), "n={n}");
        let (idx, picked) = pick(&leaves, &all);
        assert_eq!(
            verify_many(&merkle_root(&leaves), n as u64, &idx, &picked, &proof),
            Ok(())
        );
    }
    assert_eq!(prove_many(&leaves_of("tx", 4), &[2, 1]), None, "unsorted");
    assert_eq!(prove_many(&leaves_of("tx", 4), &[4]), None, "out of range");
    assert_eq!(prove_many(&leaves_of("tx", 4), &[]), None, "nothing");
}

#[test]
fn the_leaf_count_fixes_the_shape() {
    // Leaf 4 of 5 is promoted twice and needs one hash; as leaf 4 of 6 or of 8 it would
    // need more: a prover cannot pick the count that suits it.
    let leaves = leaves_of("tx", 5);
    let root = merkle_root(&leaves);
    let proof = prove_many(&leaves, &[4]).unwrap();
    assert_eq!(proof.siblings.len(), 1);
    assert_eq!(verify_many(&root, 5, &[4], &[leaves[4]], &proof), Ok(()));
    for count in [6u64, 8] {
        assert!(matches!(
            verify_many(&root, count, &[4], &[leaves[4]], &proof),
            Err(MultiProofError::Merkle(
                MerkleError::WrongProofLength { .. }
            ))
        ));
    }
    assert!(matches!(
        verify_many(&root, 4, &[4], &[leaves[4]], &proof),
        Err(MultiProofError::Merkle(MerkleError::IndexOutOfRange { .. }))
    ));
}
