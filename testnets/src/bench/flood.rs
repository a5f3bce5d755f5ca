//! `bench flood` (issue 14, "Done when"): one hostile client floods a chain's nodes
//! with forged pending deliveries, batches of badly signed transactions and garbage
//! JSON while honest transfers flow, and the run reports what it cost the nodes: the
//! CPU time of each kind of rejected request next to a valid one (each kind measured
//! alone), missed slots and blocks produced during the flood, every node's peak RSS
//! against its idle RSS, `/v1/status` latency, and whether every honest transfer was
//! delivered. Nothing is asserted: one JSON object, each figure next to its limit.
//!
//! The flood comes from 127.0.0.2: one client, as the node's per-client rate limit
//! counts clients, and not the address every process of a local network shares
//! (127.0.0.1: the chains' own gossip and relays, and this harness's honest traffic),
//! which would make the network throttle itself instead of the attacker.

use super::{percentile, status_probe, Bench};
use crate::launcher;
use anyhow::{bail, Context};
use distpos_adapters::BatchDelivery;
use distpos_chain::{Body, QualifiedAddress, Transaction, UnsignedTx};
use distpos_gateway::{clock::now_ms, keyfile};
use distpos_proofs::{multiproof::MultiProof, ChainId, Hash32, SecretKey};
use serde_json::{json, Map, Value};
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

/// Options of `bench flood`.
#[derive(Clone, Debug)]
pub struct FloodOptions {
    /// Forged pending deliveries in the combined flood.
    pub deliveries: usize,
    /// Badly signed transactions in the combined flood.
    pub txs: usize,
    /// Honest cross-chain transfers A→B during the combined flood.
    pub transfers: usize,
    /// Honest local transfers on B (submitted to B's node 0) during the flood.
    pub local_transfers: usize,
    /// Producers (nodes) per chain.
    pub producers: usize,
    /// Garbage JSON requests in the combined flood (half to each route).
    pub garbage: usize,
    /// Flood every node of B round-robin (`true`) or node 0 only.
    pub all_nodes: bool,
    /// Requests in flight at once from the flooding client.
    pub concurrency: usize,
    /// Seconds to wait, after the flood, for the honest transfers to settle.
    pub settle_secs: u64,
    /// Requests a second of the combined flood, all targets together (`None`: as
    /// fast as the client goes, most of it then answered 429; just under the
    /// per-client limit times the nodes flooded, every request is served).
    pub rate: Option<f64>,
}

impl Default for FloodOptions {
    fn default() -> Self {
        Self {
            deliveries: 100_000,
            txs: 100_000,
            transfers: 200,
            local_transfers: 20,
            producers: 3,
            garbage: 4_000,
            all_nodes: true,
            concurrency: 16,
            settle_secs: 120,
            rate: None,
        }
    }
}

/// Badly signed transactions per `POST /v1/txs` request.
pub(crate) const BAD_TXS_PER_REQUEST: usize = 1_000;
/// Rate of the cost phases (requests/s, below the node's per-client limit of 1,000/s,
/// so that each phase measures its kind of request and not 429s).
const COST_RATE: f64 = 500.0;
/// Clock ticks per second of `/proc/<pid>/stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
const CLK_TCK: u64 = 100;
/// Block interval of the bench network (see `Bench::network`).
const INTERVAL_MS: u64 = 500;

/// What a flood request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A forged `BatchDelivery` for a block far above the light client.
    Delivery,
    /// `POST /v1/txs` with a JSON array of badly signed transactions.
    BadTxs,
    /// Invalid JSON, to `/v1/txs` or `/v1/relay/v2/deliveries`.
    Garbage,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Delivery => "forged_deliveries",
            Kind::BadTxs => "bad_signature_batches",
            Kind::Garbage => "garbage_json",
        }
    }
}

/// One request of a flood: its kind, its number among its kind, and (bad txs) how
/// many transactions it carries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Job {
    kind: Kind,
    i: u32,
    n: u32,
}

/// `deliveries` forged deliveries, `txs` bad transactions in requests of
/// [`BAD_TXS_PER_REQUEST`] and `garbage` garbage requests, interleaved evenly (each
/// kind spread over the whole flood).
pub(crate) fn plan(deliveries: usize, txs: usize, garbage: usize) -> Vec<Job> {
    let requests = txs.div_ceil(BAD_TXS_PER_REQUEST);
    let mut jobs: Vec<(f64, Job)> = Vec::with_capacity(deliveries + requests + garbage);
    let mut add = |kind: Kind, count: usize, n: &dyn Fn(usize) -> usize| {
        for i in 0..count {
            let at = (i as f64 + 0.5) / count as f64;
            jobs.push((
                at,
                Job {
                    kind,
                    i: i as u32,
                    n: n(i) as u32,
                },
            ));
        }
    };
    add(Kind::Delivery, deliveries, &|_| 1);
    add(Kind::BadTxs, requests, &|i| {
        BAD_TXS_PER_REQUEST.min(txs - i * BAD_TXS_PER_REQUEST)
    });
    add(Kind::Garbage, garbage, &|_| 1);
    jobs.sort_by(|a, b| a.0.total_cmp(&b.0));
    jobs.into_iter().map(|(_, j)| j).collect()
}

