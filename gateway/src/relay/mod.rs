//! The relay's background work (DESIGN §6 steps 3 and 6, §6.1, §7): finding new
//! outbound transfers and receipts in irreversible blocks, delivering them in batches
//! (one per destination and block, under one multiproof) through the routing table
//! with failover and retries, and fetching the headers of peer chains that the next
//! batch carries into a block.

use crate::queue::{ItemState, Payload, QueueItem};
use crate::{node::snapshot::Snapshot, state::AppState};
use distpos_adapters::{AdapterError, BatchDelivery, BatchReceipts, PeerChain, RelayAck};
use distpos_chain::{interchain, ledger, tx::Outcome};
use distpos_proofs::{merkle, multiproof, ChainId, Hash32};
use std::collections::BTreeMap;
use std::{sync::Arc, time::Duration};
use tracing::{debug, error, info, warn};

pub mod fast;
pub mod forward;

/// Runs the relay loops until dropped (which stops them all). The loops never end on
/// their own: if one does (a panic), this returns why, and the node stops.
pub async fn run(shared: Arc<AppState>) -> Result<(), String> {
    let mut loops = tokio::task::JoinSet::new();
    let s = shared.clone();
    loops.spawn(async move {
        scan_loop(s).await;
        "scan"
    });
    let s = shared.clone();
    loops.spawn(async move {
        send_loop(s).await;
        "send"
    });
    let s = shared.clone();
    loops.spawn(async move {
        fast::fast_loop(s).await;
        "fast path"
    });
    let s = shared.clone();
    loops.spawn(async move {
        forward::forward_loop(s).await;
        "forwarding"
    });
    loops.spawn(async move {
        header_loop(shared).await;
        "header sync"
    });
    match loops.join_next().await {
        Some(Ok(name)) => Err(format!("the relay's {name} loop ended")),
        Some(Err(e)) => Err(format!("a relay loop stopped: {e}")),
        None => Err("no relay loops".into()),
    }
}

/// Longest a relay loop sleeps without an event (a safety net, not the driver).
const IDLE: Duration = Duration::from_secs(1);

/// Finds deliveries and receipts in blocks that became irreversible: woken by every
/// snapshot the node publishes (the LIB moves only with one).
async fn scan_loop(shared: Arc<AppState>) {
    let mut reads = shared.reads.clone();
    let mut pruned_at = 0u64;
    loop {
        if let Err(e) = scan_once(&shared).await {
            warn!(error = %e, "relay scan failed");
        }
        let now = shared.clock.now_ms();
        if now.saturating_sub(pruned_at) >= PRUNE_EVERY_MS {
            pruned_at = now;
            prune_done(&shared, now).await;
        }
        let _ = tokio::time::timeout(IDLE, reads.changed()).await;
    }
}

/// How often items done longer than `relay.retention_ms` are pruned.
const PRUNE_EVERY_MS: u64 = 60 * 60 * 1000;

/// Prunes done items past their retention (a scan of the queue, off the workers).
async fn prune_done(shared: &AppState, now: u64) {
    let queue = shared.queue.clone();
    let before = now.saturating_sub(shared.config.relay.retention_ms);
    match tokio::task::spawn_blocking(move || queue.prune_done(before)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => info!(pruned = n, "relay: done items past their retention pruned"),
        Ok(Err(e)) => error!(error = %e, "relay queue: cannot prune done items"),
        Err(e) => error!(error = %e, "relay queue: the prune task failed"),
    }
}

async fn scan_once(shared: &AppState) -> Result<(), String> {
    let cursor = shared.queue.cursor().map_err(|e| e.to_string())?;
    let snap = shared.reads.latest();
    let lib = snap.consensus.lib;
    if lib <= cursor {
        return Ok(());
    }
    let now = shared.clock.now_ms();
    // Reads of irreversible blocks and one Merkle tree per block: CPU and disk work,
    // off the async workers and without the node.
    let (items, upto) = tokio::task::spawn_blocking(move || scan_blocks(&snap, cursor, lib, now))
        .await
        .map_err(|e| e.to_string())??;
    let added = shared
        .queue
        .enqueue(&items, upto)
        .map_err(|e| e.to_string())?;
    if added > 0 {
        info!(
            added,
            upto, "relay: queued deliveries and receipts from irreversible blocks"
        );
    }
    Ok(())
}

