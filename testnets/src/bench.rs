//! The benchmark harness (`distpos bench local|cross|all`): real `distpos` processes on
//! loopback, fed over HTTP, measured from the outside. Prints JSON lines, each figure
//! next to the limit it is measured against in the same run. Nothing here is asserted.

pub mod fast;
pub mod flood;
pub mod hops;

pub use flood::{flood, FloodOptions};

use crate::launcher;
use anyhow::{bail, Context};
use distpos_chain::{Body, QualifiedAddress, Transaction, UnsignedTx};
use distpos_gateway::clock::now_ms;
use distpos_proofs::{header::tapos_prefix, Hash32, SecretKey};
use serde_json::Value;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// k256 verifications per second on all cores at once, measured for `secs`.
pub fn signature_ceiling(secs: f64) -> (usize, f64) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let key = SecretKey::from_seed(b"bench ceiling");
    let msg = distpos_proofs::sha256(b"bench");
    let sig = key.sign(&msg);
    let pk = key.public_key();
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed().as_secs_f64() < secs {
                        if distpos_proofs::keys::verify(&pk, &msg, &sig).is_ok() {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (cores, total as f64 / secs)
}

/// A folder for a benchmark's or soak's network, removed afterwards unless
/// `DISTPOS_BENCH_KEEP=1` asks to keep it (every node's log and data) for a look; its
/// path is printed on stderr.
pub(crate) fn network_dir(what: &str) -> anyhow::Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    let prefix = format!("distpos-{what}-");
    b.prefix(&prefix);
    if std::env::var_os("DISTPOS_BENCH_KEEP").is_some() {
        b.disable_cleanup(true);
    }
    let dir = b.tempdir()?;
    eprintln!("{what} network folder: {}", dir.path().display());
    Ok(dir)
}

