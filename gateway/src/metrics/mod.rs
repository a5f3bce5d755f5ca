//! Prometheus metrics with stable names, served at `GET /metrics` in the OpenMetrics
//! text format that prometheus-client encodes ([`CONTENT_TYPE`]): counters end in
//! `_total`, and the exposition ends with `# EOF`.
//!
//! Every series carries `chain` (our chain id); per-peer ones carry `peer`
//! (`destination` for the relay queue), missed slots `producer`. `docs/` ships alert
//! rules and a Grafana dashboard over them (`docs/prometheus-alerts.yml`,
//! `docs/grafana-dashboard.json`); the end-to-end test `metrics_docs` checks that a
//! running pair exports every name they use.
//!
//! Nothing here scans on the write path. Events are counted where they happen (blocks,
//! transactions and transfers as the node commits; relay attempts in the relay; stalls
//! in `interchain::stall`); the node sets head, LIB and mempool as it commits. What is
//! read off the published snapshot and other running totals (participation, missed
//! slots, correspondents, light clients, the relay backlog, DNS and gossip totals) is
//! refreshed when `/metrics` is scraped (`api::scrape`), off the async workers and
//! under no lock: time-dependent values are then current even when the chain stopped.

mod labels;

pub use labels::{
    BuildLabels, DestinationLabels, PeerLabels, PeerStatusLabels, ProducerLabels, TransferLabels,
};

