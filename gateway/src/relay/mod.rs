//! The relay's background work (DESIGN §6 steps 3 and 6, §7): finding new outbound
//! transfers and receipts in irreversible blocks, delivering them through the routing
//! table with failover and retries, keeping our light clients of peer chains fed with
//! headers, and retrying deliveries that were not provable yet.

use crate::queue::{ItemState, Payload, QueueItem};
use crate::{node::snapshot::Snapshot, state::AppState};
use distpos_adapters::{AdapterError, Delivery, PeerChain, ReceiptDelivery, RelayAck};
use distpos_chain::{interchain, ledger, tx::Outcome};
use distpos_proofs::{merkle, ChainId, Hash32};
use std::{sync::Arc, time::Duration};
use tracing::{debug, error, info, warn};

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
        header_loop(s).await;
        "header sync"
    });
    loops.spawn(async move {
        pending_loop(shared).await;
        "pending"
    });
    match loops.join_next().await {
        Some(Ok(name)) => Err(format!("the relay's {name} loop ended")),
        Some(Err(e)) => Err(format!("a relay loop stopped: {e}")),
        None => Err("no relay loops".into()),
    }
}

/// Finds deliveries and receipts in blocks that became irreversible.
async fn scan_loop(shared: Arc<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = scan_once(&shared).await {
            warn!(error = %e, "relay scan failed");
        }
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
/// blocks at a time), and the height scanned up to.
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
        // Each tree is built once per block, then proves any number of its leaves.
        let tx_tree = merkle::Prover::new(
            &block
                .txs
                .iter()
                .map(|t| merkle::leaf_hash(&t.encode()))
                .collect::<Vec<Hash32>>(),
        );
        let r_tree = merkle::Prover::new(
            &receipts
                .iter()
                .map(|r| merkle::leaf_hash(&r.encode()))
                .collect::<Vec<Hash32>>(),
        );
        for (i, r) in receipts.iter().enumerate() {
            match &r.outcome {
                Outcome::InFlight { destination } => {
                    let Some(proof) = tx_tree.prove(i) else {
                        continue;
                    };
                    let d = Delivery {
                        source_chain: ours,
                        source_tx: block.txs[i].clone(),
                        proof,
                        height: h,
                        index: i as u32,
                        hops: 0,
                    };
                    items.push(QueueItem::delivery(d, *destination, now));
                }
                Outcome::Delivered { source, source_tx }
                | Outcome::Bounced {
                    source, source_tx, ..
                } => {
                    let Some(proof) = r_tree.prove(i) else {
                        continue;
                    };
                    let rd = ReceiptDelivery {
                        receipt_chain: ours,
                        receipt: r.clone(),
                        proof,
                        height: h,
                        index: i as u32,
                    };
                    items.push(QueueItem::receipt(rd, *source, *source_tx, now));
                }
                _ => {}
            }
        }
    }
    Ok((items, upto))
}

/// Sends what is due: per destination and kind, in batches of up to
/// [`distpos_adapters::MAX_BATCH`], one call each.
async fn send_loop(shared: Arc<AppState>) {
    let peers = Arc::new(shared.peer_chains.clone());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        send_due(&shared, &peers).await;
    }
}

/// One pass of the send loop through `peers` (the peer chains' HTTP API in a node, a
/// scripted [`PeerChain`] in tests): every due item is finished, answered or failed,
/// and its new state saved.
pub async fn send_due<P: PeerChain + Send + Sync + 'static>(
    shared: &Arc<AppState>,
    peers: &Arc<P>,
) {
    let now = shared.clock.now_ms();
    let due = match shared.queue.due(now, shared.config.relay.per_destination) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "relay queue unreadable");
            return;
        }
    };
    shared.metrics.set_queue_depth(&shared.queue.depth());
    let mut groups = std::collections::BTreeMap::<(ChainId, bool), Vec<QueueItem>>::new();
    for item in due {
        let is_receipt = matches!(item.payload, Payload::Receipt(_));
        groups
            .entry((item.destination, is_receipt))
            .or_default()
            .push(item);
    }
    let mut tasks = Vec::new();
    for (_, mut items) in groups {
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(distpos_adapters::MAX_BATCH));
            tasks.push(attempt_batch(shared.clone(), peers.clone(), items));
            items = rest;
        }
    }
    futures_join_all(tasks).await;
}

