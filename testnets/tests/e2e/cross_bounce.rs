//! End-to-end: collateral runs low, then out; transfers bounce and are refunded exactly
//! once; a suspended peer's transfers bounce. Statuses show over HTTP.

use crate::support::*;
use distpos_chain::{tx::GovAction, Body, ChainParams};
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_refunds_low_exhausted_and_suspended() {
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xa1, 0xb1, 3, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 3_000).await;
    assert_eq!(corr(&b, ca).await["status"], "ok");
    let a_faucet = keyfile::address(&a.faucet);
    let (bob, carol) = (
        keyfile::address(&SecretKey::from_seed(b"bob")),
        keyfile::address(&SecretKey::from_seed(b"carol")),
    );

    // 2,500 of 3,000 used: available 500, below the low watermark (1,000).
    let h1 = send_cross(&a, cb, bob, 2_500).await;
    wait_stage(&a, &h1, "settled_delivered", 120).await;
    let c = corr(&b, ca).await;
    assert_eq!(
        (int(&c["available"]), c["status"].as_str()),
        (500, Some("low")),
        "{c}"
    );

    // 800 > 500 available: bounced, and refunded exactly once on A.
    let before = a.balance(0, &a_faucet).await;
    let h2 = send_cross(&a, cb, carol, 800).await;
    let st = wait_stage(&a, &h2, "refunded", 120).await;
    // The source says why, with the destination's name for it (issue 15).
    assert_eq!(
        st["cross_chain"]["bounce_reason"], "insufficient_collateral",
        "{st}"
    );
    assert_eq!(
        st["cross_chain"]["settled"]["bounced"], "insufficient_collateral",
        "{st}"
    );
    assert_eq!(
        a.balance(0, &a_faucet).await,
        before - 1,
        "only the fee is gone"
    );
    assert_eq!(b.balance(0, &carol).await, 0);
    let inbound = b.get(0, &format!("/v1/txs/{h2}")).await;
    assert_eq!(inbound["cross_chain"]["stage"], "bounced", "{inbound}");
    assert_eq!(
        inbound["cross_chain"]["inbound"]["outcome"]["bounced"]["reason"],
        "insufficient_collateral"
    );
    assert_eq!(
        inbound["cross_chain"]["bounce_reason"], "insufficient_collateral",
        "{inbound}"
    );

    // Exactly the rest: delivered, and the account is exhausted.
    let h3 = send_cross(&a, cb, carol, 500).await;
    wait_stage(&a, &h3, "settled_delivered", 120).await;
    let c = corr(&b, ca).await;
    assert_eq!(
        (int(&c["available"]), c["status"].as_str()),
        (0, Some("exhausted")),
        "{c}"
    );
    assert_eq!(
        (c["delivered_in"].as_u64(), c["bounced_in"].as_u64()),
        (Some(2), Some(1))
    );
    let back = corr(&a, cb).await;
    assert_eq!(
        (back["acked_out"].as_u64(), back["refunded_out"].as_u64()),
        (Some(2), Some(1))
    );

    // Governance on B suspends A: its three producers approve (⌊2·3/3⌋+1 = 3).
    let keys: Vec<SecretKey> = (0..3)
        .map(|i| keyfile::read(&b.dir.path().join(format!("keys/producer-{i}.json"))).unwrap())
        .collect();
    b.submit_with_relayer_key(
        0,
        &keys[0],
        Body::Propose {
            action: Box::new(GovAction::SuspendPeer { chain: ca }),
        },
        90,
    )
    .await;
    for k in &keys[1..] {
        b.submit_with_relayer_key(0, k, Body::Approve { proposal: 0 }, 90)
            .await;
    }
    assert_eq!(corr(&b, ca).await["status"], "suspended");
    deposit(&b, ca, 10_000).await;
    let h4 = send_cross(&a, cb, carol, 10).await;
    let st = wait_stage(&a, &h4, "refunded", 120).await;
    assert_eq!(st["cross_chain"]["bounce_reason"], "peer_suspended", "{st}");
    let inbound = b.get(0, &format!("/v1/txs/{h4}")).await;
    assert_eq!(
        inbound["cross_chain"]["inbound"]["outcome"]["bounced"]["reason"], "peer_suspended",
        "{inbound}"
    );

    for net in [&a, &b] {
        net.assert_supply_settled().await;
    }
}
