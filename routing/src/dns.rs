//! DNS discovery: SRV `_distpos._tcp.<chain-hex>.<zone>` for endpoints, TXT
//! `<chain-hex>.<zone>` for the chain identity. No caching here (the route table caches
//! with the records' TTL); this module only asks and classifies the answers.

use std::{collections::HashMap, net::IpAddr, time::Duration};

use distpos_proofs::{ChainId, Hash32};
use hickory_resolver::{
    config::{NameServerConfigGroup, ResolveHosts, ResolverConfig},
    name_server::TokioConnectionProvider,
    proto::{
        op::ResponseCode,
        rr::{RData, RecordType},
        ProtoErrorKind,
    },
    Name, ResolveError, TokioResolver,
};

use crate::{DnsConfig, Endpoint, RouteSource};

/// Longest TTL we honour: a day, like hickory's own cache ceiling.
const MAX_TTL_S: u32 = 86_400;

/// A successful discovery round.
#[derive(Debug, Clone)]
pub(crate) struct DnsAnswer {
    /// Endpoints in wire order (the table orders them).
    pub(crate) endpoints: Vec<Endpoint>,
    /// What the TXT record says about the chain's identity.
    pub(crate) identity: TxtIdentity,
    /// Minimum TTL of the records used, in milliseconds.
    pub(crate) ttl_ms: u64,
}

/// The `v=distpos1 id=` TXT record, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxtIdentity {
    /// Valid identities published (normally exactly one).
    Published(Vec<Hash32>),
    /// No valid `v=distpos1 id=` record.
    Absent,
    /// The TXT lookup failed temporarily; we cannot tell.
    Unknown(String),
}

/// Why a discovery round produced no endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DnsFailure {
    /// Permanent: NXDOMAIN, NODATA, or an SRV target of "."; the text says which.
    NoSuchChain(String),
    /// Timeout, SERVFAIL, refused, unreachable server, targets that do not resolve.
    Temporary(String),
}

/// The addresses of one SRV target.
struct TargetAddresses {
    ips: Vec<IpAddr>,
    /// Minimum TTL of the A/AAAA records; `None` for an IP literal target.
    ttl_s: Option<u32>,
}

/// How one DNS error is to be read.
enum Negative {
    NxDomain,
    NoData,
    Temporary(String),
}

/// Asks one DNS server about chains under one zone.
pub(crate) struct DnsDiscovery {
    resolver: TokioResolver,
    zone: String,
}

impl DnsDiscovery {
    /// A resolver that asks only `config.resolver`, once per query, and caches nothing.
    pub(crate) fn new(config: &DnsConfig) -> Self {
        let servers = NameServerConfigGroup::from_ips_clear(
            &[config.resolver.ip()],
            config.resolver.port(),
            true,
        );
        let resolver_config = ResolverConfig::from_parts(None, vec![], servers);
        let mut builder =
            TokioResolver::builder_with_config(resolver_config, TokioConnectionProvider::default());
        let opts = builder.options_mut();
        opts.timeout = Duration::from_millis(config.timeout_ms);
        opts.attempts = 1;
        opts.use_hosts_file = ResolveHosts::Never;
        // We cache ourselves, with the record TTLs and our own clock (`now_ms`); a second
        // cache underneath would hide changed records. Size 0 plus zero max TTLs makes sure.
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        let zone = config.zone.trim_end_matches('.').to_ascii_lowercase();
        DnsDiscovery {
            resolver: builder.build(),
            zone,
        }
    }

