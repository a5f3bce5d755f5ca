//! End-to-end, interchain v2 (DESIGN §6.1): two chains of three producers relay in
//! batches. A burst of transfers from one block of A travels as one `InboundBatch`
//! system transaction on B (no per-transfer signature, no relayer nonce), what B's
//! collateral cannot cover bounces, and the receipts settle on A as one `SettleBatch`:
//! every transfer delivered or refunded once, supply holding on both chains.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_deliver_bounce_and_settle_both_ways() {
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xa2, 0xb2, 3, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    // B covers 1,000 of A's transfers; A covers 500 of B's.
    deposit(&b, ca, 1_000).await;
    deposit(&a, cb, 500).await;

    let bob = keyfile::address(&SecretKey::from_seed(b"bob-v2"));
    let alice = keyfile::address(&SecretKey::from_seed(b"alice-v2"));
    let a_faucet = keyfile::address(&a.faucet);
    let before = a.balance(0, &a_faucet).await;

    // Ten transfers of 150 from A in quick succession: 1,500 against 1,000 of
    // collateral, so some bounce (which ones depends on how blocks cut the burst).
    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.push(send_cross(&a, cb, bob, 150).await);
    }
    let mut delivered = 0u128;
    for h in &sent {
        let path = format!("/v1/txs/{h}");
        a.wait_for(
            &format!("transfer {h} settled or refunded"),
            120,
            || async {
                matches!(
                    a.try_get(0, &path).await,
                    Ok((200, v)) if v["cross_chain"]["stage"] == "settled_delivered"
                        || v["cross_chain"]["stage"] == "refunded"
                )
            },
        )
        .await;
        if a.get(0, &path).await["cross_chain"]["stage"] == "settled_delivered" {
            delivered += 150;
        }
    }
    assert_eq!(delivered, 900, "six of 150 fit in 1,000; four bounce");
    assert_eq!(b.balance(0, &bob).await, 900);
    assert_eq!(
        a.balance(0, &a_faucet).await,
        before - 900 - 10,
        "the delivered amounts and ten fees, once; the bounced ones refunded"
    );
    assert_eq!(int(&corr(&b, ca).await["collateral"]), 100);
    assert_eq!(int(&corr(&a, cb).await["collateral"]), 500 + 900);

    // B's blocks carry the transfers as system transactions: the inbound record
    // names one `InboundBatch` for several transfers.
    let inbound_txs: std::collections::BTreeSet<String> = {
        let mut set = std::collections::BTreeSet::new();
        for h in &sent {
            let v = b.get(0, &format!("/v1/txs/{h}")).await;
            set.insert(v["cross_chain"]["inbound"]["tx"].to_string());
        }
        set
    };
    assert!(
        inbound_txs.len() < sent.len(),
        "ten transfers came in fewer batches: {inbound_txs:?}"
    );

    // And back: B → A, one transfer.
    let h = send_cross(&b, ca, alice, 77).await;
    wait_stage(&b, &h, "settled_delivered", 120).await;
    assert_eq!(a.balance(0, &alice).await, 77);

    for net in [&a, &b] {
        net.assert_supply_settled().await;
    }
}

/// One node of A relays to B at a time; when it is killed, the others take over what
/// it left unfinished and every transfer still ends, once. (Four producers: with one
/// of them down, ⌊2·4/3⌋+1 = 3 still finalise A's blocks.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_on_when_the_duty_holder_is_killed() {
    let _serial = crate::support::serial();
    let (mut a, b) = Net::start_pair(0xa6, 0xb6, 4, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 10_000).await;
    let path = format!("/v1/correspondents/{cb}");
    let mut holders = Vec::new();
    for i in 0..4 {
        if a.get(i, &path).await["relay_duty"]["ours"] == true {
            holders.push(i);
        }
    }
    assert_eq!(holders.len(), 1, "exactly one node of A holds the duty");
    let holder = holders[0];
    a.nodes[holder].kill();
    // Send through a node that keeps running.
    let sender = (holder + 1) % 4;
    let to = keyfile::address(&SecretKey::from_seed(b"duty recipient"));
    let tx = a
        .tx(
            sender,
            &a.faucet,
            distpos_chain::Body::Transfer {
                to: distpos_chain::QualifiedAddress::new(cb, to),
                amount: 42,
                memo: vec![],
                deliver_by: 0,
                fast_fee: 0,
                via: None,
            },
        )
        .await;
    let h = a.submit(sender, &tx).await;
    let view = format!("/v1/txs/{h}");
    a.wait_for(
        "the transfer settled without its duty holder",
        120,
        || async {
            matches!(a.try_get(sender, &view).await, Ok((200, v))
            if v["cross_chain"]["stage"] == "settled_delivered")
        },
    )
    .await;
    assert_eq!(b.balance(0, &to).await, 42);
    a.restart(holder).await;
}

