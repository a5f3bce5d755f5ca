//! Whole-chain crash soaks: `bench crash-restart` (every producer killed at once just
//! after a block, restarted in random orders with random delays: the chain must
//! converge on one branch and transfers to it settle) and `bench outage` (every node
//! stopped for longer than the participation window, restarted in a random order:
//! blocks must resume on their own).

use super::harness::{
    agreement, exe, get_irreversible, network, next_nonce, sign, soak_dir, tx_context, wait_until,
    Http, Rng,
};
use crate::{bench::percentile, fleet::Fleet, launcher};
use anyhow::Context;
use distpos_chain::{Body, QualifiedAddress};
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a run may take to converge before it counts as failed.
const CONVERGE_LIMIT: Duration = Duration::from_secs(90);

/// `bench crash-restart`: `runs` full crashes of a 3-producer chain (A) while chain B
/// sends it transfers.
pub async fn crash_restart(runs: usize, seed: u64) -> anyhow::Result<Value> {
    let dir = soak_dir()?;
    let net = network(dir.path(), &["cc1", "cc2"], 3, 500)?;
    let a_chain = net.chains[0].chain;
    let a_urls = net.chains[0].urls.clone();
    let b_urls = net.chains[1].urls.clone();
    let (fa, fb) = (
        launcher::faucet(&net.chains[0])?,
        launcher::faucet(&net.chains[1])?,
    );
    let b_chain = net.chains[1].chain;
    let mut fleet = Fleet::new(net, exe()?)?;
    fleet.start_all().await?;
    let http = Http::new()?;
    let mut rng = Rng::new(seed);
    // A holds collateral for B, so B's transfers to A deliver.
    let ctx = tx_context(&http, &a_urls[0]).await?;
    let dep = sign(
        &ctx,
        &fa,
        next_nonce(&http, &a_urls[0], &fa).await?,
        Body::DepositCollateral {
            peer: b_chain,
            amount: 10_000_000_000,
        },
    );
    anyhow::ensure!(
        get_irreversible(&http, &a_urls, &dep, 0, Duration::from_secs(60)).await,
        "collateral deposit not included"
    );
    let (h, _, _) = http.head(&a_urls[0]).await?;
    wait_until(Duration::from_secs(60), || async {
        matches!(http.head(&a_urls[0]).await, Ok((_, _, lib)) if lib >= h)
    })
    .await?;

    let mut converged = 0usize;
    let mut settled = 0usize;
    let mut sent_total = 0usize;
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for run in 0..runs {
        // Transfers B → A, in flight while A crashes.
        let bctx = tx_context(&http, &b_urls[0]).await?;
        let mut nonce = next_nonce(&http, &b_urls[0], &fb).await?;
        let mut hashes = Vec::new();
        for j in 0..3 {
            let to = keyfile::address(&SecretKey::from_seed(
                format!("crash {seed} {run} {j}").as_bytes(),
            ));
            let tx = sign(
                &bctx,
                &fb,
                nonce,
                Body::Transfer {
                    to: QualifiedAddress::new(a_chain, to),
                    amount: 10 + j,
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via: None,
                },
            );
            if get_irreversible(&http, &b_urls, &tx, 0, Duration::from_secs(30)).await {
                nonce += 1;
                hashes.push(tx.hash());
            }
        }
        sent_total += hashes.len();
        // Just after a block of A: every producer dies at once.
        let mut last: Vec<u64> = Vec::new();
        for u in &a_urls {
            last.push(http.head(u).await.map(|h| h.0).unwrap_or(0));
        }
        let start = last[0];
        wait_until(Duration::from_secs(10), || async {
            matches!(http.head(&a_urls[0]).await, Ok((h, _, _)) if h > start)
        })
        .await?;
        for (k, u) in a_urls.iter().enumerate() {
            last[k] = http.head(u).await.map(|h| h.0).unwrap_or(last[k]);
        }
        for k in 0..a_urls.len() {
            fleet.kill(0, k);
        }
        let crashed_at = *last.iter().max().unwrap_or(&0);
        tokio::time::sleep(rng.ms(200, 2_000)).await;
        // Restart order: half the runs the node with the oldest last block first and
        // the others once it has produced (the order that split chains before), half
        // a random order with random delays.
        let mut order: Vec<usize> = (0..a_urls.len()).collect();
        let oldest_first = rng.below(2) == 0;
        if oldest_first {
            order.sort_by_key(|k| last[*k]);
        } else {
            rng.shuffle(&mut order);
        }
        fleet.start(0, order[0])?;
        fleet.wait_ready(0, order[0]).await?;
        if oldest_first {
            let first = &a_urls[order[0]];
            let h0 = http.head(first).await.map(|h| h.0).unwrap_or(0);
            // It may not be able to produce alone; wait a little either way.
            let _ = wait_until(Duration::from_secs(3), || async {
                matches!(http.head(first).await, Ok((h, _, _)) if h > h0)
            })
            .await;
        }
        for k in &order[1..] {
            tokio::time::sleep(rng.ms(0, 3_000)).await;
            fleet.start(0, *k)?;
        }
        for k in 0..a_urls.len() {
            fleet.wait_ready(0, k).await?;
        }
        let restarted = Instant::now();
        // Converged: every node's LIB past the crash height, on one branch.
        let ok = wait_until(CONVERGE_LIMIT, || async {
            let mut all = true;
            for u in &a_urls {
                all &= matches!(http.head(u).await, Ok((_, _, lib)) if lib > crashed_at);
            }
            all
        })
        .await
        .is_ok();
        let agree = ok
            && agreement(&http, &a_urls)
                .await
                .map(|(a, _)| a)
                .unwrap_or(false);
        if agree {
            converged += 1;
            times.push(restarted.elapsed().as_millis() as u64);
        } else {
            failures.push(json!({ "run": run, "oldest_first": oldest_first, "order": order }));
        }
        // B's transfers to A settle.
        for h in &hashes {
            let url = &b_urls[0];
            let done = wait_until(Duration::from_secs(60), || async {
                matches!(http.get(&format!("{url}/v1/txs/{h}")).await,
                    Ok(v) if v["cross_chain"]["stage"] == "settled_delivered" || v["cross_chain"]["stage"] == "refunded")
            })
            .await
            .is_ok();
            settled += usize::from(done);
        }
        eprintln!("crash-restart run {}/{runs}: converged {agree}", run + 1);
    }
    times.sort_unstable();
    Ok(json!({
        "bench": "crash_restart",
        "seed": seed,
        "runs": runs,
        "converged": converged, "target_converged": runs,
        "transfers_sent": sent_total,
        "transfers_settled": settled, "target_transfers_settled": sent_total,
        "converge_ms_p50": percentile(&times, 0.5),
        "converge_ms_max": times.last().copied().unwrap_or(0),
        "converge_limit_ms": CONVERGE_LIMIT.as_millis() as u64,
        "failed_runs": failures,
    }))
}