    /// One discovery round for `chain`: SRV and TXT in parallel, then the SRV targets'
    /// addresses.
    pub(crate) async fn discover(&self, chain: ChainId) -> Result<DnsAnswer, DnsFailure> {
        let srv_name = format!("_distpos._tcp.{chain}.{}.", self.zone);
        let txt_name = format!("{chain}.{}.", self.zone);
        let (srv, txt) = tokio::join!(
            self.resolver.lookup(srv_name.as_str(), RecordType::SRV),
            self.resolver.lookup(txt_name.as_str(), RecordType::TXT),
        );
        let srv = srv.map_err(|e| match classify(&e) {
            Negative::NxDomain => DnsFailure::NoSuchChain(format!("{srv_name} is NXDOMAIN")),
            Negative::NoData => DnsFailure::NoSuchChain(format!(
                "{srv_name} exists but has no SRV records (NODATA)"
            )),
            Negative::Temporary(why) => DnsFailure::Temporary(format!("SRV {srv_name}: {why}")),
        })?;

        let mut ttl_s = MAX_TTL_S;
        let mut targets = Vec::new();
        for record in srv.records() {
            if let RData::SRV(s) = record.data() {
                ttl_s = ttl_s.min(record.ttl());
                targets.push((s.priority(), s.weight(), s.port(), s.target().clone()));
            }
        }
        if targets.is_empty() {
            return Err(DnsFailure::NoSuchChain(format!(
                "{srv_name} has no SRV records"
            )));
        }
        targets.retain(|t| !t.3.is_root());
        if targets.is_empty() {
            return Err(DnsFailure::NoSuchChain(format!(
                "{srv_name} has target \".\": service decidedly not available"
            )));
        }

        let mut addresses: HashMap<Name, Result<TargetAddresses, String>> = HashMap::new();
        let mut endpoints = Vec::new();
        let mut unresolved = Vec::new();
        for (priority, weight, port, target) in targets {
            if !addresses.contains_key(&target) {
                let found = self.addresses_of(&target).await;
                addresses.insert(target.clone(), found);
            }
            match addresses.get(&target) {
                Some(Ok(TargetAddresses { ips, ttl_s: ttl })) => {
                    if let Some(ttl) = ttl {
                        ttl_s = ttl_s.min(*ttl);
                    }
                    // A target with several addresses shares its weight between them,
                    // so it is not picked more often than a single-address target.
                    let n = u16::try_from(ips.len()).unwrap_or(u16::MAX).max(1);
                    let share = if weight == 0 { 0 } else { weight.div_ceil(n) };
                    endpoints.extend(ips.iter().map(|ip| Endpoint {
                        url: http_url(*ip, port),
                        priority,
                        weight: share,
                        source: RouteSource::Dns,
                    }));
                }
                Some(Err(why)) => unresolved.push(format!("{target}: {why}")),
                None => {}
            }
        }
        if endpoints.is_empty() {
            return Err(DnsFailure::Temporary(format!(
                "no SRV target of {srv_name} resolves to an address ({})",
                unresolved.join("; ")
            )));
        }
        if !unresolved.is_empty() {
            tracing::warn!(%chain, unresolved = %unresolved.join("; "), "some SRV targets do not resolve");
        }

        let identity = match txt {
            Ok(lookup) => {
                let mut ids = Vec::new();
                for (text, ttl) in txt_texts(&lookup) {
                    match parse_identity(&text) {
                        Some(Ok(id)) => {
                            ttl_s = ttl_s.min(ttl);
                            ids.push(id);
                        }
                        Some(Err(())) => {
                            tracing::warn!(%chain, txt = %text, "malformed distpos TXT record ignored");
                        }
                        None => {}
                    }
                }
                if ids.is_empty() {
                    TxtIdentity::Absent
                } else {
                    TxtIdentity::Published(ids)
                }
            }
            Err(e) => match classify(&e) {
                Negative::NxDomain | Negative::NoData => TxtIdentity::Absent,
                Negative::Temporary(why) => TxtIdentity::Unknown(format!("TXT {txt_name}: {why}")),
            },
        };

        Ok(DnsAnswer {
            endpoints,
            identity,
            ttl_ms: u64::from(ttl_s.min(MAX_TTL_S)) * 1000,
        })
    }

    /// The forwarding chain a TXT record `<chain>.<zone>` names (`v=distpos1
    /// via=<chain>`), and the TTL to cache the answer for. No record, or none naming
    /// a chain: `Ok((None, ttl))`.
    pub(crate) async fn via(&self, chain: ChainId) -> Result<(Option<ChainId>, u64), DnsFailure> {
        let txt_name = format!("{chain}.{}.", self.zone);
        match self
            .resolver
            .lookup(txt_name.as_str(), RecordType::TXT)
            .await
        {
            Ok(lookup) => {
                let mut ttl_s = MAX_TTL_S;
                let mut via = None;
                for (text, ttl) in txt_texts(&lookup) {
                    if let Some(v) = parse_via(&text) {
                        ttl_s = ttl_s.min(ttl);
                        via.get_or_insert(v);
                    }
                }
                Ok((via, u64::from(ttl_s) * 1000))
            }
            Err(e) => match classify(&e) {
                Negative::NxDomain | Negative::NoData => Ok((None, 30_000)),
                Negative::Temporary(why) => {
                    Err(DnsFailure::Temporary(format!("TXT {txt_name}: {why}")))
                }
            },
        }
    }

