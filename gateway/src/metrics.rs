//! Prometheus metrics with stable names, served at `GET /metrics`.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge, histogram::Histogram},
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
