//! DNS discovery against a real `dnsmasq` on 127.0.0.1 (an ephemeral UDP port).
//!
//! dnsmasq must be installed (Debian/Ubuntu: `apt-get install -y dnsmasq-base`, which
//! puts it at `/usr/sbin/dnsmasq`); set `DISTPOS_DNSMASQ=/path/to/dnsmasq` to use
//! another binary. Without it these tests fail, on purpose: DNS discovery is not
//! tested otherwise.
// The dnsmasq harness below is test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fs,
    net::{SocketAddr, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use distpos_proofs::{ChainId, Hash32};
use distpos_routing::{
    DnsConfig, DnsStats, RouteSource, RouteTable, RoutingConfig, RoutingError, StaticEndpoint,
};

const US: ChainId = ChainId(0x1);
const E2E4: ChainId = ChainId(0xe2e4);
const BEEF: ChainId = ChainId(0xbeef);
/// `local-ttl`: the TTL dnsmasq gives srv-host, txt-record and host-record answers.
const TTL_S: u64 = 30;

fn e2e4_identity() -> Hash32 {
    Hash32([0xab; 32])
}

/// The zone most tests use: e2e4 with two SRV records (priorities 10 and 20) and its
/// identity; beef with an SRV record but no TXT; cafe whose SRV name exists without SRV
/// records (NODATA); dead whose SRV target is "." (service not available).
fn base_records(e2e4_port: u16) -> String {
    format!(
        "srv-host=_distpos._tcp.e2e4.chains.test,node2.chains.test,7702,20,1\n\
         srv-host=_distpos._tcp.e2e4.chains.test,node1.chains.test,{e2e4_port},10,1\n\
         host-record=node1.chains.test,127.0.0.1\n\
         host-record=node2.chains.test,127.0.0.2\n\
         txt-record=e2e4.chains.test,\"v=distpos1 id={}\"\n\
         srv-host=_distpos._tcp.beef.chains.test,node1.chains.test,7801,10,1\n\
         txt-record=_distpos._tcp.cafe.chains.test,\"not a service\"\n\
         srv-host=_distpos._tcp.dead.chains.test\n",
        e2e4_identity()
    )
}

/// A dnsmasq process serving `records` under `chains.test`; killed on drop, even when
/// the test panics.
struct Dnsmasq {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts on a free port (retrying if the port was taken meanwhile).
    fn start(records: &str) -> Dnsmasq {
        let mut last_log = String::new();
        for _ in 0..5 {
            let mut server = Dnsmasq {
                child: None,
                port: free_udp_port(),
                dir: tempfile::tempdir().unwrap(),
            };
            match server.spawn(records) {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("dnsmasq did not start on any port; its log:\n{last_log}");
    }

    /// Stops the server and starts it again on the same port with other records.
    fn restart(&mut self, records: &str) {
        self.stop();
        if let Err(log) = self.spawn(records) {
            panic!(
                "dnsmasq did not restart on port {}; its log:\n{log}",
                self.port
            );
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self, records: &str) -> Result<(), String> {
        let conf = self.dir.path().join("dnsmasq.conf");
        let log = self.dir.path().join("dnsmasq.log");
        fs::write(
            &conf,
            format!("{records}local=/chains.test/\nlocal-ttl={TTL_S}\n"),
        )
        .unwrap();
        let child = Command::new(dnsmasq_binary())
            .arg("-k")
            .arg(format!("--port={}", self.port))
            .args([
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--log-facility=-",
                "--log-queries",
            ])
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dnsmasq: {e}. {INSTALL_HINT}"));
        self.child = Some(child);
        let read_log = || fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if child.try_wait().unwrap().is_some() {
                    self.child = None;
                    return Err(read_log());
                }
            }
            if answers(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        Err(format!("no answer within 10 s\n{}", read_log()))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The dnsmasq binary, or a failure that says how to install it.
fn dnsmasq_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DISTPOS_DNSMASQ") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "DISTPOS_DNSMASQ={} is not a file. {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join("dnsmasq");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("dnsmasq is not installed. {INSTALL_HINT}");
}

const INSTALL_HINT: &str = "The DNS discovery tests need a real dnsmasq: install it with \
    `apt-get install -y dnsmasq-base` (Debian/Ubuntu; it provides /usr/sbin/dnsmasq), or \
    set DISTPOS_DNSMASQ to a dnsmasq binary.";

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when something answers a DNS query (SOA of chains.test) on the port.
fn answers(port: u16) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(200)));
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["chains", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 6, 0, 1]);
    if socket.send_to(&query, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(socket.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == [0x12, 0x34])
}

fn table_for(dns: SocketAddr, timeout_ms: u64) -> RouteTable {
    let config = RoutingConfig {
        dns: Some(DnsConfig {
            zone: "chains.test".into(),
            resolver: dns,
            timeout_ms,
        }),
        ..RoutingConfig::default()
    };
    RouteTable::new(US, &config).unwrap()
}

fn urls(endpoints: &[distpos_routing::Endpoint]) -> Vec<&str> {
    endpoints.iter().map(|e| e.url.as_str()).collect()
}

#[tokio::test]
async fn srv_endpoints_come_in_priority_order_with_the_record_ttl() {
    let dns = Dnsmasq::start(&base_records(7701));
    let table = table_for(dns.addr(), 2_000);
    for round in 0..5u64 {
        let got = table
            .resolve(E2E4, Some(e2e4_identity()), 1_000 + round)
            .await
            .unwrap();
        assert_eq!(
            urls(&got),
            ["http://127.0.0.1:7701", "http://127.0.0.2:7702"]
        );
        assert_eq!((got[0].priority, got[1].priority), (10, 20));
        assert!(got.iter().all(|e| e.source == RouteSource::Dns));
    }
    // One DNS round; the rest came from our cache.
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 1,
            failures: 0
        }
    );
    // The TTL is the records' (local-ttl), read from the answer.
    let view = table.snapshot_chain(E2E4, 1_000).unwrap();
    assert_eq!(view.dns_ttl_left_ms, Some(TTL_S * 1000));
    assert_eq!(view.endpoints.len(), 2);
}

#[tokio::test]
async fn a_txt_identity_that_does_not_match_is_refused() {
    let dns = Dnsmasq::start(&base_records(7701));
    let table = table_for(dns.addr(), 2_000);
    let wrong = Hash32([0xcd; 32]);
    assert_eq!(
        table.resolve(E2E4, Some(wrong), 0).await,
        Err(RoutingError::IdentityMismatch {
            chain: E2E4,
            expected: wrong,
            found: e2e4_identity()
        })
    );
    // Same verdict from the cache, and without an expected identity the route is fine.
    assert!(matches!(
        table.resolve(E2E4, Some(wrong), 1).await,
        Err(RoutingError::IdentityMismatch { .. })
    ));
    assert_eq!(table.resolve(E2E4, None, 2).await.unwrap().len(), 2);
    assert_eq!(table.dns_stats().lookups, 1);
}

#[tokio::test]
async fn a_missing_txt_record_is_refused_when_an_identity_is_expected() {
    let dns = Dnsmasq::start(&base_records(7701));
    let table = table_for(dns.addr(), 2_000);
    assert_eq!(
        table.resolve(BEEF, Some(e2e4_identity()), 0).await,
        Err(RoutingError::IdentityMissing(BEEF))
    );
    let got = table.resolve(BEEF, None, 0).await.unwrap();
    assert_eq!(urls(&got), ["http://127.0.0.1:7801"]);
}

#[tokio::test]
async fn nxdomain_is_no_such_chain_and_is_cached() {
    let dns = Dnsmasq::start(&base_records(7701));
    let config = RoutingConfig {
        dns: Some(DnsConfig {
            zone: "chains.test".into(),
            resolver: dns.addr(),
            timeout_ms: 2_000,
        }),
        negative_ttl_ms: 5_000,
        ..RoutingConfig::default()
    };
    let table = RouteTable::new(US, &config).unwrap();
    let unknown = ChainId(0xffff);
    assert_eq!(
        table.resolve(unknown, None, 0).await,
        Err(RoutingError::NoSuchChain(unknown))
    );
    assert!(table.snapshot_chain(unknown, 0).unwrap().negative);
    // Cached for negative_ttl_ms: DNS is not asked again...
    assert_eq!(
        table.resolve(unknown, None, 4_999).await,
        Err(RoutingError::NoSuchChain(unknown))
    );
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 1,
            failures: 0
        }
    );
    // ...until it expires.
    assert_eq!(
        table.resolve(unknown, None, 5_000).await,
        Err(RoutingError::NoSuchChain(unknown))
    );
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 2,
            failures: 0
        }
    );
}

