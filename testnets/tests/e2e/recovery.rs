//! End-to-end: what a node needs to finish a transfer survives its restart.
//!
//! The source's light client of the destination is held back (a route override to a
//! dead port), so the destination's receipt is answered "pending"; then every node of
//! the source is killed and restarted, losing whatever it held in memory. The
//! destination keeps its receipt due until the source answers that it settled, so the
//! transfer still settles. This is the v1 path (a v2 receipt carries the headers that
//! prove it, so holding back header sync does not keep it pending; the chaos soak
//! crashes whole chains that hold v2 batches).

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::{config::RelayProtocol, keyfile};
use distpos_proofs::SecretKey;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_receipt_survives_a_restart_of_every_source_node() {
    let _serial = crate::support::serial();
    let v1 = RelayProtocol::V1;
    let (mut a, b) =
        Net::start_pair_with(0xa71, 0xb71, 3, 500, ChainParams::default(), (v1, v1)).await;
    deposit(&b, a.chain, 1_000_000).await;
    let to = keyfile::address(&SecretKey::from_seed(b"recovery recipient"));
    let h = send_cross(&a, b.chain, to, 700).await;
    // Once B took the delivery, A stops hearing from B: its light client of B stalls.
    // (The node on relaying duty shows it first; the others send only what waited.)
    let view = format!("/v1/txs/{h}");
    a.wait_for("the transfer delivered by A's duty holder", 60, || async {
        let mut any = false;
        for i in 0..a.nodes.len() {
            any |= matches!(a.try_get(i, &view).await, Ok((200, v))
                if v["cross_chain"]["stage"] == "delivered");
        }
        any
    })
    .await;
    let dead = format!("http://127.0.0.1:{}", free_ports(1)[0]);
    for i in 0..a.nodes.len() {
        let (s, v) = a
            .operator(
                i,
                reqwest::Method::PUT,
                &format!("/v1/routes/{}", b.chain),
                Some(json!([{ "url": dead, "priority": 1, "weight": 1 }])),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    // B delivers, then sends its receipt back: A answers "pending" (it cannot prove
    // B's block yet), and B keeps the receipt due.
    let path = format!("/v1/txs/{h}");
    b.wait_for("B's receipt answered pending by A", 60, || async {
        matches!(b.try_get(0, &path).await, Ok((200, v))
            if v["cross_chain"]["relay"]["attempts"].as_u64().unwrap_or(0) >= 1
                && v["cross_chain"]["relay"]["last_error"].is_string())
    })
    .await;
    let v = b.get(0, &path).await;
    assert_eq!(v["cross_chain"]["stage"], "delivered", "{v}");
    assert_ne!(
        v["cross_chain"]["relay"]["state"], "done",
        "a receipt answered pending is not done: {v}"
    );
    assert_eq!(b.balance(0, &to).await, 700);
    // Every node of A goes down at once (what it held in memory is gone) and comes
    // back without the override.
    for n in &mut a.nodes {
        n.kill();
    }
    for i in 0..a.nodes.len() {
        a.restart(i).await;
    }
    let v = wait_stage(&a, &h, "settled_delivered", 120).await;
    assert_eq!(v["cross_chain"]["settled"]["amount"], "700", "{v}");
    a.assert_supply_settled().await;
    // B hears of it too: its receipt item ends done.
    b.wait_for("B's receipt item done", 60, || async {
        matches!(b.try_get(0, &path).await, Ok((200, v))
            if v["cross_chain"]["relay"]["state"] == "done")
    })
    .await;
}
