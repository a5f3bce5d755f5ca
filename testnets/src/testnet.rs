//! Making chain specs: `distpos testnet init` (N producers, a funded faucet, one config
//! per node) and the one-producer dev chain of `distpos dev`.

use anyhow::{bail, Context};
use distpos_chain::{
    genesis::{GenesisAccount, GenesisProducer},
    ChainParams, Genesis,
};
use distpos_gateway::{config::NodeConfig, keyfile};
use distpos_proofs::ChainId;
use std::path::{Path, PathBuf};

/// Options of `testnet init`.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    /// Output folder.
    pub dir: PathBuf,
    /// Chain id.
    pub chain: ChainId,
    /// Number of producers (one node each).
    pub producers: usize,
    /// HTTP port of each node (127.0.0.1).
    pub ports: Vec<u16>,
    /// Block interval.
    pub interval_ms: u64,
    /// Faucet balance.
    pub faucet_balance: u128,
    /// Producer stake (and balance).
    pub producer_stake: u128,
    /// Extra parameter overrides.
    pub params: ChainParams,
    /// Operator token written into every node config (none: operator endpoints off).
    pub api_token: Option<String>,
}

/// What `testnet init` wrote.
#[derive(Debug)]
pub struct TestnetFiles {
    /// Genesis file.
    pub genesis: PathBuf,
    /// One config per node.
    pub configs: Vec<PathBuf>,
    /// The funded faucet key.
    pub faucet_key: PathBuf,
    /// Node URLs.
    pub urls: Vec<String>,
}

/// Writes keys, a genesis and node configs for a local network.
pub fn init(spec: &TestnetSpec, now_ms: u64) -> anyhow::Result<TestnetFiles> {
    if spec.producers == 0 {
        bail!("--producers must be at least 1");
    }
    if spec.ports.len() != spec.producers {
        bail!(
            "need one port per producer: {} producers, {} ports",
            spec.producers,
            spec.ports.len()
        );
    }
    if spec.dir.join("genesis.json").exists() {
        bail!(
            "{} already holds a network (genesis.json exists)",
            spec.dir.display()
        );
    }
    std::fs::create_dir_all(spec.dir.join("keys"))
        .with_context(|| format!("cannot create {}", spec.dir.display()))?;
    let faucet = keyfile::generate()?;
    let faucet_key = spec.dir.join("keys").join("faucet.json");
    keyfile::write(&faucet_key, &faucet)?;
    let mut producers = Vec::new();
    let mut key_paths = Vec::new();
    for i in 0..spec.producers {
        let key = keyfile::generate()?;
        let path = spec.dir.join("keys").join(format!("producer-{i}.json"));
        keyfile::write(&path, &key)?;
        producers.push(key);
        key_paths.push(path);
    }
    let urls: Vec<String> = spec
        .ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut params = ChainParams {
        block_interval_ms: spec.interval_ms,
        dev: spec.interval_ms < 1000,
        ..spec.params.clone()
    };
    if params.transit_fee > 0 && params.transit_fee_to == distpos_chain::Address::ZERO {
        params.transit_fee_to = keyfile::address(&faucet);
    }
    let genesis = Genesis {
        chain_id: spec.chain,
        genesis_time_ms: now_ms - now_ms % spec.interval_ms.max(1),
        params,
        producers: producers
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisProducer {
                account: keyfile::address(k),
                signing_key: k.public_key(),
                url: urls[i].clone(),
                stake: spec.producer_stake,
            })
            .collect(),
        accounts: std::iter::once(GenesisAccount {
            address: keyfile::address(&faucet),
            balance: spec.faucet_balance,
        })
        .chain(producers.iter().map(|k| GenesisAccount {
            address: keyfile::address(k),
            balance: spec.producer_stake,
        }))
        .collect(),
        peers: Vec::new(),
    };
    genesis
        .validate()
        .context("the generated genesis is invalid")?;
    let genesis_path = spec.dir.join("genesis.json");
    std::fs::write(
        &genesis_path,
        serde_json::to_string_pretty(&genesis)? + "\n",
    )?;
    let mut configs = Vec::new();
    for i in 0..spec.producers {
        let cfg = NodeConfig {
            data_dir: PathBuf::from(format!("node-{i}")),
            genesis: PathBuf::from("genesis.json"),
            listen: ([127, 0, 0, 1], spec.ports[i]).into(),
            producer_key: Some(PathBuf::from(format!("keys/producer-{i}.json"))),
            peers: urls
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, u)| u.clone())
                .collect(),
            api_token: spec.api_token.clone(),
            ..NodeConfig::default()
        };
        let path = spec.dir.join(format!("node-{i}.toml"));
        // It holds the operator token: the owner's only.
        keyfile::write_private(&path, &toml::to_string(&cfg)?)?;
        configs.push(path);
    }
    Ok(TestnetFiles {
        genesis: genesis_path,
        configs,
        faucet_key,
        urls,
    })
}