/// Makes the flood's request bodies for one destination chain.
pub(crate) struct Forger {
    /// The chain the forged deliveries claim to come from (a registered peer).
    source: ChainId,
    /// A made-up transfer on `source` to the destination, well-formed and signed.
    forged: Transaction,
    /// The one sibling of its made-up proof.
    sibling: Hash32,
    /// A transfer on the destination, signed; every copy sent changes its nonce, so
    /// that its signature no longer matches.
    bad: Transaction,
    /// Height claimed by delivery 0 (far above any light client of `source`).
    first_height: u64,
}

impl Forger {
    /// Bodies for the destination `dest`, deliveries claiming `source` at
    /// `first_height + i`.
    pub(crate) fn new(dest: ChainId, source: ChainId, first_height: u64) -> Self {
        let key = SecretKey::from_seed(format!("flood forger {dest}").as_bytes());
        let recipient = keyfile::address(&SecretKey::from_seed(b"flood recipient"));
        let sign = |chain_id, to| {
            UnsignedTx {
                chain_id,
                nonce: 1,
                fee: 1,
                ref_block_num: 0,
                ref_block_prefix: 0,
                expiration: now_ms() + 50 * 60 * 1000,
                body: Body::Transfer {
                    to,
                    amount: 1_000,
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via: None,
                },
            }
            .sign(&key)
        };
        Self {
            source,
            forged: sign(source, QualifiedAddress::new(dest, recipient)),
            sibling: distpos_proofs::sha256(b"flood: a made-up sibling"),
            bad: sign(dest, QualifiedAddress::local(recipient)),
            first_height,
        }
    }

    /// The path and body of `job`.
    fn request(&self, job: Job) -> (&'static str, Vec<u8>) {
        match job.kind {
            Kind::Delivery => {
                let d = BatchDelivery {
                    source_chain: self.source,
                    height: self.first_height + u64::from(job.i),
                    transfers: vec![self.forged.clone()],
                    indices: vec![0],
                    proof: MultiProof {
                        siblings: vec![self.sibling],
                    },
                    headers: vec![],
                };
                (
                    "/v1/relay/v2/deliveries",
                    serde_json::to_vec(&d).unwrap_or_default(),
                )
            }
            Kind::BadTxs => {
                let first = 2 + u64::from(job.i) * BAD_TXS_PER_REQUEST as u64;
                let txs: Vec<Transaction> = (0..u64::from(job.n))
                    .map(|k| {
                        let mut t = self.bad.clone();
                        // Signed with nonce 1: any other nonce breaks the signature.
                        t.nonce = first + k;
                        t
                    })
                    .collect();
                ("/v1/txs", serde_json::to_vec(&txs).unwrap_or_default())
            }
            Kind::Garbage => {
                let i = job.i;
                let path = if i % 2 == 0 {
                    "/v1/txs"
                } else {
                    "/v1/relay/v2/deliveries"
                };
                let body = match (i / 2) % 4 {
                    0 => format!("{{\"chain_id\":\"{i:x}"),
                    1 => format!("[{{\"nonce\":{i},\"fee\":"),
                    2 => format!("not json {i}"),
                    _ => format!("{{\"source_chain\":\"a1\",\"height\":{i},,}}"),
                };
                (path, body.into_bytes())
            }
        }
    }
}

/// Where a flood's requests go: a node, and the bodies made for its chain.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) forger: Arc<Forger>,
}

/// What a flood's requests were answered, by kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Requests by answer (the HTTP status, or `error`: no answer).
    statuses: BTreeMap<Kind, BTreeMap<String, u64>>,
    /// Bad transactions sent.
    txs: u64,
    /// The per-item answers to batches of bad transactions, by error code
    /// (`accepted`: none).
    items: BTreeMap<String, u64>,
}

impl Tally {
    /// Requests of `kind`.
    pub(crate) fn requests(&self, kind: Kind) -> u64 {
        self.statuses.get(&kind).map_or(0, |m| m.values().sum())
    }

    /// Requests answered 429, of every kind.
    pub(crate) fn rate_limited(&self) -> u64 {
        self.statuses.values().filter_map(|m| m.get("429")).sum()
    }

    /// As JSON: per kind, requests and answers (and for bad transactions, how many
    /// were sent and what each was answered).
    pub(crate) fn json(&self) -> Value {
        let mut out = Map::new();
        for (kind, statuses) in &self.statuses {
            let mut v = json!({
                "requests": self.requests(*kind),
                "statuses": statuses,
            });
            if *kind == Kind::BadTxs {
                v["txs"] = json!(self.txs);
                v["item_answers"] = json!(self.items);
            }
            out.insert(kind.name().into(), v);
        }
        Value::Object(out)
    }
}

