//! What the soaks share: a seeded random source, HTTP with short timeouts, a network
//! written for a soak, and the checks every soak makes (transactions included
//! despite dying mempools, nodes of a chain agreeing, supply holding).

use crate::launcher::{self, ChainSpec, NetSpec, Network};
use anyhow::{bail, Context};
use distpos_chain::{Body, Transaction, UnsignedTx};
use distpos_gateway::{clock::now_ms, keyfile};
use distpos_proofs::{header::tapos_prefix, ChainId, Hash32, SecretKey};
use serde_json::Value;
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// A small deterministic random source (splitmix64): the same seed replays the same
/// faults in the same order (their timing against the nodes still varies).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A duration between `lo` and `hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }

    /// Shuffles `v` (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// HTTP with short timeouts: a paused or killed node must not hold a soak up.
#[derive(Clone)]
pub(crate) struct Http(pub(crate) reqwest::Client);

impl Http {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .connect_timeout(Duration::from_secs(1))
                .build()?,
        ))
    }

    pub(crate) async fn get(&self, url: &str) -> anyhow::Result<Value> {
        crate::bench::get_json(&self.0, url).await
    }

    pub(crate) async fn post(
        &self,
        url: &str,
        body: &Value,
        token: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.0.post(url).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub(crate) async fn head(&self, url: &str) -> anyhow::Result<(u64, Hash32, u64)> {
        let st = self.get(&format!("{url}/v1/status")).await?;
        let id = st["head"]["id"]
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        Ok((
            st["head"]["height"].as_u64().unwrap_or(0),
            id,
            st["lib"]["height"].as_u64().unwrap_or(0),
        ))
    }
}

/// Writes a static network of `chains` in `dir`.
pub(crate) fn network(
    dir: &Path,
    chains: &[&str],
    producers: usize,
    interval_ms: u64,
) -> anyhow::Result<Network> {
    let spec = NetSpec {
        name: "soak".into(),
        interval_ms,
        discovery: "static".into(),
        zone: None,
        low_watermark: 0,
        forwarding: false,
        max_hops: None,
        transit_fee: 0,
        links: None,
        dns_via: Default::default(),
        chains: chains
            .iter()
            .map(|id| ChainSpec {
                id: (*id).into(),
                producers,
                via: Default::default(),
            })
            .collect(),
    };
    launcher::prepare(&spec, dir, launcher::free_port_range(100)?, now_ms())
}

/// The soak's folder (see [`crate::bench::network_dir`]).
pub(crate) fn soak_dir() -> anyhow::Result<tempfile::TempDir> {
    crate::bench::network_dir("soak")
}

pub(crate) fn exe() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe().context("cannot find the distpos executable")
}

/// Signs `body` for `key` on the chain whose status is `st`, with `nonce`.
pub(crate) fn sign(st: &TxContext, key: &SecretKey, nonce: u64, body: Body) -> Transaction {
    UnsignedTx {
        chain_id: st.chain,
        nonce,
        fee: st.min_fee,
        ref_block_num: st.head as u16,
        ref_block_prefix: tapos_prefix(&st.head_id),
        expiration: now_ms() + 30 * 60 * 1000,
        body,
    }
    .sign(key)
}

/// What signing needs from a chain.
#[derive(Clone, Copy)]
pub(crate) struct TxContext {
    chain: ChainId,
    head: u64,
    head_id: Hash32,
    /// The chain's lowest fee.
    pub(crate) min_fee: u128,
}

pub(crate) async fn tx_context(http: &Http, url: &str) -> anyhow::Result<TxContext> {
    let st = http.get(&format!("{url}/v1/status")).await?;
    Ok(TxContext {
        chain: ChainId::parse(st["chain_id"].as_str().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        head: st["head"]["height"].as_u64().unwrap_or(0),
        head_id: st["head"]["id"]
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
        min_fee: st["min_fee"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
    })
}

pub(crate) async fn next_nonce(http: &Http, url: &str, key: &SecretKey) -> anyhow::Result<u64> {
    let addr = keyfile::address(key);
    let acct = http.get(&format!("{url}/v1/accounts/{addr}")).await?;
    acct["next_nonce"]
        .as_u64()
        .context("account without next_nonce")
}

/// Submits `tx` to one of `urls` (starting at `start`) until one node takes it, then
/// waits until some node shows it irreversible; re-submits on the way (a mempool dies
/// with its node, and a block above the LIB can be undone). Gives up after `patience`.
pub(crate) async fn get_irreversible(
    http: &Http,
    urls: &[String],
    tx: &Transaction,
    start: usize,
    patience: Duration,
) -> bool {
    let hash = tx.hash();
    let body = match serde_json::to_value(tx) {
        Ok(b) => b,
        Err(_) => return false,
    };
    let deadline = Instant::now() + patience;
    let mut turn = start;
    while Instant::now() < deadline {
        let url = &urls[turn % urls.len()];
        turn += 1;
        match http.post(&format!("{url}/v1/txs"), &body, None).await {
            // Taken, or known already (in a block or a mempool): wait for it.
            Ok((s, _)) if (200..300).contains(&s) || s == 409 => {}
            _ => continue,
        }
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            for u in urls {
                if let Ok(v) = http.get(&format!("{u}/v1/txs/{hash}")).await {
                    // Irreversible, not merely included: a block that a crash or a
                    // reorganisation undoes takes the transaction with it, and then
                    // it is sent again.
                    if v["status"] == "irreversible" {
                        return true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    false
}

pub(crate) async fn tx_context_any(http: &Http, urls: &[String]) -> anyhow::Result<TxContext> {
    for _ in 0..50 {
        for u in urls {
            if let Ok(c) = tx_context(http, u).await {
                return Ok(c);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no node of the chain answered")
}

pub(crate) async fn next_nonce_any(
    http: &Http,
    urls: &[String],
    key: &SecretKey,
) -> anyhow::Result<u64> {
    for _ in 0..50 {
        for u in urls {
            if let Ok(n) = next_nonce(http, u, key).await {
                return Ok(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no node of the chain answered")
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
pub(crate) async fn wait_until<F, Fut>(limit: Duration, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        if Instant::now() > deadline {
            bail!("timed out after {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Whether every node of a chain holds the same block at a common irreversible
/// height past everything node 0 had applied (so past every settlement), and
/// whether supply holds with nothing in flight on every node.
pub(crate) async fn agreement(http: &Http, urls: &[String]) -> anyhow::Result<(bool, bool)> {
    let (target, _, _) = http.head(&urls[0]).await?;
    wait_until(Duration::from_secs(120), || async {
        let mut all = true;
        for u in urls {
            all &= matches!(http.head(u).await, Ok((_, _, lib)) if lib >= target);
        }
        all
    })
    .await
    .context("the nodes of a chain did not all reach node 0's head as irreversible")?;
    let mut ids = Vec::new();
    let mut holds = true;
    for u in urls {
        let b = http.get(&format!("{u}/v1/blocks/{target}")).await?;
        ids.push(b["id"].clone());
        let s = http.get(&format!("{u}/v1/supply")).await?;
        holds &= s["holds"] == true && s["in_flight"] == "0";
    }
    Ok((ids.windows(2).all(|w| w[0] == w[1]), holds))
}
