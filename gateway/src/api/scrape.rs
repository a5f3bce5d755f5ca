//! What `GET /metrics` reads when it is scraped (see [`crate::metrics`]): the figures
//! the node's published snapshot, its peer watch, the relay queue's schedule, the route
//! table and the gossip outboxes hold, set on the metrics just before they render.
//! Nothing here takes the node's lock or reads the store.

use super::views::{
    participation_now,
    transfers::{light_client_head_time, standing, PeerStatus},
};
use crate::{
    interchain::stall::PeerWatch,
    metrics::{
        DestinationLabels, Metrics, PeerLabels, PeerStatusLabels, ProducerLabels, TransferLabels,
    },
    node::snapshot::Snapshot,
    queue::Backlog,
    state::AppState,
};
use distpos_chain::ledger::{self, PeerChain};
use distpos_proofs::{codec, ChainId};
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

/// Refreshes and renders `state`'s metrics, on the blocking pool: decoding the
/// ledger's peer and producer records is CPU work, however small.
pub(super) async fn render(state: Arc<AppState>) -> Result<String, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        let snap = state.reads.latest();
        let backlog = state.queue.backlog();
        let dns = state.routes.dns_stats();
        let dropped = state.chain_nodes.gossip_dropped();
        let now = state.clock.now_ms();
        state.metrics.scrape(|m| {
            Metrics::set_total(&m.dns_lookups, dns.lookups);
            Metrics::set_total(&m.dns_failures, dns.failures);
            Metrics::set_total(&m.gossip_dropped, dropped);
            observe(m, &snap, &state.peer_watch, &backlog, now);
        })
    })
    .await
}

/// Sets what `snap` (with the stalls `watch` knows and the relay `backlog`) says at
/// `now_ms`: participation, each producer's missed slots, and for every registered
/// peer its correspondent account, light client and relay backlog. The per-peer gauge
/// families are filled again from scratch, so a peer no longer registered leaves
/// them; its counters stay.
pub fn observe(
    m: &Metrics,
    snap: &Snapshot,
    watch: &PeerWatch,
    backlog: &BTreeMap<ChainId, Backlog>,
    now_ms: u64,
) {
    m.participation
        .set(i64::from(participation_now(snap, now_ms).percent()));
    for account in ledger::producer_list(&snap.state).unwrap_or_default() {
        if let Ok(Some(p)) = ledger::producer(&snap.state, &account) {
            Metrics::set_total(
                &m.missed_slots.get_or_create(&ProducerLabels::new(&account)),
                p.missed,
            );
        }
    }
    let peers: Vec<PeerChain> = snap
        .state
        .scan_prefix(ledger::keys::PEER)
        .filter_map(|(_, v)| codec::decode_canonical(v).ok())
        .collect();
    m.correspondent_available.clear();
    m.correspondent_status.clear();
    m.light_client_head.clear();
    m.light_client_lag.clear();
    m.peer_reputation.clear();
    m.peer_refused_proofs.clear();
    m.peer_equivocations.clear();
    m.peer_policy_delayed.clear();
    m.peer_policy_refused.clear();
    m.peer_stalled.clear();
    m.relay_queue_depth.clear();
    m.relay_queue_oldest_age.clear();
    let mut destinations: BTreeSet<ChainId> = backlog.keys().copied().collect();
    for p in &peers {
        let chain = p.registration.chain;
        destinations.insert(chain);
        let labels = PeerLabels::new(chain);
        let stalled = watch.stall(chain).is_some();
        let reserved = snap.reserved.get(&chain).copied().unwrap_or(0);
        let (available, status) = standing(p, reserved, stalled);
        m.correspondent_available
            .get_or_create(&labels)
            .set(available as f64);
        for s in PeerStatus::ALL {
            let l = PeerStatusLabels {
                peer: labels.peer.clone(),
                status: s.as_str(),
            };
            m.correspondent_status
                .get_or_create(&l)
                .set(i64::from(s == status));
        }
        m.light_client_head
            .get_or_create(&labels)
            .set(i64::try_from(p.light_client.head()).unwrap_or(i64::MAX));
        let head_time = light_client_head_time(snap, p);
        if let Some(t) = head_time {
            m.light_client_lag
                .get_or_create(&labels)
                .set(now_ms.saturating_sub(t) as f64 / 1000.0);
        }
        m.peer_reputation.get_or_create(&labels).set(i64::from(
            distpos_chain::interchain::policy::reputation(p, head_time, now_ms),
        ));
        m.peer_refused_proofs
            .get_or_create(&labels)
            .set(i64::try_from(p.refused_proofs()).unwrap_or(i64::MAX));
        m.peer_equivocations
            .get_or_create(&labels)
            .set(i64::try_from(p.equivocations).unwrap_or(i64::MAX));
        let book = distpos_chain::interchain::policy::book(&snap.state, chain).unwrap_or_default();
        m.peer_policy_delayed
            .get_or_create(&labels)
            .set(i64::try_from(book.delayed).unwrap_or(i64::MAX));
        m.peer_policy_refused
            .get_or_create(&labels)
            .set(i64::try_from(book.refused).unwrap_or(i64::MAX));
        m.peer_stalled
            .get_or_create(&labels)
            .set(i64::from(stalled));
        // Counters at zero until their first event (see `TransferLabels::all_for`).
        let _ = m.peer_stalls.get_or_create(&labels);
        for t in TransferLabels::all_for(chain) {
            let _ = m.transfers.get_or_create(&t);
        }
    }
    for d in destinations {
        let b = backlog.get(&d).copied().unwrap_or_default();
        let labels = DestinationLabels::new(d);
        m.relay_queue_depth
            .get_or_create(&labels)
            .set(i64::try_from(b.items).unwrap_or(i64::MAX));
        let age_ms = if b.items == 0 {
            0
        } else {
            now_ms.saturating_sub(b.oldest_created_ms)
        };
        m.relay_queue_oldest_age
            .get_or_create(&labels)
            .set(age_ms as f64 / 1000.0);
    }
}
