//! Routing configuration (the `[routing]` part of a node config) and its validation.

use std::{collections::BTreeMap, net::SocketAddr};

use distpos_proofs::ChainId;
use serde::{Deserialize, Serialize};

use crate::RoutingError;

/// Where an endpoint came from. Precedence: override, then static, then DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSource {
    /// `static_routes` in the node config.
    Static,
    /// DNS SRV discovery.
    Dns,
    /// Set at run time by the operator of this node ([`crate::RouteTable::set_override`]).
    Override,
}

impl RouteSource {
    /// The origin the route listings show: `config` (the node config's
    /// `static_routes`), `dns` (discovery) or `override` (set by this node's operator).
    /// `source` keeps its older names (`static` for `config`) for existing clients.
    pub fn origin(self) -> &'static str {
        match self {
            RouteSource::Static => "config",
            RouteSource::Dns => "dns",
            RouteSource::Override => "override",
        }
    }

    /// `Some("node")` for an override: it applies to the node it was set on only, not
    /// to the chain (the chain's other nodes keep their own routes). `None` otherwise.
    pub fn scope(self) -> Option<&'static str> {
        match self {
            RouteSource::Override => Some("node"),
            RouteSource::Static | RouteSource::Dns => None,
        }
    }
}

/// One configured endpoint of another chain's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEndpoint {
    /// Base URL, `http://` (`https://` is refused until the node has a TLS client).
    pub url: String,
    /// RFC 2782 priority: lower is tried first. Default 10.
    #[serde(default = "default_priority")]
    pub priority: u16,
    /// RFC 2782 weight within a priority: higher is picked more often. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u16,
}

fn default_priority() -> u16 {
    10
}

fn default_weight() -> u16 {
    1
}

/// DNS discovery settings: SRV `_distpos._tcp.<chain-hex>.<zone>`, TXT
/// `<chain-hex>.<zone>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// The zone under which chains publish their records, e.g. `chains.example`.
    pub zone: String,
    /// The DNS server to ask (plain UDP, TCP on truncation). Default `127.0.0.1:53`.
    pub resolver: SocketAddr,
    /// Timeout of one DNS query. Default 2000.
    pub timeout_ms: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: String::new(),
            resolver: SocketAddr::from(([127, 0, 0, 1], 53)),
            timeout_ms: 2000,
        }
    }
}

/// How this gateway finds the gateways of other chains (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Chain id (lowercase hex, e.g. `e2e4`) to endpoints. A static route overrides DNS.
    pub static_routes: BTreeMap<String, Vec<StaticEndpoint>>,
    /// DNS discovery; none = static routes only.
    pub dns: Option<DnsConfig>,
    /// Forwarding routes (DESIGN §12): chain id (hex) → the chain id (hex) of the
    /// correspondent that forwards to it, for chains ours has no relation with, e.g.
    /// `via = { "1c3" = "1b2" }`. They override DNS TXT `v=distpos1 via=<chain>`.
    pub via: BTreeMap<String, String>,
    /// Transfers that have passed more gateways than this are refused. Default 4.
    pub max_hops: u8,
    /// First backoff after a failure. Default 1000.
    pub backoff_base_ms: u64,
    /// Backoff ceiling. Default 60000.
    pub backoff_max_ms: u64,
    /// How long an NXDOMAIN ("no such chain") is remembered. Default 30000.
    pub negative_ttl_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            static_routes: BTreeMap::new(),
            dns: None,
            via: BTreeMap::new(),
            max_hops: 4,
            backoff_base_ms: 1000,
            backoff_max_ms: 60_000,
            negative_ttl_ms: 30_000,
        }
    }
}

impl RoutingConfig {
    /// The forwarding routes keyed by parsed chain id; errors name the field.
    pub(crate) fn validate_via(
        &self,
        our_chain: ChainId,
    ) -> Result<BTreeMap<ChainId, ChainId>, RoutingError> {
        let mut out = BTreeMap::new();
        for (key, via) in &self.via {
            let field = format!("via.{key}");
            let chain = ChainId::parse(key)
                .map_err(|e| config_err(&field, &format!("not a chain id: {e}")))?;
            let hop = ChainId::parse(via)
                .map_err(|e| config_err(&field, &format!("{via:?} is not a chain id: {e}")))?;
            if chain.is_local() || chain == our_chain {
                return Err(config_err(&field, "is our own chain"));
            }
            if hop.is_local() || hop == our_chain || hop == chain {
                return Err(config_err(
                    &field,
                    "must name another chain, between ours and the destination",
                ));
            }
            out.insert(chain, hop);
        }
        Ok(out)
    }

