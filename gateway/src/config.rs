//! Node configuration: a TOML file with a default for every field, overridable from the
//! command line. Relative paths are relative to the config file's folder.

use serde::{Deserialize, Serialize};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// Everything a node needs to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where blocks and state are stored (sled).
    pub data_dir: PathBuf,
    /// The chain's genesis file (JSON).
    pub genesis: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Key file of the producer this node signs blocks for (none: a non-producing node).
    pub producer_key: Option<PathBuf>,
    /// Base URLs of this chain's other nodes (block and transaction gossip, sync).
    pub peers: Vec<String>,
    /// Bearer token for operator endpoints (none: operator endpoints are refused).
    pub api_token: Option<String>,
    /// Produce even while participation is below 33% (restarting a halted chain).
    pub stale_production: bool,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Block sync with this chain's other nodes.
    pub sync: SyncConfig,
    /// Log filter (tracing `EnvFilter` syntax), overridden by `RUST_LOG`.
    pub log: String,
    /// Routes to other chains (static and DNS).
    pub routing: distpos_routing::RoutingConfig,
    /// The outbound relay.
    pub relay: RelayConfig,
}

/// The outbound relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Items (deliveries or receipts) sent per destination chain per round of the
    /// relay, in batches of up to 500 per call.
    pub per_destination: usize,
    /// How long an item is retried before it is marked expired.
    pub max_lifetime_ms: u64,
    /// Timeout of one request to a peer chain.
    pub timeout_ms: u64,
    /// Largest response accepted from a peer chain.
    pub max_response_bytes: usize,
    /// How often peer headers are fetched for our light clients.
    pub header_sync_ms: u64,
    /// The interchain protocol: `v2` (a block's transfers in one batch under one
    /// multiproof, DESIGN §6.1), the only one. `v1` (a transaction per transfer) is
    /// retired and refused here with a clear error.
    pub protocol: RelayProtocol,
    /// Relaying duty (DESIGN §6.1): one producer's node relays to each destination at
    /// a time; the others send an item only once it has waited this long unfinished
    /// (its duty holder is down or slow).
    pub takeover_ms: u64,
    /// How long an item that is done (final on both chains) stays in the queue, for
    /// status views and operators, before it is pruned (expired items stay).
    pub retention_ms: u64,
}

/// Which interchain protocol the relay speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayProtocol {
    /// One transaction per transfer (interchain v1): retired. Still parsed, so that
    /// a config naming it is refused with the reason rather than a parse error.
    V1,
    /// Batches under one multiproof as system transactions (DESIGN §6.1).
    #[default]
    V2,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            per_destination: 1_000,
            max_lifetime_ms: 24 * 60 * 60 * 1000,
            timeout_ms: 5_000,
            max_response_bytes: 16 * 1024 * 1024,
            header_sync_ms: 100,
            protocol: RelayProtocol::V2,
            takeover_ms: 10_000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// Mempool limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_txs: usize,
}

/// HTTP server limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Time a request may take.
    pub request_timeout_ms: u64,
    /// Requests served at once; more are refused with 503.
    pub max_concurrency: usize,
    /// Connections held open at once. A connection above it closes the longest-idle
    /// one (no request in progress), or is closed at once when none is idle, so an
    /// anonymous caller can never exhaust the node's file descriptors.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and how long a kept-alive
    /// connection may sit idle between requests.
    pub header_read_timeout_ms: u64,
    /// Requests per second one client (an IPv4 address, an IPv6 /64) may make on
    /// average; beyond its burst it gets 429 with `Retry-After`. 0: no limit.
    pub rate_limit_per_s: u32,
    /// Requests one client may make at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Clients whose rate is tracked at once (the least recently limited are
    /// forgotten first when it is full).
    pub rate_limit_clients: usize,
}