struct Bench {
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Bench {
    /// Every node started for a benchmark stops with it, also when it fails.
    fn drop(&mut self) {
        let _ = launcher::stop(self.dir.path());
    }
}

impl Bench {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            dir: network_dir("bench")?,
        })
    }

    async fn get(&self, url: &str) -> anyhow::Result<Value> {
        get_json(&self.http, url).await
    }

    /// Visits the blocks of the chain at `url` after height `after`, in order, with
    /// each block's JSON and time, as they come, until `visit` says it has seen
    /// enough (`true`) or `deadline` passes (an error naming `what`).
    async fn walk_blocks(
        &self,
        url: &str,
        after: u64,
        deadline: std::time::Instant,
        what: &str,
        mut visit: impl FnMut(&Value, u64) -> bool,
    ) -> anyhow::Result<()> {
        let mut next = after + 1;
        loop {
            let head = self.get(&format!("{url}/v1/status")).await?["head"]["height"]
                .as_u64()
                .unwrap_or(0);
            while next <= head {
                let blk = self.get(&format!("{url}/v1/blocks/{next}")).await?;
                let time = blk["block"]["header"]["header"]["timestamp_ms"]
                    .as_u64()
                    .unwrap_or(0);
                next += 1;
                if visit(&blk, time) {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("{what}: not seen in time");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The head height of the chain at `url`.
    async fn head(&self, url: &str) -> anyhow::Result<u64> {
        Ok(
            self.get(&format!("{url}/v1/status")).await?["head"]["height"]
                .as_u64()
                .unwrap_or(0),
        )
    }

    /// A counter from the node's `/metrics`, summed over its series.
    async fn counter(&self, url: &str, name: &str) -> anyhow::Result<u64> {
        let text = self
            .http
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        crate::metrics_text::sum(&text, name)
            .map(|v| v as u64)
            .with_context(|| format!("{name} not in {url}/metrics"))
    }

    async fn network(
        &self,
        chains: &[&str],
        producers: usize,
    ) -> anyhow::Result<launcher::Network> {
        let chains: Vec<(&str, &str)> = chains.iter().map(|c| (*c, "")).collect();
        self.network_with("", &chains, producers).await
    }

    /// A network of `chains` (id, extra TOML lines of its `[[chains]]` entry) with
    /// `spec_extra` TOML lines at the top of the spec (links, forwarding…).
    async fn network_with(
        &self,
        spec_extra: &str,
        chains: &[(&str, &str)],
        producers: usize,
    ) -> anyhow::Result<launcher::Network> {
        let mut text = format!(
            "name = \"bench\"\ninterval_ms = 500\ndiscovery = \"static\"\nlow_watermark = \"0\"\n{spec_extra}\n"
        );
        for (c, extra) in chains {
            text.push_str(&format!(
                "[[chains]]\nid = \"{c}\"\nproducers = {producers}\n{extra}\n"
            ));
        }
        let spec_path = self.dir.path().join("spec.toml");
        std::fs::write(&spec_path, text)?;
        let spec = launcher::builtin(spec_path.to_str().context("path")?)?;
        let net = launcher::prepare(
            &spec,
            self.dir.path(),
            launcher::free_port_range(100)?,
            now_ms(),
        )?;
        launcher::start(&net, self.dir.path()).await?;
        Ok(net)
    }

    /// Deposits collateral for `peer` (enough for any benchmark) with `faucet` on the
    /// chain at `url`, and waits until the deposit is irreversible.
    async fn fund_collateral(
        &self,
        url: &str,
        faucet: &SecretKey,
        peer: distpos_proofs::ChainId,
    ) -> anyhow::Result<()> {
        let dep = self
            .presign(url, faucet, 1, |_| Body::DepositCollateral {
                peer,
                amount: 1_000_000_000,
            })
            .await?;
        let h = self.submit_all(url, &dep).await?[0].0;
        wait_irreversible(self, url, &h).await
    }

    /// Pre-signed transfers from `key` with nonces from `first_nonce`.
    async fn presign(
        &self,
        url: &str,
        key: &SecretKey,
        n: usize,
        body: impl Fn(usize) -> Body,
    ) -> anyhow::Result<Vec<Transaction>> {
        let st = self.get(&format!("{url}/v1/status")).await?;
        let chain = distpos_proofs::ChainId::parse(st["chain_id"].as_str().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let head_id: Hash32 = st["head"]["id"]
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let head = st["head"]["height"].as_u64().unwrap_or(0);
        let addr = distpos_gateway::keyfile::address(key);
        let acct = self.get(&format!("{url}/v1/accounts/{addr}")).await?;
        let first = acct["next_nonce"].as_u64().unwrap_or(1);
        Ok((0..n)
            .map(|i| {
                UnsignedTx {
                    chain_id: chain,
                    nonce: first + i as u64,
                    fee: 1,
                    ref_block_num: head as u16,
                    ref_block_prefix: tapos_prefix(&head_id),
                    expiration: now_ms() + 50 * 60 * 1000,
                    body: body(i),
                }
                .sign(key)
            })
            .collect())
    }

    async fn submit_all(
        &self,
        url: &str,
        txs: &[Transaction],
    ) -> anyhow::Result<Vec<(Hash32, u64)>> {
        self.submit_prepared(url, prepare(txs)?).await
    }

    /// Sends prepared streams at once, as independent clients would: each stream's
    /// batches in order (one sender's nonces must arrive in sequence), the streams
    /// concurrently. Returns each transaction's hash with the time its batch was sent.
    async fn submit_streams(
        &self,
        url: &str,
        streams: Vec<Vec<Batch>>,
    ) -> anyhow::Result<Vec<(Hash32, u64)>> {
        let url = format!("{url}/v1/txs");
        let mut tasks = tokio::task::JoinSet::new();
        for stream in streams {
            let (http, url) = (self.http.clone(), url.clone());
            tasks.spawn(async move {
                let mut out = Vec::new();
                for batch in stream {
                    let sent = now_ms();
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(batch.body)
                        .send()
                        .await?;
                    let status = r.status();
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    if !status.is_success() {
                        bail!("POST {url}: {status}: {v}");
                    }
                    let answers = v.as_array().context("batch answer")?;
                    for (a, h) in answers.iter().zip(batch.hashes) {
                        if !a["error"].is_null() {
                            bail!("transfer refused: {a}");
                        }
                        out.push((h, sent));
                    }
                }
                anyhow::Ok(out)
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r??);
        }
        Ok(all)
    }

    async fn submit_prepared(
        &self,
        url: &str,
        batches: Vec<Batch>,
    ) -> anyhow::Result<Vec<(Hash32, u64)>> {
        self.submit_streams(url, vec![batches]).await
    }

    /// `SENDERS` fresh accounts funded by `faucet` (committed before this returns),
    /// and `n` transfers split between them, pre-signed and batched, one stream each.
    async fn senders(
        &self,
        url: &str,
        faucet: &SecretKey,
        n: usize,
        body: impl Fn(usize) -> Body + Copy,
    ) -> anyhow::Result<Vec<Vec<Batch>>> {
        let keys: Vec<SecretKey> = (0..SENDERS)
            .map(|i| SecretKey::from_seed(format!("bench sender {i}").as_bytes()))
            .collect();
        let per = n.div_ceil(SENDERS);
        let funding = self
            .presign(url, faucet, SENDERS, |i| Body::Transfer {
                to: QualifiedAddress::local(distpos_gateway::keyfile::address(&keys[i])),
                amount: (per as u128 + 10) * 10,
                memo: vec![],
                deliver_by: 0,
                fast_fee: 0,
                via: None,
            })
            .await?;
        let hashes = self.submit_all(url, &funding).await?;
        for (h, _) in &hashes {
            wait_status(self, url, h, &["included", "irreversible"]).await?;
        }
        let mut streams = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let count = per.min(n.saturating_sub(k * per));
            let txs = self.presign(url, key, count, |i| body(k * per + i)).await?;
            streams.push(prepare(&txs)?);
        }
        Ok(streams)
    }
}

/// Concurrent senders (each its own client stream), and transactions per batch.
const SENDERS: usize = 8;
const BATCH_TXS: usize = 1_000;

/// A `POST /v1/txs` body, serialized ahead of time (clients sign and encode on their
/// own machines; the clock measures the node).
struct Batch {
    body: Vec<u8>,
    hashes: Vec<Hash32>,
}

fn prepare(txs: &[Transaction]) -> anyhow::Result<Vec<Batch>> {
    txs.chunks(BATCH_TXS)
        .map(|chunk| {
            Ok(Batch {
                body: serde_json::to_vec(chunk)?,
                hashes: chunk.iter().map(Transaction::hash).collect(),
            })
        })
        .collect()
}

/// GETs `url` every 20 ms until `on` turns false; each answer's latency in ms (a
/// failed read counts as the time it took to fail).
async fn status_probe(
    http: reqwest::Client,
    url: String,
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<u64> {
    let mut out = Vec::new();
    while on.load(std::sync::atomic::Ordering::SeqCst) {
        let t = Instant::now();
        let _ = http.get(&url).send().await.map(|r| r.status());
        out.push(t.elapsed().as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

/// `bench local`: committed transfers/s on a one-producer chain fed over HTTP.
///
/// The ceiling is measured just before and just after the run and averaged: on a
/// shared machine the CPU's speed drifts, and one reading can be far off.
pub async fn local(n: usize) -> anyhow::Result<f64> {
    let (cores, before) = signature_ceiling(1.5);
    let b = Bench::new()?;
    let net = b.network(&["be1"], 1).await?;
    let url = net.chains[0].urls[0].clone();
    let key = launcher::faucet(&net.chains[0])?;
    let sink = distpos_gateway::keyfile::address(&SecretKey::from_seed(b"sink"));
    let streams = b
        .senders(&url, &key, n, |_| Body::Transfer {
            to: QualifiedAddress::local(sink),
            amount: 1,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;
    let start_head = b.get(&format!("{url}/v1/status")).await?["head"]["height"]
        .as_u64()
        .unwrap_or(0);
    let applied_before = b.counter(&url, "distpos_txs_applied_total").await?;
    // While the batches are admitted and blocks built, a reader asks for the status
    // every 20 ms: how long a read waits behind the write path.
    let probing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = tokio::spawn(status_probe(
        b.http.clone(),
        format!("{url}/v1/status"),
        probing.clone(),
    ));
    let started = Instant::now();
    b.submit_streams(&url, streams).await?;
    // Timed by the node's own counter (cheap to poll); checked below against the
    // blocks themselves.
    let done_at = loop {
        let applied = b.counter(&url, "distpos_txs_applied_total").await?;
        if applied.saturating_sub(applied_before) >= n as u64 {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {}/{n} committed after 10 minutes",
                applied - applied_before
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    probing.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut status_ms = probe.await.unwrap_or_default();
    status_ms.sort_unstable();
    let head = b.get(&format!("{url}/v1/status")).await?["head"]["height"]
        .as_u64()
        .unwrap_or(0);
    let mut committed = 0usize;
    for h in start_head + 1..=head {
        let blk = b.get(&format!("{url}/v1/blocks/{h}")).await?;
        committed += blk["block"]["txs"].as_array().map_or(0, |t| t.len());
    }
    if committed < n {
        bail!("the counter says {n} committed, but the blocks hold {committed}");
    }
    launcher::stop(b.dir.path())?;
    let (_, after) = signature_ceiling(1.5);
    let ceiling = (before + after) / 2.0;
    let rate = n as f64 / done_at.as_secs_f64();
    println!(
        "{{\"bench\":\"local\",\"producers\":1,\"block_interval_ms\":500,\"senders\":{SENDERS},\"txs\":{n},\"seconds\":{:.2},\"committed_per_s\":{rate:.0},\
         \"ceiling_verifies_per_s\":{ceiling:.0},\"ceiling_before\":{before:.0},\"ceiling_after\":{after:.0},\"cores\":{cores},\
         \"ratio_to_ceiling\":{:.3},\"target_ratio\":0.5,\"status_reads\":{},\"status_p50_ms_under_load\":{},\
         \"status_p99_ms_under_load\":{},\"status_max_ms_under_load\":{},\"status_limit_ms\":50}}",
        done_at.as_secs_f64(),
        rate / ceiling,
        status_ms.len(),
        percentile(&status_ms, 0.5),
        percentile(&status_ms, 0.99),
        status_ms.last().copied().unwrap_or(0),
    );
    Ok(rate)
}

/// `GET url` as JSON; a 429 (every process of a local network is one client,
/// 127.0.0.1, to the node's rate limit) is waited out as its `Retry-After` says.
pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let mut waits = 0;
    loop {
        let r = http.get(url).send().await?;
        if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS && waits < 10 {
            waits += 1;
            let secs = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(secs.clamp(1, 5))).await;
            continue;
        }
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        return Ok(r.json().await?);
    }
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `bench cross`: delivered A→B transfers/s and latency against the floor, the rate at
/// which they settle back on A, and how many transfers one inbound batch carried.
pub async fn cross(n: usize, producers: usize, local_rate: Option<f64>) -> anyhow::Result<()> {
    let b = Bench::new()?;
    let net = b.network(&["ca1", "cb2"], producers.max(1)).await?;
    let (a, bb) = (&net.chains[0], &net.chains[1]);
    let (ua, ub) = (a.urls[0].clone(), bb.urls[0].clone());
    let (ka, kb) = (launcher::faucet(a)?, launcher::faucet(bb)?);
    // Collateral for everything, on B.
    b.fund_collateral(&ub, &kb, a.chain).await?;

    // The floor: source finality (submit → irreversible on A) + one B block interval.
    let probe = b
        .presign(&ua, &ka, 1, |_| Body::Transfer {
            to: QualifiedAddress::local(distpos_gateway::keyfile::address(&SecretKey::from_seed(
                b"probe",
            ))),
            amount: 1,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;
    let t = Instant::now();
    let ph = b.submit_all(&ua, &probe).await?[0].0;
    wait_irreversible(&b, &ua, &ph).await?;
    let finality_ms = t.elapsed().as_millis() as u64;
    let floor_ms = finality_ms + 500;

    let to = distpos_gateway::keyfile::address(&SecretKey::from_seed(b"cross sink"));
    let streams = b
        .senders(&ua, &ka, n, |_| Body::Transfer {
            to: QualifiedAddress::new(bb.chain, to),
            amount: 1,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;
    let b_start = b.get(&format!("{ub}/v1/status")).await?["head"]["height"]
        .as_u64()
        .unwrap_or(0);
    let a_start = b.get(&format!("{ua}/v1/status")).await?["head"]["height"]
        .as_u64()
        .unwrap_or(0);
    let started_ms = now_ms();
    let sent: BTreeMap<Hash32, u64> = b.submit_streams(&ua, streams).await?.into_iter().collect();
    // Deliveries appear on B as results of its `inbound_batch` receipts.
    let mut delivered: BTreeMap<Hash32, u64> = BTreeMap::new();
    let mut inbound_txs = 0usize;
    let deadline = Instant::now() + Duration::from_secs(900);
    b.walk_blocks(
        &ub,
        b_start,
        deadline,
        &format!("{n} transfers delivered on B"),
        |blk, time| {
            for r in blk["receipts"].as_array().into_iter().flatten() {
                let results = &r["outcome"]["inbound_batch"]["results"];
                let ours = results
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| x["bounced"].is_null())
                    .filter_map(|x| x["source_tx"].as_str()?.parse::<Hash32>().ok())
                    .filter(|h| sent.contains_key(h));
                let mut carried = 0usize;
                for h in ours {
                    delivered.insert(h, time);
                    carried += 1;
                }
                if carried > 0 {
                    inbound_txs += 1;
                }
            }
            delivered.len() >= n
        },
    )
    .await?;
    let last = delivered.values().max().copied().unwrap_or(started_ms);
    let secs = (last.saturating_sub(started_ms)) as f64 / 1000.0;
    let rate = n as f64 / secs.max(0.001);
    let mut lat: Vec<u64> = delivered
        .iter()
        .map(|(h, t)| t.saturating_sub(sent[h]))
        .collect();
    lat.sort_unstable();
    let (p50, p95) = (percentile(&lat, 0.5), percentile(&lat, 0.95));
    // Settlements appear on A as `settle_batch` receipts.
    let mut settled: BTreeMap<Hash32, u64> = BTreeMap::new();
    b.walk_blocks(
        &ua,
        a_start,
        deadline,
        &format!("{n} transfers settled on A"),
        |blk, time| {
            for r in blk["receipts"].as_array().into_iter().flatten() {
                let txs = r["outcome"]["settle_batch"]["settled"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x["tx"].as_str()?.parse::<Hash32>().ok());
                for h in txs.filter(|h| sent.contains_key(h)) {
                    settled.insert(h, time);
                }
            }
            settled.len() >= n
        },
    )
    .await?;
    let last_settled = settled.values().max().copied().unwrap_or(started_ms);
    let settled_rate =
        n as f64 / ((last_settled.saturating_sub(started_ms)) as f64 / 1000.0).max(0.001);
    let per_inbound = n as f64 / inbound_txs.max(1) as f64;
    let local = local_rate.map_or("null".to_string(), |r| format!("{r:.0}"));
    let ratio = local_rate.map_or("null".to_string(), |r| format!("{:.3}", rate / r));
    println!(
        "{{\"bench\":\"cross\",\"protocol\":\"v2\",\"producers_per_chain\":{producers},\"txs\":{n},\"seconds\":{secs:.2},\"delivered_per_s\":{rate:.0},\"local_committed_per_s\":{local},\
         \"ratio_to_local\":{ratio},\"target_ratio_to_local\":0.5,\"latency_p50_ms\":{p50},\"latency_p95_ms\":{p95},\
         \"floor_ms\":{floor_ms},\"source_finality_ms\":{finality_ms},\"dest_block_interval_ms\":500,\
         \"p95_over_floor\":{:.2},\"target_p95_over_floor\":1.5,\"transfers_per_inbound\":{per_inbound:.1},\"settled_per_s\":{settled_rate:.0}}}",
        p95 as f64 / floor_ms as f64
    );
    launcher::stop(b.dir.path())?;
    Ok(())
}

async fn wait_irreversible(b: &Bench, url: &str, h: &Hash32) -> anyhow::Result<()> {
    wait_status(b, url, h, &["irreversible"]).await
}

/// Waits until transaction `h` has one of `statuses` on the node at `url`.
async fn wait_status(b: &Bench, url: &str, h: &Hash32, statuses: &[&str]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(v) = b.get(&format!("{url}/v1/txs/{h}")).await {
            if statuses.iter().any(|s| v["status"] == *s) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{h} not {statuses:?} in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