async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(tasks: Vec<F>) {
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
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
        let settled = matches!(item.payload, Payload::Delivery(_))
            && interchain::settled_record(&snap.state, &item.transfer)
                .ok()
                .flatten()
                .is_some_and(|s| s.height <= lib);
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

/// One attempt at a batch of items of one destination and kind: every endpoint of
/// the destination in route order, one call each, until one answers.
async fn attempt_batch<P: PeerChain + Send + Sync + 'static>(
    shared: Arc<AppState>,
    peers: Arc<P>,
    items: Vec<QueueItem>,
) {
    let (mut done, mut live) = triage(&shared, items).await;
    let Some(destination) = live.first().map(|i| i.destination) else {
        save(&shared, &done);
        return;
    };
    let now = shared.clock.now_ms();
    let endpoints = match endpoints_for(&shared, destination, now).await {
        Ok(e) => e,
        Err(e) => {
            for item in &mut live {
                item.failed(format!("no route: {e}"), now);
            }
            done.append(&mut live);
            save(&shared, &done);
            return;
        }
    };
    let mut last_error = String::from("no endpoints");
    for ep in endpoints {
        shared.metrics.relay_attempts.inc_by(live.len() as u64);
        let started = std::time::Instant::now();
        let result = match &live[0].payload {
            Payload::Delivery(_) => {
                let ds: Vec<Delivery> = live
                    .iter()
                    .filter_map(|i| match &i.payload {
                        Payload::Delivery(d) => Some(d.clone()),
                        Payload::Receipt(_) => None,
                    })
                    .collect();
                peers.deliver_batch(&ep.url, &ds).await
            }
            Payload::Receipt(_) => {
                let rs: Vec<ReceiptDelivery> = live
                    .iter()
                    .filter_map(|i| match &i.payload {
                        Payload::Receipt(r) => Some(r.clone()),
                        Payload::Delivery(_) => None,
                    })
                    .collect();
                peers.deliver_receipt_batch(&ep.url, &rs).await
            }
        };
        match result {
            Ok(answers) if answers.len() == live.len() => {
                shared.routes.report_success(
                    &ep.url,
                    started.elapsed().as_millis() as u64,
                    shared.clock.now_ms(),
                );
                for (item, a) in live.iter_mut().zip(answers) {
                    match (a.ack, a.error) {
                        (Some(ack), _) => record_ack(item, ack, &ep.url, shared.clock.now_ms()),
                        (None, Some(e)) => {
                            shared.metrics.relay_failures.inc();
                            debug!(item = %item.id, endpoint = %ep.url, code = %e.code, "relay: refused");
                            item.failed(
                                format!("{}: {}", e.code, e.message),
                                shared.clock.now_ms(),
                            );
                        }
                        (None, None) => item.failed("empty answer".into(), shared.clock.now_ms()),
                    }
                }
                done.append(&mut live);
                save(&shared, &done);
                return;
            }
            Ok(answers) => {
                // Mixed kinds cannot happen (grouped by kind); a short answer is the
                // peer's fault, and is handled as a bad response.
                last_error = format!("{} answers for {} items", answers.len(), live.len());
            }
            Err(AdapterError::Status {
                status: 404 | 405, ..
            }) => {
                // A peer without batch calls: one call per item.
                save(&shared, &done);
                for item in live {
                    attempt(shared.clone(), peers.as_ref(), item).await;
                }
                return;
            }
            Err(e) => {
                shared.metrics.relay_failures.inc();
                if e.is_retryable() {
                    shared.routes.report_failure(&ep.url, shared.clock.now_ms());
                }
                last_error = e.to_string();
                debug!(endpoint = %ep.url, items = live.len(), error = %e, "relay: batch attempt failed; trying next endpoint");
                if !e.is_retryable() {
                    break;
                }
            }
        }
    }
    for item in &mut live {
        item.failed(last_error.clone(), shared.clock.now_ms());
    }
    done.append(&mut live);
    save(&shared, &done);
}

/// One attempt at one item: every endpoint of its destination in route order (for
/// peers without batch calls).
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
            Payload::Delivery(d) => peers.deliver(&ep.url, d).await,
            Payload::Receipt(r) => peers.deliver_receipt(&ep.url, r).await,
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

/// Keeps our light clients of every registered peer fed with its headers.
async fn header_loop(shared: Arc<AppState>) {
    let every = Duration::from_millis(shared.config.relay.header_sync_ms);
    loop {
        tokio::time::sleep(every).await;
        let peers: Vec<(ChainId, Hash32, u64, u64, Hash32)> = {
            let node = shared.node.lock().await;
            if node.key.is_none() {
                continue;
            }
            node.state
                .scan_prefix(ledger::keys::PEER)
                .filter_map(|(_, v)| {
                    distpos_proofs::codec::decode_canonical::<ledger::PeerChain>(v).ok()
                })
                .filter(|p| !node.headers_pending(p.registration.chain))
                .map(|p| {
                    let lc = &p.light_client;
                    (
                        p.registration.chain,
                        p.registration.identity,
                        lc.head(),
                        lc.lib(),
                        lc.head_id(),
                    )
                })
                .collect()
        };
        for (peer, identity, head, lib, head_id) in peers {
            if let Err(e) = sync_peer(&shared, peer, identity, head, lib, head_id).await {
                debug!(peer = %peer, error = %e, "peer header sync");
            }
        }
    }
}

async fn sync_peer(
    shared: &AppState,
    peer: ChainId,
    identity: Hash32,
    head: u64,
    lib: u64,
    head_id: Hash32,
) -> Result<(), String> {
    let endpoints = shared
        .routes
        .resolve(peer, Some(identity), shared.clock.now_ms())
        .await
        .map_err(|e| e.to_string())?;
    for ep in endpoints {
        let page = match shared
            .peer_chains
            .headers(&ep.url, head + 1, head + 200)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                if e.is_retryable() {
                    shared.routes.report_failure(&ep.url, shared.clock.now_ms());
                }
                continue;
            }
        };
        let mut headers = page.headers;
        if headers.first().is_some_and(|h| h.header.prev_id != head_id) {
            // The peer's chain moved to another branch above our checkpoint.
            headers = match shared
                .peer_chains
                .headers(&ep.url, lib + 1, lib + 200)
                .await
            {
                Ok(p) => p.headers,
                Err(e) => return Err(e.to_string()),
            };
        }
        if headers.is_empty() {
            return Ok(());
        }
        let mut node = shared.node.lock().await;
        return crate::cpu::blocking(|| {
            node.submit_peer_headers(peer, headers, shared.clock.now_ms())
        })
        .map(|_| ())
        .map_err(|e| e.to_string());
    }
    Err("no endpoint answered".into())
}

/// Retries deliveries and receipts that were not provable yet.
async fn pending_loop(shared: Arc<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut node = shared.node.lock().await;
        crate::cpu::blocking(|| node.retry_pending(shared.clock.now_ms()));
    }
}

#[cfg(test)]
mod tests;
