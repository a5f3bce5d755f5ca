//! What the route table hands out: endpoints to try, and read-only views for the API.

use distpos_proofs::ChainId;
use serde::Serialize;

use crate::RouteSource;

/// One gateway endpoint of another chain, as returned by
/// [`crate::RouteTable::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:7701`.
    pub url: String,
    /// RFC 2782 priority (lower first).
    pub priority: u16,
    /// RFC 2782 weight within a priority.
    pub weight: u16,
    /// Where the endpoint came from.
    pub source: RouteSource,
}

/// Everything known about the route to one chain, for `GET /v1/routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The destination chain (serialized as hex, e.g. `"e2e4"`).
    pub chain: ChainId,
    /// Known endpoints: override ones first, then static, then DNS; within a source by
    /// priority, then weight (highest first). This is not the randomised try order.
    pub endpoints: Vec<EndpointView>,
    /// Time left before the cached DNS answer expires (0 once expired but kept as a
    /// fallback); `None` when nothing is cached from DNS.
    pub dns_ttl_left_ms: Option<u64>,
    /// True while DNS said "no such chain" and that answer is still cached.
    pub negative: bool,
    /// The correspondent that forwards to this chain (DESIGN §12), from the config's
    /// `via` or a DNS TXT `via=`: send transfers to it with `via` set to this chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<ChainId>,
}

/// One endpoint with its health, for `GET /v1/routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointView {
    /// Base URL.
    pub url: String,
    /// RFC 2782 priority.
    pub priority: u16,
    /// RFC 2782 weight.
    pub weight: u16,
    /// Where the endpoint came from: `static`, `dns` or `override` (the older names,
    /// kept for existing clients; `origin` says the same with `config` for `static`).
    pub source: RouteSource,
    /// Where the endpoint came from: `config`, `dns` or `override`
    /// ([`RouteSource::origin`]).
    pub origin: &'static str,
    /// `"node"` for an override, which applies to this node only, not to the chain
    /// ([`RouteSource::scope`]); left out for other origins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    /// `"up"`, or `"down"` while in backoff.
    pub health: &'static str,
    /// When a down endpoint is tried first again.
    pub retry_at_ms: Option<u64>,
    /// Failures since the last success.
    pub failures: u32,
    /// Time of the last reported success.
    pub last_success_ms: Option<u64>,
    /// Time of the last reported failure.
    pub last_failure_ms: Option<u64>,
    /// Latency of the last success.
    pub latency_ms: Option<u64>,
}

/// DNS counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DnsStats {
    /// Discovery rounds sent to DNS (one per cache miss: SRV + TXT + address lookups).
    pub lookups: u64,
    /// Rounds that failed temporarily (timeout, SERVFAIL, refused, unreachable server).
    /// "No such chain" is an answer, not a failure.
    pub failures: u64,
}
