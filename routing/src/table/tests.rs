//! Unit tests of the route table that need no DNS server.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use super::*;
use crate::DnsConfig;

const US: ChainId = ChainId(0xe2e4);
const BEEF: ChainId = ChainId(0xbeef);
const CAFE: ChainId = ChainId(0xcafe);

fn ep(url: &str, priority: u16, weight: u16) -> StaticEndpoint {
    StaticEndpoint {
        url: url.into(),
        priority,
        weight,
    }
}

/// A UDP port on which nothing listens (bound once, then released).
fn dead_dns(timeout_ms: u64) -> DnsConfig {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    DnsConfig {
        zone: "chains.test".into(),
        resolver: SocketAddr::from(([127, 0, 0, 1], port)),
        timeout_ms,
    }
}

fn table_with(static_routes: &[(&str, Vec<StaticEndpoint>)], dns: Option<DnsConfig>) -> RouteTable {
    let config = RoutingConfig {
        static_routes: static_routes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        dns,
        ..RoutingConfig::default()
    };
    let table = RouteTable::new(US, &config).unwrap();
    table.lock().rng = fastrand::Rng::with_seed(42);
    table
}

fn urls(endpoints: &[Endpoint]) -> Vec<&str> {
    endpoints.iter().map(|e| e.url.as_str()).collect()
}

#[test]
fn the_table_can_be_shared_and_resolve_spawned() {
    fn is_send_sync<T: Send + Sync + 'static>() {}
    fn is_send<T: Send>(_: &T) {}
    is_send_sync::<RouteTable>();
    let table = table_with(&[], None);
    let fut = table.resolve(BEEF, None, 0);
    is_send(&fut);
}

#[test]
fn check_forward_refuses_our_chain_and_too_many_hops() {
    let table = table_with(&[], None);
    assert_eq!(table.check_forward(US, 0), Err(RoutingError::OwnChain(US)));
    assert_eq!(
        table.check_forward(ChainId::LOCAL, 0),
        Err(RoutingError::OwnChain(ChainId::LOCAL))
    );
    assert_eq!(table.check_forward(BEEF, 4), Ok(()));
    assert_eq!(
        table.check_forward(BEEF, 5),
        Err(RoutingError::TooManyHops { hops: 5, max: 4 })
    );
}

#[tokio::test]
async fn own_chain_and_unknown_chain_without_dns() {
    let table = table_with(&[("beef", vec![ep("http://b:1", 10, 1)])], None);
    assert_eq!(
        table.resolve(US, None, 0).await,
        Err(RoutingError::OwnChain(US))
    );
    assert_eq!(
        table.resolve(CAFE, None, 0).await,
        Err(RoutingError::NoRoute(CAFE))
    );
}

#[tokio::test]
async fn static_routes_come_in_priority_order() {
    let table = table_with(
        &[(
            "beef",
            vec![
                ep("http://p30:1", 30, 1),
                ep("http://p10:1", 10, 1),
                ep("http://p20a:1", 20, 5),
                ep("http://p20b:1", 20, 5),
            ],
        )],
        None,
    );
    for _ in 0..50 {
        let got = table.resolve(BEEF, None, 0).await.unwrap();
        let prios: Vec<u16> = got.iter().map(|e| e.priority).collect();
        assert_eq!(prios, [10, 20, 20, 30]);
        assert!(got.iter().all(|e| e.source == RouteSource::Static));
    }
}

/// Static routes override DNS entirely: with DNS pointed at a dead server, a chain with
/// a static route resolves at once and DNS is never asked, even with an identity
/// expected (static routes are the operator's word).
#[tokio::test]
async fn static_route_never_queries_dns() {
    let table = table_with(
        &[("beef", vec![ep("http://b:1", 10, 1)])],
        Some(dead_dns(5_000)),
    );
    let started = Instant::now();
    let got = table.resolve(BEEF, Some(Hash32([1; 32])), 0).await.unwrap();
    assert_eq!(urls(&got), ["http://b:1"]);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(table.dns_stats(), DnsStats::default());
}

#[tokio::test]
async fn override_beats_static_until_cleared() {
    let table = table_with(&[("beef", vec![ep("http://static:1", 10, 1)])], None);
    table
        .set_override(BEEF, vec![ep("http://override:1", 10, 1)])
        .unwrap();
    let got = table.resolve(BEEF, None, 0).await.unwrap();
    assert_eq!(urls(&got), ["http://override:1"]);
    assert_eq!(got[0].source, RouteSource::Override);
    assert!(table.clear_override(BEEF));
    assert!(!table.clear_override(BEEF));
    let got = table.resolve(BEEF, None, 0).await.unwrap();
    assert_eq!(urls(&got), ["http://static:1"]);

    // An override also gives a route to a chain with none.
    table
        .set_override(CAFE, vec![ep("http://c:1", 1, 1)])
        .unwrap();
    assert_eq!(
        urls(&table.resolve(CAFE, None, 0).await.unwrap()),
        ["http://c:1"]
    );
}