/// Prepares (once) the one-producer dev chain in `dir` and returns its config.
pub fn dev_config(
    dir: &Path,
    listen: std::net::SocketAddr,
    now_ms: u64,
) -> anyhow::Result<(NodeConfig, PathBuf, bool)> {
    let config_path = dir.join("node-0.toml");
    let fresh = !config_path.exists();
    if fresh {
        let spec = TestnetSpec {
            dir: dir.to_path_buf(),
            chain: ChainId(0xde7),
            producers: 1,
            ports: vec![listen.port()],
            interval_ms: 500,
            faucet_balance: 1_000_000_000_000,
            producer_stake: 1_000_000,
            params: ChainParams::default(),
            api_token: Some(random_token()?),
        };
        init(&spec, now_ms)?;
    }
    let mut cfg = NodeConfig::load(&config_path)?;
    cfg.listen = listen;
    Ok((cfg, dir.join("keys").join("faucet.json"), fresh))
}

/// How a linked network finds its peers.
#[derive(Clone, Debug)]
pub enum Discovery {
    /// Static routes to every other chain's nodes.
    Static,
    /// DNS: SRV/TXT records under `zone`, asked of `resolver`.
    Dns {
        /// The zone (e.g. `chains.test`).
        zone: String,
        /// The DNS server.
        resolver: std::net::SocketAddr,
    },
}

/// Links two networks written by [`init`] with static routes (see [`link_all`]).
pub fn link(a: &TestnetFiles, b: &TestnetFiles, low_watermark: u128) -> anyhow::Result<()> {
    link_all(&[a, b], low_watermark, &Discovery::Static)
}

/// Links networks written by [`init`]: each genesis registers every other chain as a
/// peer (owner: the local faucet; no credit; `low_watermark`), and each node config
/// gets routes to the other chains (static, or DNS). Must run before the nodes first
/// start.
pub fn link_all(
    nets: &[&TestnetFiles],
    low_watermark: u128,
    discovery: &Discovery,
) -> anyhow::Result<()> {
    let pairs: Vec<(usize, usize)> = (0..nets.len())
        .flat_map(|i| (i + 1..nets.len()).map(move |j| (i, j)))
        .collect();
    link_pairs(nets, &pairs, low_watermark, discovery)
}

/// Like [`link_all`], but only the chains of each pair `(i, j)` of `nets` register
/// each other as peers (and get routes to each other); the others reach each other
/// through them, if their routes say so ([`add_via`]).
pub fn link_pairs(
    nets: &[&TestnetFiles],
    pairs: &[(usize, usize)],
    low_watermark: u128,
    discovery: &Discovery,
) -> anyhow::Result<()> {
    let linked = |i: usize, j: usize| pairs.contains(&(i, j)) || pairs.contains(&(j, i));
    let read = |p: &Path| -> anyhow::Result<Genesis> {
        Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?)
    };
    let genesis: Vec<Genesis> = nets
        .iter()
        .map(|n| read(&n.genesis))
        .collect::<Result<_, _>>()?;
    let faucets: Vec<distpos_chain::Address> = nets
        .iter()
        .map(|n| Ok(keyfile::address(&keyfile::read(&n.faucet_key)?)))
        .collect::<anyhow::Result<_>>()?;
    for (i, net) in nets.iter().enumerate() {
        let mut g = genesis[i].clone();
        g.peers.clear();
        for (_, other) in genesis
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i && linked(i, *j))
        {
            g.peers.push(distpos_chain::tx::PeerRegistration {
                chain: other.chain_id,
                identity: other.identity_hash(),
                genesis_time_ms: other.genesis_time_ms,
                block_interval_ms: other.params.block_interval_ms,
                anchor: distpos_proofs::light_client::Checkpoint::genesis(other.schedule())?,
                owner: faucets[i],
                credit_limit: 0,
                low_watermark,
            });
        }
        std::fs::write(&net.genesis, serde_json::to_string_pretty(&g)? + "\n")?;
    }
    add_routes_where(nets, discovery, &linked)
}