/// What anyone can post to the relay routes: a replayed batch is answered
/// `already_consumed` and changes nothing, a forged one is refused (400), one for a
/// block not seen yet waits (202 pending) and is never admitted, garbage is a 4xx, and
/// a v1 delivery of the same transfer (one item with its own Merkle proof, built from
/// the source's proof endpoint) is refused as retired (410).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_forged_and_premature_batches_are_not_admitted() {
    use serde_json::json;
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xa8, 0xb8, 1, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 1_000).await;
    let bob = keyfile::address(&SecretKey::from_seed(b"bob-adversarial"));
    let h = send_cross(&a, cb, bob, 100).await;
    let st = wait_stage(&a, &h, "settled_delivered", 120).await;
    assert_eq!(b.balance(0, &bob).await, 100);
    let batch = st["cross_chain"]["relay"]["payload"]["delivery_batch"].clone();
    assert!(batch.is_object(), "the item carries the batch: {st}");
    let route = "/v1/relay/v2/deliveries";

    // The same batch five times at once: consumed once already.
    let post = |_: usize| b.post(0, route, &batch);
    let (r0, r1, r2, r3, r4) = tokio::join!(post(0), post(1), post(2), post(3), post(4));
    for (s, ack) in [r0, r1, r2, r3, r4] {
        assert_eq!(
            (s, ack["status"].as_str()),
            (200, Some("already_consumed")),
            "{ack}"
        );
    }
    // A transfer's amount changed: not the transaction the block holds.
    let mut forged = batch.clone();
    forged["transfers"][0]["body"]["transfer"]["amount"] = json!("1000000");
    let (s, v) = b.post(0, route, &forged).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("bad_proof")),
        "{v}"
    );
    // Claimed at another index.
    let mut forged = batch.clone();
    forged["indices"][0] = json!(forged["indices"][0].as_u64().unwrap() + 1);
    let (s, v) = b.post(0, route, &forged).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("bad_proof")),
        "{v}"
    );
    // From a chain that is not a peer.
    let mut forged = batch.clone();
    forged["source_chain"] = json!("c0ffee");
    let (s, v) = b.post(0, route, &forged).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_peer")),
        "{v}"
    );
    // One index too few.
    let mut forged = batch.clone();
    forged["indices"] = json!([]);
    let (s, v) = b.post(0, route, &forged).await;
    assert_eq!(s, 400, "{v}");
    // Garbage.
    let (s, v) = b.post(0, route, &json!({"source_chain": "a8"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("invalid_json")),
        "{v}"
    );
    // A made-up transfer for a block far beyond what B has seen of A: answered
    // pending, costs a look-up, kept nowhere, and never admitted (its proof cannot
    // hold against the real block later).
    let mut premature = batch.clone();
    premature["transfers"][0]["body"]["transfer"]["amount"] = json!("777");
    premature["height"] = json!(1_000_000);
    let (s, v) = b.post(0, route, &premature).await;
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    // Interchain v1: the same transfer as one item under its own proof.
    let proof = a.get(0, &format!("/v1/proofs/tx/{h}")).await;
    let v1 = json!({
        "source_chain": ca.to_string(),
        "source_tx": proof["transaction"],
        "proof": proof["tx"]["proof"],
        "height": proof["tx"]["height"],
        "index": proof["tx"]["index"],
        "hops": 0,
    });
    for path in ["/v1/relay/deliveries", "/v1/relay/deliveries/batch"] {
        let body = if path.ends_with("batch") {
            json!([v1.clone()])
        } else {
            v1.clone()
        };
        let (s, v) = b.post(0, path, &body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (410, Some("protocol_v1_retired")),
            "{path}: {v}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(b.balance(0, &bob).await, 100, "nothing changed");
    assert_eq!(int(&corr(&b, ca).await["collateral"]), 900);
    b.assert_supply_settled().await;
}