    /// Checks every field and returns the static routes keyed by parsed chain id.
    /// Errors name the field, e.g. `static_routes.e2e4[0].url: …`.
    pub(crate) fn validate(
        &self,
        our_chain: ChainId,
    ) -> Result<BTreeMap<ChainId, Vec<StaticEndpoint>>, RoutingError> {
        if self.max_hops == 0 {
            return Err(config_err("max_hops", "must be at least 1"));
        }
        if self.backoff_base_ms == 0 {
            return Err(config_err("backoff_base_ms", "must be at least 1"));
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err(config_err(
                "backoff_max_ms",
                &format!(
                    "must be at least backoff_base_ms ({})",
                    self.backoff_base_ms
                ),
            ));
        }
        if let Some(dns) = &self.dns {
            validate_zone(&dns.zone)?;
            if dns.timeout_ms == 0 {
                return Err(config_err("dns.timeout_ms", "must be at least 1"));
            }
        }
        self.validate_via(our_chain)?;
        let mut routes = BTreeMap::new();
        for (key, endpoints) in &self.static_routes {
            let field = format!("static_routes.{key}");
            let chain = ChainId::parse(key)
                .map_err(|e| config_err(&field, &format!("not a chain id: {e}")))?;
            if chain.is_local() || chain == our_chain {
                return Err(config_err(&field, "is our own chain"));
            }
            validate_endpoints(&field, endpoints)?;
            routes.insert(chain, endpoints.clone());
        }
        Ok(routes)
    }
}

/// Checks a list of endpoints (static routes or an override); `field` names it in errors.
pub(crate) fn validate_endpoints(
    field: &str,
    endpoints: &[StaticEndpoint],
) -> Result<(), RoutingError> {
    if endpoints.is_empty() {
        return Err(config_err(field, "has no endpoints"));
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        validate_url(&format!("{field}[{i}].url"), &endpoint.url)?;
    }
    Ok(())
}