/// Adds forwarding routes (destination chain → the correspondent that forwards to
/// it, both hex) to every node config of `net`.
pub fn add_via(
    net: &TestnetFiles,
    via: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if via.is_empty() {
        return Ok(());
    }
    for cfg_path in &net.configs {
        let mut cfg: NodeConfig = toml::from_str(&std::fs::read_to_string(cfg_path)?)?;
        cfg.routing.via.extend(via.clone());
        keyfile::write_private(cfg_path, &toml::to_string(&cfg)?)?;
    }
    Ok(())
}

/// Gives every node of `nets` routes to the other chains (static, or DNS), without
/// registering them as peers (that is governance's: `distpos peer propose`). Must run
/// before the nodes first start.
pub fn add_routes(nets: &[&TestnetFiles], discovery: &Discovery) -> anyhow::Result<()> {
    add_routes_where(nets, discovery, &|_, _| true)
}

/// [`add_routes`] between the chains `i`, `j` of `nets` for which `linked(i, j)`.
fn add_routes_where(
    nets: &[&TestnetFiles],
    discovery: &Discovery,
    linked: &dyn Fn(usize, usize) -> bool,
) -> anyhow::Result<()> {
    let chains: Vec<ChainId> = nets
        .iter()
        .map(|n| {
            let g: Genesis = serde_json::from_str(&std::fs::read_to_string(&n.genesis)?)?;
            Ok(g.chain_id)
        })
        .collect::<anyhow::Result<_>>()?;
    for (i, net) in nets.iter().enumerate() {
        for cfg_path in &net.configs {
            let mut cfg: NodeConfig = toml::from_str(&std::fs::read_to_string(cfg_path)?)?;
            match discovery {
                Discovery::Static => {
                    for (j, other) in nets
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i && linked(i, *j))
                    {
                        cfg.routing.static_routes.insert(
                            chains[j].to_string(),
                            other
                                .urls
                                .iter()
                                .map(|u| distpos_routing::StaticEndpoint {
                                    url: u.clone(),
                                    priority: 10,
                                    weight: 1,
                                })
                                .collect(),
                        );
                    }
                }
                Discovery::Dns { zone, resolver } => {
                    cfg.routing.dns = Some(distpos_routing::DnsConfig {
                        zone: zone.clone(),
                        resolver: *resolver,
                        timeout_ms: 2_000,
                    });
                }
            }
            keyfile::write_private(cfg_path, &toml::to_string(&cfg)?)?;
        }
    }
    Ok(())
}

/// The dnsmasq configuration that publishes `nets` under `zone`: for each chain an
/// SRV record per node (`_distpos._tcp.<chain>.<zone>`), an A record per node, and the
/// TXT identity record (`v=distpos1 id=<identity>`).
pub fn dns_zone(nets: &[&TestnetFiles], zone: &str, ttl_s: u32) -> anyhow::Result<String> {
    dns_zone_with_via(nets, zone, ttl_s, &Default::default())
}

/// [`dns_zone`], with forwarding routes (destination → the chain that forwards to it,
/// hex) added to the destinations' TXT records (`v=distpos1 id=… via=…`).
pub fn dns_zone_with_via(
    nets: &[&TestnetFiles],
    zone: &str,
    ttl_s: u32,
    via: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let mut out = format!("# distpos test zone\nlocal=/{zone}/\nlocal-ttl={ttl_s}\n");
    for net in nets {
        let g: Genesis = serde_json::from_str(&std::fs::read_to_string(&net.genesis)?)?;
        let chain = g.chain_id;
        for (k, url) in net.urls.iter().enumerate() {
            let port = url.rsplit(':').next().unwrap_or("0");
            let host = format!("node{k}.{chain}.{zone}");
            out.push_str(&format!("host-record={host},127.0.0.1\n"));
            out.push_str(&format!(
                "srv-host=_distpos._tcp.{chain}.{zone},{host},{port},10,1\n"
            ));
        }
        let via_tag = via
            .get(&chain.to_string())
            .map(|v| format!(" via={v}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "txt-record={chain}.{zone},\"v=distpos1 id={}{via_tag}\"\n",
            g.identity_hash()
        ));
    }
    Ok(out)
}

/// A random operator token (32 hex characters).
pub fn random_token() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(b))
}
