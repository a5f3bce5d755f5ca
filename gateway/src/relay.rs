//! The relay's background work (DESIGN §6 steps 3 and 6, §7): finding new outbound
//! transfers and receipts in irreversible blocks, delivering them through the routing
//! table with failover and retries, keeping our light clients of peer chains fed with
//! headers, and retrying deliveries that were not provable yet.

use crate::{
    relay_queue::{ItemState, Payload, QueueItem, REDELIVER_MS},
    service::{now_ms, Shared},
};
use distpos_adapters::{AdapterError, Delivery, PeerChain, ReceiptDelivery, RelayAck};
use distpos_chain::{interchain, ledger, tx::Outcome};
use distpos_proofs::{merkle, ChainId, Hash32};
use std::{sync::Arc, time::Duration};
use tracing::{debug, info, warn};

/// Runs the relay loops until aborted.
pub async fn run(shared: Arc<Shared>) {
    let scan = tokio::spawn(scan_loop(shared.clone()));
    let send = tokio::spawn(send_loop(shared.clone()));
    let headers = tokio::spawn(header_loop(shared.clone()));
    let pending = tokio::spawn(pending_loop(shared.clone()));
    let _ = tokio::join!(scan, send, headers, pending);
}

/// Finds deliveries and receipts in blocks that became irreversible.
async fn scan_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = scan_once(&shared).await {
            warn!(error = %e, "relay scan failed");
        }
    }
}

