//! Benchmark: the cost of `apply_block` for a block of 10,000 signed transfers, on one
//! thread, split into signature checks (`check_block_signatures`: header, tx root,
//! every ECDSA verification and sender derivation) and the rest
//! (`apply_checked_block`: execution, receipts, state digest).
//!
//! Run: `cargo bench -p distpos-chain --bench apply_block`. Prints JSON lines.
//! Nothing here asserts a speed; the figures are for the reader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use distpos_chain::{
    address::QualifiedAddress,
    block::{apply_checked_block, check_block_signatures},
    build_block,
    testkit::{address_of, TestChain},
    Body,
};
use std::time::Instant;

const TXS: usize = 10_000;
const USERS: usize = 1_000;
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut chain = TestChain::new(0xbe4c, 1, USERS, TestChain::dev_params());
    chain.produce_empty(1).unwrap();
    let users = chain.users.clone();
    let txs: Vec<_> = (0..TXS)
        .map(|i| {
            let from = &users[i % USERS];
            let to = QualifiedAddress::local(address_of(&users[(i * 7 + 1) % USERS]));
            chain.tx(
                from,
                1,
                Body::Transfer {
                    to,
                    amount: 1 + i as u128,
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via: None,
                },
            )
        })
        .collect();

    let slot = chain.next_slot(0);
    let time = chain.slot_time(slot);
    let key = chain.signer_for_slot(slot).unwrap();
    let t = Instant::now();
    let built = build_block(&chain.state, &key, time, &txs).unwrap();
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        built.block.txs.len(),
        TXS,
        "every transfer must be valid: {:?}",
        built.rejected.first()
    );

    let (mut sig, mut rest) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        let checks = check_block_signatures(&chain.state, &built.block, time).unwrap();
        sig.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let applied = apply_checked_block(&chain.state, &built.block, &checks).unwrap();
        rest.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(applied, built.applied);
    }
    let (sig, rest) = (median(sig), median(rest));

    // The floor under the signature share: bare k256 verifications of one signature.
    let one = &built.block.txs[0];
    let hash = one.hash();
    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        distpos_proofs::keys::verify(&one.pubkey, &hash, &one.signature).unwrap();
    }
    let bare_verify_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let total = sig + rest;
    println!(
        "{{\"bench\":\"apply_block\",\"txs\":{TXS},\"threads\":1,\"runs\":{RUNS},\"total_ms\":{total:.1},\
         \"signature_checks_ms\":{sig:.1},\"rest_ms\":{rest:.1},\"signature_share\":{:.3},\
         \"txs_per_s\":{:.0},\"per_tx_signature_us\":{:.1},\"per_tx_rest_us\":{:.1},\"build_block_ms\":{build_ms:.1},\"bare_k256_verify_us\":{bare_verify_us:.1}}}",
        sig / total,
        TXS as f64 / (total / 1e3),
        sig * 1e3 / TXS as f64,
        rest * 1e3 / TXS as f64,
    );
}
