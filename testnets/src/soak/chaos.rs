//! `bench chaos`: transfers both ways between two chains while producers are killed
//! and restarted, whole chains crashed, nodes paused, and deliveries and receipts
//! duplicated; afterwards every transfer must have ended delivered or refunded,
//! exactly once, the nodes of each chain agree and supply holds on every node.

use super::harness::{
    agreement, exe, get_irreversible, network, next_nonce, next_nonce_any, sign, soak_dir,
    tx_context, tx_context_any, wait_until, Http, Rng,
};
use crate::{
    bench::{
        flood::{flood_client, plan, run_flood, Forger, Target},
        percentile,
    },
    fleet::Fleet,
    launcher,
};
use anyhow::bail;
use distpos_chain::{Address, Body, QualifiedAddress};
use distpos_gateway::{clock::now_ms, keyfile};
use distpos_proofs::{ChainId, Hash32, SecretKey};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::sync::Mutex;

/// Options of the chaos soak.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Transfers in all, half each way.
    pub transfers: usize,
    /// Seed of the fault schedule (and of keys and amounts).
    pub seed: u64,
    /// Producers per chain.
    pub producers: usize,
    /// Concurrent senders per chain.
    pub senders: usize,
    /// Seconds over which the transfers are spread while faults are injected.
    pub fault_secs: u64,
    /// A flood beside the soak (issue 14): this many forged pending deliveries and
    /// badly signed transactions, from one client, spread over both chains' nodes
    /// and over the fault window.
    pub flood: Option<(usize, usize)>,
}

/// One transfer of the chaos soak.
#[derive(Clone, Debug)]
struct Sent {
    from: usize,
    hash: Hash32,
    recipient: Address,
    amount: u128,
    submitted_ms: u64,
    included: bool,
}

#[derive(Default)]
struct FaultCounts {
    kills: AtomicU64,
    pauses: AtomicU64,
    chain_crashes: AtomicU64,
    duplicated_items: AtomicU64,
}

