//! End-to-end: the underwritten fast path (DESIGN §11) between two chains of three
//! producers. Each of A's producers holds a bond on B; B's governance turns the fast
//! path on. A transfer that pays a fast fee is delivered on B before its block is
//! irreversible on A, on the endorsement of the producer that made the block; one
//! larger than any single bond is co-underwritten by two or more of A's nodes; one
//! larger than all bonds together goes the ordinary way. The ordinary proofs unlock
//! every share, nothing is credited twice, and supply holds on both chains.

use crate::support::*;
use distpos_chain::{interchain::fast::FastPolicy, tx::GovAction, Body, QualifiedAddress};
use distpos_gateway::keyfile;
use distpos_proofs::{ChainId, Hash32, SecretKey};
use std::time::{Duration, Instant};

/// Each of A's producers bonds this much on B.
const BOND: u128 = 600;

fn producer_keys(net: &Net) -> Vec<SecretKey> {
    (0..3)
        .map(|i| keyfile::read(&net.dir.path().join(format!("keys/producer-{i}.json"))).unwrap())
        .collect()
}

async fn send_fast(
    a: &Net,
    to_chain: ChainId,
    to: distpos_chain::Address,
    amount: u128,
    fee: u128,
) -> Hash32 {
    let body = Body::Transfer {
        to: QualifiedAddress::new(to_chain, to),
        amount,
        memo: vec![],
        deliver_by: 0,
        fast_fee: fee,
        via: None,
    };
    let tx = a.tx(0, &a.faucet, body).await;
    a.submit(0, &tx).await
}

