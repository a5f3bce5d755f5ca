//! [`RouteTable`]: chain id → endpoints to try, best first (DESIGN §7).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
};

use distpos_proofs::{ChainId, Hash32};

use crate::{
    dns::{DnsDiscovery, DnsFailure, TxtIdentity},
    health::EndpointHealth,
    order::rfc2782_order,
    DnsStats, Endpoint, EndpointView, RouteSource, RouteView, RoutingConfig, RoutingError,
    StaticEndpoint,
};

mod overrides;
pub use overrides::{CheckedOverride, MAX_OVERRIDE_ENDPOINTS, MAX_OVERRIDE_URL_BYTES};

/// The routing table of one gateway: operator overrides, static routes, DNS discovery
/// with a TTL cache, endpoint health with backoff, and hop/loop safety.
///
/// All methods take `&self` (state sits behind a mutex that is never held across an
/// `.await`), so share it with `Arc<RouteTable>`. Times are caller-supplied
/// milliseconds (`now_ms`), which keeps TTL and backoff logic testable.
pub struct RouteTable {
    our_chain: ChainId,
    max_hops: u8,
    backoff_base_ms: u64,
    backoff_max_ms: u64,
    negative_ttl_ms: u64,
    static_routes: BTreeMap<ChainId, Vec<Endpoint>>,
    via_routes: BTreeMap<ChainId, ChainId>,
    dns: Option<DnsDiscovery>,
    state: Mutex<TableState>,
    dns_lookups: AtomicU64,
    dns_failures: AtomicU64,
}

/// The mutable part of the table.
struct TableState {
    overrides: BTreeMap<ChainId, Vec<Endpoint>>,
    dns_cache: BTreeMap<ChainId, DnsEntry>,
    /// DNS TXT `via=` answers: the forwarding chain (or none) and when it expires.
    via_cache: BTreeMap<ChainId, (Option<ChainId>, u64)>,
    /// Chains whose TXT lookup failed, and until when a client's question about them
    /// is answered from that failure instead of asking DNS again.
    via_failed: BTreeMap<ChainId, u64>,
    health: HashMap<String, EndpointHealth>,
    rng: fastrand::Rng,
}

/// The last DNS answer for a chain.
enum DnsEntry {
    /// Endpoints and identity; kept after expiry as a fallback for DNS outages.
    Positive {
        endpoints: Vec<Endpoint>,
        identity: TxtIdentity,
        expires_at_ms: u64,
    },
    /// "No such chain", remembered for `negative_ttl_ms`.
    Negative { expires_at_ms: u64 },
}

/// What a look at the table (without DNS) decided.
enum Cached {
    Done(Result<Vec<Endpoint>, RoutingError>),
    AskDns(&'static str),
}

impl RouteTable {
    /// Validates `config` (errors name the field) and builds the table. Does no I/O: the
    /// DNS resolver is only used on the first [`RouteTable::resolve`] that needs it.
    pub fn new(our_chain: ChainId, config: &RoutingConfig) -> Result<Self, RoutingError> {
        let static_routes = config
            .validate(our_chain)?
            .into_iter()
            .map(|(chain, eps)| (chain, to_endpoints(&eps, RouteSource::Static)))
            .collect();
        let via_routes = config.validate_via(our_chain)?;
        Ok(RouteTable {
            our_chain,
            via_routes,
            max_hops: config.max_hops,
            backoff_base_ms: config.backoff_base_ms,
            backoff_max_ms: config.backoff_max_ms,
            negative_ttl_ms: config.negative_ttl_ms,
            static_routes,
            dns: config.dns.as_ref().map(DnsDiscovery::new),
            state: Mutex::new(TableState {
                overrides: BTreeMap::new(),
                dns_cache: BTreeMap::new(),
                via_cache: BTreeMap::new(),
                via_failed: BTreeMap::new(),
                health: HashMap::new(),
                rng: fastrand::Rng::new(),
            }),
            dns_lookups: AtomicU64::new(0),
            dns_failures: AtomicU64::new(0),
        })
    }