async fn scan_once(shared: &Shared) -> Result<(), String> {
    let cursor = shared.queue.cursor().map_err(|e| e.to_string())?;
    let node = shared.node.lock().await;
    let lib = node.consensus().map_err(|e| e.to_string())?.lib;
    if lib <= cursor {
        return Ok(());
    }
    let ours = node.genesis.chain_id;
    let now = now_ms();
    let mut items = Vec::new();
    let upto = lib.min(cursor + 500);
    for h in cursor + 1..=upto {
        let Some(block) = node.store.block_at(h).map_err(|e| e.to_string())? else {
            break;
        };
        let id = block.id();
        let receipts = node
            .store
            .receipts(&id)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let tx_leaves: Vec<Hash32> = block
            .txs
            .iter()
            .map(|t| merkle::leaf_hash(&t.encode()))
            .collect();
        let r_leaves: Vec<Hash32> = receipts
            .iter()
            .map(|r| merkle::leaf_hash(&r.encode()))
            .collect();
        for (i, r) in receipts.iter().enumerate() {
            match &r.outcome {
                Outcome::InFlight { destination } => {
                    let Some(proof) = merkle::prove(&tx_leaves, i) else {
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
                    let Some(proof) = merkle::prove(&r_leaves, i) else {
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
    drop(node);
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

/// Sends what is due.
async fn send_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = now_ms();
        let due = match shared.queue.due(now, shared.config.relay.per_destination) {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "relay queue unreadable");
                continue;
            }
        };
        let mut depth = std::collections::BTreeMap::<ChainId, i64>::new();
        if let Ok(all) = shared.queue.list() {
            for it in all
                .iter()
                .filter(|i| matches!(i.state, ItemState::Queued | ItemState::Delivered))
            {
                *depth.entry(it.destination).or_default() += 1;
            }
        }
        shared.metrics.set_queue_depth(&depth);
        let tasks: Vec<_> = due
            .into_iter()
            .map(|item| attempt(shared.clone(), item))
            .collect();
        futures_join_all(tasks).await;
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(tasks: Vec<F>) {
    let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}

/// One attempt at one item: every endpoint of its destination in route order.
async fn attempt(shared: Arc<Shared>, mut item: QueueItem) {
    let now = now_ms();
    // Finished already? A delivery is finished once our ledger settled it.
    if let Payload::Delivery(_) = &item.payload {
        let node = shared.node.lock().await;
        let settled = interchain::settled_record(&node.state, &item.transfer)
            .ok()
            .flatten()
            .is_some();
        drop(node);
        if settled {
            item.state = ItemState::Done;
            let _ = shared.queue.update(&item);
            return;
        }
    }
    if now.saturating_sub(item.created_ms) > shared.config.relay.max_lifetime_ms {
        warn!(item = %item.id, attempts = item.attempts, "relay item expired");
        item.state = ItemState::Expired;
        let _ = shared.queue.update(&item);
        return;
    }
    let identity = {
        let node = shared.node.lock().await;
        ledger::peer(&node.state, item.destination)
            .ok()
            .flatten()
            .map(|p| p.registration.identity)
    };
    let endpoints = match shared.routes.resolve(item.destination, identity, now).await {
        Ok(e) => e,
        Err(e) => {
            item.failed(format!("no route: {e}"), now);
            let _ = shared.queue.update(&item);
            return;
        }
    };
    let mut last_error = String::from("no endpoints");
    for ep in endpoints {
        shared.metrics.relay_attempts.inc();
        let started = std::time::Instant::now();
        let result: Result<RelayAck, AdapterError> = match &item.payload {
            Payload::Delivery(d) => shared.peer.deliver(&ep.url, d).await,
            Payload::Receipt(r) => shared.peer.deliver_receipt(&ep.url, r).await,
        };
        match result {
            Ok(ack) => {
                shared.routes.report_success(
                    &ep.url,
                    started.elapsed().as_millis() as u64,
                    now_ms(),
                );
                item.attempts += 1;
                item.last_endpoint = Some(ep.url.clone());
                item.last_error = ack.reason.clone();
                item.peer_tx = ack.tx.or(item.peer_tx);
                match (&item.payload, ack.status.as_str()) {
                    (Payload::Receipt(_), _) => item.state = ItemState::Done,
                    (Payload::Delivery(_), "pending") => {
                        // The destination is still syncing our headers: retry soon.
                        item.next_attempt_ms = now_ms() + 1_000;
                    }
                    (Payload::Delivery(_), _) => {
                        item.state = ItemState::Delivered;
                        item.next_attempt_ms = now_ms() + REDELIVER_MS;
                    }
                }
                debug!(item = %item.id, endpoint = %ep.url, status = %ack.status, "relay: delivered");
                let _ = shared.queue.update(&item);
                return;
            }
            Err(e) => {
                shared.metrics.relay_failures.inc();
                if e.is_retryable() {
                    shared.routes.report_failure(&ep.url, now_ms());
                }
                last_error = e.to_string();
                debug!(item = %item.id, endpoint = %ep.url, error = %e, "relay: attempt failed; trying next endpoint");
                if !e.is_retryable() {
                    break;
                }
            }
        }
    }
    item.failed(last_error, now_ms());
    let _ = shared.queue.update(&item);
}

/// Keeps our light clients of every registered peer fed with its headers.
async fn header_loop(shared: Arc<Shared>) {
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
    shared: &Shared,
    peer: ChainId,
    identity: Hash32,
    head: u64,
    lib: u64,
    head_id: Hash32,
) -> Result<(), String> {
    let endpoints = shared
        .routes
        .resolve(peer, Some(identity), now_ms())
        .await
        .map_err(|e| e.to_string())?;
    for ep in endpoints {
        let page = match shared.peer.headers(&ep.url, head + 1, head + 200).await {
            Ok(p) => p,
            Err(e) => {
                if e.is_retryable() {
                    shared.routes.report_failure(&ep.url, now_ms());
                }
                continue;
            }
        };
        let mut headers = page.headers;
        if headers.first().is_some_and(|h| h.header.prev_id != head_id) {
            // The peer's chain moved to another branch above our checkpoint.
            headers = match shared.peer.headers(&ep.url, lib + 1, lib + 200).await {
                Ok(p) => p.headers,
                Err(e) => return Err(e.to_string()),
            };
        }
        if headers.is_empty() {
            return Ok(());
        }
        let mut node = shared.node.lock().await;
        return node
            .submit_peer_headers(peer, headers, now_ms())
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    Err("no endpoint answered".into())
}

/// Retries deliveries and receipts that were not provable yet.
async fn pending_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut node = shared.node.lock().await;
        node.retry_pending(now_ms());
    }
}
