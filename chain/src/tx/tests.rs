use super::*;
use crate::execute::verify_tx_signature;
use distpos_proofs::{codec::CodecError, sha256};
use proptest::prelude::*;

/// The deterministic transactions the golden vectors pin. Changing any of them, or
/// the encoding, changes the vectors: that is the point.
fn vector_txs() -> Vec<(&'static str, Transaction)> {
    let key = SecretKey::from_seed(b"golden");
    let to = QualifiedAddress::parse("e2e4x63ea7F78107dF4C6fd8b17e7b05b1b3D41a5B1Ab").unwrap();
    let base = |body: Body| UnsignedTx {
        chain_id: ChainId(0xab12),
        nonce: 7,
        fee: 1_000,
        ref_block_num: 0xbeef,
        ref_block_prefix: 0x0102_0304,
        expiration: 1_700_000_060_000,
        body,
    };
    vec![
        (
            "transfer_cross_chain",
            base(Body::Transfer {
                to,
                amount: 123_456_789,
                memo: b"invoice 42".to_vec(),
                deliver_by: 1_700_000_600_000,
                fast_fee: 0,
                via: None,
            })
            .sign(&key),
        ),
        (
            "transfer_local",
            base(Body::Transfer {
                to: QualifiedAddress::local(to.address),
                amount: u128::MAX,
                memo: vec![],
                deliver_by: 0,
                fast_fee: 0,
                via: None,
            })
            .sign(&key),
        ),
        ("stake", base(Body::Stake { amount: 5_000 }).sign(&key)),
        (
            "vote",
            base(Body::Vote {
                producers: vec![to.address, Address::ZERO],
            })
            .sign(&key),
        ),
        (
            "set_proxy_none",
            base(Body::SetProxy { proxy: None }).sign(&key),
        ),
        (
            "unregister_producer",
            base(Body::UnregisterProducer).sign(&key),
        ),
        (
            "propose_suspend",
            base(Body::Propose {
                action: Box::new(GovAction::SuspendPeer {
                    chain: ChainId(0xe2e4),
                }),
            })
            .sign(&key),
        ),
        (
            "deposit_collateral",
            base(Body::DepositCollateral {
                peer: ChainId(0xe2e4),
                amount: 1,
            })
            .sign(&key),
        ),
    ]
}

