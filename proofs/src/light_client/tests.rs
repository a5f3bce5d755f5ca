use super::*;
use crate::{
    codec,
    header::BlockHeader,
    keys::{high_s_twin, SecretKey, SignatureError},
    merkle,
    testkit::{INTERVAL, NOW},
};
use proptest::prelude::*;

fn keys(n: usize, tag: u8) -> Vec<SecretKey> {
    (0..n)
        .map(|i| SecretKey::from_seed(&[b'l', tag, i as u8]))
        .collect()
}

fn schedule(version: u32, k: &[SecretKey]) -> ProducerSchedule {
    ProducerSchedule {
        version,
        producers: k.iter().map(|k| k.public_key()).collect(),
    }
}

fn anchor(k: &[SecretKey]) -> TrustAnchor {
    crate::testkit::anchor(k)
}

type Peer = crate::testkit::HeaderChainSim;

fn synced(peer: &Peer) -> LightClientWithWindow {
    let mut lc = LightClientWithWindow::new(&anchor(&peer.keys), 1_000).unwrap();
    assert!(lc.submit(&peer.headers, NOW).is_accepted());
    lc
}

fn rejected_header(v: Verdict<Advance>) -> HeaderError {
    match v {
        Verdict::Rejected(Rejection::Header { error, .. }) => error,
        other => panic!("expected a header rejection, got {other:?}"),
    }
}

#[test]
fn anchors_must_be_real() {
    let k = keys(3, 0);
    let mut a = anchor(&k);
    a.identity = Hash32::ZERO;
    assert_eq!(LightClient::new(&a), Err(AnchorError::ZeroIdentity));
    let mut a = anchor(&k);
    a.chain_id = ChainId(0);
    assert_eq!(LightClient::new(&a), Err(AnchorError::ZeroChain));
    let mut a = anchor(&k);
    a.checkpoint.consensus.active.producers.clear();
    assert_eq!(
        LightClient::new(&a),
        Err(AnchorError::Schedule(ScheduleError::Empty))
    );
    let mut a = anchor(&k);
    let first = a.checkpoint.consensus.active.producers[0];
    a.checkpoint.consensus.active.producers.push(first);
    assert!(matches!(
        LightClient::new(&a),
        Err(AnchorError::Schedule(ScheduleError::Duplicate(_)))
    ));
    let mut a = anchor(&k);
    a.clock.interval_ms = 0;
    assert_eq!(LightClient::new(&a), Err(AnchorError::ZeroInterval));
}

#[test]
fn follows_the_chain_and_reaches_the_same_lib() {
    let mut peer = Peer::new(keys(3, 0));
    for _ in 0..10 {
        peer.block(3);
    }
    let lc = synced(&peer);
    assert_eq!(lc.client.head(), 10);
    assert_eq!(lc.client.lib(), peer.state.lib);
    assert_eq!(lc.window.len() as u64, peer.state.lib);
    // Valid proofs of every item in every irreversible block are accepted.
    for h in 1..=peer.state.lib {
        for i in 0..3 {
            assert_eq!(
                lc.verify(&peer.bundle(h, i), Commitment::Transactions),
                Verdict::Accepted(())
            );
        }
    }
}

#[test]
fn a_proof_against_a_block_not_yet_irreversible_is_not_yet() {
    let mut peer = Peer::new(keys(3, 0));
    for _ in 0..5 {
        peer.block(2);
    }
    let lc = synced(&peer);
    let lib = lc.client.lib();
    assert!(lib < 5);
    assert_eq!(
        lc.verify(&peer.bundle(5, 0), Commitment::Transactions),
        Verdict::NotYet(NotYet::NotIrreversible { height: 5, lib })
    );
    let mut later = peer.bundle(5, 0);
    later.height = 9;
    assert_eq!(
        lc.verify(&later, Commitment::Transactions),
        Verdict::NotYet(NotYet::Unseen { height: 9, head: 5 })
    );
}