    /// Addresses of an SRV target and the minimum TTL of their records (`None` for an IP
    /// literal, which needs no lookup).
    async fn addresses_of(&self, target: &Name) -> Result<TargetAddresses, String> {
        let text = target.to_ascii();
        let bare = text.trim_end_matches('.');
        let bare = bare
            .strip_prefix('[')
            .and_then(|b| b.strip_suffix(']'))
            .unwrap_or(bare);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(TargetAddresses {
                ips: vec![ip],
                ttl_s: None,
            });
        }
        let lookup =
            self.resolver
                .lookup_ip(target.clone())
                .await
                .map_err(|e| match classify(&e) {
                    Negative::NxDomain => "NXDOMAIN".to_owned(),
                    Negative::NoData => "no A/AAAA records".to_owned(),
                    Negative::Temporary(why) => why,
                })?;
        let mut ips = Vec::new();
        let mut ttl = MAX_TTL_S;
        for record in lookup.as_lookup().records() {
            let ip = match record.data() {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            ttl = ttl.min(record.ttl());
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if ips.is_empty() {
            return Err("no A/AAAA records".to_owned());
        }
        Ok(TargetAddresses {
            ips,
            ttl_s: Some(ttl),
        })
    }
}

/// The text of each TXT record of `lookup` (its strings joined) with its TTL.
fn txt_texts(lookup: &hickory_resolver::lookup::Lookup) -> Vec<(String, u32)> {
    lookup
        .records()
        .iter()
        .filter_map(|record| {
            let RData::TXT(t) = record.data() else {
                return None;
            };
            let bytes: Vec<u8> = t
                .txt_data()
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            Some((String::from_utf8_lossy(&bytes).into_owned(), record.ttl()))
        })
        .collect()
}

/// Tells NXDOMAIN (by response code) from NODATA from everything else.
fn classify(err: &ResolveError) -> Negative {
    if let Some(proto) = err.proto() {
        if let ProtoErrorKind::NoRecordsFound { response_code, .. } = proto.kind() {
            return match *response_code {
                ResponseCode::NXDomain => Negative::NxDomain,
                ResponseCode::NoError => Negative::NoData,
                code => Negative::Temporary(format!("server answered {code}")),
            };
        }
    }
    Negative::Temporary(err.to_string())
}

/// `http://<ip>:<port>`, IPv6 in brackets.
fn http_url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// Parses the `via=<chain>` tag of a `v=distpos1` record: `None` when the text is not
/// a distpos record or names no (valid) forwarding chain.
pub(crate) fn parse_via(text: &str) -> Option<ChainId> {
    let mut tags = text.split_ascii_whitespace();
    if tags.next() != Some("v=distpos1") {
        return None;
    }
    tags.find_map(|tag| tag.strip_prefix("via="))
        .and_then(|hex| ChainId::parse(hex).ok())
        .filter(|c| !c.is_local())
}

/// Parses `v=distpos1 id=0x<64 hex>`: `None` when the text is not a distpos record,
/// `Some(Err)` when it is one but carries no valid id. Unknown extra tags are ignored.
pub(crate) fn parse_identity(text: &str) -> Option<Result<Hash32, ()>> {
    let mut tags = text.split_ascii_whitespace();
    if tags.next() != Some("v=distpos1") {
        return None;
    }
    let id = tags
        .find_map(|tag| tag.strip_prefix("id="))
        .and_then(|hex| hex.parse::<Hash32>().ok());
    Some(id.ok_or(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_records_parse() {
        let id = Hash32([0xab; 32]);
        assert_eq!(parse_identity(&format!("v=distpos1 id={id}")), Some(Ok(id)));
        assert_eq!(
            parse_identity(&format!("v=distpos1  x=1 id={id} y")),
            Some(Ok(id))
        );
        assert_eq!(parse_identity("v=spf1 -all"), None);
        assert_eq!(parse_identity(""), None);
        assert_eq!(parse_identity("v=distpos1"), Some(Err(())));
        assert_eq!(parse_identity("v=distpos1 id=0x1234"), Some(Err(())));
        assert_eq!(parse_identity(&format!("v=distpos2 id={id}")), None);
    }

    #[test]
    fn via_records_parse() {
        assert_eq!(parse_via("v=distpos1 via=1b2"), Some(ChainId(0x1b2)));
        assert_eq!(
            parse_via(&format!("v=distpos1 id={} via=e2e4", Hash32([1; 32]))),
            Some(ChainId(0xe2e4))
        );
        assert_eq!(parse_via("v=distpos1 id=0x12"), None);
        assert_eq!(parse_via("v=distpos1 via=zz"), None);
        assert_eq!(parse_via("v=distpos1 via=0"), None);
        assert_eq!(parse_via("v=spf1 via=1b2"), None);
    }

    #[test]
    fn urls_bracket_ipv6() {
        assert_eq!(
            http_url("127.0.0.1".parse().unwrap(), 7701),
            "http://127.0.0.1:7701"
        );
        assert_eq!(http_url("::1".parse().unwrap(), 80), "http://[::1]:80");
    }
}
