//! `bench cross --fast` (issue 17): the underwritten fast path (DESIGN §11) against
//! the ordinary path, in the same run, between two chains of three producers. B's
//! governance turns the fast path on for A, B's faucet bonds behind each of A's
//! producer keys, and A's faucet sends transfers one at a time, alternately with a
//! fast fee (fast path) and without (ordinary path). Each transfer's latency is from
//! its submission to the time of B's block that credited it; the floor of the fast
//! path is one A block + one B block, which the run reports next to the fast path's
//! p95 (target ≤ 1.5×) and the ordinary path's. Nothing is asserted: one JSON object.

use super::{percentile, Bench};
use crate::launcher;
use anyhow::{bail, Context};
use distpos_chain::{interchain::fast::FastPolicy, tx::GovAction, Body, QualifiedAddress};
use distpos_gateway::keyfile;
use distpos_proofs::{Hash32, SecretKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Block interval of the bench network (`Bench::network`).
const INTERVAL_MS: u64 = 500;
/// Time between two transfers.
const SPACING: Duration = Duration::from_millis(300);

/// Runs the benchmark with `n` transfers on each path; returns its JSON line.
pub async fn fast(n: usize, producers: usize) -> anyhow::Result<Value> {
    let b = Bench::new()?;
    let net = b.network(&["fa1", "fb2"], producers.max(1)).await?;
    let (a, bb) = (&net.chains[0], &net.chains[1]);
    let (ua, ub) = (a.urls[0].clone(), bb.urls[0].clone());
    let (ka, kb) = (launcher::faucet(a)?, launcher::faucet(bb)?);
    let keys = |c: &launcher::LaunchedChain| -> anyhow::Result<Vec<SecretKey>> {
        let dir = c.faucet_key.parent().context("keys folder")?;
        (0..c.urls.len())
            .map(|i| Ok(keyfile::read(&dir.join(format!("producer-{i}.json")))?))
            .collect()
    };
    let (keys_a, keys_b) = (keys(a)?, keys(bb)?);
    b.fund_collateral(&ub, &kb, a.chain).await?;

    // B's governance: the fast path on for A, approved by every producer of B.
    let policy = FastPolicy {
        max_amount: 1_000_000,
        max_outstanding: 100_000_000,
        fee_share_bps: 5_000,
    };
    let steps: Vec<(usize, Body)> = std::iter::once((
        0,
        Body::Propose {
            action: Box::new(GovAction::SetFastPolicy {
                chain: a.chain,
                policy,
            }),
        },
    ))
    .chain((1..keys_b.len()).map(|i| (i, Body::Approve { proposal: 0 })))
    .collect();
    for (i, body) in steps {
        let tx = b.presign(&ub, &keys_b[i], 1, |_| body.clone()).await?;
        let h = b.submit_all(&ub, &tx).await?[0].0;
        super::wait_irreversible(&b, &ub, &h).await?;
    }
    // B's faucet bonds behind each of A's producer keys.
    let bonds = b
        .presign(&ub, &kb, keys_a.len(), |i| Body::BondUnderwriter {
            peer: a.chain,
            signing_key: keys_a[i].public_key(),
            amount: 100_000_000,
        })
        .await?;
    let bonded = b.submit_all(&ub, &bonds).await?;
    if let Some((h, _)) = bonded.last() {
        super::wait_irreversible(&b, &ub, h).await?;
    }
    let uw = b
        .get(&format!("{ub}/v1/underwriters?peer={}", a.chain))
        .await?;
    if uw["peers"][0]["enabled"] != true {
        bail!("the fast path did not turn on: {uw}");
    }

    // The transfers, alternately fast and ordinary, one at a time.
    let sink = keyfile::address(&SecretKey::from_seed(b"fast sink"));
    let txs = b
        .presign(&ua, &ka, 2 * n, |i| Body::Transfer {
            to: QualifiedAddress::new(bb.chain, sink),
            amount: 100,
            memo: vec![],
            deliver_by: 0,
            fast_fee: if i % 2 == 0 { 2 } else { 0 },
            via: None,
        })
        .await?;
    let b_start = b.get(&format!("{ub}/v1/status")).await?["head"]["height"]
        .as_u64()
        .unwrap_or(0);
    let mut sent: BTreeMap<Hash32, (u64, bool)> = BTreeMap::new();
    for (i, tx) in txs.iter().enumerate() {
        let (h, at) = b.submit_all(&ua, std::slice::from_ref(tx)).await?[0];
        sent.insert(h, (at, i % 2 == 0));
        tokio::time::sleep(SPACING).await;
    }
    // Credits appear on B as `fast_delivered` receipts (fast path) or results of an
    // `inbound_batch` that are not the proof of a fast one (ordinary path).
    let mut credited: BTreeMap<Hash32, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let want = sent.len();
    b.walk_blocks(
        &ub,
        b_start,
        deadline,
        &format!("{want} transfers credited on B"),
        |blk, time| {
            for r in blk["receipts"].as_array().into_iter().flatten() {
                let o = &r["outcome"];
                let ordinary = o["inbound_batch"]["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| x["bounced"].is_null() && x["fast"] != true)
                    .filter_map(|x| x["source_tx"].as_str());
                let found = o["fast_delivered"]["source_tx"]
                    .as_str()
                    .into_iter()
                    .chain(ordinary);
                for h in found.filter_map(|t| t.parse::<Hash32>().ok()) {
                    if sent.contains_key(&h) {
                        credited.entry(h).or_insert(time);
                    }
                }
            }
            credited.len() >= want
        },
    )
    .await?;
    // Which path each took, as B recorded it.
    let mut fast_lat = Vec::new();
    let mut slow_lat = Vec::new();
    let mut fast_fell_back = 0usize;
    for (h, (at, wanted_fast)) in &sent {
        let v = b.get(&format!("{ub}/v1/txs/{h}")).await?;
        let lat = credited[h].saturating_sub(*at);
        match v["cross_chain"]["path"].as_str() {
            Some("fast") => fast_lat.push(lat),
            _ => {
                if *wanted_fast {
                    fast_fell_back += 1;
                }
                slow_lat.push(lat)
            }
        }
    }
    fast_lat.sort_unstable();
    slow_lat.sort_unstable();
    let floor_ms = 2 * INTERVAL_MS;
    let (fp50, fp95) = (percentile(&fast_lat, 0.5), percentile(&fast_lat, 0.95));
    let (sp50, sp95) = (percentile(&slow_lat, 0.5), percentile(&slow_lat, 0.95));
    launcher::stop(b.dir.path())?;
    Ok(json!({
        "bench": "cross_fast",
        "producers_per_chain": producers,
        "block_interval_ms": INTERVAL_MS,
        "fast": { "txs": fast_lat.len(), "latency_p50_ms": fp50, "latency_p95_ms": fp95 },
        "fast_fee_but_ordinary_path": fast_fell_back,
        "ordinary": { "txs": slow_lat.len(), "latency_p50_ms": sp50, "latency_p95_ms": sp95 },
        "fast_floor_ms": floor_ms,
        "fast_p95_over_floor": (fp95 as f64 / floor_ms as f64 * 100.0).round() / 100.0,
        "target_fast_p95_over_floor": 1.5,
        "ordinary_p95_over_fast_p95": if fp95 > 0 { (sp95 as f64 / fp95 as f64 * 100.0).round() / 100.0 } else { 0.0 },
    }))
}