use distpos_proofs::ChainId;
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::Registry,
};
use std::{
    borrow::Cow,
    sync::{atomic::AtomicU64, Arc, Mutex, PoisonError},
};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A gauge of a fractional or large value (amounts, seconds).
pub type FloatGauge = Gauge<f64, AtomicU64>;

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
    /// `distpos_participation_percent`: filled slots of the last 128, as of now.
    pub participation: Gauge,
    /// `distpos_missed_slots_total{producer}` (the ledger's count).
    pub missed_slots: Family<ProducerLabels, Counter>,
    /// `distpos_txs_applied_total`.
    pub txs_applied: Counter,
    /// `distpos_blocks_applied_total`.
    pub blocks_applied: Counter,
    /// `distpos_reorgs_total`.
    pub reorgs: Counter,
    /// `distpos_block_apply_seconds`.
    pub block_apply_seconds: Histogram,
    /// `distpos_transfers_total{peer, outcome, reason}`.
    pub transfers: Family<TransferLabels, Counter>,
    /// `distpos_relay_queue_depth{destination}`: items not finished, per destination.
    pub relay_queue_depth: Family<DestinationLabels, Gauge>,
    /// `distpos_relay_queue_oldest_age_seconds{destination}`.
    pub relay_queue_oldest_age: Family<DestinationLabels, FloatGauge>,
    /// `distpos_relay_attempts_total`.
    pub relay_attempts: Counter,
    /// `distpos_relay_failures_total`.
    pub relay_failures: Counter,
    /// `distpos_dns_lookups_total` (the route table's count).
    pub dns_lookups: Counter,
    /// `distpos_dns_failures_total` (temporary failures, the route table's count).
    pub dns_failures: Counter,
    /// `distpos_gossip_dropped_total` (messages dropped because a peer's outbox was
    /// full).
    pub gossip_dropped: Counter,
    /// `distpos_peer_stalled{peer}`: 1 while our light client of the peer cannot
    /// advance.
    pub peer_stalled: Family<PeerLabels, Gauge>,
    /// `distpos_peer_stalls_total{peer}`: times it became stalled.
    pub peer_stalls: Family<PeerLabels, Counter>,
    /// `distpos_correspondent_available{peer}`.
    pub correspondent_available: Family<PeerLabels, FloatGauge>,
    /// `distpos_correspondent_status{peer, status}`: 1 for the peer's status, 0 for
    /// the others.
    pub correspondent_status: Family<PeerStatusLabels, Gauge>,
    /// `distpos_light_client_head_height{peer}`.
    pub light_client_head: Family<PeerLabels, Gauge>,
    /// `distpos_light_client_lag_seconds{peer}`.
    pub light_client_lag: Family<PeerLabels, FloatGauge>,
    /// `distpos_peer_reputation{peer}`: 0–100 (DESIGN §13).
    pub peer_reputation: Family<PeerLabels, Gauge>,
    /// `distpos_peer_policy_delayed{peer}`: transfers our policy delayed, ever.
    pub peer_policy_delayed: Family<PeerLabels, Gauge>,
    /// `distpos_peer_policy_refused{peer}`: transfers our policy refused, ever.
    pub peer_policy_refused: Family<PeerLabels, Gauge>,
    /// `distpos_peer_refused_proofs{peer}`: transfers proven in the peer's
    /// irreversible blocks that broke the rules (bounced `malformed`), ever.
    pub peer_refused_proofs: Family<PeerLabels, Gauge>,
    /// `distpos_peer_equivocations{peer}`: equivocations among the peer's producers we
    /// hold evidence of.
    pub peer_equivocations: Family<PeerLabels, Gauge>,
    /// Held by [`Metrics::scrape`].
    scraping: Arc<Mutex<()>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, without the `chain` label (tests, tools).
    pub fn new() -> Self {
        Self::with_labels(Vec::new())
    }

    /// Every metric, each series labelled `chain` = `chain`: what a node exports.
    pub fn for_chain(chain: ChainId) -> Self {
        Self::with_labels(vec![(
            Cow::Borrowed("chain"),
            Cow::Owned(chain.to_string()),
        )])
    }

    fn with_labels(labels: Vec<(Cow<'static, str>, Cow<'static, str>)>) -> Self {
        let mut r = Registry::with_labels(labels.into_iter());
        let m = Self {
            registry: Arc::default(),
            head: Gauge::default(),
            lib: Gauge::default(),
            mempool: Gauge::default(),
            participation: Gauge::default(),
            missed_slots: Family::default(),
            txs_applied: Counter::default(),
            blocks_applied: Counter::default(),
            reorgs: Counter::default(),
            block_apply_seconds: Histogram::new([
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            transfers: Family::default(),
            relay_queue_depth: Family::default(),
            relay_queue_oldest_age: Family::default(),
            relay_attempts: Counter::default(),
            relay_failures: Counter::default(),
            dns_lookups: Counter::default(),
            dns_failures: Counter::default(),
            gossip_dropped: Counter::default(),
            peer_stalled: Family::default(),
            peer_stalls: Family::default(),
            correspondent_available: Family::default(),
            correspondent_status: Family::default(),
            light_client_head: Family::default(),
            light_client_lag: Family::default(),
            peer_reputation: Family::default(),
            peer_refused_proofs: Family::default(),
            peer_equivocations: Family::default(),
            peer_policy_delayed: Family::default(),
            peer_policy_refused: Family::default(),
            scraping: Arc::default(),
        };
        // The chain.
        r.register(
            "distpos_head_height",
            "Height of the head block",
            m.head.clone(),
        );
        r.register(
            "distpos_lib_height",
            "Height of the last irreversible block",
            m.lib.clone(),
        );
        r.register(
            "distpos_participation_percent",
            "Percent of the last 128 slots filled with a block, counting the slots passed since the head (as GET /v1/status)",
            m.participation.clone(),
        );
        r.register(
            "distpos_missed_slots",
            "Slots a producer was scheduled for and missed (the ledger's count on the head's branch)",
            m.missed_slots.clone(),
        );
        r.register(
            "distpos_mempool_txs",
            "Transactions waiting in the mempool",
            m.mempool.clone(),
        );
        r.register(
            "distpos_txs_applied",
            "Transactions applied in committed blocks",
            m.txs_applied.clone(),
        );
        r.register(
            "distpos_blocks_applied",
            "Blocks committed",
            m.blocks_applied.clone(),
        );
        r.register(
            "distpos_reorgs",
            "Reorganisations of the head",
            m.reorgs.clone(),
        );
        r.register(
            "distpos_block_apply_seconds",
            "Time to verify and apply a received block",
            m.block_apply_seconds.clone(),
        );
        // Peers and transfers.
        r.register(
            "distpos_transfers",
            "Cross-chain transfers decided by blocks applied here, by the other chain: inbound delivered or bounced here, ours acknowledged or refunded (bounced there); reason says why one bounced. A block applied again after a reorganisation counts again",
            m.transfers.clone(),
        );
        r.register(
            "distpos_correspondent_available",
            "Amount available to the peer's inbound transfers: collateral minus what the mempool reserves plus the credit limit (base units)",
            m.correspondent_available.clone(),
        );
        r.register(
            "distpos_correspondent_status",
            "1 for the peer's status as GET /v1/correspondents shows it (ok, low, exhausted, suspended or stalled), 0 for the others",
            m.correspondent_status.clone(),
        );
        r.register(
            "distpos_light_client_head_height",
            "Height of the peer's header at the head of our light client of it",
            m.light_client_head.clone(),
        );
        r.register(
            "distpos_light_client_lag_seconds",
            "Age of the peer's header at the head of our light client of it: now minus that header's timestamp (seconds). While none of the peer's transfers or receipts wait, our blocks take its headers in runs of 64, so this rises to about 64 of the peer's block intervals and drops; beyond that our light client is not advancing (peer down or unreachable, or stalled)",
            m.light_client_lag.clone(),
        );
        r.register(
            "distpos_peer_reputation",
            "The peer chain's reputation here, 0-100, from on-chain facts: its share of transfers bounced for reasons of its own, proofs refused, equivocation among its producers, its correspondent account at or below zero, its light client lagging (DESIGN 13); below the policy's min_reputation its transfers are refused or delayed",
            m.peer_reputation.clone(),
        );
        r.register(
            "distpos_peer_refused_proofs",
            "Transfers proven in the peer's irreversible blocks that broke the rules of a transfer (bounced malformed), ever: what only its producers could have finalised",
            m.peer_refused_proofs.clone(),
        );
        r.register(
            "distpos_peer_equivocations",
            "Equivocations among the peer's producers (two headers of one producer for one slot) our ledger holds evidence of",
            m.peer_equivocations.clone(),
        );
        r.register(
            "distpos_peer_policy_delayed",
            "Transfers from the peer our admission policy has delayed (rate limit, threshold, reputation), since it was set; a count kept by the ledger",
            m.peer_policy_delayed.clone(),
        );
        r.register(
            "distpos_peer_policy_refused",
            "Transfers from the peer our admission policy has refused (above max_transfer, low reputation), since it was set; a count kept by the ledger",
            m.peer_policy_refused.clone(),
        );
        r.register(
            "distpos_peer_stalled",
            "1 while the light client of a peer chain cannot advance (see /v1/correspondents)",
            m.peer_stalled.clone(),
        );
        r.register(
            "distpos_peer_stalls",
            "Times the light client of a peer chain became stalled",
            m.peer_stalls.clone(),
        );
        // The relay.
        r.register(
            "distpos_relay_queue_depth",
            "Unfinished relay items per destination (held items not counted)",
            m.relay_queue_depth.clone(),
        );
        r.register(
            "distpos_relay_queue_oldest_age_seconds",
            "Age of the oldest unfinished relay item per destination (0 when none)",
            m.relay_queue_oldest_age.clone(),
        );
        r.register(
            "distpos_relay_attempts",
            "Delivery attempts to peer endpoints",
            m.relay_attempts.clone(),
        );
        r.register(
            "distpos_relay_failures",
            "Failed delivery attempts",
            m.relay_failures.clone(),
        );
        r.register(
            "distpos_dns_lookups",
            "DNS route lookups",
            m.dns_lookups.clone(),
        );
        r.register(
            "distpos_dns_failures",
            "Temporary DNS failures",
            m.dns_failures.clone(),
        );
        r.register(
            "distpos_gossip_dropped",
            "Gossip messages to this chain's other nodes dropped (outbox full)",
            m.gossip_dropped.clone(),
        );
        r.register(
            "distpos_build",
            "The version and git revision of this daemon",
            Info::new(BuildLabels {
                version: crate::build_info::VERSION,
                git: crate::build_info::GIT_REVISION,
            }),
        );
        Self {
            registry: Arc::new(r),
            ..m
        }
    }

    /// Sets whether our light client of `peer` is stalled.
    pub fn set_peer_stalled(&self, peer: ChainId, stalled: bool) {
        self.peer_stalled
            .get_or_create(&PeerLabels::new(peer))
            .set(i64::from(stalled));
    }

    /// Sets a counter to a running total kept elsewhere (the ledger, the route table,
    /// the gossip outboxes), never lower than it was: a counter does not go back (a
    /// ledger count may, with a reorganisation, and soon passes it again).
    pub fn set_total(counter: &Counter, total: u64) {
        counter
            .inner()
            .fetch_max(total, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refreshes what is read at scrape time (`refresh`, which may clear and set the
    /// per-peer gauge families again) and renders, one scrape at a time: a concurrent
    /// scrape never sees a family between its clearing and its refilling.
    pub fn scrape(&self, refresh: impl FnOnce(&Self)) -> String {
        let _one = self.scraping.lock().unwrap_or_else(PoisonError::into_inner);
        refresh(self);
        self.render()
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;
