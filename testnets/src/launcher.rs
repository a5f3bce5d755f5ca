//! The launcher of local networks (`distpos testnet up <spec>` / `down`): writes keys,
//! chain specs, peer registrations, routes (static or a DNS zone) and collateral-ready
//! faucets for every chain of a spec, starts every node as its own process with its
//! log under one folder, and stops them again. Specs live in `testnets/specs/`.

use crate::testnet;
use anyhow::{bail, Context};
use distpos_gateway::keyfile;
use distpos_proofs::ChainId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

/// A network spec (`testnets/specs/<name>.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Name.
    pub name: String,
    /// Block interval of every chain.
    pub interval_ms: u64,
    /// `static` or `dns`.
    pub discovery: String,
    /// DNS zone (for `dns`).
    #[serde(default)]
    pub zone: Option<String>,
    /// Low watermark of every correspondent account.
    #[serde(with = "distpos_proofs::codec::dec_u128")]
    pub low_watermark: u128,
    /// Whether every chain forwards transfers for chains its peers have no relation
    /// with (DESIGN §12).
    #[serde(default)]
    pub forwarding: bool,
    /// Most legs a transfer may travel (every chain's `max_hops`).
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// Every chain's transit fee (paid to its faucet).
    #[serde(with = "distpos_proofs::codec::dec_u128", default)]
    pub transit_fee: u128,
    /// The pairs of chains with a correspondent relation (default: every pair).
    #[serde(default)]
    pub links: Option<Vec<[String; 2]>>,
    /// Zone-wide forwarding routes published in DNS: destination → the chain that
    /// forwards to it (TXT `v=distpos1 via=`).
    #[serde(default)]
    pub dns_via: BTreeMap<String, String>,
    /// The chains.
    pub chains: Vec<ChainSpec>,
}

/// One chain of a spec.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// Chain id (hex).
    pub id: String,
    /// Producers (one node each).
    pub producers: usize,
    /// Forwarding routes in this chain's node configs: destination → the
    /// correspondent that forwards to it.
    #[serde(default)]
    pub via: BTreeMap<String, String>,
}

/// The built-in specs.
pub fn builtin(name: &str) -> anyhow::Result<NetSpec> {
    let text = match name {
        "duo" => crate::DUO,
        "trio" => crate::TRIO,
        "mesh" => crate::MESH,
        other => {
            let p = Path::new(other);
            if p.exists() {
                return parse_spec(&std::fs::read_to_string(p)?);
            }
            bail!("unknown network spec {other:?}: use duo, trio, mesh, or a path to a spec file")
        }
    };
    parse_spec(text)
}

fn parse_spec(text: &str) -> anyhow::Result<NetSpec> {
    let spec: NetSpec = toml::from_str(text).context("invalid network spec")?;
    if spec.chains.is_empty() {
        bail!("network spec has no chains");
    }
    if !matches!(spec.discovery.as_str(), "static" | "dns") {
        bail!("discovery must be static or dns");
    }
    let ids: std::collections::BTreeSet<&str> = spec.chains.iter().map(|c| c.id.as_str()).collect();
    for [a, b] in spec.links.iter().flatten() {
        if !ids.contains(a.as_str()) || !ids.contains(b.as_str()) || a == b {
            bail!("link [{a:?}, {b:?}] must name two chains of the spec");
        }
    }
    Ok(spec)
}

/// One chain of a launched network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchedChain {
    /// Chain id.
    pub chain: ChainId,
    /// Node URLs.
    pub urls: Vec<String>,
    /// Node configs.
    pub configs: Vec<PathBuf>,
    /// The funded faucet key.
    pub faucet_key: PathBuf,
    /// Genesis file.
    pub genesis: PathBuf,
}

/// What `up` wrote and started (`<dir>/network.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    /// Spec name.
    pub spec: String,
    /// Chains.
    pub chains: Vec<LaunchedChain>,
    /// dnsmasq config and port (DNS discovery).
    pub dns: Option<(PathBuf, u16)>,
    /// The operator token of every node.
    pub api_token: Option<String>,
}

fn manifest(dir: &Path) -> PathBuf {
    dir.join("network.json")
}

