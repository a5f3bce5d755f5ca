//! A harness that runs real `distpos` node processes on 127.0.0.1 with ephemeral
//! ports, each with its own data folder and log under one temporary folder. Every
//! process is killed when the harness is dropped, also when a test fails, and the
//! folder is removed (kept, and its path printed, if the test panicked).
#![allow(dead_code, unreachable_pub)]

use distpos_chain::{Address, Body, ChainParams, Transaction, UnsignedTx};
use distpos_gateway::keyfile;
use distpos_proofs::{header::tapos_prefix, ChainId, Hash32, SecretKey};
use distpos_testnets::testnet;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A network written and started from a built-in spec (`launcher::builtin`), with
/// its dnsmasq if the spec uses DNS; every process stops when it is dropped.
pub struct SpecNet {
    pub net: distpos_testnets::launcher::Network,
    pub dir: tempfile::TempDir,
}

impl SpecNet {
    pub async fn start(spec: &str) -> SpecNet {
        use distpos_testnets::launcher;
        let spec = launcher::builtin(spec).unwrap();
        if spec.discovery == "dns" {
            assert!(
                launcher::find_dnsmasq().is_some(),
                "this test needs dnsmasq: apt-get install -y dnsmasq-base (.ci/run installs it)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("distpos-{}-", spec.name))
            .tempdir()
            .unwrap();
        let net = launcher::prepare(
            &spec,
            dir.path(),
            launcher::free_port_range(100).unwrap(),
            now_ms(),
        )
        .unwrap();
        let started = SpecNet { net, dir };
        launcher::start_with(&started.net, started.dir.path(), &distpos_exe())
            .await
            .unwrap();
        started
    }
}

impl Drop for SpecNet {
    fn drop(&mut self) {
        let _ = distpos_testnets::launcher::stop(self.dir.path());
    }
}

/// The `distpos` binary cargo built next to this test binary (`cargo test
/// --workspace` builds it: the `distpos` package has tests of its own), or
/// `DISTPOS_BIN`. Running this suite alone (`-p distpos-testnets`) uses whatever
/// binary was built last: build it first (`cargo build -p distpos`).
pub fn distpos_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("DISTPOS_BIN") {
        return PathBuf::from(p);
    }
    let me = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-<hash> → target/<profile>/distpos
    let exe = me
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(format!("distpos{}", std::env::consts::EXE_SUFFIX)))
        .unwrap();
    assert!(
        exe.is_file(),
        "{} is missing: build it first (cargo build -p distpos), or run cargo test --workspace",
        exe.display()
    );
    exe
}