    /// Refuses our own chain (and chain 0, "this chain") and hop counts above
    /// `max_hops`.
    pub fn check_forward(&self, chain: ChainId, hops: u8) -> Result<(), RoutingError> {
        if chain == self.our_chain || chain.is_local() {
            return Err(RoutingError::OwnChain(chain));
        }
        if hops > self.max_hops {
            return Err(RoutingError::TooManyHops {
                hops,
                max: self.max_hops,
            });
        }
        Ok(())
    }

    /// Endpoints to try for `chain`, best first: an operator override if set, else
    /// static routes (static overrides DNS entirely), else DNS (SRV, cached until TTL).
    /// Within a source: RFC 2782 order — ascending priority, weighted random within a
    /// priority (weight 0 entries get a small chance). Endpoints currently marked down
    /// (in backoff) are moved after the healthy ones (not dropped), so one attempt can
    /// fail over through all of them.
    ///
    /// `expected_identity`: when `Some` and the route comes from DNS, the TXT record
    /// `v=distpos1 id=<0x…64 hex>` at `<chain-hex>.<zone>` must match, else
    /// [`RoutingError::IdentityMismatch`] / [`RoutingError::IdentityMissing`].
    /// NXDOMAIN on the SRV name → [`RoutingError::NoSuchChain`] (cached
    /// `negative_ttl_ms`). Any other DNS failure (timeout, SERVFAIL, refused) falls back
    /// to the last cached DNS answer even if expired (with a warning), else
    /// [`RoutingError::Temporary`].
    pub async fn resolve(
        &self,
        chain: ChainId,
        expected_identity: Option<Hash32>,
        now_ms: u64,
    ) -> Result<Vec<Endpoint>, RoutingError> {
        let why = match self.answer_locally(chain, expected_identity, now_ms) {
            Cached::Done(result) => return result,
            Cached::AskDns(why) => why,
        };
        let Some(dns) = &self.dns else {
            return Err(RoutingError::NoRoute(chain));
        };
        self.dns_lookups.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%chain, why, "asking DNS for routes");
        let answer = dns.discover(chain).await;

        let mut state = self.lock();
        match answer {
            Ok(answer) => {
                tracing::info!(
                    %chain,
                    endpoints = answer.endpoints.len(),
                    ttl_ms = answer.ttl_ms,
                    "DNS routes found"
                );
                let endpoints = answer.endpoints.clone();
                let identity = answer.identity.clone();
                state.remember(
                    chain,
                    DnsEntry::Positive {
                        endpoints: answer.endpoints,
                        identity: answer.identity,
                        expires_at_ms: now_ms.saturating_add(answer.ttl_ms),
                    },
                );
                check_identity(chain, expected_identity, &identity)?;
                Ok(state.arrange(endpoints, now_ms))
            }
            Err(DnsFailure::NoSuchChain(reason)) => {
                tracing::warn!(%chain, %reason, "DNS: no such chain");
                state.remember(
                    chain,
                    DnsEntry::Negative {
                        expires_at_ms: now_ms.saturating_add(self.negative_ttl_ms),
                    },
                );
                Err(RoutingError::NoSuchChain(chain))
            }
            Err(DnsFailure::Temporary(reason)) => {
                self.dns_failures.fetch_add(1, Ordering::Relaxed);
                if let Some(DnsEntry::Positive {
                    endpoints,
                    identity,
                    expires_at_ms,
                }) = state.dns_cache.get(&chain)
                {
                    tracing::warn!(
                        %chain,
                        %reason,
                        expired_ms_ago = now_ms.saturating_sub(*expires_at_ms),
                        "DNS failed; using the last cached answer"
                    );
                    check_identity(chain, expected_identity, identity)?;
                    let endpoints = endpoints.clone();
                    return Ok(state.arrange(endpoints, now_ms));
                }
                tracing::warn!(%chain, %reason, "DNS failed and nothing is cached");
                Err(RoutingError::Temporary { chain, reason })
            }
        }
    }