/// An HTTP client whose connections come from 127.0.0.2 (one client that is not the
/// network's own 127.0.0.1), if loopback lets it bind there and `probe` answers;
/// otherwise from the default address. Returns the client and its address.
pub(crate) async fn flood_client(
    timeout: Duration,
    probe: &str,
) -> anyhow::Result<(reqwest::Client, &'static str)> {
    let build = |local: Option<IpAddr>| {
        reqwest::Client::builder()
            .local_address(local)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
    };
    let client = build(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))))?;
    if client
        .get(format!("{probe}/v1/status"))
        .send()
        .await
        .is_ok()
    {
        return Ok((client, "127.0.0.2"));
    }
    Ok((build(None)?, "127.0.0.1"))
}

/// Sends `jobs` with `concurrency` requests in flight, spread over `targets` (each
/// kind round-robin), at most `pace` requests a second if given, until all are sent
/// or `stop` turns true; counts every job finished in `done`. A 429 is counted, never
/// waited out: a hostile client would not.
pub(crate) async fn run_flood(
    client: reqwest::Client,
    targets: Vec<Target>,
    jobs: Vec<Job>,
    concurrency: usize,
    pace: Option<f64>,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let jobs = Arc::new(jobs);
    let targets = Arc::new(targets);
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = tokio::time::Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, jobs, targets, next, tally, done, stop) = (
            client.clone(),
            jobs.clone(),
            targets.clone(),
            next.clone(),
            tally.clone(),
            done.clone(),
            stop.clone(),
        );
        workers.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(j).copied() else {
                    break;
                };
                if let Some(rate) = pace {
                    tokio::time::sleep_until(started + Duration::from_secs_f64(j as f64 / rate))
                        .await;
                }
                // Each kind round-robin over the targets on its own.
                let target = &targets[job.i as usize % targets.len()];
                let (path, body) = target.forger.request(job);
                let sent = client
                    .post(format!("{}{path}", target.url))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let (status, items) = match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let items = if job.kind == Kind::BadTxs && status == 200 {
                            r.json::<Value>().await.ok().map(|v| item_codes(&v))
                        } else {
                            let _ = r.bytes().await;
                            None
                        };
                        (status.to_string(), items)
                    }
                    Err(_) => ("error".to_string(), None),
                };
                {
                    let mut t = tally.lock().unwrap_or_else(PoisonError::into_inner);
                    *t.statuses
                        .entry(job.kind)
                        .or_default()
                        .entry(status)
                        .or_insert(0) += 1;
                    if job.kind == Kind::BadTxs {
                        t.txs += u64::from(job.n);
                    }
                    for (code, n) in items.unwrap_or_default() {
                        *t.items.entry(code).or_insert(0) += n;
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let t = tally.lock().unwrap_or_else(PoisonError::into_inner);
    t.clone()
}

/// The answers to a batch of transactions, counted by error code.
fn item_codes(v: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for item in v.as_array().into_iter().flatten() {
        let code = item["error"]["code"].as_str().unwrap_or("accepted");
        *out.entry(code.to_string()).or_insert(0) += 1;
    }
    out
}

/// CPU time (user + system) of process `pid` so far, in ms.
pub(crate) fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, which may hold spaces): state
    // is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) * 1000 / CLK_TCK)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in MB.