#[tokio::test]
async fn nodata_and_a_dot_target_are_no_such_chain_too() {
    let dns = Dnsmasq::start(&base_records(7701));
    let table = table_for(dns.addr(), 2_000);
    // The SRV name exists (it has a TXT record) but has no SRV records.
    let cafe = ChainId(0xcafe);
    assert_eq!(
        table.resolve(cafe, None, 0).await,
        Err(RoutingError::NoSuchChain(cafe))
    );
    // SRV target "." = "service decidedly not available" (RFC 2782).
    let dead = ChainId(0xdead);
    assert_eq!(
        table.resolve(dead, None, 0).await,
        Err(RoutingError::NoSuchChain(dead))
    );
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 2,
            failures: 0
        }
    );
}

#[tokio::test]
async fn a_dead_server_is_temporary_unless_an_answer_is_cached() {
    let mut dns = Dnsmasq::start(&base_records(7701));
    let table = table_for(dns.addr(), 500);
    let before = table.resolve(E2E4, Some(e2e4_identity()), 0).await.unwrap();

    // Nothing listens on the port any more.
    dns.stop();
    let fresh = table_for(dns.addr(), 500);
    let err = fresh.resolve(E2E4, None, 0).await.unwrap_err();
    assert!(
        matches!(&err, RoutingError::Temporary { chain, .. } if *chain == E2E4),
        "{err:?}"
    );
    assert_eq!(
        fresh.dns_stats(),
        DnsStats {
            lookups: 1,
            failures: 1
        }
    );

    // The table that saw an answer falls back to it after its TTL, identity included.
    let expired = TTL_S * 1000 + 1;
    let after = table
        .resolve(E2E4, Some(e2e4_identity()), expired)
        .await
        .unwrap();
    assert_eq!(urls(&after), urls(&before));
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 2,
            failures: 1
        }
    );
    assert!(matches!(
        table.resolve(E2E4, Some(Hash32([1; 32])), expired).await,
        Err(RoutingError::IdentityMismatch { .. })
    ));
}