/// `bench outage`: a 3-producer chain stopped for `stop_secs`, restarted in a random
/// order with random gaps; how soon blocks resume after the last node is back.
pub async fn outage(stop_secs: u64, seed: u64) -> anyhow::Result<Value> {
    let dir = soak_dir()?;
    let net = network(dir.path(), &["cd1"], 3, 500)?;
    let urls = net.chains[0].urls.clone();
    let mut fleet = Fleet::new(net, exe()?)?;
    fleet.start_all().await?;
    let http = Http::new()?;
    let mut rng = Rng::new(seed);
    wait_until(Duration::from_secs(60), || async {
        matches!(http.head(&urls[0]).await, Ok((h, _, _)) if h >= 10)
    })
    .await
    .context("the chain did not start")?;
    let mut stopped_at = 0;
    for (k, u) in urls.iter().enumerate() {
        stopped_at = stopped_at.max(http.head(u).await.map(|h| h.0).unwrap_or(0));
        fleet.kill(0, k);
    }
    let down_since = Instant::now();
    tokio::time::sleep(Duration::from_secs(stop_secs)).await;
    let mut stopped_ms = 0;
    let mut order: Vec<usize> = (0..urls.len()).collect();
    rng.shuffle(&mut order);
    let mut gaps = Vec::new();
    for k in &order {
        let gap = rng.ms(0, 2_000);
        gaps.push(gap.as_millis() as u64);
        tokio::time::sleep(gap).await;
        if stopped_ms == 0 {
            stopped_ms = down_since.elapsed().as_millis() as u64;
        }
        fleet.start(0, *k)?;
        fleet.wait_ready(0, *k).await?;
    }
    let all_up = Instant::now();
    let limit = Duration::from_secs(60);
    let resumed = wait_until(limit, || async {
        let mut any = false;
        for u in &urls {
            any |= matches!(http.head(u).await, Ok((h, _, _)) if h > stopped_at);
        }
        any
    })
    .await
    .is_ok();
    let resumed_ms = all_up.elapsed().as_millis() as u64;
    let twenty = resumed
        && wait_until(Duration::from_secs(30), || async {
            matches!(http.head(&urls[0]).await, Ok((h, _, _)) if h >= stopped_at + 20)
        })
        .await
        .is_ok();
    Ok(json!({
        "bench": "outage",
        "seed": seed,
        "stopped_ms": stopped_ms,
        "restart_order": order,
        "restart_gaps_ms": gaps,
        "resumed": resumed,
        "resumed_after_last_start_ms": if resumed { json!(resumed_ms) } else { Value::Null },
        "limit_ms": 10_000,
        "twenty_blocks_after": twenty,
    }))
}