    /// Everything `resolve` can answer without DNS; `AskDns` otherwise.
    fn answer_locally(&self, chain: ChainId, expected: Option<Hash32>, now_ms: u64) -> Cached {
        if chain == self.our_chain || chain.is_local() {
            return Cached::Done(Err(RoutingError::OwnChain(chain)));
        }
        let mut state = self.lock();
        let fixed = state
            .overrides
            .get(&chain)
            .or_else(|| self.static_routes.get(&chain))
            .cloned();
        if let Some(endpoints) = fixed {
            return Cached::Done(Ok(state.arrange(endpoints, now_ms)));
        }
        if self.dns.is_none() {
            return Cached::Done(Err(RoutingError::NoRoute(chain)));
        }
        match state.dns_cache.get(&chain) {
            Some(DnsEntry::Positive {
                endpoints,
                identity,
                expires_at_ms,
            }) if now_ms < *expires_at_ms => {
                if let Err(e) = check_identity(chain, expected, identity) {
                    return Cached::Done(Err(e));
                }
                let endpoints = endpoints.clone();
                Cached::Done(Ok(state.arrange(endpoints, now_ms)))
            }
            Some(DnsEntry::Negative { expires_at_ms }) if now_ms < *expires_at_ms => {
                Cached::Done(Err(RoutingError::NoSuchChain(chain)))
            }
            Some(_) => Cached::AskDns("cached answer expired"),
            None => Cached::AskDns("nothing cached"),
        }
    }

    /// The correspondent that forwards to `chain` (DESIGN §12) as far as the table
    /// knows without asking DNS: `Some(Some(via))` from the config's `via` or a cached
    /// DNS TXT `via=` (kept past its TTL as a fallback), `Some(None)` when DNS said
    /// none, `None` when DNS has not been asked yet ([`RouteTable::resolve_via`]).
    pub fn via_known(&self, chain: ChainId) -> Option<Option<ChainId>> {
        if let Some(v) = self.via_routes.get(&chain) {
            return Some(Some(*v));
        }
        if self.dns.is_none() {
            return Some(None);
        }
        self.lock().via_cache.get(&chain).map(|(v, _)| *v)
    }