/// Polls B until it delivered `hash`; returns B's view and whether A still had the
/// transfer's block above its LIB at that moment.
async fn delivered_on_b(a: &Net, b: &Net, hash: &Hash32) -> (serde_json::Value, bool) {
    let path = format!("/v1/txs/{hash}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, v)) = b.try_get(0, &path).await {
            if v["cross_chain"]["stage"] == "delivered" {
                let at_a = a.get(0, &path).await;
                let before_finality = at_a["status"] != "irreversible";
                return (v, before_finality);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{hash} not delivered on B in 60 s; B's log:\n{}",
            tail(&b.log(0), 40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// B's governance turns the fast path on for A (three approvals of three), with
/// `fee_share_bps` of each fast fee to the underwriters, and B's faucet bonds [`BOND`]
/// behind each of A's producer keys.
async fn enable_fast(a: &Net, b: &Net, fee_share_bps: u32) {
    let keys_b = producer_keys(b);
    b.submit_with_relayer_key(
        0,
        &keys_b[0],
        Body::Propose {
            action: Box::new(GovAction::SetFastPolicy {
                chain: a.chain,
                policy: FastPolicy {
                    max_amount: 100_000,
                    max_outstanding: 1_000_000,
                    fee_share_bps,
                },
            }),
        },
        90,
    )
    .await;
    for k in &keys_b[1..] {
        b.submit_with_relayer_key(0, k, Body::Approve { proposal: 0 }, 90)
            .await;
    }
    for k in producer_keys(a) {
        let tx = b
            .tx(
                0,
                &b.faucet,
                Body::BondUnderwriter {
                    peer: a.chain,
                    signing_key: k.public_key(),
                    amount: BOND,
                },
            )
            .await;
        let h = b.submit(0, &tx).await;
        b.wait_irreversible(0, &h, 60).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_transfers_arrive_before_finality_co_underwritten_or_the_ordinary_way() {
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xfa1, 0xfb2, 3, 1_000, Default::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 1_000_000).await;

    enable_fast(&a, &b, 5_000).await;
    let uw = b.get(0, &format!("/v1/underwriters?peer={ca}")).await;
    assert_eq!(uw["peers"][0]["enabled"], true, "{uw}");
    assert_eq!(uw["peers"][0]["bonded"], (3 * BOND).to_string(), "{uw}");

    let bob = keyfile::address(&SecretKey::from_seed(b"fast bob"));
    // One bond covers it: delivered on B before A's block is irreversible.
    let small = send_fast(&a, cb, bob, 500, 10).await;
    let (seen, before_finality) = delivered_on_b(&a, &b, &small).await;
    assert_eq!(seen["cross_chain"]["path"], "fast", "{seen}");
    assert!(
        before_finality,
        "delivered on B only after A's block was irreversible: {seen}"
    );
    assert_eq!(
        seen["cross_chain"]["fast"]["shares"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{seen}"
    );
    // No single bond covers it: two or more of A's nodes share it.
    let shared = send_fast(&a, cb, bob, 900, 10).await;
    let (seen, _) = delivered_on_b(&a, &b, &shared).await;
    assert_eq!(seen["cross_chain"]["path"], "fast", "{seen}");
    let shares = seen["cross_chain"]["fast"]["shares"]
        .as_array()
        .unwrap()
        .clone();
    assert!(shares.len() >= 2, "{seen}");
    let sum: u128 = shares.iter().map(|s| int(&s["share"]) as u128).sum();
    assert_eq!(sum, 910);
    // More than every free bond together: the ordinary way.
    let big = send_fast(&a, cb, bob, 2_000, 10).await;
    let (seen, _) = delivered_on_b(&a, &b, &big).await;
    assert_eq!(seen["cross_chain"]["path"], "ordinary", "{seen}");

    // Every one settles on A as delivered; the proofs release every share; the
    // recipient holds each transfer once.
    for h in [&small, &shared, &big] {
        wait_stage(&a, h, "settled_delivered", 120).await;
    }
    b.wait_for("every fast transfer proven on B", 60, || async {
        let v = b.get(0, &format!("/v1/underwriters?peer={ca}")).await;
        v["peers"][0]["outstanding"] == "0" && v["peers"][0]["proven"] == 2
    })
    .await;
    for h in [&small, &shared] {
        let v = b.get(0, &format!("/v1/txs/{h}")).await;
        assert_eq!(v["cross_chain"]["fast"]["state"], "proven", "{v}");
    }
    let uw = b.get(0, &format!("/v1/underwriters?peer={ca}")).await;
    for bond in uw["peers"][0]["bonds"].as_array().unwrap() {
        assert_eq!(bond["locked"], "0", "{uw}");
    }
    // Half of each fast fee went to the underwriters (B's faucet owns every bond);
    // bob holds the amounts and the rest.
    let mut paid = 0u128;
    for h in [&small, &shared] {
        let v = b.get(0, &format!("/v1/txs/{h}")).await;
        paid += int(&v["cross_chain"]["fast"]["fee_paid"]) as u128;
    }
    assert!((8..=10).contains(&paid), "underwriters paid {paid}");
    assert_eq!(b.balance(0, &bob).await, 500 + 900 + 2_000 + 30 - paid);
    // The console shows the path.
    let out = std::process::Command::new(distpos_exe())
        .args(["transfer", &small.to_string(), "--node", b.url(0)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("path") && text.contains("fast: endorsed in block"),
        "{text}"
    );
    let out = std::process::Command::new(distpos_exe())
        .args(["underwriters", "--node", b.url(0)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{ca}: fast path on")), "{text}");
    for net in [&a, &b] {
        net.assert_supply_settled().await;
    }
}

/// A producer of A that signs a second block at its own height and endorses a transfer
/// in it that A never includes: B delivers it on the fast path, and once B's light
/// client holds A's real block at that height as irreversible and the transfer's
/// expiration has passed at A, B's producer slashes the producer's bond into A's
/// correspondent account. Supply holds on both chains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endorsement_of_an_orphaned_block_is_slashed_on_the_destination() {
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xfa3, 0xfb4, 3, 500, Default::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 1_000_000).await;
    enable_fast(&a, &b, 0).await;
    let keys_a = producer_keys(&a);
    let corr_before = int(&corr(&b, ca).await["collateral"]);

    // A transfer A never sees, expiring in 4 s, in a second block signed by the
    // producer of A's head block at the head's height and slot.
    let carol = keyfile::address(&SecretKey::from_seed(b"orphan carol"));
    let mut t = a
        .tx(
            0,
            &a.faucet,
            Body::Transfer {
                to: QualifiedAddress::new(cb, carol),
                amount: 500,
                memo: vec![],
                deliver_by: 0,
                fast_fee: 5,
                via: None,
            },
        )
        .await;
    let head = a.head(0).await;
    let real: distpos_proofs::SignedHeader = serde_json::from_value(
        a.get(0, &format!("/v1/blocks/{head}")).await["block"]["header"].clone(),
    )
    .unwrap();
    let producer = keys_a
        .iter()
        .find(|k| k.public_key() == real.header.producer)
        .unwrap()
        .clone();
    let resign = distpos_chain::UnsignedTx {
        chain_id: t.chain_id,
        nonce: t.nonce,
        fee: t.fee,
        ref_block_num: t.ref_block_num,
        ref_block_prefix: t.ref_block_prefix,
        expiration: real.header.timestamp_ms + 4_000,
        body: t.body.clone(),
    };
    t = resign.sign(&a.faucet);
    let mut fake = real.header.clone();
    fake.tx_root = distpos_proofs::merkle::merkle_root_of_items(&[t.encode()]);
    fake.tx_count = 1;
    fake.receipts_root = Hash32([0xee; 32]);
    let fake = fake.sign(&producer);
    let endorsement = distpos_proofs::fast::EndorsedTransfer {
        source: ca,
        destination: cb,
        tx: t.hash(),
        block_id: fake.id(),
        height: fake.header.height,
    }
    .endorse(&producer, 505);
    let delivery = distpos_adapters::FastDelivery {
        source_chain: ca,
        header: fake,
        transfer: t.clone(),
        index: 0,
        proof: distpos_proofs::multiproof::prove_many(
            &[distpos_proofs::merkle::leaf_hash(&t.encode())],
            &[0],
        )
        .unwrap(),
        endorsements: vec![endorsement],
    };
    let (status, v) = b
        .post(
            0,
            "/v1/relay/fast",
            &serde_json::to_value(&delivery).unwrap(),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let path = format!("/v1/txs/{}", t.hash());
    b.wait_for("the orphaned transfer delivered fast on B", 30, || async {
        matches!(b.try_get(0, &path).await, Ok((200, v)) if v["cross_chain"]["fast"]["state"] == "locked")
    })
    .await;
    assert_eq!(b.balance(0, &carol).await, 505);
    // Slashed by B's producers once A's real block is irreversible at B and the
    // transfer expired at A.
    b.wait_for("the shares to be slashed", 120, || async {
        matches!(b.try_get(0, &path).await, Ok((200, v)) if v["cross_chain"]["fast"]["state"] == "slashed")
    })
    .await;
    let c = corr(&b, ca).await;
    assert_eq!(
        int(&c["collateral"]),
        corr_before,
        "corr[A] made whole: {c}"
    );
    let uw = b.get(0, &format!("/v1/underwriters?peer={ca}")).await;
    let bond = uw["peers"][0]["bonds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["signing_key"] == serde_json::to_value(producer.public_key()).unwrap())
        .unwrap()
        .clone();
    assert_eq!(
        (bond["amount"].as_str(), bond["locked"].as_str()),
        (Some("95"), Some("0")),
        "{uw}"
    );
    assert_eq!(uw["peers"][0]["slashed"], 1, "{uw}");
    // A never included it: its sender was never debited.
    let (s, _) = a
        .try_get(0, &path)
        .await
        .unwrap_or((0, serde_json::Value::Null));
    assert_eq!(s, 404);
    for net in [&a, &b] {
        net.assert_supply_settled().await;
    }
}