/// The v4 vectors: the v1 set (same transactions; transfers now carry a fast fee and
/// a first hop, hashed under `DISTPOS/TX/v4`), the system bodies of interchain v2,
/// the bodies of the underwritten fast path, and those of forwarding.
fn vector_txs_v4() -> Vec<(&'static str, Transaction)> {
    let producer = SecretKey::from_seed(b"golden producer");
    let mut txs = vector_txs();
    let transfer = txs[0].1.clone();
    let leaves: Vec<Hash32> = [transfer.encode(), b"another leaf".to_vec()]
        .iter()
        .map(|l| distpos_proofs::merkle::leaf_hash(l))
        .collect();
    let proof = distpos_proofs::multiproof::prove_many(&leaves, &[0]).unwrap();
    let system = |body: Body| UnsignedTx {
        chain_id: ChainId(0xe2e4),
        nonce: 0,
        fee: 0,
        ref_block_num: 0x0001,
        ref_block_prefix: 0x0a0b_0c0d,
        expiration: 1_700_000_120_000,
        body,
    };
    txs.push((
        "inbound_batch",
        system(Body::InboundBatch {
            peer: ChainId(0xab12),
            headers: vec![],
            source_height: 42,
            transfers: vec![transfer.clone()],
            indices: vec![0],
            proof: proof.clone(),
        })
        .sign(&producer),
    ));
    txs.push((
        "settle_batch",
        system(Body::SettleBatch {
            peer: ChainId(0xe2e4),
            headers: vec![],
            source_height: 43,
            receipts: vec![Receipt {
                tx_hash: transfer.hash(),
                outcome: Outcome::InboundBatch {
                    source: ChainId(0xab12),
                    results: vec![TransferResult {
                        source_tx: transfer.hash(),
                        amount: 123_456_789,
                        bounced: Some(BounceReason::InsufficientCollateral),
                        fast: false,
                        bounced_by: None,
                    }],
                },
                amount: 123_456_789,
                fee: 0,
            }],
            indices: vec![0],
            proof,
        })
        .sign(&producer),
    ));
    let underwriter = SecretKey::from_seed(b"golden underwriter");
    let key = SecretKey::from_seed(b"golden");
    let mut fast = transfer.clone();
    if let Body::Transfer { fast_fee, .. } = &mut fast.body {
        *fast_fee = 25;
    }
    let fast = UnsignedTx {
        chain_id: fast.chain_id,
        nonce: fast.nonce,
        fee: fast.fee,
        ref_block_num: fast.ref_block_num,
        ref_block_prefix: fast.ref_block_prefix,
        expiration: fast.expiration,
        body: fast.body,
    }
    .sign(&key);
    txs.push(("transfer_fast", fast.clone()));
    txs.push((
        "bond_underwriter",
        UnsignedTx {
            chain_id: ChainId(0xab12),
            nonce: 8,
            fee: 1_000,
            ref_block_num: 0xbeef,
            ref_block_prefix: 0x0102_0304,
            expiration: 1_700_000_060_000,
            body: Body::BondUnderwriter {
                peer: ChainId(0xe2e4),
                signing_key: underwriter.public_key(),
                amount: 50_000,
            },
        }
        .sign(&key),
    ));
    let header = distpos_proofs::BlockHeader {
        chain_id: ChainId(0xab12),
        height: 44,
        prev_id: Hash32([4; 32]),
        timestamp_ms: 1_700_000_044_000,
        producer: producer.public_key(),
        schedule_version: 0,
        tx_root: distpos_proofs::merkle::merkle_root_of_items(&[fast.encode()]),
        tx_count: 1,
        receipts_root: Hash32([5; 32]),
        state_digest: Hash32::ZERO,
        new_schedule: None,
        reveal: Hash32::ZERO,
        commit: Hash32::ZERO,
    }
    .sign(&producer);
    let what = distpos_proofs::fast::EndorsedTransfer {
        source: ChainId(0xab12),
        destination: ChainId(0xe2e4),
        tx: fast.hash(),
        block_id: header.id(),
        height: 44,
    };
    txs.push((
        "inbound_fast",
        system(Body::InboundFast {
            peer: ChainId(0xab12),
            header: Box::new(header.clone()),
            transfer: Box::new(fast.clone()),
            index: 0,
            proof: distpos_proofs::multiproof::prove_many(
                &[distpos_proofs::merkle::leaf_hash(&fast.encode())],
                &[0],
            )
            .unwrap(),
            endorsements: vec![what.endorse(&underwriter, 123_456_814)],
        })
        .sign(&producer),
    ));
    txs.push((
        "slash_fast",
        system(Body::SlashFast {
            peer: ChainId(0xab12),
            tx: fast.hash(),
        })
        .sign(&producer),
    ));
    let mut forwarded = transfer.clone();
    if let Body::Transfer { via, .. } = &mut forwarded.body {
        *via = Some(ChainId(0x1b2));
    }
    let forwarded = UnsignedTx {
        chain_id: forwarded.chain_id,
        nonce: forwarded.nonce,
        fee: forwarded.fee,
        ref_block_num: forwarded.ref_block_num,
        ref_block_prefix: forwarded.ref_block_prefix,
        expiration: forwarded.expiration,
        body: forwarded.body,
    }
    .sign(&key);
    txs.push(("transfer_via", forwarded.clone()));
    let Body::Transfer { to, .. } = &forwarded.body else {
        unreachable!("built as a transfer above")
    };
    txs.push((
        "forward",
        system(Body::Forward {
            source: ChainId(0xab12),
            source_tx: forwarded.hash(),
            hop: crate::tx::Hop::Onward(Box::new(crate::tx::Leg {
                next: ChainId(0x1c3),
                to: *to,
                amount: 123_456_689,
                deliver_by: 1_700_000_050_000,
                path: vec![ChainId(0xab12), ChainId(0xe2e4)],
                origin: crate::address::QualifiedAddress::new(
                    ChainId(0xab12),
                    crate::address::Address::from_public_key(&key.public_key()).unwrap(),
                ),
            })),
        })
        .sign(&producer),
    ));
    txs.push((
        "forward_bounce",
        system(Body::Forward {
            source: ChainId(0xab12),
            source_tx: forwarded.hash(),
            hop: crate::tx::Hop::Bounce(BounceReason::NoRoute),
        })
        .sign(&producer),
    ));
    txs.push((
        "release",
        system(Body::Release {
            source: ChainId(0xab12),
            txs: vec![forwarded.hash(), transfer.hash()],
        })
        .sign(&producer),
    ));
    let mut twin = header.header.clone();
    twin.tx_root = Hash32([6; 32]);
    txs.push((
        "peer_evidence",
        UnsignedTx {
            chain_id: ChainId(0xe2e4),
            nonce: 9,
            fee: 1_000,
            ref_block_num: 0xbeef,
            ref_block_prefix: 0x0102_0304,
            expiration: 1_700_000_060_000,
            body: Body::PeerEvidence {
                peer: ChainId(0xab12),
                header_a: Box::new(header.clone()),
                header_b: Box::new(twin.sign(&producer)),
            },
        }
        .sign(&key),
    ));
    txs
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Vector {
    name: String,
    encoding: String,
    tx_hash: String,
    signing_hash_input_sha256: String,
    json: serde_json::Value,
}

fn vectors_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn compute_vectors() -> Vec<Vector> {
    vector_txs_v4()
        .into_iter()
        .map(|(name, tx)| Vector {
            name: name.to_string(),
            encoding: hex::encode(tx.encode()),
            tx_hash: tx.hash().to_string(),
            signing_hash_input_sha256: sha256(&tx.signing_bytes()).to_string(),
            json: serde_json::to_value(&tx).unwrap(),
        })
        .collect()
}

fn stored_vectors(name: &str) -> Vec<Vector> {
    serde_json::from_str(&std::fs::read_to_string(vectors_path(name)).unwrap()).unwrap()
}

/// Golden vectors: the encoding and hashes must never drift silently. To regenerate
/// after a deliberate format change: `DISTPOS_BLESS=1 cargo test -p distpos-chain golden`.
#[test]
fn golden_vectors() {
    let computed = compute_vectors();
    if std::env::var_os("DISTPOS_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&computed).unwrap();
        std::fs::write(vectors_path("tx_vectors_v4.json"), text + "\n").unwrap();
    }
    let stored = stored_vectors("tx_vectors_v4.json");
    assert_eq!(stored.len(), computed.len());
    for (s, c) in stored.iter().zip(&computed) {
        assert_eq!(s, c, "vector {} drifted", s.name);
        // The stored bytes decode to the same transaction, and its JSON form parses back.
        let tx = Transaction::decode(&hex::decode(&s.encoding).unwrap()).unwrap();
        assert_eq!(tx.hash().to_string(), s.tx_hash);
        assert_eq!(
            serde_json::from_value::<Transaction>(s.json.clone()).unwrap(),
            tx
        );
        assert!(verify_tx_signature(&tx).is_ok());
    }
}

/// Transactions of the earlier protocols (the frozen vectors of `DISTPOS/TX/v1` and
/// `v2`) are refused: a transfer, or a batch of transfers or receipts, no longer
/// decodes (v3 transfers carry a fast fee, and their results a fast flag; v4
/// transfers a first hop, and their results the chain that bounced them), and every
/// other body, whose bytes are unchanged, hashes differently under v4, so
/// its signature no longer verifies and the error says which hash it was checked
/// against.
#[test]
fn older_transactions_are_refused() {
    for file in [
        "tx_vectors_v1.json",
        "tx_vectors_v2.json",
        "tx_vectors_v3.json",
    ] {
        for s in stored_vectors(file) {
            let bytes = hex::decode(&s.encoding).unwrap();
            match Transaction::decode(&bytes) {
                // Transfers, and the batches that carry them or their receipts
                // (a transfer's result now says whether it came the fast way).
                Err(_) => assert!(
                    s.name.starts_with("transfer")
                        || s.name == "inbound_batch"
                        || s.name == "settle_batch"
                        || s.name == "inbound_fast",
                    "{file} {}",
                    s.name
                ),
                Ok(tx) => {
                    assert!(!s.name.starts_with("transfer"), "{file} {}", s.name);
                    assert_ne!(tx.hash().to_string(), s.tx_hash, "{}", s.name);
                    let e = verify_tx_signature(&tx).expect_err("an old signature must not verify");
                    assert!(e.to_string().contains("DISTPOS/TX/v4"), "{e}");
                }
            }
        }
    }
}

#[test]
fn signed_encoding_is_unsigned_encoding_plus_signature() {
    for (_, tx) in vector_txs() {
        let mut expected = tx.signing_bytes();
        expected.extend_from_slice(&tx.signature.0);
        assert_eq!(tx.encode(), expected);
    }
}

#[test]
fn signature_is_bound_to_the_chain_id() {
    let (_, tx) = vector_txs().remove(0);
    let mut other = tx.clone();
    other.chain_id = ChainId(0xab13);
    assert!(matches!(
        verify_tx_signature(&other),
        Err(crate::TxError::BadSignature(_))
    ));
}

#[test]
fn high_s_signature_is_rejected() {
    let (_, mut tx) = vector_txs().remove(0);
    tx.signature = distpos_proofs::keys::high_s_twin(&tx.signature).unwrap();
    assert_eq!(
        verify_tx_signature(&tx),
        Err(crate::TxError::BadSignature(
            distpos_proofs::SignatureError::HighS
        ))
    );
}

#[test]
fn decoding_is_strict() {
    let (_, tx) = vector_txs().remove(0);
    let bytes = tx.encode();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Transaction::decode(&trailing),
        Err(CodecError::TrailingBytes(1))
    );
    assert!(Transaction::decode(&bytes[..bytes.len() - 1]).is_err());
    // Over-long varint for the nonce (7 → 0x87 0x00): same value, not canonical.
    let chain_len = 3; // varint of 0xab12
    assert_eq!(bytes[chain_len], 7);
    let mut overlong = bytes[..chain_len].to_vec();
    overlong.extend_from_slice(&[0x87, 0x00]);
    overlong.extend_from_slice(&bytes[chain_len + 1..]);
    assert_eq!(
        Transaction::decode(&overlong),
        Err(CodecError::NonCanonical)
    );
    assert!(Transaction::decode(&vec![0u8; MAX_TX_BYTES + 1]).is_err());
}