    /// The correspondent that forwards to `chain`: the config's `via`, else DNS TXT
    /// `v=distpos1 via=<chain>` at `<chain-hex>.<zone>` (cached with its TTL, at most
    /// [`MAX_DNS_CACHE`] chains; a failed lookup keeps the last answer).
    /// `Ok(None)`: no forwarding route.
    ///
    /// `from_client`: asked on behalf of an HTTP client (any chain id): a lookup that
    /// failed is not repeated for `negative_ttl_ms`, so that clients cannot make us
    /// ask DNS faster than that per chain.
    pub async fn resolve_via(
        &self,
        chain: ChainId,
        now_ms: u64,
        from_client: bool,
    ) -> Result<Option<ChainId>, RoutingError> {
        if let Some(v) = self.via_routes.get(&chain) {
            return Ok(Some(*v));
        }
        let Some(dns) = &self.dns else {
            return Ok(None);
        };
        {
            let state = self.lock();
            if let Some((v, expires)) = state.via_cache.get(&chain) {
                if now_ms < *expires {
                    return Ok(*v);
                }
            }
            if from_client && state.via_failed.get(&chain).is_some_and(|t| now_ms < *t) {
                return Err(RoutingError::Temporary {
                    chain,
                    reason: "the last DNS lookup of its forwarding route failed".into(),
                });
            }
        }
        self.dns_lookups.fetch_add(1, Ordering::Relaxed);
        match dns.via(chain).await {
            Ok((via, ttl_ms)) => {
                let via = via.filter(|v| *v != self.our_chain && *v != chain);
                let mut state = self.lock();
                if !state.via_cache.contains_key(&chain) && state.via_cache.len() >= MAX_DNS_CACHE {
                    let victim = state
                        .via_cache
                        .iter()
                        .min_by_key(|(_, (_, e))| *e)
                        .map(|(c, _)| *c);
                    if let Some(c) = victim {
                        state.via_cache.remove(&c);
                    }
                }
                state
                    .via_cache
                    .insert(chain, (via, now_ms.saturating_add(ttl_ms)));
                Ok(via)
            }
            Err(DnsFailure::Temporary(reason) | DnsFailure::NoSuchChain(reason)) => {
                self.dns_failures.fetch_add(1, Ordering::Relaxed);
                let mut state = self.lock();
                if !state.via_failed.contains_key(&chain) && state.via_failed.len() >= MAX_DNS_CACHE
                {
                    let oldest = state
                        .via_failed
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(c, _)| *c);
                    if let Some(c) = oldest {
                        state.via_failed.remove(&c);
                    }
                }
                state
                    .via_failed
                    .insert(chain, now_ms.saturating_add(self.negative_ttl_ms));
                if let Some((v, _)) = state.via_cache.get(&chain) {
                    return Ok(*v);
                }
                Err(RoutingError::Temporary { chain, reason })
            }
        }
    }

    /// Records a successful delivery to `url`: it is up again, its failures reset.
    pub fn report_success(&self, url: &str, latency_ms: u64, now_ms: u64) {
        let mut state = self.lock();
        let health = state.health.entry(url.to_owned()).or_default();
        if health.failures > 0 {
            tracing::info!(url, failures = health.failures, "endpoint is up again");
        }
        health.record_success(latency_ms, now_ms);
    }

    /// Marks the endpoint down with exponential backoff
    /// (base·2^(consecutive failures−1), capped at `backoff_max_ms`).
    pub fn report_failure(&self, url: &str, now_ms: u64) {
        let mut state = self.lock();
        let health = state.health.entry(url.to_owned()).or_default();
        let retry_at_ms = health.record_failure(now_ms, self.backoff_base_ms, self.backoff_max_ms);
        tracing::warn!(
            url,
            failures = health.failures,
            retry_at_ms,
            "endpoint marked down"
        );
    }

    /// For `GET /v1/routes`: every chain we know a route for (override, static, or
    /// cached DNS, including a cached "no such chain"), ordered by chain id.
    pub fn snapshot(&self, now_ms: u64) -> Vec<RouteView> {
        let state = self.lock();
        let chains: BTreeSet<ChainId> = state
            .overrides
            .keys()
            .chain(self.static_routes.keys())
            .chain(state.dns_cache.keys())
            .chain(self.via_routes.keys())
            .chain(
                state
                    .via_cache
                    .iter()
                    .filter(|(_, (v, _))| v.is_some())
                    .map(|(c, _)| c),
            )
            .copied()
            .collect();
        chains
            .into_iter()
            .filter_map(|chain| self.view(&state, chain, now_ms))
            .collect()
    }

    /// The [`RouteTable::snapshot`] entry of one chain, if we know a route for it.
    pub fn snapshot_chain(&self, chain: ChainId, now_ms: u64) -> Option<RouteView> {
        let state = self.lock();
        self.view(&state, chain, now_ms)
    }

    /// DNS counters for metrics.
    pub fn dns_stats(&self) -> DnsStats {
        DnsStats {
            lookups: self.dns_lookups.load(Ordering::Relaxed),
            failures: self.dns_failures.load(Ordering::Relaxed),
        }
    }

    fn view(&self, state: &TableState, chain: ChainId, now_ms: u64) -> Option<RouteView> {
        let mut known: Vec<&Endpoint> = Vec::new();
        if let Some(eps) = state.overrides.get(&chain) {
            known.extend(sorted_for_view(eps));
        }
        if let Some(eps) = self.static_routes.get(&chain) {
            known.extend(sorted_for_view(eps));
        }
        let (mut dns_ttl_left_ms, mut negative) = (None, false);
        match state.dns_cache.get(&chain) {
            Some(DnsEntry::Positive {
                endpoints,
                expires_at_ms,
                ..
            }) => {
                known.extend(sorted_for_view(endpoints));
                dns_ttl_left_ms = Some(expires_at_ms.saturating_sub(now_ms));
            }
            Some(DnsEntry::Negative { expires_at_ms }) => negative = now_ms < *expires_at_ms,
            None => {}
        }
        let via = self
            .via_routes
            .get(&chain)
            .copied()
            .or_else(|| state.via_cache.get(&chain).and_then(|(v, _)| *v));
        if known.is_empty() && !negative && via.is_none() {
            return None;
        }
        let endpoints = known
            .into_iter()
            .map(|e| endpoint_view(e, state.health.get(&e.url), now_ms))
            .collect();
        Some(RouteView {
            chain,
            endpoints,
            dns_ttl_left_ms,
            negative,
            via,
        })
    }

    fn lock(&self) -> MutexGuard<'_, TableState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters (each update is one insert), so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Most chains whose DNS answer is cached. Lookups are made only for registered peers