#[tokio::test]
async fn a_refusing_server_is_temporary() {
    // dnsmasq has no upstream for other zones and answers REFUSED.
    let dns = Dnsmasq::start(&base_records(7701));
    let config = RoutingConfig {
        dns: Some(DnsConfig {
            zone: "other.test".into(),
            resolver: dns.addr(),
            timeout_ms: 2_000,
        }),
        ..RoutingConfig::default()
    };
    let table = RouteTable::new(US, &config).unwrap();
    let err = table.resolve(E2E4, None, 0).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
}

#[tokio::test]
async fn ttl_expiry_picks_up_a_changed_record() {
    let mut dns = Dnsmasq::start(&base_records(7701));
    let table = table_for(dns.addr(), 2_000);
    let t0 = 1_000_000;
    let first = table.resolve(E2E4, None, t0).await.unwrap();
    assert_eq!(first[0].url, "http://127.0.0.1:7701");

    dns.restart(&base_records(7799));
    // Before expiry: still the cached answer, and DNS is not asked.
    let ttl_ms = TTL_S * 1000;
    let cached = table.resolve(E2E4, None, t0 + ttl_ms - 1).await.unwrap();
    assert_eq!(cached[0].url, "http://127.0.0.1:7701");
    assert_eq!(table.dns_stats().lookups, 1);
    // At expiry: asked again, the new record is used.
    let fresh = table.resolve(E2E4, None, t0 + ttl_ms).await.unwrap();
    assert_eq!(fresh[0].url, "http://127.0.0.1:7799");
    assert_eq!(
        table.dns_stats(),
        DnsStats {
            lookups: 2,
            failures: 0
        }
    );
}

#[tokio::test]
async fn a_static_route_wins_over_dns() {
    let dns = Dnsmasq::start(&base_records(7701));
    let config = RoutingConfig {
        static_routes: [(
            "e2e4".to_owned(),
            vec![StaticEndpoint {
                url: "http://static.example:7700".into(),
                priority: 10,
                weight: 1,
            }],
        )]
        .into(),
        dns: Some(DnsConfig {
            zone: "chains.test".into(),
            resolver: dns.addr(),
            timeout_ms: 2_000,
        }),
        ..RoutingConfig::default()
    };
    let table = RouteTable::new(US, &config).unwrap();
    let got = table.resolve(E2E4, Some(Hash32([9; 32])), 0).await.unwrap();
    assert_eq!(urls(&got), ["http://static.example:7700"]);
    assert_eq!(table.dns_stats().lookups, 0);
}
