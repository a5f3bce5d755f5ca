//! Forwarding, the choice of the next hop (DESIGN §12): for every transfer our ledger
//! holds for another chain, this loop looks the final chain up — a registered peer
//! is the next hop itself; otherwise the route table's `via` (the config, or DNS TXT
//! `via=`) names the correspondent that forwards to it — and hands the node a
//! [`Hop`] for its next block: onward, or back with the reason (no route, a loop,
//! the hop limit, the deadline).
//!
//! Routing is per node (config and DNS), so different producers may choose
//! differently; the ledger checks whatever a block carries against what it holds,
//! and the next chain trusts the leg because it proves it in our block.

use crate::{interchain::forward::held_view, node::snapshot::Snapshot, state::AppState};
use distpos_chain::{
    interchain::forward::{leg_too_late, leg_with, Held},
    ledger,
    tx::{BounceReason, Hop},
};
use distpos_proofs::{ChainId, Hash32};
use std::{sync::Arc, time::Duration};
use tracing::{info, warn};

/// Most held transfers decided per round.
const PER_ROUND: usize = 512;
/// How long a transfer waits for a route that DNS cannot answer now, before it
/// bounces with `no_route`.
const ROUTE_PATIENCE_MS: u64 = 30_000;

/// Chooses next hops for held transfers whenever the node publishes a snapshot.
pub(crate) async fn forward_loop(shared: Arc<AppState>) {
    let mut reads = shared.reads.clone();
    // When each undecidable transfer was first seen (bounded by what the ledger holds).
    let mut first_seen: std::collections::BTreeMap<(ChainId, Hash32), u64> = Default::default();
    loop {
        let snap = shared.reads.latest();
        let view = held_view(
            &snap.state,
            snap.info.genesis.chain_id,
            shared.clock.now_ms(),
            PER_ROUND,
        );
        if !view.awaiting.is_empty() {
            let decided: std::collections::BTreeSet<(ChainId, Hash32)> = {
                let node = shared.node.lock().await;
                view.awaiting
                    .iter()
                    .filter(|(p, t, _)| node.hop_decided(*p, t))
                    .map(|(p, t, _)| (*p, *t))
                    .collect()
            };
            let mut hops = Vec::new();
            for (peer, tx, held) in &view.awaiting {
                if decided.contains(&(*peer, *tx)) {
                    continue;
                }
                let now = shared.clock.now_ms();
                let hop = match choose(&shared, &snap, held, now).await {
                    Some(hop) => hop,
                    None => {
                        let since = *first_seen.entry((*peer, *tx)).or_insert(now);
                        if now.saturating_sub(since) < ROUTE_PATIENCE_MS {
                            continue;
                        }
                        Hop::Bounce(BounceReason::NoRoute)
                    }
                };
                match &hop {
                    Hop::Onward(leg) => {
                        info!(peer = %peer, tx = %tx, next = %leg.next, to = %held.to.chain, amount = leg.amount, "forwarding a transfer")
                    }
                    Hop::Bounce(reason) => {
                        warn!(peer = %peer, tx = %tx, to = %held.to.chain, %reason, "cannot forward a transfer; it goes back")
                    }
                }
                hops.push((*peer, *tx, hop));
            }
            let keep: std::collections::BTreeSet<(ChainId, Hash32)> =
                view.awaiting.iter().map(|(p, t, _)| (*p, *t)).collect();
            first_seen.retain(|k, _| keep.contains(k));
            if !hops.is_empty() {
                shared.node.lock().await.decide_hops(hops);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), reads.changed()).await;
    }
}

/// The hop for `held`, or `None` while DNS cannot tell.
async fn choose(shared: &AppState, snap: &Snapshot, held: &Held, now_ms: u64) -> Option<Hop> {
    let ours = snap.info.genesis.chain_id;
    let fin = held.to.chain;
    let is_peer = |c: ChainId| {
        ledger::peer(&snap.state, c)
            .ok()
            .flatten()
            .is_some_and(|p| !p.suspended)
    };
    let next = if is_peer(fin) {
        fin
    } else {
        match shared.routes.resolve_via(fin, now_ms, false).await {
            Ok(Some(v)) => v,
            Ok(None) => return Some(Hop::Bounce(BounceReason::NoRoute)),
            Err(e) => {
                warn!(chain = %fin, error = %e, "no forwarding route known yet");
                return None;
            }
        }
    };
    if next == ours || held.path.contains(&next) {
        return Some(Hop::Bounce(BounceReason::Loop));
    }
    if !is_peer(next) {
        return Some(Hop::Bounce(BounceReason::NoRoute));
    }
    let params = ledger::params(&snap.state).ok()?;
    let max = (params.max_hops as usize).min(shared.config.routing.max_hops as usize);
    if held.path.len() >= max {
        return Some(Hop::Bounce(BounceReason::HopLimit));
    }
    // A leg must still have time to arrive by the block after next.
    if leg_too_late(&params, held, now_ms) {
        return Some(Hop::Bounce(BounceReason::Expired));
    }
    match leg_with(ours, &params, held, next) {
        Ok(leg) => Some(Hop::Onward(Box::new(leg))),
        Err(_) => Some(Hop::Bounce(BounceReason::NoRoute)),
    }
}
