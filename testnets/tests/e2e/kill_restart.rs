//! End-to-end: `kill -9` of a producer while transfers flow; it restarts, catches up
//! and agrees with the others; no transaction is applied twice.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_producer_restarts_catches_up_and_agrees() {
    let _serial = crate::support::serial();
    let mut net = Net::start(0xc4a5, 3, 250, ChainParams::default()).await;
    net.wait_for("LIB to pass 3", 60, || async { net.lib(0).await >= 3 })
        .await;

    let recipients: Vec<_> = (0..30u32)
        .map(|i| keyfile::address(&SecretKey::from_seed(&i.to_be_bytes())))
        .collect();
    let mut hashes = Vec::new();
    let mut head_at_kill = 0;
    for (i, to) in recipients.iter().enumerate() {
        // Alternate between the two nodes that stay up.
        let node = i % 2;
        let tx = net
            .tx(node, &net.faucet, transfer(*to, 1_000 + i as u128))
            .await;
        hashes.push(net.submit(node, &tx).await);
        if i == 10 {
            head_at_kill = net.head(2).await;
            net.nodes[2].kill(); // SIGKILL: no shutdown, no flush beyond what was committed
        }
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    }
    // While node 2 is down, its slots are missed and LIB (3 of 3 producers) stalls.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let head_before_restart = net.head(0).await;
    let behind = head_before_restart.saturating_sub(head_at_kill);
    let restarted = Instant::now();
    net.restart(2).await;
    net.wait_for("node 2 to catch up", 60, || async {
        net.head(2).await >= head_before_restart
    })
    .await;
    let catch_up_ms = restarted.elapsed().as_millis();

    for h in &hashes {
        net.wait_irreversible(0, h, 60).await;
    }
    // All three agree on block id and state digest at a common irreversible height.
    let target = net.lib(0).await;
    net.wait_for("all nodes past the target", 60, || async {
        let mut ok = true;
        for i in 0..3 {
            ok &= net.lib(i).await >= target;
        }
        ok
    })
    .await;
    let mut seen = Vec::new();
    for i in 0..3 {
        let b = net.get(i, &format!("/v1/blocks/{target}")).await;
        seen.push((
            b["id"].clone(),
            b["block"]["header"]["header"]["state_digest"].clone(),
        ));
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "disagreement at {target}: {seen:?}"
    );

    // Exactly once: every recipient holds exactly its amount on every node, and the
    // faucet's nonce counts each transfer once.
    for i in 0..3 {
        for (k, to) in recipients.iter().enumerate() {
            assert_eq!(
                net.balance(i, to).await,
                1_000 + k as u128,
                "node {i}, recipient {k}"
            );
        }
        let faucet = net
            .get(
                i,
                &format!("/v1/accounts/{}", keyfile::address(&net.faucet)),
            )
            .await;
        assert_eq!(faucet["nonce"], 30, "node {i}");
    }
    eprintln!(
        "{{\"measure\":\"catch_up_after_kill\",\"ms\":{catch_up_ms},\"blocks_behind\":{behind}}}"
    );
}