#[test]
fn forged_bundles_are_rejected_with_the_reason() {
    let mut peer = Peer::new(keys(1, 0));
    for _ in 0..3 {
        peer.block(5);
    }
    let lc = synced(&peer);
    let good = peer.bundle(2, 3);
    let v = |b: &ProofBundle| lc.verify(b, Commitment::Transactions);
    assert_eq!(v(&good), Verdict::Accepted(()));

    // An inner node passed off as a leaf: the item is the node's preimage.
    let leaves: Vec<Hash32> = peer.items[1].iter().map(|i| merkle::leaf_hash(i)).collect();
    let mut inner = good.clone();
    inner.item = [&[1u8][..], &leaves[2].0, &leaves[3].0].concat();
    inner.index = 1;
    assert!(matches!(v(&inner), Verdict::Rejected(Rejection::Proof(_))));

    // Index outside the block (the count comes from the signed header: 5).
    let mut outside = good.clone();
    outside.index = 5;
    assert_eq!(
        v(&outside),
        Verdict::Rejected(Rejection::IndexOutOfRange { index: 5, count: 5 })
    );

    // A proof built for a bigger tree (an inflated count) does not fit.
    let mut bigger = leaves.clone();
    bigger.extend(leaves.clone());
    let mut inflated = good.clone();
    inflated.proof = merkle::prove(&bigger, 3).unwrap();
    assert!(matches!(
        v(&inflated),
        Verdict::Rejected(Rejection::Proof(MerkleError::WrongProofLength { .. }))
    ));

    // Trailing and missing hashes.
    let mut trailing = good.clone();
    trailing.proof.siblings.push(Hash32([0; 32]));
    assert!(matches!(
        v(&trailing),
        Verdict::Rejected(Rejection::Proof(MerkleError::WrongProofLength { .. }))
    ));
    let mut missing = good.clone();
    missing.proof.siblings.pop();
    assert!(matches!(
        v(&missing),
        Verdict::Rejected(Rejection::Proof(MerkleError::WrongProofLength { .. }))
    ));

    // The right item with the proof of another index.
    let mut other_index = good.clone();
    other_index.index = 2;
    assert!(matches!(v(&other_index), Verdict::Rejected(_)));

    // Proven against the wrong commitment.
    assert!(matches!(
        lc.verify(&good, Commitment::Receipts),
        Verdict::Rejected(Rejection::Proof(_))
    ));
}