/// Relay items for the irreversible blocks after `cursor`, up to `lib` (at most 500
/// blocks at a time), and the height scanned up to: per block, one batch of the
/// transfers to each destination (in chunks of at most `MAX_BATCH_ITEMS`) and one
/// batch of the receipts for each source.
fn scan_blocks(
    snap: &Snapshot,
    cursor: u64,
    lib: u64,
    now: u64,
) -> Result<(Vec<QueueItem>, u64), String> {
    let ours = snap.info.genesis.chain_id;
    let mut items = Vec::new();
    let upto = lib.min(cursor + 500);
    for h in cursor + 1..=upto {
        let Some(block) = snap.store.block_at(h).map_err(|e| e.to_string())? else {
            break;
        };
        let id = block.id();
        let receipts = snap
            .store
            .receipts(&id)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let mut outbound: BTreeMap<ChainId, Vec<usize>> = BTreeMap::new();
        let mut batch_receipts: BTreeMap<ChainId, Vec<usize>> = BTreeMap::new();
        for (i, r) in receipts.iter().enumerate() {
            match &r.outcome {
                Outcome::InFlight { destination } => {
                    outbound.entry(*destination).or_default().push(i);
                }
                // (A batch whose transfers were all held for forwarding reports
                // nothing yet: its results come back with a later `Release`.)
                Outcome::InboundBatch { source, results } if !results.is_empty() => {
                    batch_receipts.entry(*source).or_default().push(i);
                }
                _ => {}
            }
        }
        if outbound.is_empty() && batch_receipts.is_empty() {
            continue;
        }
        let tx_leaves: Vec<Hash32> = block
            .txs
            .iter()
            .map(|t| merkle::leaf_hash(&t.encode()))
            .collect();
        for (destination, all) in outbound {
            for chunk in all.chunks(distpos_chain::tx::MAX_BATCH_ITEMS) {
                let Some(proof) = multiproof::prove_many(&tx_leaves, chunk) else {
                    continue;
                };
                // Receipts and transactions pair one to one in a stored block.
                let Some(transfers) = chunk
                    .iter()
                    .map(|&i| block.txs.get(i).cloned())
                    .collect::<Option<Vec<_>>>()
                else {
                    continue;
                };
                let d = BatchDelivery {
                    source_chain: ours,
                    height: h,
                    transfers,
                    indices: chunk.iter().map(|&i| i as u32).collect(),
                    proof,
                    headers: Vec::new(),
                };
                items.push(QueueItem::batch_delivery(d, destination, now));
            }
        }
        let r_leaves: Vec<Hash32> = receipts
            .iter()
            .map(|r| merkle::leaf_hash(&r.encode()))
            .collect();
        for (source, at) in batch_receipts {
            let Some(proof) = multiproof::prove_many(&r_leaves, &at) else {
                continue;
            };
            let r = BatchReceipts {
                receipt_chain: ours,
                height: h,
                receipts: at
                    .iter()
                    .filter_map(|&i| receipts.get(i).cloned())
                    .collect(),
                indices: at.iter().map(|&i| i as u32).collect(),
                proof,
                headers: Vec::new(),
            };
            let item = QueueItem::batch_receipts(r, source, Hash32::ZERO, now);
            let first = item.transfers().first().copied().unwrap_or(Hash32::ZERO);
            items.push(QueueItem {
                transfer: first,
                ..item
            });
        }
    }
    Ok((items, upto))
}