pub(crate) fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak RSS (`VmHWM`) of `pid` to its current RSS (`clear_refs` 5).
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The process id of every node of `net` started in `dir`, by chain and node (from the
/// launcher's `pids` file, each matched to its node by the config on its command line).
pub(crate) fn node_pids(dir: &Path, net: &launcher::Network) -> Vec<Vec<Option<u32>>> {
    let pids: Vec<u32> = std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let cmdlines: Vec<(u32, Vec<String>)> = pids
        .into_iter()
        .filter_map(|p| {
            let raw = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let args = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some((p, args))
        })
        .collect();
    net.chains
        .iter()
        .map(|c| {
            c.configs
                .iter()
                .map(|cfg| {
                    let cfg = cfg.display().to_string();
                    cmdlines
                        .iter()
                        .find(|(_, args)| args.contains(&cfg))
                        .map(|(p, _)| *p)
                })
                .collect()
        })
        .collect()
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// CPU of one node over a phase, with the share its idle work (blocks, gossip) would
/// have taken over the same time taken out.
struct PhaseCpu {
    raw_ms: u64,
    idle_ms: f64,
    secs: f64,
    /// The node's RSS after the phase, and its peak since the last reset.
    rss_after_mb: f64,
    peak_rss_mb: f64,
}

impl PhaseCpu {
    fn net_ms(&self) -> f64 {
        (self.raw_ms as f64 - self.idle_ms).max(0.0)
    }

    fn json(&self, requests: u64, txs: Option<u64>) -> Value {
        let mut v = json!({
            "seconds": round(self.secs, 2),
            "rss_after_mb": round(self.rss_after_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "cpu_ms": self.raw_ms,
            "idle_share_ms": round(self.idle_ms, 0),
            "net_cpu_ms": round(self.net_ms(), 0),
            "cpu_us_per_request": round(self.net_ms() * 1000.0 / requests.max(1) as f64, 1),
        });
        if let Some(t) = txs {
            v["cpu_us_per_tx"] = json!(round(self.net_ms() * 1000.0 / t.max(1) as f64, 1));
        }
        v
    }
}

/// Measures node `pid`'s CPU while `work` runs, and one second after it (for work the
/// node defers: forwarding, the next block's checks), and its peak RSS (reset first).
async fn measure<T>(
    pid: u32,
    idle_ms_per_s: f64,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, PhaseCpu)> {
    reset_peak_rss(pid);
    let before = cpu_ms(pid).context("cannot read the node's CPU time")?;
    let t = Instant::now();
    let out = work.await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let secs = t.elapsed().as_secs_f64();
    let after = cpu_ms(pid).context("cannot read the node's CPU time")?;
    Ok((
        out,
        PhaseCpu {
            raw_ms: after.saturating_sub(before),
            idle_ms: idle_ms_per_s * secs,
            secs,
            rss_after_mb: status_mb(pid, "VmRSS").unwrap_or(0.0),
            peak_rss_mb: status_mb(pid, "VmHWM").unwrap_or(0.0),
        },
    ))
}

/// Missed slots of the chain node `url` belongs to (the ledger's count, all
/// producers).
async fn missed(b: &Bench, url: &str) -> anyhow::Result<u64> {
    b.counter(url, "distpos_missed_slots_total").await
}

async fn head(b: &Bench, url: &str) -> anyhow::Result<u64> {
    Ok(b.get(&format!("{url}/v1/status")).await?["head"]["height"]
        .as_u64()
        .unwrap_or(0))
}

/// Honest traffic during the flood: the transfers are sent in order, in step with
/// the flood's progress (`done` of `total` requests), so that they are spread over
/// its whole length; what is left when `over` turns true goes at once. Returns each
/// transfer sent with the time it was sent, and those refused.
async fn honest_sender(
    http: reqwest::Client,
    url: String,
    txs: Vec<Transaction>,
    done: Arc<AtomicU64>,
    total: u64,
    over: Arc<AtomicBool>,
) -> (Vec<(Hash32, u64)>, Vec<Value>) {
    let n = txs.len();
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    let mut next = 0usize;
    let mut failures = 0;
    while next < n {
        let frac = if over.load(Ordering::SeqCst) {
            1.0
        } else {
            done.load(Ordering::SeqCst) as f64 / total.max(1) as f64
        };
        let due = ((frac * n as f64) as usize + 1).min(n);
        if due > next {
            let chunk = &txs[next..due];
            let at = now_ms();
            match post_batch(&http, &url, chunk).await {
                Ok(answers) => {
                    for (tx, a) in chunk.iter().zip(answers) {
                        if a["error"].is_null() {
                            sent.push((tx.hash(), at));
                        } else {
                            refused.push(a);
                        }
                    }
                    next = due;
                    failures = 0;
                }
                // Not taken (e.g. the node busy): the same ones again next round, ten
                // times at most.
                Err(e) => {
                    failures += 1;
                    if failures >= 10 {
                        refused.extend(chunk.iter().map(|_| json!(e.to_string())));
                        next = due;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (sent, refused)
}

/// `POST /v1/txs` with `txs` as an array; the per-item answers. A 429 is waited out
/// (an honest client does).
async fn post_batch(
    http: &reqwest::Client,
    url: &str,
    txs: &[Transaction],
) -> anyhow::Result<Vec<Value>> {
    let body = serde_json::to_vec(txs)?;
    for _ in 0..10 {
        let r = http
            .post(format!("{url}/v1/txs"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {url}/v1/txs: {status}: {v}");
        }
        return Ok(v.as_array().cloned().unwrap_or_default());
    }
    bail!("POST {url}/v1/txs: 429 ten times")
}

/// `bench flood`: see the module's documentation.
pub async fn flood(opts: FloodOptions) -> anyhow::Result<Value> {
    let b = Bench::new()?;
    let producers = opts.producers.max(1);
    let net = b.network(&["f1a", "f1b"], producers).await?;
    let (a, bb) = (&net.chains[0], &net.chains[1]);
    let (ua, ub) = (a.urls[0].clone(), bb.urls[0].clone());
    let (ka, kb) = (launcher::faucet(a)?, launcher::faucet(bb)?);

    // Collateral on B for A's transfers (for every honest one, with room to spare).
    b.fund_collateral(&ub, &kb, a.chain).await?;

    // The valid phase's transfers on B: funded senders, pre-signed batches.
    let valid_txs = 5_000;
    let sink = keyfile::address(&SecretKey::from_seed(b"flood sink"));
    let valid = b
        .senders(&ub, &kb, valid_txs, |_| Body::Transfer {
            to: QualifiedAddress::local(sink),
            amount: 1,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;
    let valid_requests: usize = valid.iter().map(Vec::len).sum();

    // Honest traffic for the combined flood, pre-signed: A→B transfers from A's
    // faucet, local transfers on B from B's (its earlier transactions are in).
    let cross_to = keyfile::address(&SecretKey::from_seed(b"flood honest recipient"));
    let cross = b
        .presign(&ua, &ka, opts.transfers, |_| Body::Transfer {
            to: QualifiedAddress::new(bb.chain, cross_to),
            amount: 1,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;
    let local = b
        .presign(&ub, &kb, opts.local_transfers, |_| Body::Transfer {
            to: QualifiedAddress::local(sink),
            amount: 1,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        })
        .await?;

    let (client, client_addr) = flood_client(Duration::from_secs(30), &ub).await?;
    let pids = node_pids(b.dir.path(), &net);
    let names: Vec<Vec<String>> = net
        .chains
        .iter()
        .map(|c| {
            (0..c.urls.len())
                .map(|k| format!("{}/{k}", c.chain))
                .collect()
        })
        .collect();
    let all_pids: Vec<(String, u32)> = names
        .iter()
        .flatten()
        .zip(pids.iter().flatten())
        .filter_map(|(n, p)| p.map(|p| (n.clone(), p)))
        .collect();
    let pid_b0 = pids[1][0].context("no process id for B's node 0")?;

    // Idle: CPU of B's node 0 and every node's RSS with blocks being made and no
    // load; then every node's peak RSS is reset, so that it is the flood's.
    const IDLE_SECS: u64 = 5;
    let missed_idle0 = (missed(&b, &ua).await?, missed(&b, &ub).await?);
    let idle_cpu0 = cpu_ms(pid_b0).context("cpu")?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(IDLE_SECS)).await;
    let idle_ms_per_s =
        cpu_ms(pid_b0).context("cpu")?.saturating_sub(idle_cpu0) as f64 / t.elapsed().as_secs_f64();
    let missed_idle1 = (missed(&b, &ua).await?, missed(&b, &ub).await?);
    let idle_rss: BTreeMap<String, f64> = all_pids
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), status_mb(*p, "VmRSS")?)))
        .collect();
    let mut peak_reset = all_pids.iter().all(|(_, p)| reset_peak_rss(*p));

    // Cost phases, one kind at a time, against B's node 0 only, paced below the
    // per-client limit; B's node 0's CPU before and after each.
    let b0 = vec![Target {
        url: ub.clone(),
        forger: Arc::new(Forger::new(bb.chain, a.chain, 1_000_000)),
    }];
    let cost = |jobs: Vec<Job>| {
        run_flood(
            client.clone(),
            b0.clone(),
            jobs,
            opts.concurrency,
            Some(COST_RATE),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        )
    };
    let missed_cost0 = (missed(&b, &ua).await?, missed(&b, &ub).await?);
    let applied0 = b.counter(&ub, "distpos_txs_applied_total").await?;
    let (_, valid_cpu) = measure(pid_b0, idle_ms_per_s, async {
        b.submit_streams(&ub, valid).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while b
            .counter(&ub, "distpos_txs_applied_total")
            .await?
            .saturating_sub(applied0)
            < valid_txs as u64
        {
            if Instant::now() > deadline {
                bail!("the valid phase's transfers were not applied in 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    })
    .await?;
    let cost_garbage = opts.garbage.min(2_000);
    let (garbage_tally, garbage_cpu) = measure(pid_b0, idle_ms_per_s, async {
        Ok(cost(plan(0, 0, cost_garbage)).await)
    })
    .await?;
    let cost_txs = opts.txs.min(10_000);
    let (bad_tally, bad_cpu) = measure(pid_b0, idle_ms_per_s, async {
        Ok(cost(plan(0, cost_txs, 0)).await)
    })
    .await?;
    // Forged deliveries: first as many as a node holds per peer (answered 202
    // pending, held, passed to the chain's other nodes), then the rest (refused).
    let held = distpos_gateway::interchain::batch::MAX_PENDING_BATCHES_PER_PEER;
    let cost_deliveries = opts.deliveries.min(3_000);
    let (held_tally, held_cpu) = measure(pid_b0, idle_ms_per_s, async {
        Ok(cost(plan(held.min(cost_deliveries), 0, 0)).await)
    })
    .await?;
    let b0_rest = vec![Target {
        url: ub.clone(),
        forger: Arc::new(Forger::new(
            bb.chain,
            a.chain,
            1_000_000 + held.min(cost_deliveries) as u64,
        )),
    }];
    let (busy_tally, busy_cpu) = measure(pid_b0, idle_ms_per_s, async {
        Ok(run_flood(
            client.clone(),
            b0_rest,
            plan(cost_deliveries.saturating_sub(held), 0, 0),
            opts.concurrency,
            Some(COST_RATE),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        )
        .await)
    })
    .await?;
    let missed_cost1 = (missed(&b, &ua).await?, missed(&b, &ub).await?);

    // The combined flood: every kind at once, as fast as the client goes, at B's
    // nodes, while honest transfers flow A→B and on B. The honest traffic runs only
    // here, so that the cost phases above measure their own kind alone.
    let forger = Arc::new(Forger::new(bb.chain, a.chain, 2_000_000));
    let targets: Vec<Target> = if opts.all_nodes {
        &bb.urls[..]
    } else {
        &bb.urls[..1]
    }
    .iter()
    .map(|u| Target {
        url: u.clone(),
        forger: forger.clone(),
    })
    .collect();
    let jobs = plan(opts.deliveries, opts.txs, opts.garbage);
    let total = jobs.len() as u64;
    let done = Arc::new(AtomicU64::new(0));
    let over = Arc::new(AtomicBool::new(false));
    // Every node's peak over the cost phases; then reset, so that the peak read after
    // the combined flood is its own.
    let mut peak_rss_cost: BTreeMap<String, f64> = all_pids
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), round(status_mb(*p, "VmHWM")?, 1))))
        .collect();
    // B's node 0's was reset at each phase: its peak is the highest of theirs.
    let b0_peak = [&valid_cpu, &garbage_cpu, &bad_cpu, &held_cpu, &busy_cpu]
        .iter()
        .map(|c| c.peak_rss_mb)
        .fold(0f64, f64::max);
    peak_rss_cost.insert(format!("{}/0", bb.chain), round(b0_peak, 1));
    let rss_before: BTreeMap<String, f64> = all_pids
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), round(status_mb(*p, "VmRSS")?, 1))))
        .collect();
    peak_reset &= all_pids.iter().all(|(_, p)| reset_peak_rss(*p));
    let missed0 = (missed(&b, &ua).await?, missed(&b, &ub).await?);
    let heads0 = (head(&b, &ua).await?, head(&b, &ub).await?);
    let cpu_flood0: Vec<Option<u64>> = all_pids.iter().map(|(_, p)| cpu_ms(*p)).collect();
    let probing = Arc::new(AtomicBool::new(true));
    let probe = tokio::spawn(status_probe(
        b.http.clone(),
        format!("{ub}/v1/status"),
        probing.clone(),
    ));
    let honest_cross = tokio::spawn(honest_sender(
        b.http.clone(),
        ua.clone(),
        cross,
        done.clone(),
        total,
        over.clone(),
    ));
    let honest_local = tokio::spawn(honest_sender(
        b.http.clone(),
        ub.clone(),
        local,
        done.clone(),
        total,
        over.clone(),
    ));
    let started = Instant::now();
    let tally = run_flood(
        client.clone(),
        targets,
        jobs,
        opts.concurrency,
        opts.rate,
        done.clone(),
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    let flood_secs = started.elapsed().as_secs_f64();
    over.store(true, Ordering::SeqCst);
    probing.store(false, Ordering::SeqCst);
    let mut status_ms = probe.await.unwrap_or_default();
    status_ms.sort_unstable();
    let missed1 = (missed(&b, &ua).await?, missed(&b, &ub).await?);
    let heads1 = (head(&b, &ua).await?, head(&b, &ub).await?);
    let cpu_flood: BTreeMap<String, u64> = all_pids
        .iter()
        .zip(cpu_flood0)
        .filter_map(|((n, p), before)| Some((n.clone(), cpu_ms(*p)?.saturating_sub(before?))))
        .collect();
    let peak_rss: BTreeMap<String, f64> = all_pids
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), round(status_mb(*p, "VmHWM")?, 1))))
        .collect();
    let rss_after: BTreeMap<String, f64> = all_pids
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), round(status_mb(*p, "VmRSS")?, 1))))
        .collect();
    let over = |base: &BTreeMap<String, f64>| {
        peak_rss
            .iter()
            .filter_map(|(n, peak)| Some(peak - base.get(n)?))
            .fold(0f64, f64::max)
    };
    let (over_idle, growth) = (over(&idle_rss), over(&rss_before));
    let (cross_sent, cross_refused) = honest_cross.await?;
    let (local_sent, local_refused) = honest_local.await?;

    // Every honest transfer: settled as delivered on A (its block's time against
    // when it was sent); every local one included on B.
    let mut pending: BTreeMap<Hash32, u64> = cross_sent.iter().copied().collect();
    let mut settled: BTreeMap<Hash32, (u64, u64)> = BTreeMap::new();
    let mut ended_otherwise: BTreeMap<String, u64> = BTreeMap::new();
    let mut local_pending: Vec<Hash32> = local_sent.iter().map(|(h, _)| *h).collect();
    let deadline = Instant::now() + Duration::from_secs(opts.settle_secs);
    let mut last_seen: BTreeMap<Hash32, Value> = BTreeMap::new();
    while (!pending.is_empty() || !local_pending.is_empty()) && Instant::now() < deadline {
        for (h, sent) in pending.clone() {
            let Ok(v) = b.get(&format!("{ua}/v1/txs/{h}")).await else {
                continue;
            };
            match v["cross_chain"]["stage"].as_str() {
                Some("settled_delivered") => {
                    let height = v["cross_chain"]["settled"]["height"].as_u64().unwrap_or(0);
                    settled.insert(h, (sent, height));
                    pending.remove(&h);
                }
                Some(s @ ("refunded" | "expired")) => {
                    *ended_otherwise.entry(s.to_string()).or_insert(0) += 1;
                    pending.remove(&h);
                }
                _ => {
                    last_seen.insert(h, v["cross_chain"].clone());
                }
            }
        }
        let mut still = Vec::new();
        for h in local_pending {
            match b.get(&format!("{ub}/v1/txs/{h}")).await {
                Ok(v) if v["status"] == "included" || v["status"] == "irreversible" => {}
                _ => still.push(h),
            }
        }
        local_pending = still;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut block_time: BTreeMap<u64, u64> = BTreeMap::new();
    let mut latency = Vec::new();
    for (sent, height) in settled.values() {
        if !block_time.contains_key(height) {
            let blk = b.get(&format!("{ua}/v1/blocks/{height}")).await?;
            let time = blk["block"]["header"]["header"]["timestamp_ms"]
                .as_u64()
                .unwrap_or(0);
            block_time.insert(*height, time);
        }
        latency.push(block_time[height].saturating_sub(*sent));
    }
    latency.sort_unstable();
    // Where an undelivered transfer stands, and its relay's last error, if any.
    let undelivered_sample = pending
        .keys()
        .next()
        .and_then(|h| last_seen.get(h))
        .map(|v| {
            let mut v = v.clone();
            if let Some(relay) = v.get_mut("relay").and_then(Value::as_object_mut) {
                relay.remove("payload");
            }
            v
        });
    let missed_after_settle = (missed(&b, &ua).await?, missed(&b, &ub).await?);

    let chains = net.chains.len() as u64;
    let expected_blocks = (flood_secs * 1000.0 / INTERVAL_MS as f64) as u64 * chains;
    let phase = |cpu: &PhaseCpu, t: &Tally, kind: Kind| {
        let txs = (kind == Kind::BadTxs).then_some(t.txs);
        merge(
            cpu.json(t.requests(kind), txs),
            t.json()[kind.name()].clone(),
        )
    };
    let cost = json!({
        "node": format!("{}/0", bb.chain),
        "rate_per_s": COST_RATE,
        "idle_cpu_ms_per_s": round(idle_ms_per_s, 1),
        "note": "B's node 0's CPU (utime+stime) over each phase run alone, less its idle rate over the same time, per request (and per transaction for batches)",
        "valid_batch": merge(
            valid_cpu.json(valid_requests as u64, Some(valid_txs as u64)),
            json!({"requests": valid_requests, "txs": valid_txs}),
        ),
        "bad_signature_batch": phase(&bad_cpu, &bad_tally, Kind::BadTxs),
        "garbage_json": phase(&garbage_cpu, &garbage_tally, Kind::Garbage),
        "bogus_delivery_held": phase(&held_cpu, &held_tally, Kind::Delivery),
        "bogus_delivery_refused": phase(&busy_cpu, &busy_tally, Kind::Delivery),
    });
    let honest = json!({
        "transfers": opts.transfers,
        "submitted": cross_sent.len(),
        "refused_at_submit": cross_refused.len(),
        "delivered": settled.len(),
        "target_delivered": opts.transfers,
        "not_settled": pending.len(),
        "ended_otherwise": ended_otherwise,
        "settle_wait_limit_s": opts.settle_secs,
        "latency_p50_ms": percentile(&latency, 0.5),
        "latency_p95_ms": percentile(&latency, 0.95),
        "undelivered_sample": undelivered_sample,
        "local_transfers": opts.local_transfers,
        "local_submitted": local_sent.len(),
        "local_refused_at_submit": local_refused.len(),
        "local_included": local_sent.len() - local_pending.len(),
    });
    let missed_sum = |x: (u64, u64)| x.0 + x.1;
    let missed_json = json!({
        "missed_slots_idle": missed_sum(missed_idle1).saturating_sub(missed_sum(missed_idle0)),
        "idle_seconds": IDLE_SECS,
        "missed_slots_during_cost_phases": missed_sum(missed_cost1).saturating_sub(missed_sum(missed_cost0)),
        "missed_slots_during_flood": missed_sum(missed1).saturating_sub(missed_sum(missed0)),
        "missed_slots_during_flood_by_chain": {
            a.chain.to_string(): missed1.0.saturating_sub(missed0.0),
            bb.chain.to_string(): missed1.1.saturating_sub(missed0.1),
        },
        "missed_slots_limit": 0,
        "missed_slots_after_flood_until_settled": missed_sum(missed_after_settle).saturating_sub(missed_sum(missed1)),
        "blocks_produced_during_flood": heads1.0.saturating_sub(heads0.0) + heads1.1.saturating_sub(heads0.1),
        "blocks_expected_during_flood": expected_blocks,
    });
    let rss = json!({
        "idle_rss_mb": idle_rss.iter().map(|(n, v)| (n.clone(), round(*v, 1))).collect::<BTreeMap<_, _>>(),
        "peak_rss_mb_cost_phases": peak_rss_cost,
        "rss_before_flood_mb": rss_before,
        "peak_rss_mb": peak_rss,
        "peak_rss_is_the_phase_own": peak_reset,
        "rss_after_flood_mb": rss_after,
        "max_rss_over_idle_mb": round(over_idle, 1),
        "max_rss_growth_during_flood_mb": round(growth, 1),
        "rss_note": "idle: fresh nodes before any phase; the valid phase (5,000 honest transfers on B) raises B's nodes' RSS by itself, so the flood's own growth is its peak against the RSS just before it",
        "limit_rss_over_idle_mb": 100,
    });
    let head = json!({
        "bench": "flood",
        "producers_per_chain": producers,
        "block_interval_ms": INTERVAL_MS,
        "client": client_addr,
        "client_note": "one client: every flood request comes from this one address; the network's own nodes and this harness's honest traffic use 127.0.0.1",
        "flood_target": if opts.all_nodes { "every node of B, round-robin" } else { "B's node 0" },
        "concurrency": opts.concurrency,
        "flood_rate_per_s": opts.rate,
        "rate_limit_per_client": {"per_s": 1_000, "burst": 2_000},
        "flood": {
            "seconds": round(flood_secs, 1),
            "requests": total,
            "answers": tally.json(),
            "rate_limited_429": tally.rate_limited(),
            "node_cpu_ms": cpu_flood,
        },
    });
    let tail = json!({
        "honest": honest,
        "status_reads_during_flood": status_ms.len(),
        "status_p50_ms_during_flood": percentile(&status_ms, 0.5),
        "status_p99_ms_during_flood": percentile(&status_ms, 0.99),
        "status_max_ms_during_flood": status_ms.last().copied().unwrap_or(0),
        "status_limit_ms": 1_000,
        "cost": cost,
    });
    Ok(merge(merge(merge(head, missed_json), rss), tail))
}

