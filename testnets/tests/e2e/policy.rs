//! End-to-end: per-peer admission policy (DESIGN §13), set by B's governance for
//! transfers from A. Over its value-rate limit, A's transfers are delayed, then
//! admitted when the bucket has refilled; a transfer above the delay threshold waits
//! and is cancelled by governance into a bounce that A refunds; under the reputation
//! threshold, A's transfers are refused with that reason. Supply holds on both.

use crate::support::*;
use distpos_chain::{
    interchain::policy::PeerPolicy,
    tx::{BounceReason, GovAction},
    Body,
};
use distpos_gateway::keyfile;
use distpos_proofs::{Hash32, SecretKey};
use serde_json::Value;

/// B's governance (one producer: a proposal executes at once) sets `action`.
async fn govern(b: &Net, action: GovAction) {
    let key = keyfile::read(&b.dir.path().join("keys/producer-0.json")).unwrap();
    b.submit_with_relayer_key(
        0,
        &key,
        Body::Propose {
            action: Box::new(action),
        },
        60,
    )
    .await;
}

/// B's view of the inbound transfer `h`, once B has seen it.
async fn inbound(b: &Net, h: &Hash32, what: &str, stage: &str) -> Value {
    let path = format!("/v1/txs/{h}");
    b.wait_for(&format!("{what} to be {stage} on B"), 60, || async {
        matches!(b.try_get(0, &path).await, Ok((200, v)) if v["cross_chain"]["stage"] == stage)
    })
    .await;
    b.get(0, &path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_rate_limited_delayed_cancelled_and_refused_by_policy() {
    let _serial = serial();
    let (a, b) = Net::start_pair(0xb71, 0xb72, 1, 500, Default::default()).await;
    deposit(&b, a.chain, 1_000_000).await;
    govern(
        &b,
        GovAction::SetPeerPolicy {
            chain: a.chain,
            policy: PeerPolicy {
                rate_capacity: 1_000,
                rate_per_s: 200,
                delay_above: 5_000,
                delay_ms: 600_000,
                ..PeerPolicy::default()
            },
        },
    )
    .await;
    let view = corr(&b, a.chain).await;
    assert_eq!(view["policy"]["policy"]["rate_capacity"], "1000", "{view}");

    // Three transfers of 800 at once: the bucket (1,000, 200/s) pays the first; the
    // next wait until it has refilled by what they owe.
    let to = keyfile::address(&SecretKey::from_seed(b"policy rate"));
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(send_cross(&a, b.chain, to, 800).await);
    }
    let last = inbound(&b, &sent[2], "the third transfer", "delayed").await;
    let until = last["cross_chain"]["forwarding"]["state"]["delayed"]["until"]
        .as_u64()
        .unwrap_or_else(|| panic!("a delayed transfer says until when: {last}"));
    assert!(until > now_ms(), "{last}");
    for h in &sent {
        wait_stage(&a, h, "settled_delivered", 60).await;
    }
    assert_eq!(b.balance(0, &to).await, 2_400);
    assert!(now_ms() >= until, "delivered before its delay was over");
    let view = corr(&b, a.chain).await;
    assert!(view["policy"]["delayed"].as_u64().unwrap() >= 2, "{view}");

    // Above the delay threshold: it waits, and governance cancels it into a bounce.
    let to = keyfile::address(&SecretKey::from_seed(b"policy delay"));
    let h = send_cross(&a, b.chain, to, 6_000).await;
    let v = inbound(&b, &h, "the large transfer", "delayed").await;
    assert_eq!(v["cross_chain"]["direction"], "inbound", "{v}");
    govern(
        &b,
        GovAction::CancelDelayed {
            chain: a.chain,
            tx: h,
        },
    )
    .await;
    let v = wait_stage(&a, &h, "refunded", 60).await;
    assert_eq!(
        v["cross_chain"]["bounce_reason"],
        BounceReason::Cancelled.as_str(),
        "{v}"
    );
    assert_eq!(v["cross_chain"]["bounced_by"], b.chain.to_string(), "{v}");
    assert_eq!(b.balance(0, &to).await, 0);

    // Under the reputation threshold (one bounce in four cost A some): refused.
    let score = corr(&b, a.chain).await["reputation"].as_u64().unwrap();
    assert!(
        score < 100,
        "a cancelled transfer counts against A: {score}"
    );
    govern(
        &b,
        GovAction::SetPeerPolicy {
            chain: a.chain,
            policy: PeerPolicy {
                min_reputation: score as u32 + 1,
                ..PeerPolicy::default()
            },
        },
    )
    .await;
    let to = keyfile::address(&SecretKey::from_seed(b"policy reputation"));
    let h = send_cross(&a, b.chain, to, 100).await;
    let v = wait_stage(&a, &h, "refunded", 60).await;
    assert_eq!(v["cross_chain"]["bounce_reason"], "low_reputation", "{v}");
    assert_eq!(b.balance(0, &to).await, 0);

    a.assert_supply_settled().await;
    let s = b.get(0, "/v1/supply").await;
    assert_eq!(
        (s["holds"].as_bool(), s["held"].as_str()),
        (Some(true), Some("0")),
        "{s}"
    );
}
