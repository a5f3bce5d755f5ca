//! End-to-end: what a node needs to finish a transfer survives its restart.
//!
//! Every node of the source goes down right after the destination took the transfer,
//! losing whatever it held in memory (a receipt batch it may already have taken and
//! held for its next block). The destination keeps its receipt due, answered or not,
//! until the source answers that it settled the transfer in an irreversible block; so
//! once the source is back, the transfer settles, exactly once.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_survives_a_restart_of_every_source_node() {
    let _serial = crate::support::serial();
    let (mut a, b) = Net::start_pair(0xa71, 0xb71, 3, 500, ChainParams::default()).await;
    deposit(&b, a.chain, 1_000_000).await;
    let to = keyfile::address(&SecretKey::from_seed(b"recovery recipient"));
    let h = send_cross(&a, b.chain, to, 700).await;
    // B took the batch (A's duty holder shows it first; the others send only what
    // waited): now every node of A goes down at once.
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
    for n in &mut a.nodes {
        n.kill();
    }
    // B delivers, then sends its receipts back and keeps them due: A is down (or took
    // them and lost them with its memory).
    b.wait_for("B's receipt item attempted", 60, || async {
        matches!(b.try_get(0, &view).await, Ok((200, v))
            if v["cross_chain"]["relay"]["attempts"].as_u64().unwrap_or(0) >= 1)
    })
    .await;
    let v = b.get(0, &view).await;
    assert_eq!(v["cross_chain"]["stage"], "delivered", "{v}");
    assert_ne!(
        v["cross_chain"]["relay"]["state"], "done",
        "no receipt is done before its source settled it: {v}"
    );
    assert_eq!(b.balance(0, &to).await, 700);
    for i in 0..a.nodes.len() {
        a.restart(i).await;
    }
    let v = wait_stage(&a, &h, "settled_delivered", 120).await;
    assert_eq!(v["cross_chain"]["settled"]["amount"], "700", "{v}");
    a.assert_supply_settled().await;
    // B hears of it too: its receipt item ends done.
    b.wait_for("B's receipt item done", 120, || async {
        matches!(b.try_get(0, &view).await, Ok((200, v))
            if v["cross_chain"]["relay"]["state"] == "done")
    })
    .await;
    assert_eq!(b.balance(0, &to).await, 700, "delivered once");
}