/// `a` with `b`'s fields added.
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_spreads_every_kind_over_the_flood() {
        let jobs = plan(1_000, 10_500, 100);
        assert_eq!(jobs.len(), 1_000 + 11 + 100);
        let txs: u32 = jobs
            .iter()
            .filter(|j| j.kind == Kind::BadTxs)
            .map(|j| j.n)
            .sum();
        assert_eq!(txs, 10_500);
        // Each kind shows up in both halves.
        let (first, second) = jobs.split_at(jobs.len() / 2);
        for kind in [Kind::Delivery, Kind::BadTxs, Kind::Garbage] {
            assert!(first.iter().any(|j| j.kind == kind), "{kind:?}");
            assert!(second.iter().any(|j| j.kind == kind), "{kind:?}");
        }
    }

    #[test]
    fn forged_bodies_are_well_formed_and_bad_signatures_fail() {
        let id = |s| ChainId::parse(s).expect("a chain id");
        let f = Forger::new(id("f1b"), id("f1a"), 1_000_000);
        let (path, body) = f.request(Job {
            kind: Kind::Delivery,
            i: 7,
            n: 1,
        });
        assert_eq!(path, "/v1/relay/v2/deliveries");
        let d: BatchDelivery = serde_json::from_slice(&body).expect("a BatchDelivery");
        assert_eq!(d.height, 1_000_007);
        assert_eq!((d.indices, d.proof.siblings.len()), (vec![0], 1));
        assert!(distpos_chain::verify_tx_signature(&d.transfers[0]).is_ok());
        let (path, body) = f.request(Job {
            kind: Kind::BadTxs,
            i: 1,
            n: 3,
        });
        assert_eq!(path, "/v1/txs");
        let txs: Vec<Transaction> = serde_json::from_slice(&body).expect("transactions");
        assert_eq!(txs.len(), 3);
        for t in &txs {
            assert!(distpos_chain::verify_tx_signature(t).is_err());
        }
        for i in 0..8 {
            let (_, body) = f.request(Job {
                kind: Kind::Garbage,
                i,
                n: 1,
            });
            assert!(serde_json::from_slice::<Value>(&body).is_err(), "{i}");
        }
    }

    #[test]
    fn this_process_cpu_and_rss_are_read() {
        let pid = std::process::id();
        assert!(cpu_ms(pid).is_some());
        assert!(status_mb(pid, "VmRSS").is_some_and(|mb| mb > 0.0));
        assert!(status_mb(pid, "VmHWM").is_some());
    }
}