/// Sends what is due: each item (a batch) in one call.
///
/// Driven by events: it sleeps until the queue changes (new items, answers, operator
/// actions) or its next item is due, whichever comes first.
async fn send_loop(shared: Arc<AppState>) {
    let peers = Arc::new(shared.peer_chains.clone());
    loop {
        let takeover_at = send_due(&shared, &peers).await;
        let now = shared.clock.now_ms();
        // Items left for their duty holder are due in the schedule but ours only at
        // `takeover_at`: wait for that, not for them. Anything else still due (more
        // than one round's worth) goes again at once.
        let at = match shared.queue.next_due_ms() {
            Some(at) if at > now => Some(takeover_at.map_or(at, |t| t.min(at))),
            Some(_) => takeover_at.or(Some(now)),
            None => None,
        };
        let wait = at
            .map_or(IDLE, |at| Duration::from_millis(at.saturating_sub(now)))
            .clamp(Duration::from_millis(5), IDLE);
        tokio::select! {
            _ = shared.queue.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass of the send loop through `peers` (the peer chains' HTTP API in a node, a
/// scripted [`PeerChain`] in tests): every due item is finished, answered or failed,
/// and its new state saved, except those left to the duty holder. Returns when the
/// first of those becomes ours to send.
pub async fn send_due<P: PeerChain + Send + Sync + 'static>(
    shared: &Arc<AppState>,
    peers: &Arc<P>,
) -> Option<u64> {
    let now = shared.clock.now_ms();
    let due = match shared.queue.due(now, shared.config.relay.per_destination) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "relay queue unreadable");
            return None;
        }
    };
    // Relaying duty: the holder sends at once; the others take over what has waited.
    let snap = shared.reads.latest();
    let takeover = shared.config.relay.takeover_ms;
    let (due, waiting): (Vec<QueueItem>, Vec<QueueItem>) = due.into_iter().partition(|item| {
        on_duty(&snap, item.destination, now) || now >= item.created_ms + takeover
    });
    let takeover_at = waiting.iter().map(|i| i.created_ms + takeover).min();
    // Each item is one batch and one call; the queue bounds how many are due per
    // destination at a time.
    let tasks: Vec<_> = due
        .into_iter()
        .map(|item| tokio::spawn(attempt_one(shared.clone(), peers.clone(), item)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    takeover_at
}

/// How long one producer holds the relaying duty to a destination before the next
/// one of the schedule does.
pub const DUTY_PERIOD_MS: u64 = 60_000;

/// The producer whose node relays to `destination` at `now_ms` (DESIGN §6.1): a
/// round-robin over the active schedule, shifted per destination so that duties
/// spread, turning every [`DUTY_PERIOD_MS`].
pub fn duty_holder(
    schedule: &distpos_proofs::ProducerSchedule,
    destination: ChainId,
    now_ms: u64,
) -> Option<distpos_proofs::PublicKey> {
    let n = schedule.producers.len() as u64;
    if n == 0 {
        return None;
    }
    let i = (u64::from(destination.0) + now_ms / DUTY_PERIOD_MS) % n;
    schedule.producers.get(i as usize).copied()
}

/// Whether this node holds the relaying duty to `destination` now.
pub fn on_duty(snap: &Snapshot, destination: ChainId, now_ms: u64) -> bool {
    snap.info.producer_key.is_some()
        && duty_holder(&snap.consensus.active, destination, now_ms) == snap.info.producer_key
}

/// [`attempt`] as a task of its own (a v2 batch is one call).
async fn attempt_one<P: PeerChain + Send + Sync + 'static>(
    shared: Arc<AppState>,
    peers: Arc<P>,
    item: QueueItem,
) {
    attempt(shared, peers.as_ref(), item).await;
}

/// Items finished without a call: settled deliveries and expired items.
async fn triage(shared: &AppState, items: Vec<QueueItem>) -> (Vec<QueueItem>, Vec<QueueItem>) {
    let now = shared.clock.now_ms();
    let snap = shared.reads.latest();
    let lib = snap.consensus.lib;
    let mut finished = Vec::new();
    let mut live = Vec::new();
    for mut item in items {
        // A delivery is finished once our ledger settled it irreversibly (a
        // settlement above our LIB may still be undone).
        let settled_here = |t: &Hash32| {
            interchain::settled_record(&snap.state, t)
                .ok()
                .flatten()
                .is_some_and(|s| s.height <= lib)
        };
        let settled = match &item.payload {
            Payload::DeliveryBatch(_) => item.transfers().iter().all(settled_here),
            Payload::ReceiptBatch(_) => false,
        };
        if settled {
            item.state = ItemState::Done;
            finished.push(item);
        } else if now.saturating_sub(item.created_ms) > shared.config.relay.max_lifetime_ms {
            warn!(item = %item.id, attempts = item.attempts, "relay item expired");
            item.state = ItemState::Expired;
            finished.push(item);
        } else {
            live.push(item);
        }
    }
    (finished, live)
}

/// The destination's endpoints in route order, checked against the identity it
/// registered with us.
async fn endpoints_for(
    shared: &AppState,
    destination: ChainId,
    now: u64,
) -> Result<Vec<distpos_routing::Endpoint>, distpos_routing::RoutingError> {
    let identity = ledger::peer(&shared.reads.latest().state, destination)
        .ok()
        .flatten()
        .map(|p| p.registration.identity);
    shared.routes.resolve(destination, identity, now).await
}

/// Saves items' new states; a failed write is logged loudly (the items stay due in
/// memory and on disk in their previous state, so nothing is lost, only repeated).
fn save(shared: &AppState, items: &[QueueItem]) {
    if let Err(e) = shared.queue.update_many(items) {
        error!(error = %e, items = items.len(), "relay queue: cannot save item states");
    }
}

/// Records a peer's ack of an item.
fn record_ack(item: &mut QueueItem, ack: RelayAck, endpoint: &str, now: u64) {
    item.attempts += 1;
    item.last_endpoint = Some(endpoint.to_string());
    item.last_error = ack.reason.clone();
    item.peer_tx = ack.tx.or(item.peer_tx);
    item.answered(ack.status, now);
    debug!(item = %item.id, endpoint, status = %ack.status, "relay: answered");
}

/// One attempt at one item: every endpoint of its destination in route order, until
/// one answers.
async fn attempt<P: PeerChain + Send + Sync>(shared: Arc<AppState>, peers: &P, item: QueueItem) {
    let (mut done, live) = triage(&shared, vec![item]).await;
    let Some(mut item) = live.into_iter().next() else {
        save(&shared, &done);
        return;
    };
    let now = shared.clock.now_ms();
    let endpoints = match endpoints_for(&shared, item.destination, now).await {
        Ok(e) => e,
        Err(e) => {
            item.failed(format!("no route: {e}"), now);
            done.push(item);
            save(&shared, &done);
            return;
        }
    };
    let mut last_error = String::from("no endpoints");
    for ep in endpoints {
        shared.metrics.relay_attempts.inc();
        let started = std::time::Instant::now();
        let result: Result<RelayAck, AdapterError> = match &item.payload {
            Payload::DeliveryBatch(d) => peers.deliver_v2(&ep.url, d).await,
            Payload::ReceiptBatch(r) => peers.deliver_receipts_v2(&ep.url, r).await,
        };
        match result {
            Ok(ack) => {
                shared.routes.report_success(
                    &ep.url,
                    started.elapsed().as_millis() as u64,
                    shared.clock.now_ms(),
                );
                record_ack(&mut item, ack, &ep.url, shared.clock.now_ms());
                done.push(item);
                save(&shared, &done);
                return;
            }
            Err(e) => {
                shared.metrics.relay_failures.inc();
                if e.is_retryable() {
                    shared.routes.report_failure(&ep.url, shared.clock.now_ms());
                }
                last_error = e.to_string();
                debug!(item = %item.id, endpoint = %ep.url, error = %e, "relay: attempt failed; trying next endpoint");
                if !e.is_retryable() {
                    break;
                }
            }
        }
    }
    item.failed(last_error, shared.clock.now_ms());
    done.push(item);
    save(&shared, &done);
}

/// Fetches the headers of every registered peer above our light client of it: the
/// run the next batch (or header run) of that peer carries into a block.
async fn header_loop(shared: Arc<AppState>) {
    let every = Duration::from_millis(shared.config.relay.header_sync_ms);
    loop {
        tokio::time::sleep(every).await;
        let peers: Vec<PeerSync> = {
            let node = shared.node.lock().await;
            node.state
                .scan_prefix(ledger::keys::PEER)
                .filter_map(|(_, v)| {
                    distpos_proofs::codec::decode_canonical::<ledger::PeerChain>(v).ok()
                })
                .filter_map(|p| {
                    let lc = &p.light_client;
                    let peer = p.registration.chain;
                    // Fetch from the first height the run above the light client
                    // lacks. Headers sent along with batches may sit above a gap:
                    // resuming after the highest one held would never fill it.
                    let (at, prev) = node.held_run_tip(peer);
                    let from = at + 1;
                    // A full run held already: the next block takes it first.
                    let full =
                        from - lc.head() > crate::interchain::batch::MAX_BUFFERED_HEADERS as u64;
                    (!full).then_some(PeerSync {
                        peer,
                        identity: p.registration.identity,
                        from,
                        prev,
                        lib: lc.lib(),
                    })
                })
                .collect()
        };
        for p in peers {
            if let Err(e) = sync_peer(&shared, &p).await {
                debug!(peer = %p.peer, error = %e, "peer header sync");
            }
        }
        watch_light_clients(&shared).await;
    }
}

/// Notes each peer's light-client head and, for one that has not moved for a while,
/// tries the headers held above it on a copy (off the node lock) to say why
/// ([`crate::interchain::stall`]).
async fn watch_light_clients(shared: &AppState) {
    let now = shared.clock.now_ms();
    let trials: Vec<crate::interchain::stall::Trial> = {
        let node = shared.node.lock().await;
        let heads: Vec<(ChainId, u64)> = node
            .state
            .scan_prefix(ledger::keys::PEER)
            .filter_map(|(_, v)| {
                distpos_proofs::codec::decode_canonical::<ledger::PeerChain>(v).ok()
            })
            .map(|p| (p.registration.chain, p.light_client.head()))
            .collect();
        let registered: Vec<ChainId> = heads.iter().map(|(p, _)| *p).collect();
        shared.peer_watch.retain(&registered, &shared.metrics);
        heads
            .into_iter()
            .filter(|(peer, head)| {
                shared
                    .peer_watch
                    .observe(*peer, *head, now, &shared.metrics)
            })
            .filter_map(|(peer, _)| node.stall_trial(peer))
            .collect()
    };
    for t in trials {
        let (peer, reason) = crate::cpu::blocking(|| (t.peer, t.refusal(now)));
        shared
            .peer_watch
            .verdict(peer, reason, now, &shared.metrics);
    }
}

/// Where header sync of one peer starts.
struct PeerSync {
    peer: ChainId,
    identity: Hash32,
    /// First height to fetch.
    from: u64,
    /// Id the header at `from` must follow.
    prev: Hash32,
    /// Our light client's checkpoint height.
    lib: u64,
}

async fn sync_peer(shared: &AppState, p: &PeerSync) -> Result<(), String> {
    let endpoints = shared
        .routes
        .resolve(p.peer, Some(p.identity), shared.clock.now_ms())
        .await
        .map_err(|e| e.to_string())?;
    for ep in endpoints {
        let page = match shared
            .peer_chains
            .headers(&ep.url, p.from, p.from + 199)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                if e.is_retryable() {
                    shared.routes.report_failure(&ep.url, shared.clock.now_ms());
                }
                continue;
            }
        };
        let mut headers = page.headers;
        let mut branch = false;
        if headers.first().is_some_and(|h| h.header.prev_id != p.prev) {
            // The peer's chain moved to another branch above what we hold.
            branch = true;
            headers = match shared
                .peer_chains
                .headers(&ep.url, p.lib + 1, p.lib + 200)
                .await
            {
                Ok(page) => page.headers,
                Err(e) => return Err(e.to_string()),
            };
        }
        if headers.is_empty() {
            return Ok(());
        }
        let mut node = shared.node.lock().await;
        if branch {
            node.relay.peer_headers.remove(&p.peer);
        }
        node.buffer_peer_headers(p.peer, &headers);
        // Batches that came before these headers can be checked now.
        crate::cpu::blocking(|| node.promote_unseen(p.peer, shared.clock.now_ms()));
        return Ok(());
    }
    Err("no endpoint answered".into())
}

#[cfg(test)]
mod tests;