/// Writes a network for `spec` in `dir` (once; later calls reuse it) with ports from
/// `base_port` (chain i, node k → base + 10·i + k; DNS on base + 99).
pub fn prepare(spec: &NetSpec, dir: &Path, base_port: u16, now_ms: u64) -> anyhow::Result<Network> {
    if manifest(dir).exists() {
        let net: Network = serde_json::from_str(&std::fs::read_to_string(manifest(dir))?)?;
        if net.spec != spec.name {
            bail!(
                "{} holds a {:?} network, not {:?}",
                dir.display(),
                net.spec,
                spec.name
            );
        }
        return Ok(net);
    }
    std::fs::create_dir_all(dir)?;
    let token = testnet::random_token()?;
    let mut files = Vec::new();
    for (i, c) in spec.chains.iter().enumerate() {
        let chain =
            ChainId::parse(&c.id).map_err(|e| anyhow::anyhow!("chain id {:?}: {e}", c.id))?;
        let t = testnet::TestnetSpec {
            dir: dir.join(&c.id),
            chain,
            producers: c.producers,
            ports: (0..c.producers)
                .map(|k| base_port + 10 * i as u16 + k as u16)
                .collect(),
            interval_ms: spec.interval_ms,
            faucet_balance: 1_000_000_000_000,
            producer_stake: 1_000_000,
            params: distpos_chain::ChainParams {
                forwarding: spec.forwarding,
                max_hops: spec.max_hops.unwrap_or(4),
                transit_fee: spec.transit_fee,
                ..distpos_chain::ChainParams::default()
            },
            api_token: Some(token.clone()),
        };
        files.push((chain, testnet::init(&t, now_ms)?));
    }
    let refs: Vec<&testnet::TestnetFiles> = files.iter().map(|(_, f)| f).collect();
    let index = |id: &str| spec.chains.iter().position(|c| c.id == id);
    let pairs: Vec<(usize, usize)> = match &spec.links {
        Some(links) => links
            .iter()
            .filter_map(|[a, b]| Some((index(a)?, index(b)?)))
            .collect(),
        None => (0..refs.len())
            .flat_map(|i| (i + 1..refs.len()).map(move |j| (i, j)))
            .collect(),
    };
    let dns = if spec.discovery == "dns" {
        let zone = spec.zone.clone().unwrap_or_else(|| "chains.test".into());
        let port = base_port + 99;
        let resolver = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        testnet::link_pairs(
            &refs,
            &pairs,
            spec.low_watermark,
            &testnet::Discovery::Dns {
                zone: zone.clone(),
                resolver,
            },
        )?;
        let conf = dir.join("dnsmasq.conf");
        std::fs::write(
            &conf,
            testnet::dns_zone_with_via(&refs, &zone, 30, &spec.dns_via)?,
        )?;
        Some((conf, port))
    } else {
        testnet::link_pairs(
            &refs,
            &pairs,
            spec.low_watermark,
            &testnet::Discovery::Static,
        )?;
        None
    };
    for (c, (_, f)) in spec.chains.iter().zip(&files) {
        testnet::add_via(f, &c.via)?;
    }
    let net = Network {
        spec: spec.name.clone(),
        chains: files
            .into_iter()
            .map(|(chain, f)| LaunchedChain {
                chain,
                urls: f.urls,
                configs: f.configs,
                faucet_key: f.faucet_key,
                genesis: f.genesis,
            })
            .collect(),
        dns,
        api_token: Some(token),
    };
    // It holds the operator token: the owner's only.
    distpos_gateway::keyfile::write_private(
        &manifest(dir),
        &(serde_json::to_string_pretty(&net)? + "\n"),
    )?;
    Ok(net)
}

/// The first of `len` consecutive free TCP ports on 127.0.0.1 (a network's base
/// port: chain i, node k at base + 10·i + k, DNS at base + 99), chosen below the
/// kernel's ephemeral range: a port freed by a killed node must not become the source
/// port of some outgoing connection before the node comes back, or it could not
/// listen again.
pub fn free_port_range(len: u16) -> anyhow::Result<u16> {
    const LOWEST: u16 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|lo| *lo > LOWEST.saturating_add(len).saturating_add(100))
        .unwrap_or(32_768);
    // Ranges handed out by this process, not bound yet by the nodes they are for.
    static GIVEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    let span = ephemeral - len - LOWEST;
    for _ in 0..200 {
        let mut r = [0u8; 2];
        getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let p = LOWEST + u16::from_le_bytes(r) % span;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let overlaps = given.iter().any(|(a, n)| p < a + n && *a < p + len);
        if !overlaps && (0..len).all(|k| std::net::TcpListener::bind(("127.0.0.1", p + k)).is_ok())
        {
            given.push((p, len));
            return Ok(p);
        }
    }
    bail!("no {len} consecutive free ports on 127.0.0.1 below {ephemeral}")
}

/// Whether a node answers.
pub async fn answers(http: &reqwest::Client, url: &str) -> bool {
    matches!(http.get(format!("{url}/v1/status")).send().await, Ok(r) if r.status().is_success())
}

/// Starts every node (and dnsmasq) that is not already running; returns once all answer.
pub async fn start(net: &Network, dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the distpos executable")?;
    start_with(net, dir, &exe).await
}

