//! Benchmark: what a 3-producer chain of real `distpos` processes sustains on this
//! machine — committed transfers/s and blocks/s — fed over HTTP in batches.
//!
//! Run: `cargo build --release -p distpos && cargo bench -p distpos-testnets --bench chain_throughput`. Prints JSON lines;
//! asserts nothing about speed. `DISTPOS_BENCH_TXS` sets the number of transfers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/e2e/support.rs"]
mod support;

use distpos_chain::{ChainParams, UnsignedTx};
use distpos_gateway::keyfile;
use distpos_proofs::{header::tapos_prefix, Hash32, SecretKey};
use std::time::{Duration, Instant};
use support::*;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("DISTPOS_BENCH_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let interval_ms = 500;
    let net = Net::start(0xbe1c, 3, interval_ms, ChainParams::default()).await;
    net.wait_for("LIB > 1", 60, || async { net.lib(0).await > 1 })
        .await;

    // Pre-sign every transfer from the faucet (sequential nonces) against the head.
    let st = net.status(0).await;
    let head_id: Hash32 = st["head"]["id"].as_str().unwrap().parse().unwrap();
    let head_h = st["head"]["height"].as_u64().unwrap();
    let to = keyfile::address(&SecretKey::from_seed(b"sink"));
    let txs: Vec<_> = (0..n)
        .map(|i| {
            UnsignedTx {
                chain_id: net.chain,
                nonce: 1 + i as u64,
                fee: 1,
                ref_block_num: head_h as u16,
                ref_block_prefix: tapos_prefix(&head_id),
                expiration: now_ms() + 30 * 60 * 1000,
                body: transfer(to, 1),
            }
            .sign(&net.faucet)
        })
        .collect();

    let start_height = net.head(0).await;
    let started = Instant::now();
    for chunk in txs.chunks(1_000) {
        let (status, body) = net
            .post(0, "/v1/txs", &serde_json::to_value(chunk).unwrap())
            .await;
        assert_eq!(status, 200, "{body}");
        if let Some(err) = body
            .as_array()
            .unwrap()
            .iter()
            .find(|r| !r["error"].is_null())
        {
            panic!("a transfer was refused: {err}");
        }
    }
    let submitted_ms = started.elapsed().as_millis();

    // Count committed transfers block by block on node 0.
    let mut counted = 0usize;
    let mut next = start_height + 1;
    let mut last_block_at = Instant::now();
    while counted < n {
        let head = net.head(0).await;
        while next <= head {
            let b = net.get(0, &format!("/v1/blocks/{next}")).await;
            counted += b["block"]["txs"].as_array().unwrap().len();
            next += 1;
            last_block_at = Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {counted}/{n} committed after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = last_block_at.duration_since(started).as_secs_f64();
    let blocks = next - 1 - start_height;
    let lib_lag = net.head(0).await - net.lib(0).await;
    println!(
        "{{\"bench\":\"chain_throughput\",\"producers\":3,\"block_interval_ms\":{interval_ms},\"txs\":{n},\
         \"submit_ms\":{submitted_ms},\"elapsed_s\":{elapsed:.2},\"txs_per_s\":{:.0},\"blocks\":{blocks},\
         \"blocks_per_s\":{:.2},\"max_blocks_per_s\":{:.2},\"lib_lag_blocks\":{lib_lag}}}",
        n as f64 / elapsed,
        blocks as f64 / elapsed,
        1000.0 / interval_ms as f64
    );
}
