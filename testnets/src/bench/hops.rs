//! `bench hops` (issue 18): delivery through a correspondent (DESIGN §12) against
//! direct delivery, in the same run, on a line of three chains A – B – C (B forwards,
//! A has no relation with C and its routes say "C via B"). A's faucet first sends
//! `n` transfers to B, then `n` to C through B, one at a time. Each latency runs from
//! the submission to the time of the block that credited the recipient: B's block for
//! the direct ones, C's for the forwarded ones (found through B's `Forward`s).
//!
//! The floors are the blocks a transfer must wait for when every block is
//! irreversible at once (one producer per chain): direct, one A block and one B block;
//! through B, one A block, one B block (admitted and held), one more B block (its
//! `Forward`) and one C block. Nothing is asserted: one JSON object.

use super::{percentile, Bench};
use crate::launcher;
use anyhow::Context;
use distpos_chain::{Body, QualifiedAddress};
use distpos_gateway::keyfile;
use distpos_proofs::{Hash32, SecretKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Block interval of the bench network (`Bench::network_with`).
const INTERVAL_MS: u64 = 500;
/// Time between two transfers.
const SPACING: Duration = Duration::from_millis(300);

/// Runs the benchmark with `n` transfers each way; returns its JSON line.
pub async fn hops(n: usize, producers: usize) -> anyhow::Result<Value> {
    let b = Bench::new()?;
    let net = b
        .network_with(
            "forwarding = true\nmax_hops = 3\ntransit_fee = \"1\"\nlinks = [[\"a11\", \"b22\"], [\"b22\", \"c33\"]]",
            &[
                ("a11", "via = { c33 = \"b22\" }"),
                ("b22", ""),
                ("c33", ""),
            ],
            producers.max(1),
        )
        .await?;
    let [a, bb, c] = [&net.chains[0], &net.chains[1], &net.chains[2]];
    let (ua, ub, uc) = (a.urls[0].clone(), bb.urls[0].clone(), c.urls[0].clone());
    let (ka, kb, kc) = (
        launcher::faucet(a)?,
        launcher::faucet(bb)?,
        launcher::faucet(c)?,
    );
    b.fund_collateral(&ub, &kb, a.chain).await?;
    b.fund_collateral(&uc, &kc, bb.chain).await?;

    // Direct: A → B.
    let sink = keyfile::address(&SecretKey::from_seed(b"hops sink"));
    let direct = b
        .presign(&ua, &ka, n, |_| Body::Transfer {
            to: QualifiedAddress::new(bb.chain, sink),
            amount: 100,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;
    let b_start = b.head(&ub).await?;
    let sent_direct = send_spaced(&b, &ua, &direct).await?;
    let mut credited_direct: BTreeMap<Hash32, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    b.walk_blocks(&ub, b_start, deadline, "direct transfers", |blk, time| {
        for r in blk["receipts"].as_array().into_iter().flatten() {
            for x in r["outcome"]["inbound_batch"]["results"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(h) = hash_of(&x["source_tx"]) {
                    if x["bounced"].is_null() && sent_direct.contains_key(&h) {
                        credited_direct.entry(h).or_insert(time);
                    }
                }
            }
        }
        credited_direct.len() >= sent_direct.len()
    })
    .await?;

    // Through B: A → C (via B).
    let forwarded = b
        .presign(&ua, &ka, n, |_| Body::Transfer {
            to: QualifiedAddress::new(c.chain, sink),
            amount: 100,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: Some(bb.chain),
        })
        .await?;
    let (b_start, c_start) = (b.head(&ub).await?, b.head(&uc).await?);
    let sent_fwd = send_spaced(&b, &ua, &forwarded).await?;
    // B's legs: a `Forward` in flight to C, whose body names A's transfer.
    let mut legs: BTreeMap<Hash32, Hash32> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    b.walk_blocks(&ub, b_start, deadline, "B's forwards", |blk, _| {
        let txs = blk["block"]["txs"].as_array().cloned().unwrap_or_default();
        for (r, t) in blk["receipts"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(txs.iter())
        {
            let (Some(leg), Some(origin)) = (
                hash_of(&r["tx_hash"]),
                hash_of(&t["body"]["forward"]["source_tx"]),
            ) else {
                continue;
            };
            if !r["outcome"]["in_flight"].is_null() && sent_fwd.contains_key(&origin) {
                legs.insert(leg, origin);
            }
        }
        legs.len() >= sent_fwd.len()
    })
    .await?;
    let mut credited_fwd: BTreeMap<Hash32, u64> = BTreeMap::new();
    b.walk_blocks(
        &uc,
        c_start,
        deadline,
        "forwarded transfers",
        |blk, time| {
            for r in blk["receipts"].as_array().into_iter().flatten() {
                for x in r["outcome"]["inbound_batch"]["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(origin) = hash_of(&x["source_tx"]).and_then(|l| legs.get(&l)) {
                        if x["bounced"].is_null() {
                            credited_fwd.entry(*origin).or_insert(time);
                        }
                    }
                }
            }
            credited_fwd.len() >= sent_fwd.len()
        },
    )
    .await?;

    let latencies = |sent: &BTreeMap<Hash32, u64>, credited: &BTreeMap<Hash32, u64>| {
        let mut l: Vec<u64> = sent
            .iter()
            .filter_map(|(h, at)| credited.get(h).map(|t| t.saturating_sub(*at)))
            .collect();
        l.sort_unstable();
        l
    };
    let (ld, lf) = (
        latencies(&sent_direct, &credited_direct),
        latencies(&sent_fwd, &credited_fwd),
    );
    let (d50, d95) = (percentile(&ld, 0.5), percentile(&ld, 0.95));
    let (f50, f95) = (percentile(&lf, 0.5), percentile(&lf, 0.95));
    let floor_direct = 2 * INTERVAL_MS;
    let floor_fwd = 4 * INTERVAL_MS;
    launcher::stop(b.dir.path()).context("stopping the bench network")?;
    Ok(json!({
        "bench": "hops",
        "producers_per_chain": producers.max(1),
        "block_interval_ms": INTERVAL_MS,
        "direct": { "txs": ld.len(), "latency_p50_ms": d50, "latency_p95_ms": d95, "floor_ms": floor_direct },
        "two_hops": { "txs": lf.len(), "latency_p50_ms": f50, "latency_p95_ms": f95, "floor_ms": floor_fwd },
        "two_hops_p95_over_floor": ratio(f95, floor_fwd),
        "direct_p95_over_floor": ratio(d95, floor_direct),
        "two_hops_p95_over_direct_p95": ratio(f95, d95),
    }))
}

/// Submits `txs` one at a time, `SPACING` apart; returns each hash with its time.
async fn send_spaced(
    b: &Bench,
    url: &str,
    txs: &[distpos_chain::Transaction],
) -> anyhow::Result<BTreeMap<Hash32, u64>> {
    let mut sent = BTreeMap::new();
    for tx in txs {
        let (h, at) = b.submit_all(url, std::slice::from_ref(tx)).await?[0];
        sent.insert(h, at);
        tokio::time::sleep(SPACING).await;
    }
    Ok(sent)
}

fn hash_of(v: &Value) -> Option<Hash32> {
    v.as_str()?.parse().ok()
}

fn ratio(x: u64, of: u64) -> f64 {
    if of == 0 {
        return 0.0;
    }
    (x as f64 / of as f64 * 100.0).round() / 100.0
}
