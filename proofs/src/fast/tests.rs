use super::*;
use crate::{
    consensus::HeaderError,
    light_client::LightClient,
    testkit::{anchor, HeaderChainSim, NOW},
};

fn keys(n: usize) -> Vec<SecretKey> {
    (0..n)
        .map(|i| SecretKey::from_seed(&[b'f', i as u8]))
        .collect()
}

/// A peer of three producers with `blocks` blocks, and a light client that follows
/// all of them (LIB two behind the head).
fn peer_and_client(blocks: usize) -> (HeaderChainSim, LightClient) {
    let mut peer = HeaderChainSim::new(keys(3));
    for _ in 0..blocks {
        peer.block(2);
    }
    let mut lc = LightClient::new(&anchor(&peer.keys)).unwrap();
    if blocks > 0 {
        assert!(lc.submit(&peer.headers, NOW).is_accepted());
    }
    (peer, lc)
}

#[test]
fn a_header_ahead_of_the_light_client_signed_by_its_producer_is_accepted() {
    let (mut peer, lc) = peer_and_client(6);
    // Three more blocks the light client has not seen.
    let ahead: Vec<SignedHeader> = (0..3).map(|_| peer.block(2)).collect();
    for h in &ahead {
        assert_eq!(
            check_unfinal(&lc, h, NOW),
            Ok(()),
            "height {}",
            h.header.height
        );
    }
    // One it follows above its LIB.
    let (_, followed) = lc.branch.last().unwrap();
    assert!(followed.height > lc.lib());
    let head = lc.branch.last().unwrap().0.clone();
    assert_eq!(check_unfinal(&lc, &head, NOW), Ok(()));
}

#[test]
fn irreversible_heights_take_the_ordinary_path() {
    let (peer, lc) = peer_and_client(6);
    let lib = lc.lib();
    assert!(lib >= 1);
    let h = &peer.headers[lib as usize - 1];
    assert_eq!(
        check_unfinal(&lc, h, NOW),
        Err(UnfinalError::AlreadyIrreversible { height: lib, lib })
    );
}

#[test]
fn a_wrong_signer_a_forged_signature_another_chain_or_the_future_are_refused() {
    let (mut peer, lc) = peer_and_client(6);
    let good = peer.unsigned(0, &[b"t".to_vec()]);
    // Signed by a producer not scheduled for the slot.
    let other = peer
        .keys
        .iter()
        .find(|k| k.public_key() != good.producer)
        .unwrap()
        .clone();
    let mut h = good.clone();
    h.producer = other.public_key();
    assert!(matches!(
        check_unfinal(&lc, &h.sign(&other), NOW),
        Err(UnfinalError::Header(HeaderError::NotScheduled { .. }))
    ));
    // The scheduled producer's key, but a signature by another.
    let mut forged = good.clone().sign(&peer.key_of(&good.producer));
    forged.signature = other.sign(&forged.id());
    assert!(matches!(
        check_unfinal(&lc, &forged, NOW),
        Err(UnfinalError::Header(HeaderError::BadSignature(_)))
    ));
    // Another chain.
    let mut h = good.clone();
    h.chain_id = ChainId(0xbad);
    assert!(matches!(
        check_unfinal(&lc, &h.sign(&peer.key_of(&good.producer)), NOW),
        Err(UnfinalError::Header(HeaderError::WrongChain { .. }))
    ));
    // From the future: the verifier's clock is before the header.
    let signed = good.clone().sign(&peer.key_of(&good.producer));
    assert!(matches!(
        check_unfinal(&lc, &signed, good.timestamp_ms - 5_000),
        Err(UnfinalError::Header(HeaderError::FromFuture { .. }))
    ));
    // Not on a slot boundary.
    let mut h = good.clone();
    h.timestamp_ms += 1;
    assert!(matches!(
        check_unfinal(&lc, &h.sign(&peer.key_of(&good.producer)), NOW),
        Err(UnfinalError::Header(HeaderError::NotSlotBoundary(_)))
    ));
    // The genuine one passes.
    assert_eq!(check_unfinal(&lc, &signed, NOW), Ok(()));
    peer.push(good, vec![b"t".to_vec()]);
}

#[test]
fn endorsements_verify_only_for_what_was_signed() {
    let key = SecretKey::from_seed(b"underwriter");
    let what = EndorsedTransfer {
        source: ChainId(0xa),
        destination: ChainId(0xb),
        tx: Hash32([1; 32]),
        block_id: Hash32([2; 32]),
        height: 7,
    };
    let e = what.endorse(&key, 500);
    assert_eq!(e.verify(&what), Ok(()));
    // Any other share, transfer, block, height or chain: refused.
    let mut more = e.clone();
    more.share = 501;
    assert!(more.verify(&what).is_err());
    for other in [
        EndorsedTransfer {
            tx: Hash32([9; 32]),
            ..what.clone()
        },
        EndorsedTransfer {
            block_id: Hash32([9; 32]),
            ..what.clone()
        },
        EndorsedTransfer {
            height: 8,
            ..what.clone()
        },
        EndorsedTransfer {
            source: ChainId(0xc),
            ..what.clone()
        },
        EndorsedTransfer {
            destination: ChainId(0xc),
            ..what.clone()
        },
    ] {
        assert!(e.verify(&other).is_err(), "{other:?}");
    }
    // Another key claiming it.
    let mut stolen = e.clone();
    stolen.signing_key = SecretKey::from_seed(b"thief").public_key();
    assert!(stolen.verify(&what).is_err());
}