/// Like [`start`], running nodes with the `distpos` executable at `exe`.
pub async fn start_with(net: &Network, dir: &Path, exe: &Path) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    // Only processes that are still ours: a PID left by a crash may belong to anything
    // by now.
    let mut pids: Vec<u32> = read_pids(dir)
        .into_iter()
        .filter(|p| is_ours(*p, &markers(net)))
        .collect();
    if let Some((conf, port)) = &net.dns {
        let dnsmasq = find_dnsmasq().context(
            "the trio network needs dnsmasq for DNS discovery: apt-get install -y dnsmasq-base",
        )?;
        let log = std::fs::File::create(dir.join("dnsmasq.log"))?;
        let child = Command::new(dnsmasq)
            .args([
                "-k",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
            ])
            .args([
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--log-facility=-",
            ])
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start dnsmasq")?;
        pids.push(child.id());
    }
    for c in &net.chains {
        for (k, (cfg, url)) in c.configs.iter().zip(&c.urls).enumerate() {
            if answers(&http, url).await {
                continue;
            }
            let log_path = cfg.parent().unwrap_or(dir).join(format!("node-{k}.log"));
            let child = spawn_node(exe, cfg, &log_path)
                .with_context(|| format!("cannot start node {k} of chain {}", c.chain))?;
            pids.push(child.id());
        }
    }
    std::fs::write(
        dir.join("pids"),
        pids.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    for c in &net.chains {
        for url in &c.urls {
            let mut tries = 0;
            while !answers(&http, url).await {
                tries += 1;
                if tries > 300 {
                    bail!(
                        "node {url} did not start; see its log under {}",
                        dir.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

fn read_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// What identifies a process `start` started for `net`: a node's config path or
/// dnsmasq's config file, as they stand on its command line.
fn markers(net: &Network) -> Vec<String> {
    net.chains
        .iter()
        .flat_map(|c| c.configs.iter().map(|p| p.display().to_string()))
        .chain(
            net.dns
                .iter()
                .map(|(conf, _)| format!("--conf-file={}", conf.display())),
        )
        .collect()
}

/// Whether `pid` is alive and runs with one of `markers` as an argument (read from
/// `/proc/<pid>/cmdline`): the launcher never signals a process it did not start.
fn is_ours(pid: u32, markers: &[String]) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    cmdline
        .split(|b| *b == 0)
        .filter_map(|a| std::str::from_utf8(a).ok())
        .any(|a| markers.iter().any(|m| m == a))
}

/// Stops every process `start` started in `dir` (SIGTERM, then SIGKILL after 5 s),
/// after checking that each PID still runs one of the network's nodes (or its
/// dnsmasq); PIDs that died or now belong to something else are left alone.
pub fn stop(dir: &Path) -> anyhow::Result<usize> {
    let net: Option<Network> = std::fs::read_to_string(manifest(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let markers = net.as_ref().map(markers).unwrap_or_default();
    let pids: Vec<u32> = read_pids(dir)
        .into_iter()
        .filter(|p| is_ours(*p, &markers))
        .collect();
    let signal = |sig: &str, pid: u32| {
        let _ = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    };
    for pid in &pids {
        signal("-TERM", *pid);
    }
    for _ in 0..50 {
        if !pids.iter().any(|p| is_ours(*p, &markers)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in pids.iter().filter(|p| is_ours(**p, &markers)) {
        signal("-KILL", *pid);
    }
    let _ = std::fs::remove_file(dir.join("pids"));
    Ok(pids.len())
}

/// Starts `exe node --config cfg`, appending its output to `log`.
pub fn spawn_node(exe: &Path, cfg: &Path, log: &Path) -> anyhow::Result<std::process::Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot start a node on {}", cfg.display()))
}

/// Finds dnsmasq in PATH or the usual sbin folders.
pub fn find_dnsmasq() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DISTPOS_DNSMASQ") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(PathBuf::from)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/local/sbin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
}

/// The faucet key of a launched chain.
pub fn faucet(c: &LaunchedChain) -> anyhow::Result<distpos_proofs::SecretKey> {
    Ok(keyfile::read(&c.faucet_key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_processes_started_for_the_network_are_ours() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        // Until the child has exec'ed, its command line is still ours (the test's).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !is_ours(pid, &["30".to_string()]) {
            assert!(
                std::time::Instant::now() < deadline,
                "sleep 30 never showed up"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !is_ours(pid, &["/some/net/node-0.toml".to_string()]),
            "a reused PID running something else is not ours"
        );
        let _ = child.kill();
        let _ = child.wait();
        assert!(!is_ours(pid, &["30".to_string()]), "a dead PID is not ours");
    }

    #[test]
    fn stop_leaves_foreign_pids_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut stranger = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let net = Network {
            spec: "duo".into(),
            chains: vec![],
            dns: None,
            api_token: None,
        };
        std::fs::write(
            manifest(dir.path()),
            serde_json::to_string(&net).expect("json"),
        )
        .expect("manifest");
        std::fs::write(dir.path().join("pids"), format!("{}\n", stranger.id())).expect("pids");
        assert_eq!(stop(dir.path()).expect("stop"), 0);
        assert!(
            matches!(stranger.try_wait(), Ok(None)),
            "a process the launcher did not start keeps running"
        );
        let _ = stranger.kill();
        let _ = stranger.wait();
    }
}