/// `bench chaos`: transfers both ways between two chains while producers are killed
/// and restarted, whole chains crashed, nodes paused and deliveries and receipts
/// duplicated; then every transfer must end delivered or refunded, exactly once.
pub async fn chaos(opts: ChaosOptions) -> anyhow::Result<Value> {
    let dir = soak_dir()?;
    let net = network(dir.path(), &["c4a1", "c4a2"], opts.producers.max(1), 500)?;
    let token = net.api_token.clone();
    let chains: Vec<ChainId> = net.chains.iter().map(|c| c.chain).collect();
    let urls: Vec<Vec<String>> = net.chains.iter().map(|c| c.urls.clone()).collect();
    let faucets: Vec<SecretKey> = net
        .chains
        .iter()
        .map(launcher::faucet)
        .collect::<anyhow::Result<_>>()?;
    let mut fleet = Fleet::new(net, exe()?)?;
    fleet.start_all().await?;
    let fleet = Arc::new(Mutex::new(fleet));
    let http = Http::new()?;
    let started = Instant::now();

    // Collateral both ways, and funded senders on each chain, before any fault.
    let per_chain = opts.transfers.div_ceil(2);
    let senders = opts.senders.max(1);
    let per_sender = per_chain.div_ceil(senders);
    let mut sender_keys: Vec<Vec<SecretKey>> = Vec::new();
    for c in 0..2 {
        let url = &urls[c][0];
        let ctx = tx_context(&http, url).await?;
        let mut nonce = next_nonce(&http, url, &faucets[c]).await?;
        let keys: Vec<SecretKey> = (0..senders)
            .map(|i| SecretKey::from_seed(format!("chaos {} {c} {i}", opts.seed).as_bytes()))
            .collect();
        let mut txs = vec![sign(
            &ctx,
            &faucets[c],
            nonce,
            Body::DepositCollateral {
                peer: chains[1 - c],
                amount: 10_000_000_000,
            },
        )];
        for k in &keys {
            nonce += 1;
            txs.push(sign(
                &ctx,
                &faucets[c],
                nonce,
                Body::Transfer {
                    to: QualifiedAddress::local(keyfile::address(k)),
                    amount: (per_sender as u128 + 5) * (3_000 + ctx.min_fee),
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via: None,
                },
            ));
        }
        // One batch first (later nonces wait in the mempool), then each is waited for.
        let batch = serde_json::to_value(&txs)?;
        http.post(&format!("{url}/v1/txs"), &batch, None).await?;
        for tx in &txs {
            if !get_irreversible(&http, &urls[c], tx, 0, Duration::from_secs(60)).await {
                bail!(
                    "chaos setup: funding transaction {} not included",
                    tx.hash()
                );
            }
        }
        sender_keys.push(keys);
    }
    // The deposits must be irreversible before transfers rely on them.
    for chain_urls in &urls {
        let url = &chain_urls[0];
        let (h, _, _) = http.head(url).await?;
        wait_until(Duration::from_secs(60), || async {
            matches!(http.head(url).await, Ok((_, _, lib)) if lib >= h)
        })
        .await?;
    }

    // The flood, if asked for: both chains' nodes, each kind round-robin over them,
    // paced to last the fault window, stopped with the faults.
    let flood_over = Arc::new(AtomicBool::new(false));
    let flood = match opts.flood {
        Some((deliveries, txs)) => {
            let (client, addr) = flood_client(Duration::from_secs(3), &urls[0][0]).await?;
            let mut targets = Vec::new();
            for c in 0..2 {
                let forger = Arc::new(Forger::new(chains[c], chains[1 - c], 1_000_000));
                for u in &urls[c] {
                    targets.push(Target {
                        url: u.clone(),
                        forger: forger.clone(),
                    });
                }
            }
            let jobs = plan(deliveries, txs, 0);
            let rate = jobs.len() as f64 / opts.fault_secs.max(1) as f64;
            let over = flood_over.clone();
            Some((
                addr,
                rate,
                Instant::now(),
                tokio::spawn(run_flood(
                    client,
                    targets,
                    jobs,
                    16,
                    Some(rate),
                    Arc::new(AtomicU64::new(0)),
                    over,
                )),
            ))
        }
        None => None,
    };

    // Senders, and faults while they send.
    let sending = Arc::new(AtomicBool::new(true));
    let counts = Arc::new(FaultCounts::default());
    let faults = tokio::spawn(
        FaultInjector {
            fleet: fleet.clone(),
            http: http.clone(),
            token: token.clone(),
            chains: chains.clone(),
            rng: Rng::new(opts.seed),
            sending: sending.clone(),
            counts: counts.clone(),
            window: Duration::from_secs(opts.fault_secs),
        }
        .run(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    // Each sender spreads its transfers over the fault window.
    let pace = Duration::from_secs(opts.fault_secs) / per_sender.max(1) as u32;
    let sending_from = Instant::now();
    for (c, keys) in sender_keys.into_iter().enumerate() {
        for (i, key) in keys.into_iter().enumerate() {
            let first = i * per_sender;
            let count = per_sender.min(per_chain.saturating_sub(first));
            let (http, urls, dest) = (http.clone(), urls[c].clone(), chains[1 - c]);
            let seed = opts.seed;
            tasks.spawn(async move {
                let ctx = tx_context_any(&http, &urls).await?;
                let mut nonce = next_nonce_any(&http, &urls, &key).await?;
                let mut out = Vec::new();
                for (t, j) in (first..first + count).enumerate() {
                    let at = sending_from + pace * t as u32;
                    tokio::time::sleep_until(at.into()).await;
                    let recipient = keyfile::address(&SecretKey::from_seed(
                        format!("chaos recipient {seed} {c} {j}").as_bytes(),
                    ));
                    let amount = 1_000 + (j as u128 % 1_000);
                    // Every tenth transfer carries a deadline that has passed by the
                    // time it can arrive: it bounces, and its sender is refunded.
                    let deliver_by = if j % 10 == 9 { now_ms() + 1 } else { 0 };
                    let tx = sign(
                        &ctx,
                        &key,
                        nonce,
                        Body::Transfer {
                            to: QualifiedAddress::new(dest, recipient),
                            amount,
                            memo: vec![],
                            deliver_by,
                            fast_fee: 0,
                            via: None,
                        },
                    );
                    let submitted_ms = now_ms();
                    let included =
                        get_irreversible(&http, &urls, &tx, i + j, Duration::from_secs(180)).await;
                    if included {
                        nonce += 1;
                    }
                    out.push(Sent {
                        from: c,
                        hash: tx.hash(),
                        recipient,
                        amount,
                        submitted_ms,
                        included,
                    });
                    if !included {
                        // Its nonce may still be taken later; stop this sender rather
                        // than guess.
                        break;
                    }
                }
                anyhow::Ok(out)
            });
        }
    }
    let mut sent: Vec<Sent> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        sent.extend(r??);
    }
    let send_seconds = sending_from.elapsed().as_secs_f64();
    // Faults go on for the whole window, however fast the senders were.
    tokio::time::sleep_until((sending_from + Duration::from_secs(opts.fault_secs)).into()).await;
    sending.store(false, Ordering::SeqCst);
    flood_over.store(true, Ordering::SeqCst);
    let flood = match flood {
        Some((addr, rate, began, task)) => {
            let tally = task.await?;
            json!({
                "client": addr,
                "targets": "every node of both chains, each kind round-robin",
                "rate_per_s": rate.round(),
                "seconds": (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                "answers": tally.json(),
                "rate_limited_429": tally.rate_limited(),
            })
        }
        None => Value::Null,
    };
    faults.await??;
    fleet.lock().await.heal().await?;

    // Every included transfer must end, delivered or refunded.
    let mut pending: Vec<usize> = (0..sent.len()).filter(|i| sent[*i].included).collect();
    let mut finals: BTreeMap<usize, (bool, u64)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for i in pending {
            let s = &sent[i];
            let url = &urls[s.from][0];
            match http.get(&format!("{url}/v1/txs/{}", s.hash)).await {
                Ok(v) if v["cross_chain"]["stage"] == "settled_delivered" => {
                    finals.insert(
                        i,
                        (
                            true,
                            v["cross_chain"]["settled"]["height"].as_u64().unwrap_or(0),
                        ),
                    );
                }
                Ok(v) if v["cross_chain"]["stage"] == "refunded" => {
                    finals.insert(
                        i,
                        (
                            false,
                            v["cross_chain"]["settled"]["height"].as_u64().unwrap_or(0),
                        ),
                    );
                }
                _ => still.push(i),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let lost = pending.len();
    let run_seconds = started.elapsed().as_secs_f64();

    // Exactly once: a delivered transfer's recipient holds its amount, a refunded
    // one's holds nothing (recipients are unique).
    let mut doubled = 0usize;
    let mut delivered = 0usize;
    let mut refunded = 0usize;
    let mut block_time: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    let mut latency = Vec::new();
    for (i, (ok, height)) in &finals {
        let s = &sent[*i];
        let dest_url = &urls[1 - s.from][0];
        let bal: u128 = http
            .get(&format!("{dest_url}/v1/accounts/{}", s.recipient))
            .await?["balance"]
            .as_str()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        let want = if *ok { s.amount } else { 0 };
        if bal != want {
            doubled += 1;
            eprintln!(
                "transfer {} ({}): recipient holds {bal}, expected {want}",
                s.hash,
                if *ok { "delivered" } else { "refunded" }
            );
        }
        if *ok {
            delivered += 1;
        } else {
            refunded += 1;
        }
        let key = (s.from, *height);
        if let std::collections::btree_map::Entry::Vacant(e) = block_time.entry(key) {
            let url = &urls[s.from][0];
            let b = http.get(&format!("{url}/v1/blocks/{height}")).await?;
            e.insert(
                b["block"]["header"]["header"]["timestamp_ms"]
                    .as_u64()
                    .unwrap_or(0),
            );
        }
        latency.push(block_time[&key].saturating_sub(s.submitted_ms));
    }
    latency.sort_unstable();

    // The nodes of each chain agree, and supply holds on every node.
    let mut diverged = 0usize;
    let mut supply_holds = true;
    for chain_urls in &urls {
        let (agree, holds) = agreement(&http, chain_urls).await?;
        diverged += usize::from(!agree);
        supply_holds &= holds;
    }
    let included = sent.iter().filter(|s| s.included).count();
    Ok(json!({
        "bench": "chaos",
        "seed": opts.seed,
        "producers_per_chain": opts.producers,
        "transfers": opts.transfers,
        "submitted": sent.len(),
        "included": included,
        "not_included": sent.len() - included,
        "delivered": delivered,
        "refunded": refunded,
        "lost": lost, "target_lost": 0,
        "doubled": doubled, "target_doubled": 0,
        "diverged_chains": diverged, "target_diverged_chains": 0,
        "supply_holds": supply_holds,
        "faults": {
            "node_kills": counts.kills.load(Ordering::SeqCst),
            "node_pauses": counts.pauses.load(Ordering::SeqCst),
            "chain_crashes": counts.chain_crashes.load(Ordering::SeqCst),
            "duplicated_items": counts.duplicated_items.load(Ordering::SeqCst),
        },
        "fault_seconds": opts.fault_secs,
        "send_seconds": (send_seconds * 10.0).round() / 10.0,
        "run_seconds": (run_seconds * 10.0).round() / 10.0,
        "latency_p50_ms": percentile(&latency, 0.5),
        "latency_p95_ms": percentile(&latency, 0.95),
        "flood": flood,
    }))
}

/// Injects faults until `sending` turns false: node kills and restarts, pauses, whole
/// chain crashes, and duplicated deliveries and receipts.
struct FaultInjector {
    fleet: Arc<Mutex<Fleet>>,
    http: Http,
    /// The operator token (to read a node's queue).
    token: Option<String>,
    chains: Vec<ChainId>,
    rng: Rng,
    sending: Arc<AtomicBool>,
    counts: Arc<FaultCounts>,
    /// How long faults go on.
    window: Duration,
}

impl FaultInjector {
    async fn run(mut self) -> anyhow::Result<()> {
        let began = Instant::now();
        // Faults for the window only: slow senders must not prolong them, or a run
        // on a loaded machine turns into a different, harsher test.
        while self.sending.load(Ordering::SeqCst) && began.elapsed() < self.window {
            tokio::time::sleep(self.rng.ms(1_500, 4_000)).await;
            if !self.sending.load(Ordering::SeqCst) {
                break;
            }
            let c = self.rng.below(2) as usize;
            let mut f = self.fleet.lock().await;
            let k = self.rng.below(f.size(c) as u64) as usize;
            // At least one whole chain crashes in every run: past half the window, the
            // next fault is one if none happened yet.
            let must_crash = self.counts.chain_crashes.load(Ordering::SeqCst) == 0
                && began.elapsed() > self.window / 2;
            let roll = if must_crash { 60 } else { self.rng.below(100) };
            match roll {
                0..=34 => {
                    f.kill(c, k);
                    self.counts.kills.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(self.rng.ms(1_000, 4_000)).await;
                    f.start(c, k)?;
                }
                35..=54 => {
                    f.pause(c, k);
                    self.counts.pauses.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(self.rng.ms(1_000, 3_000)).await;
                    f.resume(c, k);
                }
                55..=69 => {
                    let n = f.size(c);
                    for k in 0..n {
                        f.kill(c, k);
                    }
                    self.counts.chain_crashes.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(self.rng.ms(2_000, 5_000)).await;
                    let mut order: Vec<usize> = (0..n).collect();
                    self.rng.shuffle(&mut order);
                    for k in order {
                        f.start(c, k)?;
                        tokio::time::sleep(self.rng.ms(0, 1_500)).await;
                    }
                }
                _ => {
                    let url = f.url(c, k).to_string();
                    let dest_urls: Vec<String> = (0..f.size(1 - c))
                        .map(|j| f.url(1 - c, j).to_string())
                        .collect();
                    drop(f);
                    let n = duplicate(
                        &self.http,
                        &url,
                        self.token.as_deref(),
                        self.chains[1 - c],
                        &dest_urls,
                        &mut self.rng,
                    )
                    .await;
                    self.counts.duplicated_items.fetch_add(n, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }
}

/// Sends again (at most 50 of each kind) what node `url` has queued for `dest`:
/// deliveries and receipts must be idempotent.
async fn duplicate(
    http: &Http,
    url: &str,
    token: Option<&str>,
    dest: ChainId,
    dest_urls: &[String],
    rng: &mut Rng,
) -> u64 {
    let Some(token) = token else { return 0 };
    let queue = match http
        .0
        .get(format!("{url}/v1/relay/queue?limit=1000"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
        Err(_) => return 0,
    };
    let mut deliveries = Vec::new();
    let mut receipts = Vec::new();
    let mut batches = Vec::new();
    for item in queue["items"].as_array().into_iter().flatten().rev() {
        if item["destination"] != json!(dest) {
            continue;
        }
        if let Some(d) = item["payload"].get("delivery") {
            if deliveries.len() < 50 {
                deliveries.push(d.clone());
            }
        } else if let Some(r) = item["payload"].get("receipt") {
            if receipts.len() < 50 {
                receipts.push(r.clone());
            }
        } else if let Some(d) = item["payload"].get("delivery_batch") {
            if batches.len() < 20 {
                batches.push(("deliveries", d.clone()));
            }
        } else if let Some(r) = item["payload"].get("receipt_batch") {
            if batches.len() < 20 {
                batches.push(("receipts", r.clone()));
            }
        }
    }
    let target = &dest_urls[rng.below(dest_urls.len() as u64) as usize];
    let mut n = 0;
    for (path, batch) in batches {
        if let Ok((s, _)) = http
            .post(&format!("{target}/v1/relay/v2/{path}"), &batch, None)
            .await
        {
            if (200..300).contains(&s) {
                n += 1;
            }
        }
    }
    for (path, items) in [("deliveries", deliveries), ("receipts", receipts)] {
        if items.is_empty() {
            continue;
        }
        let count = items.len() as u64;
        if let Ok((s, _)) = http
            .post(
                &format!("{target}/v1/relay/{path}/batch"),
                &Value::Array(items),
                None,
            )
            .await
        {
            if s == 200 {
                n += count;
            }
        }
    }
    n
}