fn validate_url(field: &str, url: &str) -> Result<(), RoutingError> {
    if url.starts_with("https://") {
        return Err(config_err(
            field,
            &format!(
                "{url:?}: https:// is not supported yet (this node's HTTP client has no TLS); \
                 use http://, over a private network or behind a TLS-terminating proxy"
            ),
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| config_err(field, &format!("{url:?} must start with http://")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(config_err(field, &format!("{url:?} is not a valid URL")));
    }
    Ok(())
}

fn validate_zone(zone: &str) -> Result<(), RoutingError> {
    let name = zone.strip_suffix('.').unwrap_or(zone);
    if name.is_empty() {
        return Err(config_err("dns.zone", "must not be empty"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.len() > 200 || !name.split('.').all(label_ok) {
        return Err(config_err(
            "dns.zone",
            &format!("{zone:?} is not a DNS name"),
        ));
    }
    Ok(())
}

fn config_err(field: &str, why: &str) -> RoutingError {
    RoutingError::Config(format!("{field}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: ChainId = ChainId(0xe2e4);

    fn err_of(cfg: &RoutingConfig) -> String {
        match cfg.validate(US) {
            Err(RoutingError::Config(msg)) => msg,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn endpoint(url: &str) -> StaticEndpoint {
        StaticEndpoint {
            url: url.into(),
            priority: 10,
            weight: 1,
        }
    }

    #[test]
    fn defaults_from_an_empty_document() {
        let cfg: RoutingConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, RoutingConfig::default());
        assert_eq!(cfg.max_hops, 4);
        assert_eq!(cfg.backoff_base_ms, 1000);
        assert_eq!(cfg.backoff_max_ms, 60_000);
        assert_eq!(cfg.negative_ttl_ms, 30_000);
        let cfg: RoutingConfig = serde_json::from_str(
            r#"{"static_routes": {"beef": [{"url": "http://a:1"}]}, "dns": {"zone": "z.test"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.static_routes["beef"][0], endpoint("http://a:1"));
        let dns = cfg.dns.unwrap();
        assert_eq!(dns.timeout_ms, 2000);
        assert_eq!(dns.resolver, SocketAddr::from(([127, 0, 0, 1], 53)));
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let e = serde_json::from_str::<RoutingConfig>(r#"{"max_hop": 3}"#).unwrap_err();
        assert!(e.to_string().contains("max_hop"), "{e}");
        let e = serde_json::from_str::<RoutingConfig>(
            r#"{"static_routes": {"beef": [{"url": "http://a", "prio": 1}]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("prio"), "{e}");
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut cfg = RoutingConfig::default();
        cfg.static_routes.insert(
            "beef".into(),
            vec![endpoint("http://ok:1"), endpoint("ftp://x")],
        );
        let msg = err_of(&cfg);
        assert!(msg.starts_with("static_routes.beef[1].url:"), "{msg}");

        let mut cfg = RoutingConfig::default();
        cfg.static_routes
            .insert("0beef".into(), vec![endpoint("http://a")]);
        assert!(err_of(&cfg).starts_with("static_routes.0beef:"));

        let mut cfg = RoutingConfig::default();
        cfg.static_routes
            .insert("e2e4".into(), vec![endpoint("http://a")]);
        assert_eq!(err_of(&cfg), "static_routes.e2e4: is our own chain");

        let mut cfg = RoutingConfig::default();
        cfg.static_routes.insert("beef".into(), vec![]);
        assert_eq!(err_of(&cfg), "static_routes.beef: has no endpoints");

        let cfg = RoutingConfig {
            max_hops: 0,
            ..RoutingConfig::default()
        };
        assert!(err_of(&cfg).starts_with("max_hops:"));

        let cfg = RoutingConfig {
            backoff_max_ms: 10,
            ..RoutingConfig::default()
        };
        assert!(err_of(&cfg).starts_with("backoff_max_ms:"));

        let cfg = RoutingConfig {
            dns: Some(DnsConfig::default()),
            ..RoutingConfig::default()
        };
        assert_eq!(err_of(&cfg), "dns.zone: must not be empty");

        let cfg = RoutingConfig {
            dns: Some(DnsConfig {
                zone: "bad zone".into(),
                ..DnsConfig::default()
            }),
            ..RoutingConfig::default()
        };
        assert!(err_of(&cfg).starts_with("dns.zone:"));

        let cfg = RoutingConfig {
            dns: Some(DnsConfig {
                zone: "chains.test.".into(),
                timeout_ms: 0,
                ..DnsConfig::default()
            }),
            ..RoutingConfig::default()
        };
        assert!(err_of(&cfg).starts_with("dns.timeout_ms:"));
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        for bad in ["", "localhost:7700", "http://", "https:///x", "http://a b"] {
            assert!(validate_url("u", bad).is_err(), "{bad:?}");
        }
        // Refused with its reason rather than failing later as "unreachable".
        let https = validate_url("u", "https://gw.example/base").unwrap_err();
        assert!(https.to_string().contains("no TLS"), "{https}");
        for good in [
            "http://127.0.0.1:7700",
            "http://gw.example/base",
            "http://[::1]:1",
        ] {
            assert!(validate_url("u", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn via_routes_are_checked_and_named_by_field() {
        let with = |k: &str, v: &str| RoutingConfig {
            via: [(k.to_string(), v.to_string())].into(),
            ..RoutingConfig::default()
        };
        assert_eq!(
            with("a4", "a2").validate_via(US).unwrap(),
            [(ChainId(0xa4), ChainId(0xa2))].into()
        );
        assert!(err_of(&with("zz", "a2")).starts_with("via.zz: not a chain id"));
        assert!(err_of(&with("a4", "q")).starts_with("via.a4: \"q\" is not a chain id"));
        assert!(err_of(&with("e2e4", "a2")).contains("our own chain"));
        for bad in ["a4", "e2e4", "0"] {
            assert!(
                err_of(&with("a4", bad)).contains("must name another chain"),
                "{bad}"
            );
        }
    }
}
