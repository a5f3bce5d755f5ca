//! End-to-end: one producer key on two nodes (equivocation). The other producers see
//! two blocks for one slot, submit evidence, and the producer is slashed exactly once
//! and leaves the schedule.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_signing_producer_is_slashed_once_and_leaves_the_schedule() {
    let _serial = crate::support::serial();
    let mut net = Net::start(0xe9, 3, 400, ChainParams::default()).await;
    net.wait_for("first blocks", 30, || async { net.head(0).await >= 3 })
        .await;

    // A second node with producer 0's key, peered with nodes 1 and 2 only. Transactions
    // sent to it reach nodes 1 and 2 but not node 0, so in producer 0's slots the two
    // copies build different blocks.
    let key0_path = net.dir.path().join("keys").join("producer-0.json");
    let key0 = keyfile::read(&key0_path).unwrap();
    let cheater = keyfile::address(&key0);
    let twin = net.add_node(
        Some(&key0_path),
        vec![net.url(1).to_string(), net.url(2).to_string()],
    );
    net.wait_ready(twin).await;
    let stake_before: u128 = net.get(0, &format!("/v1/accounts/{cheater}")).await["stake"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut n = 0u32;
    net.wait_for("the double signer to be slashed", 90, || {
        n += 1;
        let net = &net;
        let i = n;
        async move {
            let to = keyfile::address(&SecretKey::from_seed(&i.to_be_bytes()));
            if let Ok((200, st)) = net.try_get(twin, "/v1/status").await {
                let _ = st;
                let tx = net.tx(twin, &net.faucet, transfer(to, 1)).await;
                let _ = net
                    .post(twin, "/v1/txs", &serde_json::to_value(&tx).unwrap())
                    .await;
            }
            let v = net.get(1, &format!("/v1/accounts/{cheater}")).await;
            v["producer"]["slashed"] == true
        }
    })
    .await;
    net.nodes[twin].kill();

    // Slashed once: exactly slash_fraction (10%) of its stake is gone, on every node.
    let expected = stake_before - stake_before / 10;
    for i in [1, 2] {
        net.wait_for("the slash to be irreversible", 60, || async {
            let v = net.get(i, &format!("/v1/accounts/{cheater}")).await;
            v["producer"]["slashed"] == true && net.lib(i).await > 0
        })
        .await;
        let v = net.get(i, &format!("/v1/accounts/{cheater}")).await;
        assert_eq!(
            v["stake"].as_str().unwrap().parse::<u128>().unwrap(),
            expected,
            "node {i}: {v}"
        );
    }
    // It leaves the schedule, and the chain continues without it.
    let key_hex = key0.public_key().to_string();
    net.wait_for("the slashed producer to leave the schedule", 60, || async {
        let p = net.get(1, "/v1/producers").await;
        !p["schedule"]["producers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == key_hex.as_str())
    })
    .await;
    let lib = net.lib(1).await;
    net.wait_for("LIB to advance with two producers", 60, || async {
        net.lib(1).await > lib + 2
    })
    .await;
    let v = net.get(1, &format!("/v1/accounts/{cheater}")).await;
    assert_eq!(
        v["stake"].as_str().unwrap().parse::<u128>().unwrap(),
        expected,
        "slashed once only"
    );
    assert!(
        net.log(1).contains("double signing detected")
            || net.log(2).contains("double signing detected")
    );
}