/// Sync with this chain's other nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// How often peers are polled for a longer chain.
    pub interval_ms: u64,
    /// Blocks fetched per request.
    pub batch: u64,
    /// Timeout of one request to a peer.
    pub timeout_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            genesis: PathBuf::from("genesis.json"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            producer_key: None,
            peers: Vec::new(),
            api_token: None,
            stale_production: false,
            mempool: MempoolConfig::default(),
            http: HttpConfig::default(),
            sync: SyncConfig::default(),
            log: "info".into(),
            routing: distpos_routing::RoutingConfig::default(),
            relay: RelayConfig::default(),
        }
    }
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self { max_txs: 100_000 }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 32 * 1024 * 1024,
            request_timeout_ms: 30_000,
            max_concurrency: 512,
            max_connections: 1_024,
            header_read_timeout_ms: 10_000,
            // Generous: a benchmark and this chain's other nodes talk to a node from
            // one address, with many transactions per request; the limit is against a
            // flood of requests, and counts requests, not what is in them.
            rate_limit_per_s: 1_000,
            rate_limit_burst: 2_000,
            rate_limit_clients: 65_536,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            interval_ms: 1_000,
            batch: 50,
            timeout_ms: 10_000,
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a field is wrong (the message names the field).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A value is out of range.
    #[error("config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl NodeConfig {
    /// Loads a config file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        Ok(cfg)
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.genesis);
        if let Some(k) = self.producer_key.as_mut() {
            fix(k);
        }
    }

    /// Checks value ranges; the message names the field (every problem, joined).
    pub fn validate(&self) -> Result<(), String> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Every problem of the values, each naming its field (empty: none). Files the
    /// config names (genesis, key) are not read here: `distpos config check` does.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |bad: bool, message: &str| {
            if bad {
                out.push(message.to_string());
            }
        };
        check(
            self.relay.protocol == RelayProtocol::V1,
            "relay.protocol = \"v1\": interchain v1 (a transaction per transfer) is \
             retired; remove the setting (v2, batches under one multiproof, is the only \
             protocol)",
        );
        check(
            self.mempool.max_txs == 0,
            "mempool.max_txs must be at least 1",
        );
        check(
            self.http.body_limit_bytes < 1024,
            "http.body_limit_bytes must be at least 1024",
        );
        check(
            self.http.request_timeout_ms == 0,
            "http.request_timeout_ms must be positive",
        );
        check(
            self.sync.timeout_ms == 0,
            "sync.timeout_ms must be positive",
        );
        check(
            self.http.max_concurrency == 0,
            "http.max_concurrency must be at least 1",
        );
        check(
            self.http.max_connections == 0,
            "http.max_connections must be positive",
        );
        check(
            self.http.header_read_timeout_ms == 0,
            "http.header_read_timeout_ms must be positive",
        );
        check(
            self.http.rate_limit_per_s > 0
                && (self.http.rate_limit_burst == 0 || self.http.rate_limit_clients == 0),
            "http.rate_limit_burst and http.rate_limit_clients must be positive when \
             http.rate_limit_per_s is set",
        );
        check(
            self.sync.interval_ms == 0,
            "sync.interval_ms must be positive",
        );
        check(self.sync.batch == 0, "sync.batch must be positive");
        check(
            self.relay.per_destination == 0,
            "relay.per_destination must be positive",
        );
        check(
            self.relay.timeout_ms == 0,
            "relay.timeout_ms must be positive",
        );
        check(
            self.relay.header_sync_ms == 0,
            "relay.header_sync_ms must be positive",
        );
        check(
            matches!(&self.api_token, Some(t) if t.len() < 16),
            "api_token must be at least 16 characters",
        );
        for p in &self.peers {
            if p.starts_with("https://") {
                out.push(format!(
                    "peers: {p:?}: https:// is not supported yet (no TLS client); use http://"
                ));
            } else if !p.starts_with("http://") {
                out.push(format!("peers: {p:?} is not an http:// URL"));
            }
        }
        if let Err(e) = check_log_filter(&self.log) {
            out.push(format!("log: {e}"));
        }
        out
    }
}

/// Checks a log filter (tracing `EnvFilter` syntax) strictly: each comma-separated
/// directive is a level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or
/// `target=level`. `EnvFilter` alone would take a misspelt level (`inf`) as a target
/// name and silently log nothing else.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |s: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()));
    if filter.trim().is_empty() {
        return Err("empty filter (e.g. \"info\")".into());
    }
    for d in filter.split(',') {
        let d = d.trim();
        match d.rsplit_once('=') {
            None if is_level(d) => {}
            None => {
                return Err(format!(
                    "{d:?} is neither a level ({}) nor target=level",
                    LEVELS.join(", ")
                ))
            }
            Some((target, level)) if !target.trim().is_empty() && is_level(level) => {}
            Some(_) => {
                return Err(format!(
                    "{d:?}: expected target=level with a level among {}",
                    LEVELS.join(", ")
                ))
            }
        }
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(|_| ())
        .map_err(|e| format!("{filter:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path)
    }

    #[test]
    fn empty_file_gives_defaults_with_resolved_paths() {
        let cfg = load_str("").unwrap();
        assert_eq!(cfg.listen, NodeConfig::default().listen);
        assert!(cfg.data_dir.is_absolute() || cfg.data_dir.starts_with(std::env::temp_dir()));
        assert!(cfg.data_dir.ends_with("data"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = load_str("listen = 5").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e = load_str("no_such_field = 1").unwrap_err().to_string();
        assert!(e.contains("no_such_field"), "{e}");
        let e = load_str("[mempool]\nmax_txs = 0").unwrap_err().to_string();
        assert!(e.contains("mempool.max_txs"), "{e}");
        let e = load_str("peers = [\"ftp://x\"]").unwrap_err().to_string();
        assert!(e.contains("peers"), "{e}");
        let e = load_str("listen = \"not an address\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen") || e.contains("socket address"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let e = load_str("log = \"inf\"\n[mempool]\nmax_txs = 0\n[sync]\nbatch = 0")
            .unwrap_err()
            .to_string();
        for field in ["log:", "mempool.max_txs", "sync.batch"] {
            assert!(e.contains(field), "{field} in {e}");
        }
    }

    #[test]
    fn log_filters_are_checked_strictly() {
        for good in [
            "info",
            "warn,distpos_gateway=debug",
            "INFO",
            "debug,hyper=off",
        ] {
            assert_eq!(check_log_filter(good), Ok(()), "{good}");
        }
        for bad in ["", "inf", "info,distpos=verbose", "=info", "debug,"] {
            assert!(check_log_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_retired_interchain_v1_is_refused_with_the_reason() {
        let e = load_str("[relay]\nprotocol = \"v1\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("relay.protocol") && e.contains("retired"), "{e}");
        let cfg = load_str("[relay]\nprotocol = \"v2\"").unwrap();
        assert_eq!(cfg.relay.protocol, RelayProtocol::V2);
    }
}