#[test]
fn one_flipped_byte_anywhere_in_a_bundle_is_never_accepted() {
    let mut peer = Peer::new(keys(1, 0));
    for _ in 0..3 {
        peer.block(4);
    }
    let lc = synced(&peer);
    let bytes = codec::encode(&peer.bundle(2, 1));
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            if let Ok(bundle) = codec::decode_canonical::<ProofBundle>(&b) {
                assert!(
                    !lc.verify(&bundle, Commitment::Transactions).is_accepted(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }
}

#[test]
fn a_sibling_block_on_a_fork_does_not_prove_anything() {
    let mut peer = Peer::new(keys(1, 0));
    peer.block(2);
    let mut fork = peer.clone();
    peer.block(2);
    peer.block(2);
    // The fork block at height 2 has other transactions, signed by the same producer.
    let items = vec![b"forged".to_vec(), b"other".to_vec()];
    let u = fork.unsigned(0, &items);
    let mut u2 = u.clone();
    u2.timestamp_ms += INTERVAL; // another slot, so it is a plain fork
    u2.producer = *fork.state.scheduled_producer(fork.slot + 2).unwrap();
    fork.push(u2, items);
    let lc = synced(&peer);
    let forged = fork.bundle(2, 0);
    assert!(matches!(
        lc.verify(&forged, Commitment::Transactions),
        Verdict::Rejected(Rejection::Proof(_))
    ));
}

#[test]
fn headers_that_must_be_rejected() {
    let k = keys(3, 0);
    let mut peer = Peer::new(k.clone());
    peer.block(0);
    let mut lc = synced(&peer);
    let good = peer.unsigned(0, &[]);
    let sign = |h: BlockHeader, key: &SecretKey| h.sign(key);
    let scheduled = peer.key_of(&good.producer);

    // Signed by a producer not scheduled for the slot.
    let other = k.iter().find(|x| x.public_key() != good.producer).unwrap();
    let mut h = good.clone();
    h.producer = other.public_key();
    assert!(matches!(
        rejected_header(lc.submit(&[sign(h, other)], NOW)),
        HeaderError::NotScheduled { .. }
    ));

    // Claiming another schedule version.
    let mut h = good.clone();
    h.schedule_version = 1;
    assert!(matches!(
        rejected_header(lc.submit(&[sign(h, &scheduled)], NOW)),
        HeaderError::WrongScheduleVersion { .. }
    ));

    // A high-S twin of a valid signature (the same producer counted twice).
    let mut twin = sign(good.clone(), &scheduled);
    twin.signature = high_s_twin(&twin.signature).unwrap();
    assert_eq!(
        rejected_header(lc.submit(&[twin], NOW)),
        HeaderError::BadSignature(SignatureError::HighS)
    );

    // Another chain id (the signature covers it).
    let mut h = good.clone();
    h.chain_id = ChainId(0xa12);
    assert!(matches!(
        rejected_header(lc.submit(&[sign(h, &scheduled)], NOW)),
        HeaderError::WrongChain { .. }
    ));

    // From the far future relative to our clock.
    let signed = sign(good.clone(), &scheduled);
    let early = good.timestamp_ms - 5_000;
    assert!(matches!(
        rejected_header(lc.submit(std::slice::from_ref(&signed), early)),
        HeaderError::FromFuture { .. }
    ));

    // A tampered signature.
    let mut forged = signed.clone();
    forged.signature.0[40] ^= 1;
    assert!(matches!(
        rejected_header(lc.submit(&[forged], NOW)),
        HeaderError::BadSignature(_)
    ));

    // A schedule with a duplicated producer (it would count twice).
    let mut h = good.clone();
    h.new_schedule = Some(ProducerSchedule {
        version: 1,
        producers: vec![k[0].public_key(), k[0].public_key()],
    });
    assert!(matches!(
        rejected_header(lc.submit(&[sign(h, &scheduled)], NOW)),
        HeaderError::BadSchedule(ScheduleError::Duplicate(_))
    ));

    // Nothing above changed the light client; the good header is still accepted.
    assert_eq!(lc.client.head(), 1);
    assert!(lc.submit(&[signed], NOW).is_accepted());
}

#[test]
fn one_producer_alone_never_finalises() {
    // Only producer 0's slots are filled: a single producer, however many blocks it
    // signs, counts once, so LIB (3 of 3) never moves.
    let mut peer = Peer::new(keys(3, 0));
    for _ in 0..6 {
        let skip = (0..3)
            .find(|s| {
                peer.state.scheduled_producer(peer.slot + 1 + s) == Some(&peer.keys[0].public_key())
            })
            .unwrap();
        let u = peer.unsigned(skip, &[]);
        peer.push(u, vec![]);
    }
    let lc = synced(&peer);
    assert_eq!(lc.client.lib(), 0);
    assert_eq!(lc.client.head(), 6);
}

#[test]
fn a_schedule_change_is_adopted_only_once_irreversible() {
    let old = keys(3, 0);
    let new = keys(2, 9);
    let mut peer = Peer::new([old.clone(), new.clone()].concat());
    peer.state = ConsensusState::genesis(schedule(0, &old)).unwrap();
    let lc_anchor = anchor(&old);
    let mut lc = LightClientWithWindow::new(&lc_anchor, 100).unwrap();
    let mut u = peer.unsigned(0, &[]);
    u.new_schedule = Some(schedule(1, &new));
    let h1 = peer.push(u, vec![]);
    let h2 = peer.block(0);
    assert!(lc.submit(&[h1, h2], NOW).is_accepted());
    // Not irreversible yet: a header by the new schedule is refused.
    let mut early = peer.unsigned(0, &[]);
    early.producer = new[(peer.slot as usize + 1) % 2].public_key();
    early.schedule_version = 1;
    let signer = peer.key_of(&early.producer);
    assert!(matches!(
        rejected_header(lc.submit(&[early.sign(&signer)], NOW)),
        HeaderError::WrongScheduleVersion { .. }
    ));
    // Once block 1 is irreversible the new producers sign.
    let h3 = peer.block(0);
    assert!(lc.submit(&[h3], NOW).is_accepted());
    assert_eq!(lc.client.head_state().active.version, 1);
    for _ in 0..4 {
        let h = peer.block(1);
        assert!(lc.submit(&[h], NOW).is_accepted());
    }
    assert_eq!(lc.client.lib(), peer.state.lib);
    assert!(lc.client.lib() >= 5);
}

#[test]
fn fork_choice_switch_and_evidence() {
    let mut peer = Peer::new(keys(3, 0));
    peer.block(0);
    let base = peer.clone();
    peer.block(0); // slot 2
    peer.block(0); // slot 3
    let mut lc = synced(&peer);
    // A longer competing branch from block 1 (skipping slot 2).
    let mut fork = base.clone();
    for skip in [1, 0, 0] {
        let u = fork.unsigned(skip, &[]);
        fork.push(u, vec![]);
    }
    let v = lc.submit(&fork.headers[1..], NOW);
    assert!(v.is_accepted(), "{v:?}");
    assert_eq!(lc.client.head_id(), fork.head_id);
    // On the new branch block 2 is already irreversible (all three producers signed at
    // or above it), so the old branch's block 2 conflicts with final history.
    assert_eq!(lc.client.lib(), 2);
    assert_eq!(
        lc.submit(&peer.headers[1..], NOW),
        Verdict::Rejected(Rejection::ConflictsWithIrreversible(2))
    );
    // The same producer signing a different header for one of our slots is evidence.
    let ours = fork.headers[2].clone();
    let mut other = ours.header.clone();
    other.tx_count = 0;
    other.state_digest = Hash32([9; 32]);
    let twin = other.sign(&fork.key_of(&ours.header.producer));
    match lc.submit(std::slice::from_ref(&twin), NOW) {
        Verdict::Accepted(a) => assert_eq!(a.evidence, vec![(ours, twin)]),
        other => panic!("expected evidence, got {other:?}"),
    }
}

#[test]
fn a_shorter_competing_branch_is_not_preferred() {
    let mut peer = Peer::new(keys(3, 0));
    peer.block(0);
    let base = peer.clone();
    for _ in 0..2 {
        peer.block(0);
    }
    let mut lc = synced(&peer);
    assert_eq!(
        lc.client.lib(),
        1,
        "slots 1-3 by all three producers finalise block 1"
    );
    let mut fork = base.clone();
    let u = fork.unsigned(2, &[]);
    fork.push(u, vec![]);
    assert_eq!(
        lc.submit(&fork.headers[1..], NOW),
        Verdict::NotYet(NotYet::NotPreferred)
    );
    assert_eq!(
        lc.client.head_id(),
        peer.head_id,
        "still on the longer branch"
    );
}

#[test]
fn submissions_are_checked_for_shape() {
    let mut peer = Peer::new(keys(1, 0));
    for _ in 0..4 {
        peer.block(0);
    }
    let mut lc = LightClientWithWindow::new(&anchor(&peer.keys), 10).unwrap();
    assert_eq!(lc.submit(&[], NOW), Verdict::Rejected(Rejection::BadSize));
    let gap = [peer.headers[0].clone(), peer.headers[2].clone()];
    assert_eq!(
        lc.submit(&gap, NOW),
        Verdict::Rejected(Rejection::NotConsecutive(1))
    );
    assert_eq!(
        lc.submit(&peer.headers[2..], NOW),
        Verdict::NotYet(NotYet::UnknownParent { height: 3, head: 0 })
    );
    assert!(lc.submit(&peer.headers, NOW).is_accepted());
    // Re-submitting history through the checkpoint is harmless; a conflicting one is not.
    assert!(lc.submit(&peer.headers, NOW).is_accepted());
    let mut other = Peer::new(peer.keys.clone());
    other.block(1);
    other.block(1);
    other.block(1);
    other.block(1);
    assert_eq!(
        lc.submit(&other.headers, NOW),
        Verdict::Rejected(Rejection::ConflictsWithIrreversible(4))
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let mut peer = Peer::new(keys(1, 0));
        peer.block(3);
        peer.block(3);
        let mut lc = synced(&peer);
        if let Ok(headers) = codec::decode_canonical::<Vec<SignedHeader>>(&bytes) {
            let before = lc.client.clone();
            if !lc.submit(&headers, NOW).is_accepted() {
                prop_assert_eq!(&lc.client, &before, "a refused submission changed the client");
            }
        }
        if let Ok(bundle) = codec::decode_canonical::<ProofBundle>(&bytes) {
            let v = lc.verify(&bundle, Commitment::Transactions);
            if v.is_accepted() {
                // Then it must be one of the genuine items.
                prop_assert!(peer.items[bundle.height as usize - 1].contains(&bundle.item));
            }
        }
    }
}

#[test]
fn one_rule_decides_whether_a_proof_can_be_checked_now() {
    let at = Position {
        head: 20,
        lib: 10,
        oldest_kept: 5,
    };
    assert_eq!(
        admissible(Some("header"), 7, at),
        Verdict::Accepted("header")
    );
    assert_eq!(
        admissible(None::<()>, 15, at),
        Verdict::NotYet(NotYet::NotIrreversible {
            height: 15,
            lib: 10
        })
    );
    assert_eq!(
        admissible(None::<()>, 21, at),
        Verdict::NotYet(NotYet::Unseen {
            height: 21,
            head: 20
        })
    );
    assert_eq!(
        admissible(None::<()>, 3, at),
        Verdict::Rejected(Rejection::BelowWindow {
            height: 3,
            oldest: 5
        }),
        "at or below the LIB without a kept header: never"
    );
    assert_eq!(
        admissible(None::<()>, 10, at).into_result(),
        Err(Refusal::Rejected(Rejection::BelowWindow {
            height: 10,
            oldest: 5
        }))
    );
}

/// A light client started at a checkpoint (not genesis) follows the chain from there,
/// across a schedule change that was pending at the checkpoint, to the peer's own LIB;
/// proofs against the checkpoint's block itself verify.
#[test]
fn starts_at_a_checkpoint_and_follows_a_pending_schedule_change() {
    let old = keys(3, 0);
    let new = keys(2, 9);
    let mut peer = Peer::new([old.clone(), new.clone()].concat());
    peer.state = ConsensusState::genesis(schedule(0, &old)).unwrap();
    for _ in 0..4 {
        peer.block(2);
    }
    let mut u = peer.unsigned(0, &[b"x".to_vec()]);
    u.new_schedule = Some(schedule(1, &new));
    peer.push(u, vec![b"x".to_vec()]);
    // The checkpoint is the block that carried the schedule: still pending there.
    let mut anchor = peer.anchor_at_head();
    anchor.checkpoint.consensus.active = schedule(0, &old);
    assert!(anchor.checkpoint.consensus.pending.is_some());
    let start = anchor.checkpoint.height();
    let mut lc = LightClientWithWindow::new(&anchor, 100).unwrap();
    assert_eq!((lc.client.lib(), lc.client.head()), (start, start));
    for _ in 0..8 {
        peer.block(1);
    }
    assert!(lc
        .submit(&peer.headers[start as usize..], NOW)
        .is_accepted());
    assert_eq!(lc.client.head_state().active.version, 1);
    assert_eq!(lc.client.lib(), peer.state.lib);
    assert!(lc.client.lib() > start);
    // Headers from before the checkpoint that reach through it are taken as they are.
    assert!(lc.submit(&peer.headers[..], NOW).is_accepted());
    // The checkpoint's block is provable; blocks before it are not kept.
    assert!(lc
        .verify(&peer.bundle(start, 0), Commitment::Transactions)
        .is_accepted());
    assert!(matches!(
        lc.verify(&peer.bundle(2, 0), Commitment::Transactions),
        Verdict::Rejected(Rejection::BelowWindow { .. })
    ));
}

/// A checkpoint whose schedule is not the peer's (the failure of registering a peer
/// with the schedule its status shows, at genesis): the next header is refused, with
/// the reason, and the light client does not move.
#[test]
fn a_checkpoint_with_the_wrong_schedule_is_refused_with_its_reason() {
    let mut peer = Peer::new(keys(3, 0));
    for _ in 0..3 {
        peer.block(0);
    }
    let mut anchor = peer.anchor_at_head();
    anchor.checkpoint.consensus.active = schedule(0, &keys(3, 7));
    let mut lc = LightClient::new(&anchor).unwrap();
    let next = peer.block(0);
    assert!(matches!(
        rejected_header(lc.submit(&[next], NOW)),
        HeaderError::NotScheduled { .. }
    ));
    assert_eq!(lc.head(), anchor.checkpoint.height());
}

#[test]
fn checkpoints_must_be_consistent() {
    let mut peer = Peer::new(keys(3, 0));
    for _ in 0..3 {
        peer.block(0);
    }
    let good = peer.anchor_at_head();
    assert!(good.validate().is_ok());

    let mut a = good.clone();
    a.checkpoint.header = None;
    assert_eq!(LightClient::new(&a), Err(AnchorError::NotGenesis(3)));

    let mut a = good.clone();
    a.checkpoint.consensus.height = 2;
    assert!(matches!(
        LightClient::new(&a),
        Err(AnchorError::HeightMismatch {
            header: 3,
            state: 2
        })
    ));

    let mut a = good.clone();
    a.chain_id = ChainId(0xb0b);
    assert!(matches!(
        LightClient::new(&a),
        Err(AnchorError::WrongChain { .. })
    ));

    let mut a = good.clone();
    a.checkpoint.consensus.slot += 1;
    assert!(matches!(
        LightClient::new(&a),
        Err(AnchorError::SlotMismatch { .. })
    ));

    let mut a = good.clone();
    a.checkpoint.consensus.lib = 4;
    assert!(matches!(
        LightClient::new(&a),
        Err(AnchorError::Inconsistent(_))
    ));

    let mut a = good.clone();
    if let Some(h) = a.checkpoint.header.as_mut() {
        h.header.tx_count += 1;
    }
    assert!(matches!(
        LightClient::new(&a),
        Err(AnchorError::Signature(_))
    ));

    // A checkpoint's own block is provable at once.
    let lc = LightClientWithWindow::new(&good, 10).unwrap();
    assert!(lc.window.contains_key(&3));
}
