//! Benchmark: light-client header verifications/s and inclusion-proof verifications/s
//! on one core. Run: `cargo bench -p distpos-proofs --bench light_client`. Prints JSON
//! lines; asserts nothing about speed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use distpos_proofs::{
    keys::SecretKey,
    light_client::{verify_bundle, Commitment, LightClient},
    testkit::{anchor, HeaderChainSim, NOW},
};
use std::time::Instant;

fn main() {
    // Header verification: a 21-producer chain (the default max_producers), 4,000
    // headers, submitted in pages of 1,000 as a relay would.
    let keys: Vec<SecretKey> = (0..21u8)
        .map(|i| SecretKey::from_seed(&[b'b', i]))
        .collect();
    let mut sim = HeaderChainSim::new(keys.clone());
    let n_headers = 4_000;
    for _ in 0..n_headers {
        sim.block(0);
    }
    let mut lc = LightClient::new(&anchor(&keys)).unwrap();
    let t = Instant::now();
    for page in sim.headers.chunks(1_000) {
        assert!(lc.submit(page, NOW).is_accepted());
    }
    let header_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"light_client_headers\",\"producers\":21,\"headers\":{n_headers},\"seconds\":{header_s:.3},\
         \"headers_per_s\":{:.0},\"lib\":{}}}",
        n_headers as f64 / header_s,
        lc.lib()
    );

    // Proof verification: bundles into a block of 10,000 transactions.
    let mut sim = HeaderChainSim::new(keys[..1].to_vec());
    sim.block(10_000);
    sim.block(0);
    let header = distpos_proofs::light_client::Finalized {
        height: 1,
        id: sim.headers[0].id(),
        tx_root: sim.headers[0].header.tx_root,
        tx_count: sim.headers[0].header.tx_count,
        receipts_root: sim.headers[0].header.receipts_root,
        timestamp_ms: sim.headers[0].header.timestamp_ms,
    };
    let bundles: Vec<_> = (0..1_000).map(|i| sim.bundle(1, i * 10)).collect();
    let rounds = 200;
    let t = Instant::now();
    for _ in 0..rounds {
        for b in &bundles {
            verify_bundle(&header, b, Commitment::Transactions).unwrap();
        }
    }
    let s = t.elapsed().as_secs_f64();
    let n = rounds * bundles.len();
    println!(
        "{{\"bench\":\"light_client_proofs\",\"leaves\":10000,\"proof_hashes\":{},\"verifications\":{n},\
         \"seconds\":{s:.3},\"proofs_per_s\":{:.0}}}",
        bundles[0].proof.siblings.len(),
        n as f64 / s
    );
}
