//! Prometheus metrics with stable names, served at `GET /metrics`.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::sync::Arc;

/// The node's metrics. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// `distpos_head_height`.
    pub head: Gauge,
    /// `distpos_lib_height`.
    pub lib: Gauge,
    /// `distpos_mempool_txs`.
    pub mempool: Gauge,
    /// `distpos_missed_slots` (all producers, from the ledger).
    pub missed_slots: Gauge,
    /// `distpos_txs_applied_total`.
    pub txs_applied: Counter,
    /// `distpos_blocks_applied_total`.
    pub blocks_applied: Counter,
    /// `distpos_reorgs_total`.
    pub reorgs: Counter,
    /// `distpos_block_apply_seconds`.
    pub block_apply_seconds: Histogram,
    /// `distpos_relay_queue_depth{destination}`: items not finished, per destination.
    pub relay_queue_depth: Family<Vec<(String, String)>, Gauge>,
    /// `distpos_relay_attempts_total`.
    pub relay_attempts: Counter,
    /// `distpos_relay_failures_total`.
    pub relay_failures: Counter,
    /// `distpos_dns_lookups` (total, from the route table).
    pub dns_lookups: Gauge,
    /// `distpos_dns_failures` (total temporary failures).
    pub dns_failures: Gauge,
    /// `distpos_gossip_dropped` (total messages dropped because a peer's outbox was
    /// full).
    pub gossip_dropped: Gauge,
    /// `distpos_peer_stalled{peer}`: 1 while our light client of the peer cannot
    /// advance.
    pub peer_stalled: Family<Vec<(String, String)>, Gauge>,
    /// `distpos_peer_stalls_total{peer}`: times it became stalled.
    pub peer_stalls: Family<Vec<(String, String)>, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let head = Gauge::default();
        let lib = Gauge::default();
        let mempool = Gauge::default();
        let missed_slots = Gauge::default();
        let txs_applied = Counter::default();
        let blocks_applied = Counter::default();
        let reorgs = Counter::default();
        let block_apply_seconds =
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        r.register(
            "distpos_head_height",
            "Height of the head block",
            head.clone(),
        );
        r.register(
            "distpos_lib_height",
            "Height of the last irreversible block",
            lib.clone(),
        );
        r.register(
            "distpos_mempool_txs",
            "Transactions waiting in the mempool",
            mempool.clone(),
        );
        r.register(
            "distpos_missed_slots",
            "Slots missed by all producers (ledger count)",
            missed_slots.clone(),
        );
        r.register(
            "distpos_txs_applied",
            "Transactions applied in committed blocks",
            txs_applied.clone(),
        );
        r.register(
            "distpos_blocks_applied",
            "Blocks committed",
            blocks_applied.clone(),
        );
        r.register(
            "distpos_reorgs",
            "Reorganisations of the head",
            reorgs.clone(),
        );
        r.register(
            "distpos_block_apply_seconds",
            "Time to verify and apply a received block",
            block_apply_seconds.clone(),
        );
        let relay_queue_depth = Family::<Vec<(String, String)>, Gauge>::default();
        let relay_attempts = Counter::default();
        let relay_failures = Counter::default();
        let dns_lookups = Gauge::default();
        let dns_failures = Gauge::default();
        let gossip_dropped = Gauge::default();
        r.register(
            "distpos_relay_queue_depth",
            "Unfinished relay items per destination",
            relay_queue_depth.clone(),
        );
        r.register(
            "distpos_relay_attempts",
            "Delivery attempts to peer endpoints",
            relay_attempts.clone(),
        );
        r.register(
            "distpos_relay_failures",
            "Failed delivery attempts",
            relay_failures.clone(),
        );
        r.register(
            "distpos_dns_lookups",
            "DNS route lookups",
            dns_lookups.clone(),
        );
        r.register(
            "distpos_dns_failures",
            "Temporary DNS failures",
            dns_failures.clone(),
        );
        r.register(
            "distpos_gossip_dropped",
            "Gossip messages to this chain's other nodes dropped (outbox full)",
            gossip_dropped.clone(),
        );
        let peer_stalled = Family::<Vec<(String, String)>, Gauge>::default();
        let peer_stalls = Family::<Vec<(String, String)>, Counter>::default();
        r.register(
            "distpos_peer_stalled",
            "1 while the light client of a peer chain cannot advance (see /v1/correspondents)",
            peer_stalled.clone(),
        );
        r.register(
            "distpos_peer_stalls",
            "Times the light client of a peer chain became stalled",
            peer_stalls.clone(),
        );
        Self {
            registry: Arc::new(r),
            head,
            lib,
            mempool,
            missed_slots,
            txs_applied,
            blocks_applied,
            reorgs,
            block_apply_seconds,
            relay_queue_depth,
            relay_attempts,
            relay_failures,
            dns_lookups,
            dns_failures,
            gossip_dropped,
            peer_stalled,
            peer_stalls,
        }
    }

    /// Sets whether our light client of `peer` is stalled.
    pub fn set_peer_stalled(&self, peer: distpos_proofs::ChainId, stalled: bool) {
        self.peer_stalled
            .get_or_create(&crate::interchain::stall::peer_label(peer))
            .set(i64::from(stalled));
    }

    /// Sets the queue depth gauge of every destination (zero for those now empty).
    pub fn set_queue_depth(
        &self,
        depth: &std::collections::BTreeMap<distpos_proofs::ChainId, i64>,
    ) {
        self.relay_queue_depth.clear();
        for (chain, n) in depth {
            self.relay_queue_depth
                .get_or_create(&vec![("destination".to_string(), chain.to_string())])
                .set(*n);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