#[test]
fn json_is_strict() {
    let (_, tx) = vector_txs().remove(0);
    let mut v = serde_json::to_value(&tx).unwrap();
    assert_eq!(
        v["fee"],
        serde_json::json!("1000"),
        "amounts are decimal strings"
    );
    v["surprise"] = serde_json::json!(1);
    assert!(
        serde_json::from_value::<Transaction>(v).is_err(),
        "unknown fields are rejected"
    );
    let mut v = serde_json::to_value(&tx).unwrap();
    v["body"]["transfer"]["amount"] = serde_json::json!(5);
    assert!(
        serde_json::from_value::<Transaction>(v).is_err(),
        "numbers are not amounts"
    );
    let mut v = serde_json::to_value(&tx).unwrap();
    v["body"]["transfer"]["to"] = serde_json::json!("e2e4x63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1a");
    assert!(
        serde_json::from_value::<Transaction>(v).is_err(),
        "39-hex address is rejected"
    );
}

#[test]
fn a_bounce_reason_is_named_in_logs_as_in_json() {
    for r in [
        BounceReason::Expired,
        BounceReason::PeerSuspended,
        BounceReason::InsufficientCollateral,
        BounceReason::BadRecipient,
    ] {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        assert_eq!(r.to_string(), r.as_str());
    }
}

proptest! {
    #[test]
    fn decode_never_panics_and_accepts_only_canonical_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(tx) = Transaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes);
        }
    }

    #[test]
    fn any_flipped_byte_is_refused(index in 0usize..10_000, bit in 0u8..8) {
        let (_, tx) = vector_txs().remove(0);
        let mut bytes = tx.encode();
        let i = index % bytes.len();
        bytes[i] ^= 1 << bit;
        // Either the bytes no longer decode, or the decoded transaction is not validly
        // signed: a flip can never produce another valid transaction.
        if let Ok(changed) = Transaction::decode(&bytes) {
            prop_assert!(verify_tx_signature(&changed).is_err());
        }
    }
}