#[test]
fn bad_overrides_are_refused() {
    let table = table_with(&[], None);
    assert_eq!(
        table.set_override(US, vec![ep("http://x:1", 1, 1)]),
        Err(RoutingError::OwnChain(US))
    );
    match table.set_override(BEEF, vec![ep("tcp://x:1", 1, 1)]) {
        Err(RoutingError::Config(msg)) => {
            assert!(msg.starts_with("override.beef[0].url:"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        table.set_override(BEEF, vec![]),
        Err(RoutingError::Config(msg)) if msg == "override.beef: has no endpoints"
    ));
}

#[tokio::test]
async fn down_endpoints_go_last_until_their_retry_time() {
    let table = table_with(
        &[(
            "beef",
            vec![
                ep("http://first:1", 10, 1),
                ep("http://second:1", 20, 1),
                ep("http://third:1", 30, 1),
            ],
        )],
        None,
    );
    table.report_failure("http://first:1", 1_000);
    table.report_failure("http://second:1", 1_000);
    let got = table.resolve(BEEF, None, 1_500).await.unwrap();
    // Healthy first, then the down ones, still in priority order among themselves.
    assert_eq!(
        urls(&got),
        ["http://third:1", "http://first:1", "http://second:1"]
    );
    // Backoff of one failure is 1000 ms: at 2000 both are due again.
    let got = table.resolve(BEEF, None, 2_000).await.unwrap();
    assert_eq!(
        urls(&got),
        ["http://first:1", "http://second:1", "http://third:1"]
    );
    // A second failure doubles the backoff; a success clears it.
    table.report_failure("http://first:1", 2_000);
    table.report_success("http://second:1", 12, 2_000);
    let got = table.resolve(BEEF, None, 3_999).await.unwrap();
    assert_eq!(
        urls(&got),
        ["http://second:1", "http://third:1", "http://first:1"]
    );
}

#[test]
fn backoff_doubles_and_caps_through_report_failure() {
    let config = RoutingConfig {
        static_routes: [("beef".to_owned(), vec![ep("http://b:1", 1, 1)])].into(),
        backoff_base_ms: 100,
        backoff_max_ms: 500,
        ..RoutingConfig::default()
    };
    let table = RouteTable::new(US, &config).unwrap();
    let mut retry = Vec::new();
    for _ in 0..5 {
        table.report_failure("http://b:1", 10_000);
        let view = table.snapshot_chain(BEEF, 10_000).unwrap();
        retry.push(view.endpoints[0].retry_at_ms.unwrap() - 10_000);
    }
    assert_eq!(retry, [100, 200, 400, 500, 500]);
}

#[tokio::test]
async fn snapshot_lists_every_known_route_with_health() {
    let table = table_with(
        &[(
            "beef",
            vec![ep("http://b2:1", 20, 1), ep("http://b1:1", 10, 3)],
        )],
        Some(dead_dns(5_000)),
    );
    table
        .set_override(CAFE, vec![ep("http://c:1", 5, 0)])
        .unwrap();
    table.report_failure("http://b1:1", 1_000);
    table.report_success("http://b2:1", 42, 900);
    // A cached DNS answer and a cached "no such chain", as resolve would leave them.
    {
        let mut state = table.lock();
        state.dns_cache.insert(
            ChainId(0xd0),
            DnsEntry::Positive {
                endpoints: vec![Endpoint {
                    url: "http://127.0.0.1:7701".into(),
                    priority: 10,
                    weight: 1,
                    source: RouteSource::Dns,
                }],
                identity: TxtIdentity::Absent,
                expires_at_ms: 6_000,
            },
        );
        state.dns_cache.insert(
            ChainId(0xdead),
            DnsEntry::Negative {
                expires_at_ms: 5_000,
            },
        );
    }

    let views = table.snapshot(1_500);
    let chains: Vec<String> = views.iter().map(|v| v.chain.to_string()).collect();
    assert_eq!(chains, ["d0", "beef", "cafe", "dead"]);

    let beef = &views[1];
    assert_eq!(urls_of(beef), ["http://b1:1", "http://b2:1"]);
    assert_eq!(beef.endpoints[0].health, "down");
    assert_eq!(beef.endpoints[0].retry_at_ms, Some(2_000));
    assert_eq!(beef.endpoints[0].failures, 1);
    assert_eq!(beef.endpoints[0].last_failure_ms, Some(1_000));
    assert_eq!(beef.endpoints[1].health, "up");
    assert_eq!(beef.endpoints[1].latency_ms, Some(42));
    assert_eq!(beef.endpoints[1].last_success_ms, Some(900));
    assert_eq!(beef.dns_ttl_left_ms, None);
    assert!(!beef.negative);

    assert_eq!(views[0].dns_ttl_left_ms, Some(4_500));
    assert_eq!(views[0].endpoints[0].source, RouteSource::Dns);
    assert_eq!(views[2].endpoints[0].source, RouteSource::Override);
    assert!(views[3].negative && views[3].endpoints.is_empty());

    // Once the negative answer expires it is no longer shown; the positive one stays
    // (as the outage fallback) with no TTL left.
    let later = table.snapshot(7_000);
    assert!(later.iter().all(|v| v.chain != ChainId(0xdead)));
    assert_eq!(
        table
            .snapshot_chain(ChainId(0xd0), 7_000)
            .unwrap()
            .dns_ttl_left_ms,
        Some(0)
    );
    assert!(table.snapshot_chain(ChainId(0x99), 0).is_none());

    let json = serde_json::to_value(&views[1]).unwrap();
    assert_eq!(json["chain"], "beef");
    assert_eq!(json["endpoints"][0]["source"], "static");
    assert_eq!(json["endpoints"][0]["health"], "down");
    assert_eq!(json["endpoints"][0]["retry_at_ms"], 2_000);
}

fn urls_of(view: &RouteView) -> Vec<&str> {
    view.endpoints.iter().map(|e| e.url.as_str()).collect()
}

/// The cache decides without DNS: a fresh answer is used (and its TXT identity checked),
/// a fresh "no such chain" is repeated, and when DNS is down an expired answer is
/// used as a fallback.
#[tokio::test]
async fn cached_dns_answers_are_used_and_checked() {
    let table = table_with(&[], Some(dead_dns(300)));
    let id = Hash32([7; 32]);
    {
        let mut state = table.lock();
        state.dns_cache.insert(
            BEEF,
            DnsEntry::Positive {
                endpoints: vec![Endpoint {
                    url: "http://127.0.0.1:7701".into(),
                    priority: 10,
                    weight: 1,
                    source: RouteSource::Dns,
                }],
                identity: TxtIdentity::Published(vec![id]),
                expires_at_ms: 10_000,
            },
        );
        state.dns_cache.insert(
            CAFE,
            DnsEntry::Negative {
                expires_at_ms: 10_000,
            },
        );
    }
    assert_eq!(table.resolve(BEEF, Some(id), 0).await.unwrap().len(), 1);
    let other = Hash32([8; 32]);
    assert_eq!(
        table.resolve(BEEF, Some(other), 0).await,
        Err(RoutingError::IdentityMismatch {
            chain: BEEF,
            expected: other,
            found: id
        })
    );
    assert_eq!(
        table.resolve(CAFE, None, 0).await,
        Err(RoutingError::NoSuchChain(CAFE))
    );
    assert_eq!(table.dns_stats().lookups, 0);

    // Expired, and the DNS server is dead: the stale answer is served.
    let got = table.resolve(BEEF, Some(id), 20_000).await.unwrap();
    assert_eq!(urls(&got), ["http://127.0.0.1:7701"]);
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 1,
            failures: 1
        }
    );
    // Nothing to fall back on for the expired negative answer: temporary.
    let err = table.resolve(CAFE, None, 20_000).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
}

#[test]
fn the_dns_cache_stays_within_its_bound() {
    let table = RouteTable::new(US, &RoutingConfig::default()).unwrap();
    let mut state = table.lock();
    for i in 0..(MAX_DNS_CACHE as u32 + 10) {
        state.remember(
            ChainId(0x10_0000 + i),
            DnsEntry::Negative {
                expires_at_ms: u64::from(i),
            },
        );
    }
    assert_eq!(state.dns_cache.len(), MAX_DNS_CACHE);
    // What made room were the answers expiring first.
    assert!(!state.dns_cache.contains_key(&ChainId(0x10_0000)));
    assert!(state
        .dns_cache
        .contains_key(&ChainId(0x10_0000 + MAX_DNS_CACHE as u32 + 9)));
    // A positive answer outlives negative ones when room is made.
    state.remember(
        BEEF,
        DnsEntry::Positive {
            endpoints: vec![],
            identity: TxtIdentity::Absent,
            expires_at_ms: 0,
        },
    );
    state.remember(
        CAFE,
        DnsEntry::Negative {
            expires_at_ms: u64::MAX,
        },
    );
    assert!(state.dns_cache.contains_key(&BEEF));
    assert_eq!(state.dns_cache.len(), MAX_DNS_CACHE);
}
