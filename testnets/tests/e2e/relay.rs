//! End-to-end: the relay fails over to the next endpoint, and its queue survives a
//! `kill -9` with every item delivered once.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_fail_over_to_the_next_endpoint() {
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xa4, 0xb4, 3, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 100_000).await;
    // On every node of A: a dead endpoint first (priority 1), then B's real nodes.
    let dead = format!("http://127.0.0.1:{}", free_ports(1)[0]);
    let mut endpoints = vec![json!({"url": dead, "priority": 1, "weight": 1})];
    for i in 0..3 {
        endpoints.push(json!({"url": b.url(i), "priority": 10, "weight": 1}));
    }
    for i in 0..3 {
        let (s, v) = a
            .operator(
                i,
                Method::PUT,
                &format!("/v1/routes/{cb}"),
                Some(json!(endpoints)),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    // Without the token: refused.
    let r = a
        .http
        .put(format!("{}/v1/routes/{cb}", a.url(0)))
        .json(&endpoints)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let bob = keyfile::address(&SecretKey::from_seed(b"bob"));
    let h = send_cross(&a, cb, bob, 4_321).await;
    wait_stage(&a, &h, "settled_delivered", 120).await;
    assert_eq!(b.balance(0, &bob).await, 4_321);

    // The route view shows the dead endpoint down and a live one used.
    let mut saw_down = false;
    let mut saw_success = false;
    for i in 0..3 {
        let route = a.get(i, &format!("/v1/routes/{cb}")).await;
        // The view lists every known entry; the override is what deliveries use.
        for ep in route["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"] == "override")
        {
            if ep["url"] == dead.as_str() && ep["health"] == "down" {
                saw_down = true;
                assert!(ep["failures"].as_u64().unwrap() >= 1);
            }
            saw_success |= ep["url"] != dead.as_str() && !ep["last_success_ms"].is_null();
        }
    }
    assert!(saw_success, "a live endpoint carried the delivery");
    assert!(
        saw_down,
        "some node tried the dead endpoint first and marked it down"
    );
    let item = a.get(0, &format!("/v1/txs/{h}")).await["cross_chain"]["relay"].clone();
    if item.is_object() {
        assert_ne!(item["last_endpoint"], dead.as_str(), "{item}");
    }
    let metrics = a
        .http
        .get(format!("{}/metrics", a.url(0)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "distpos_relay_attempts_total",
        "distpos_relay_failures_total",
        "distpos_dns_lookups",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_items_survive_kill_and_are_delivered_once() {
    let _serial = crate::support::serial();
    let (mut a, mut b) = Net::start_pair(0xa5, 0xb5, 3, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 100_000).await;
    for i in 0..3 {
        b.nodes[i].kill();
    }
    let recipients: Vec<_> = (0..3u8)
        .map(|i| keyfile::address(&SecretKey::from_seed(&[b'q', i])))
        .collect();
    let mut hashes = Vec::new();
    for (i, to) in recipients.iter().enumerate() {
        hashes.push(send_cross(&a, cb, *to, 1_000 + i as u128).await);
    }
    // Queued and failing while B is down (one item per transfer with v1, per block
    // with v2: each transfer's view names its item).
    a.wait_for(
        "every transfer queued, with failed attempts",
        60,
        || async {
            let mut all = true;
            for h in &hashes {
                let v = a.get(0, &format!("/v1/txs/{h}")).await;
                all &= v["cross_chain"]["relay"]["attempts"].as_u64().unwrap_or(0) >= 1;
            }
            all
        },
    )
    .await;
    let stage = a.get(0, &format!("/v1/txs/{}", hashes[0])).await;
    assert_eq!(stage["cross_chain"]["stage"], "forwarding", "{stage}");
    // Operator actions on an item: refused without the token; hold, then release.
    let id = stage["cross_chain"]["relay"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = a
        .http
        .post(format!("{}/v1/relay/queue/{id}/hold", a.url(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s, v) = a
        .operator(0, Method::POST, &format!("/v1/relay/queue/{id}/hold"), None)
        .await;
    assert_eq!((s, v["item"]["held"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = a
        .operator(
            0,
            Method::POST,
            &format!("/v1/relay/queue/{id}/release"),
            None,
        )
        .await;
    assert_eq!((s, v["item"]["held"].as_bool()), (200, Some(false)), "{v}");
    let (s, _) = a
        .operator(
            0,
            Method::POST,
            &format!("/v1/relay/queue/{id}/explode"),
            None,
        )
        .await;
    assert_eq!(s, 400);
    // kill -9 every node of A, then bring them back: the queue is still there.
    for i in 0..3 {
        a.nodes[i].kill();
    }
    for i in 0..3 {
        a.restart(i).await;
    }
    for h in &hashes {
        let v = a.get(0, &format!("/v1/txs/{h}")).await;
        assert!(
            v["cross_chain"]["relay"]["id"].is_string(),
            "item for {h} lost: {v}"
        );
    }
    for i in 0..3 {
        b.restart(i).await;
    }
    for (i, h) in hashes.iter().enumerate() {
        wait_stage(&a, h, "settled_delivered", 180).await;
        assert_eq!(
            b.balance(0, &recipients[i]).await,
            1_000 + i as u128,
            "delivered exactly once"
        );
    }
    assert_eq!(int(&corr(&b, ca).await["collateral"]), 100_000 - 3_003);
}
