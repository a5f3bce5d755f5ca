//! End-to-end: liveness after outages (DESIGN §14). A chain whose producers were all
//! stopped for longer than the participation window resumes on its own once the
//! scheduled producers' nodes are back and agree on the head; one node alone (a
//! minority) waits and says why. The README's by-hand start produces blocks.

use crate::support::*;
use distpos_chain::ChainParams;
use std::{
    process::Command,
    time::{Duration, Instant},
};

/// A seed from the clock, printed so that a failing order can be replayed.
fn seed() -> u64 {
    let s = std::env::var("DISTPOS_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(now_ms);
    eprintln!("seed {s} (DISTPOS_TEST_SEED={s} replays it)");
    s
}

/// A permutation of `0..n` from `seed` (splitmix64 driving Fisher–Yates).
fn shuffled(n: usize, mut seed: u64) -> Vec<usize> {
    let mut next = || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_stopped_past_its_participation_window_resumes_without_a_flag() {
    let _serial = crate::support::serial();
    // 200 ms blocks: the 128-slot participation window is 25.6 s.
    let mut net = Net::start(0xd71, 3, 200, ChainParams::default()).await;
    net.wait_for("10 blocks", 60, || async { net.head(0).await >= 10 })
        .await;
    for n in &mut net.nodes {
        n.kill();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let order = shuffled(3, seed());
    // One node alone is a minority: it must not grow the chain, and says why.
    net.restart(order[0]).await;
    let before = net.head(order[0]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(net.head(order[0]).await, before, "a lone node produced");
    let log = net.log(order[0]);
    assert!(
        log.contains("participation below 33%") && log.contains("not producing"),
        "the waiting node says why:\n{}",
        tail(&log, 20)
    );
    net.restart(order[1]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    net.restart(order[2]).await;
    let all_up = Instant::now();
    net.wait_for("blocks to resume on every node", 30, || async {
        let mut ok = true;
        for i in 0..3 {
            ok &= net.head(i).await >= before + 5;
        }
        ok
    })
    .await;
    eprintln!(
        "blocks resumed {:.1} s after the last node came back",
        all_up.elapsed().as_secs_f64()
    );
    assert!(
        net.log(order[2])
            .contains("resuming production after an outage")
            || net
                .log(order[1])
                .contains("resuming production after an outage")
            || net
                .log(order[0])
                .contains("resuming production after an outage"),
        "a producer says it resumed"
    );
    // They agree: the same block at the LIB everywhere.
    let lib = net.lib(0).await;
    net.wait_for("every node past the LIB", 30, || async {
        net.lib(1).await >= lib && net.lib(2).await >= lib
    })
    .await;
    let ids: Vec<_> = futures_ids(&net, lib).await;
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

async fn futures_ids(net: &Net, height: u64) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for i in 0..net.nodes.len() {
        out.push(net.get(i, &format!("/v1/blocks/{height}")).await["id"].clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_by_hand_start_produces_twenty_blocks() {
    let _serial = crate::support::serial();
    let dir = tempfile::Builder::new()
        .prefix("distpos-e2e-")
        .tempdir()
        .unwrap();
    let ports = free_ports(3);
    let net_dir = dir.path().join("net");
    let ports_arg = ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    // As the README says: init, then one `node --config` per producer, a few seconds
    // apart (the genesis time passes meanwhile).
    let out = Command::new(crate::support::distpos_exe())
        .args(["testnet", "init", "--dir"])
        .arg(&net_dir)
        .args(["--chain", "e2e4", "--producers", "3", "--ports", &ports_arg])
        .args(["--interval-ms", "500"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let url = format!("http://127.0.0.1:{port}");
        nodes.push(NodeProc::spawn(
            &net_dir.join(format!("node-{i}.toml")),
            &url,
            &dir.path().join(format!("node-{i}.log")),
            &[],
        ));
        if i + 1 < ports.len() {
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let head = |i: usize| {
        let (http, url) = (http.clone(), nodes[i].url.clone());
        async move {
            let v: serde_json::Value = http
                .get(format!("{url}/v1/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["head"]["height"].as_u64()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut heights = Vec::new();
        for i in 0..3 {
            heights.push(head(i).await.unwrap_or(0));
        }
        if heights.iter().all(|h| *h >= 20) {
            break;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| tail(&std::fs::read_to_string(&n.log).unwrap_or_default(), 20))
                .collect();
            let kept = dir.keep();
            panic!(
                "heights {heights:?} after 90 s; folder kept at {}\n{}",
                kept.display(),
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