/// and configured routes, so this is a backstop, not the working bound.
pub(crate) const MAX_DNS_CACHE: usize = 4_096;

impl DnsEntry {
    fn expires_at_ms(&self) -> u64 {
        match self {
            DnsEntry::Positive { expires_at_ms, .. } | DnsEntry::Negative { expires_at_ms } => {
                *expires_at_ms
            }
        }
    }
}

impl TableState {
    /// Caches `entry` for `chain`, within [`MAX_DNS_CACHE`] entries: when full, the
    /// answer that expires first makes room (an expired negative one before anything).
    fn remember(&mut self, chain: ChainId, entry: DnsEntry) {
        if !self.dns_cache.contains_key(&chain) && self.dns_cache.len() >= MAX_DNS_CACHE {
            let victim = self
                .dns_cache
                .iter()
                .min_by_key(|(_, e)| (matches!(e, DnsEntry::Positive { .. }), e.expires_at_ms()))
                .map(|(c, _)| *c);
            if let Some(c) = victim {
                self.dns_cache.remove(&c);
            }
        }
        self.dns_cache.insert(chain, entry);
    }

    /// RFC 2782 order, then the endpoints in backoff after the healthy ones.
    fn arrange(&mut self, endpoints: Vec<Endpoint>, now_ms: u64) -> Vec<Endpoint> {
        let ordered = rfc2782_order(endpoints, &mut self.rng);
        let (mut up, down): (Vec<Endpoint>, Vec<Endpoint>) = ordered
            .into_iter()
            .partition(|e| !self.health.get(&e.url).is_some_and(|h| h.is_down(now_ms)));
        up.extend(down);
        up
    }
}

fn to_endpoints(endpoints: &[StaticEndpoint], source: RouteSource) -> Vec<Endpoint> {
    endpoints
        .iter()
        .map(|e| Endpoint {
            url: e.url.clone(),
            priority: e.priority,
            weight: e.weight,
            source,
        })
        .collect()
}

fn check_identity(
    chain: ChainId,
    expected: Option<Hash32>,
    identity: &TxtIdentity,
) -> Result<(), RoutingError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    match identity {
        TxtIdentity::Published(ids) => match ids.iter().find(|id| **id != expected) {
            Some(found) => Err(RoutingError::IdentityMismatch {
                chain,
                expected,
                found: *found,
            }),
            None => Ok(()),
        },
        TxtIdentity::Absent => Err(RoutingError::IdentityMissing(chain)),
        TxtIdentity::Unknown(reason) => Err(RoutingError::Temporary {
            chain,
            reason: format!("cannot check the chain identity: {reason}"),
        }),
    }
}

/// The stable, non-random order of the views: priority, then weight (highest first).
fn sorted_for_view(endpoints: &[Endpoint]) -> Vec<&Endpoint> {
    let mut sorted: Vec<&Endpoint> = endpoints.iter().collect();
    sorted.sort_by_key(|e| (e.priority, std::cmp::Reverse(e.weight), e.url.as_str()));
    sorted
}

fn endpoint_view(e: &Endpoint, health: Option<&EndpointHealth>, now_ms: u64) -> EndpointView {
    let h = health.cloned().unwrap_or_default();
    let down = h.is_down(now_ms);
    EndpointView {
        url: e.url.clone(),
        priority: e.priority,
        weight: e.weight,
        source: e.source,
        origin: e.source.origin(),
        scope: e.source.scope(),
        health: if down { "down" } else { "up" },
        retry_at_ms: if down { h.retry_at_ms } else { None },
        failures: h.failures,
        last_success_ms: h.last_success_ms,
        last_failure_ms: h.last_failure_ms,
        latency_ms: h.latency_ms,
    }
}

#[cfg(test)]
mod tests;