/// Held by a test for its whole run (see [`serial`]).
pub struct OneAtATime(std::sync::MutexGuard<'static, ()>);

/// Runs the `distpos` command line with `args`: (success, stdout, stderr).
pub fn distpos_cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(distpos_exe())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Every test takes this first: the tests of this one binary would otherwise run
/// all at once, dozens of node processes on two cores; one network at a time keeps
/// timings those of a real deployment. It is held across awaits on purpose: each
/// test has a runtime of its own, and the lock only orders whole tests.
pub fn serial() -> OneAtATime {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    OneAtATime(SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The operator token of every test node.
pub const TOKEN: &str = "test-operator-token-0123456789";

/// `n` consecutive free TCP ports on 127.0.0.1, below the ephemeral range (see
/// `launcher::free_port_range`): a killed node gets its port back when it restarts.
pub fn free_ports(n: usize) -> Vec<u16> {
    let base = distpos_testnets::launcher::free_port_range(n as u16).unwrap();
    (0..n as u16).map(|k| base + k).collect()
}

/// One node process.
pub struct NodeProc {
    pub config: PathBuf,
    pub url: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    pub fn spawn(config: &Path, url: &str, log: &Path, extra: &[&str]) -> Self {
        Self::spawn_with_env(config, url, log, extra, &[])
    }

    /// Like [`Self::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        config: &Path,
        url: &str,
        log: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(distpos_exe())
            .arg("node")
            .arg("--config")
            .arg(config)
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn distpos");
        Self {
            config: config.to_path_buf(),
            url: url.to_string(),
            log: log.to_path_buf(),
            child: Some(child),
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `limit` for the process to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running local network of one chain.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
    pub faucet: SecretKey,
    pub chain: ChainId,
    pub http: reqwest::Client,
}

impl Net {
    /// Writes and starts a chain of `producers` nodes with `interval_ms` blocks.
    pub async fn start(chain: u32, producers: usize, interval_ms: u64, params: ChainParams) -> Net {
        let (dir, files) = Self::write(chain, producers, interval_ms, params);
        Self::launch(dir, files, chain).await
    }

    /// Two chains registered as each other's peers, with static routes to each other.
    pub async fn start_pair(
        a: u32,
        b: u32,
        producers: usize,
        interval_ms: u64,
        params: ChainParams,
    ) -> (Net, Net) {
        let (da, fa) = Self::write(a, producers, interval_ms, params.clone());
        let (db, fb) = Self::write(b, producers, interval_ms, params);
        testnet::link(&fa, &fb, 1_000).unwrap();
        let na = Self::launch(da, fa, a).await;
        let nb = Self::launch(db, fb, b).await;
        (na, nb)
    }

    /// Chains (id, producers) that know nothing of each other but have static routes
    /// to each other: linking them is left to governance.
    pub async fn start_routed(chains: &[(u32, usize)], interval_ms: u64) -> Vec<Net> {
        let written: Vec<(tempfile::TempDir, testnet::TestnetFiles)> = chains
            .iter()
            .map(|&(c, n)| Self::write(c, n, interval_ms, ChainParams::default()))
            .collect();
        let files: Vec<&testnet::TestnetFiles> = written.iter().map(|(_, f)| f).collect();
        testnet::add_routes(&files, &testnet::Discovery::Static).unwrap();
        let mut out = Vec::new();
        for ((dir, files), &(c, _)) in written.into_iter().zip(chains) {
            out.push(Self::launch(dir, files, c).await);
        }
        out
    }

    pub fn write(
        chain: u32,
        producers: usize,
        interval_ms: u64,
        params: ChainParams,
    ) -> (tempfile::TempDir, testnet::TestnetFiles) {
        let dir = tempfile::Builder::new()
            .prefix("distpos-e2e-")
            .tempdir()
            .unwrap();
        let spec = testnet::TestnetSpec {
            dir: dir.path().to_path_buf(),
            chain: ChainId(chain),
            producers,
            ports: free_ports(producers),
            interval_ms,
            faucet_balance: 1_000_000_000_000,
            producer_stake: 1_000_000,
            params,
            api_token: Some(TOKEN.to_string()),
        };
        let files = testnet::init(&spec, now_ms()).unwrap();
        (dir, files)
    }

    async fn launch(dir: tempfile::TempDir, files: testnet::TestnetFiles, chain: u32) -> Net {
        let faucet = keyfile::read(&files.faucet_key).unwrap();
        let mut nodes = Vec::new();
        for (i, (cfg, url)) in files.configs.iter().zip(&files.urls).enumerate() {
            let log = dir.path().join(format!("node-{i}.log"));
            nodes.push(NodeProc::spawn(cfg, url, &log, &[]));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let net = Net {
            dir,
            nodes,
            faucet,
            chain: ChainId(chain),
            http,
        };
        for i in 0..net.nodes.len() {
            net.wait_ready(i).await;
        }
        net
    }

    /// Adds a node (e.g. a candidate producer or a duplicate key) with its own config.
    pub fn add_node(&mut self, producer_key: Option<&Path>, peers: Vec<String>) -> usize {
        let i = self.nodes.len();
        let port = free_ports(1)[0];
        let url = format!("http://127.0.0.1:{port}");
        let mut cfg = distpos_gateway::config::NodeConfig {
            data_dir: PathBuf::from(format!("node-{i}")),
            genesis: PathBuf::from("genesis.json"),
            listen: ([127, 0, 0, 1], port).into(),
            producer_key: producer_key.map(|p| p.to_path_buf()),
            peers,
            ..Default::default()
        };
        cfg.sync.interval_ms = 300;
        let path = self.dir.path().join(format!("node-{i}.toml"));
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        let log = self.dir.path().join(format!("node-{i}.log"));
        self.nodes.push(NodeProc::spawn(&path, &url, &log, &[]));
        i
    }

    /// Restarts a killed node on its old config and data.
    pub async fn restart(&mut self, i: usize) {
        let (cfg, url, log) = (
            self.nodes[i].config.clone(),
            self.nodes[i].url.clone(),
            self.nodes[i].log.clone(),
        );
        self.nodes[i].kill();
        self.nodes[i] = NodeProc::spawn(&cfg, &url, &log, &[]);
        self.wait_ready(i).await;
    }

    pub fn url(&self, i: usize) -> &str {
        &self.nodes[i].url
    }

    pub async fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.try_get(i, "/v1/status").await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} did not start; log:\n{}",
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    pub async fn try_get(&self, i: usize, path: &str) -> Result<(u16, Value), String> {
        let r = self
            .http
            .get(format!("{}{path}", self.url(i)))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let v = r.json().await.map_err(|e| e.to_string())?;
        Ok((status, v))
    }

    pub async fn get(&self, i: usize, path: &str) -> Value {
        let (status, v) = self.try_get(i, path).await.unwrap();
        assert_eq!(status, 200, "GET {path} on node {i}: {v}");
        v
    }

    /// Posts raw JSON; returns status and body.
    pub async fn post(&self, i: usize, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url(i)))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn status(&self, i: usize) -> Value {
        self.get(i, "/v1/status").await
    }

    pub async fn head(&self, i: usize) -> u64 {
        self.status(i).await["head"]["height"].as_u64().unwrap()
    }

    pub async fn lib(&self, i: usize) -> u64 {
        self.status(i).await["lib"]["height"].as_u64().unwrap()
    }

    /// A signed transaction for `key` using node `i`'s head for TaPoS and nonce.
    pub async fn tx(&self, i: usize, key: &SecretKey, body: Body) -> Transaction {
        let st = self.status(i).await;
        let addr = keyfile::address(key);
        let acct = self.get(i, &format!("/v1/accounts/{addr}")).await;
        UnsignedTx {
            chain_id: self.chain,
            nonce: acct["next_nonce"].as_u64().unwrap(),
            fee: 1,
            ref_block_num: st["head"]["height"].as_u64().unwrap() as u16,
            ref_block_prefix: tapos_prefix(
                &st["head"]["id"]
                    .as_str()
                    .unwrap()
                    .parse::<Hash32>()
                    .unwrap(),
            ),
            expiration: now_ms() + 5 * 60 * 1000,
            body,
        }
        .sign(key)
    }

    /// Submits a transaction to node `i`; returns its hash.
    pub async fn submit(&self, i: usize, tx: &Transaction) -> Hash32 {
        let (status, v) = self
            .post(i, "/v1/txs", &serde_json::to_value(tx).unwrap())
            .await;
        assert_eq!(status, 202, "tx refused by node {i}: {v}");
        v["hash"].as_str().unwrap().parse().unwrap()
    }

    /// Waits until `cond` holds, polling; panics with the logs after `secs`.
    pub async fn wait_for<F, Fut>(&self, what: &str, secs: u64, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond().await {
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.nodes.len())
                    .map(|i| format!("--- node {i} (last lines)\n{}", tail(&self.log(i), 30)))
                    .collect();
                panic!(
                    "timed out after {secs}s waiting for {what}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until transaction `hash` is irreversible on node `i`; returns its status.
    pub async fn wait_irreversible(&self, i: usize, hash: &Hash32, secs: u64) -> Value {
        let path = format!("/v1/txs/{hash}");
        self.wait_for(&format!("tx {hash} irreversible on node {i}"), secs, || async {
            matches!(self.try_get(i, &path).await, Ok((200, v)) if v["status"] == "irreversible")
        })
        .await;
        self.get(i, &path).await
    }

    /// Submits `body` signed by a producer's key and waits until it is irreversible.
    /// The producer's node signs with the same account (its double-sign `Evidence`
    /// takes nonces too), so a transaction of the node can take the nonce ours was
    /// signed with: then ours is signed again with a fresh nonce.
    pub async fn submit_with_relayer_key(
        &self,
        i: usize,
        key: &SecretKey,
        body: Body,
        secs: u64,
    ) -> Hash32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let tx = self.tx(i, key, body.clone()).await;
            let path = format!("/v1/txs/{}", tx.hash());
            let (status, v) = self
                .post(i, "/v1/txs", &serde_json::to_value(&tx).unwrap())
                .await;
            if v["error"]["code"] == "already_approved" {
                // An earlier copy of ours got in after all.
                return tx.hash();
            }
            if status == 202 {
                let mut dropped_since: Option<Instant> = None;
                while Instant::now() < deadline {
                    match self.try_get(i, &path).await {
                        Ok((200, v)) if v["status"] == "irreversible" => return tx.hash(),
                        Ok((404, _)) => {
                            // Gone from the mempool: re-sign once that lasts a moment.
                            let since = *dropped_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(3) {
                                break;
                            }
                        }
                        _ => dropped_since = None,
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            assert!(
                Instant::now() < deadline,
                "transaction not irreversible after {secs}s (last answer {status}: {v})"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The supply audit of node 0 holds, with nothing in flight.
    pub async fn assert_supply_settled(&self) {
        let s = self.get(0, "/v1/supply").await;
        assert_eq!(
            (s["holds"].as_bool(), s["in_flight"].as_str()),
            (Some(true), Some("0")),
            "{s}"
        );
    }

    pub async fn balance(&self, i: usize, addr: &Address) -> u128 {
        self.get(i, &format!("/v1/accounts/{addr}")).await["balance"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("test failed; network folder kept at {}", kept.display());
        }
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn now_ms() -> u64 {
    distpos_gateway::clock::now_ms()
}

pub fn transfer(to: Address, amount: u128) -> Body {
    Body::Transfer {
        to: distpos_chain::QualifiedAddress::local(to),
        amount,
        memo: vec![],
        deliver_by: 0,
        fast_fee: 0,
        via: None,
    }
}

// ---- cross-chain helpers

use distpos_chain::QualifiedAddress;

/// Deposits collateral for `peer` from the faucet of `net`, waiting until irreversible.
pub async fn deposit(net: &Net, peer: ChainId, amount: u128) {
    let tx = net
        .tx(0, &net.faucet, Body::DepositCollateral { peer, amount })
        .await;
    let h = net.submit(0, &tx).await;
    net.wait_irreversible(0, &h, 60).await;
}

/// Sends a cross-chain transfer from the faucet of `net`.
pub async fn send_cross(
    net: &Net,
    to_chain: ChainId,
    to: Address,
    amount: u128,
) -> distpos_proofs::Hash32 {
    let body = Body::Transfer {
        to: QualifiedAddress::new(to_chain, to),
        amount,
        memo: b"hi".to_vec(),
        deliver_by: 0,
        fast_fee: 0,
        via: None,
    };
    let tx = net.tx(0, &net.faucet, body).await;
    net.submit(0, &tx).await
}

/// Waits until a transfer's cross-chain stage (on the source) is `stage`.
pub async fn wait_stage(
    net: &Net,
    hash: &distpos_proofs::Hash32,
    stage: &str,
    secs: u64,
) -> serde_json::Value {
    let path = format!("/v1/txs/{hash}");
    net.wait_for(&format!("transfer {hash} to reach {stage}"), secs, || async {
        matches!(net.try_get(0, &path).await, Ok((200, v)) if v["cross_chain"]["stage"] == stage)
    })
    .await;
    net.get(0, &path).await
}

/// The correspondent account of `peer` on `net`.
pub async fn corr(net: &Net, peer: ChainId) -> serde_json::Value {
    net.get(0, &format!("/v1/correspondents/{peer}")).await
}

/// A decimal-string amount.
pub fn int(v: &serde_json::Value) -> i128 {
    v.as_str().unwrap().parse().unwrap()
}

impl Net {
    /// An operator request (bearer token) with a JSON body.
    pub async fn operator(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url(i)))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}
