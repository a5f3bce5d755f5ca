//! End-to-end: per-peer admission policy (DESIGN §13), set by B's governance for
//! transfers from A. Over its value-rate limit, A's transfers are delayed, then
//! admitted when the bucket has refilled; a transfer above the delay threshold waits
//! and is cancelled by governance into a bounce that A refunds (which costs A's
//! reputation nothing: it was B's choice); evidence that a producer of A signed two
//! headers for one slot, reported from the command line, costs it 40, once; under the
//! reputation threshold, A's transfers are refused with that reason. Supply holds on
//! both.

use crate::support::*;
use distpos_chain::{
    interchain::policy::PeerPolicy,
    tx::{BounceReason, GovAction},
    Body,
};
use distpos_gateway::keyfile;
use distpos_proofs::{Hash32, SecretKey, SignedHeader};
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

/// Two headers for the slot of one of A's irreversible blocks, signed by its producer:
/// the block as A's nodes serve it (`GET /v1/headers`), and a twin with another
/// transaction root.
async fn equivocation(a: &Net) -> (SignedHeader, SignedHeader) {
    let v = a.get(0, "/v1/headers?from=2&to=2").await;
    let real: SignedHeader = serde_json::from_value(v["headers"][0].clone())
        .unwrap_or_else(|e| panic!("a header: {e}: {v}"));
    let key = keyfile::read(&a.dir.path().join("keys/producer-0.json")).unwrap();
    assert_eq!(
        real.header.producer,
        key.public_key(),
        "one producer signs A"
    );
    let mut twin = real.header.clone();
    twin.tx_root = Hash32([0xee; 32]);
    (real, twin.sign(&key))
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

    // A cancellation is B's choice, not a fact about A: A's reputation is intact.
    let view = corr(&b, a.chain).await;
    assert_eq!(view["bounces"]["cancelled"], 1, "{view}");
    assert_eq!(view["reputation"], 100, "{view}");

    // A producer of A signs a second header for a slot; whoever saw both reports
    // them to B from the command line: evidence of equivocation among A's producers.
    let (header_a, header_b) = equivocation(&a).await;
    let files = a.dir.path();
    let (pa, pb) = (files.join("header-a.json"), files.join("header-b.json"));
    std::fs::write(&pa, serde_json::to_string(&header_a).unwrap()).unwrap();
    std::fs::write(&pb, serde_json::to_string(&header_b).unwrap()).unwrap();
    let faucet = b.dir.path().join("keys/faucet.json");
    let report = [
        "tx",
        "--node",
        b.url(0),
        "--key",
        faucet.to_str().unwrap(),
        "--wait",
        "peer-evidence",
        "--peer",
        &a.chain.to_string(),
        "--header-a",
        pa.to_str().unwrap(),
        "--header-b",
        pb.to_str().unwrap(),
    ];
    let (ok, out, err) = distpos_cli(&report);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"applied\""), "{out}");
    let view = corr(&b, a.chain).await;
    assert_eq!(view["equivocations"], 1, "{view}");
    assert_eq!(view["reputation"], 60, "{view}");
    // The same evidence again is refused, clearly, and counts nothing.
    let (ok, out, err) = distpos_cli(&report);
    assert!(!ok, "{out}");
    assert!(err.contains("evidence_applied"), "{err}");
    // Headers that are not evidence (one block twice) are refused as such.
    std::fs::write(&pb, serde_json::to_string(&header_a).unwrap()).unwrap();
    let (ok, out, err) = distpos_cli(&report);
    assert!(!ok, "{out}");
    assert!(err.contains("bad_evidence"), "{err}");
    let view = corr(&b, a.chain).await;
    assert_eq!(
        (&view["equivocations"], &view["reputation"]),
        (&Value::from(1), &Value::from(60)),
        "{view}"
    );
    // The operator sees why.
    let (ok, out, err) = distpos_cli(&["peers", "--node", b.url(0)]);
    assert!(ok, "{err}");
    let why = format!(
        "{} reputation 60: bounced cancelled 1; equivocations 1",
        a.chain
    );
    assert!(out.contains(&why), "{why:?} in\n{out}");
    let metrics = b.http.get(format!("{}/metrics", b.url(0))).send().await;
    let metrics = metrics.unwrap().text().await.unwrap();
    let peer_label = format!("peer=\"{}\"", a.chain);
    let sample = |name: &str| {
        distpos_testnets::metrics_text::samples(&metrics)
            .into_iter()
            .find(|s| s.name == name && s.labels.contains(&peer_label))
            .map(|s| s.value)
    };
    assert_eq!(sample("distpos_peer_equivocations"), Some(1.0), "{metrics}");
    assert_eq!(
        sample("distpos_peer_refused_proofs"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(sample("distpos_peer_reputation"), Some(60.0), "{metrics}");

    // Under the reputation threshold: refused, with that reason.
    govern(
        &b,
        GovAction::SetPeerPolicy {
            chain: a.chain,
            policy: PeerPolicy {
                min_reputation: 61,
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

    let view = corr(&b, a.chain).await;
    assert_eq!(
        view["reputation"], 60,
        "a refusal of B's own costs A nothing: {view}"
    );
    a.assert_supply_settled().await;
    let s = b.get(0, "/v1/supply").await;
    assert_eq!(
        (s["holds"].as_bool(), s["held"].as_str()),
        (Some(true), Some("0")),
        "{s}"
    );
}
