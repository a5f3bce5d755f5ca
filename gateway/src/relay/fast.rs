//! The underwritten fast path, source side (DESIGN §11): when this node's producer
//! makes a block holding transfers that pay a fast fee, it endorses each within its
//! free bond on the destination, asks this chain's other nodes for the rest
//! (co-underwriting, `POST /v1/fast/endorse`), and as soon as the shares cover the
//! transfer delivers it to the destination (`POST /v1/relay/fast`) — before the block
//! is irreversible here. A transfer the bonds cannot cover goes the ordinary way,
//! which it takes anyway: the fast path is best effort, never the only path.
//!
//! What a node may endorse is its bond on the destination less what the destination
//! has locked (read from the destination's `GET /v1/underwriters`, cached for a
//! moment) less what it endorsed here in the last [`RESERVE_MS`] (endorsements the
//! destination may not have applied yet). The destination checks every share against
//! the bond again when it applies the transfer, so a stale figure here can only make a
//! fast delivery fail, never over-commit a bond.

use crate::state::AppState;
use distpos_adapters::{Client, EndorseAnswer, EndorseRequest, FastDelivery, RelayAck};
use distpos_chain::{ledger, Block, Body, Transaction};
use distpos_proofs::{
    fast::{EndorsedTransfer, Endorsement},
    merkle, multiproof, ChainId, Hash32, PublicKey, SecretKey,
};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::sync::Mutex;
use tracing::{debug, info};

/// How long a share endorsed here counts against the bond, whether or not the
/// destination applied it (after that, the destination's own figure has it).
pub const RESERVE_MS: u64 = 30_000;
/// How long a destination's bond figures are reused.
const BOND_CACHE_MS: u64 = 1_000;
/// How long a call to another node or to the destination may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Most endorsements this node remembers (oldest forgotten first).
const MAX_ISSUED: usize = 10_000;
/// Most blocks of ours whose fast transfers are being endorsed and delivered at once.
const MAX_BLOCKS_IN_FLIGHT: usize = 16;
/// How far back a block of ours is still worth a fast delivery when this node catches
/// up (older ones are irreversible by now, or nearly: the ordinary path is as fast).
const RECENT_BLOCKS: u64 = 8;

/// What this node endorsed and what it knows of its bonds.
#[derive(Default)]
pub struct Underwriting {
    /// Shares endorsed here, by transfer and block: (destination, share, when, the
    /// endorsement).
    issued: BTreeMap<(Hash32, Hash32), (ChainId, u128, u64, Endorsement)>,
    /// Free bond per destination as it last said, and when.
    free: BTreeMap<ChainId, (u128, u64)>,
}

impl Underwriting {
    /// What this node still endorses to `dest`: the destination's free figure less
    /// the shares endorsed here within [`RESERVE_MS`].
    fn available(&self, dest: ChainId, free: u128, now: u64) -> u128 {
        let reserved: u128 = self
            .issued
            .values()
            .filter(|(d, _, at, _)| *d == dest && now.saturating_sub(*at) < RESERVE_MS)
            .map(|(_, s, _, _)| *s)
            .sum();
        free.saturating_sub(reserved)
    }

    fn remember(&mut self, key: (Hash32, Hash32), dest: ChainId, e: &Endorsement, now: u64) {
        if self.issued.len() >= MAX_ISSUED {
            if let Some(oldest) = self
                .issued
                .iter()
                .min_by_key(|(_, (_, _, at, _))| *at)
                .map(|(k, _)| *k)
            {
                self.issued.remove(&oldest);
            }
        }
        self.issued.insert(key, (dest, e.share, now, e.clone()));
    }
}

/// Our chain's id.
fn chain_of(shared: &AppState) -> ChainId {
    shared.reads.latest().info.genesis.chain_id
}

/// This node's signing key, if it has one.
async fn our_key(shared: &AppState) -> Option<SecretKey> {
    shared.node.lock().await.key.clone()
}

/// The free part of `key`'s bond for transfers from `ours` on `dest`, as `dest` says
/// (cached for [`BOND_CACHE_MS`]); 0 when it cannot be asked or there is no bond.
async fn free_bond(
    shared: &AppState,
    uw: &Mutex<Underwriting>,
    dest: ChainId,
    ours: ChainId,
    key: &PublicKey,
) -> u128 {
    let now = shared.clock.now_ms();
    if let Some((free, at)) = uw.lock().await.free.get(&dest) {
        if now.saturating_sub(*at) < BOND_CACHE_MS {
            return *free;
        }
    }
    let endpoints = super::endpoints_for(shared, dest, now)
        .await
        .unwrap_or_default();
    let mut free = 0;
    for ep in endpoints {
        let Ok(c) = Client::with_timeout(&ep.url, CALL_TIMEOUT) else {
            continue;
        };
        match c
            .get_json::<serde_json::Value>(&format!("/v1/underwriters?peer={ours}"))
            .await
        {
            Ok(v) => {
                let want = serde_json::to_value(key).unwrap_or_default();
                free = v["peers"][0]["bonds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|b| b["signing_key"] == want)
                    .and_then(|b| b["free"].as_str()?.parse().ok())
                    .unwrap_or(0);
                break;
            }
            Err(e) => debug!(endpoint = %ep.url, error = %e, "fast path: cannot read bonds"),
        }
    }
    uw.lock().await.free.insert(dest, (free, now));
    free
}

/// A fast transfer of `block`: its index, destination and total (amount + fast fee).
fn fast_transfers(block: &Block, ours: ChainId) -> Vec<(u32, ChainId, u128, &Transaction)> {
    block
        .txs
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.body {
            Body::Transfer {
                to,
                amount,
                fast_fee,
                ..
            } if *fast_fee > 0 && to.chain != ours => {
                Some((i as u32, to.chain, amount.checked_add(*fast_fee)?, t))
            }
            _ => None,
        })
        .collect()
}

/// Endorses up to `want` of `t` (in `block`, to `dest`) with `key` within its free
/// bond; the same endorsement again if it was asked before for the same block.
async fn endorse(
    shared: &AppState,
    uw: &Mutex<Underwriting>,
    key: &SecretKey,
    block: &Block,
    t: &Transaction,
    dest: ChainId,
    want: u128,
) -> Result<Endorsement, String> {
    let ours = chain_of(shared);
    let tx = t.hash();
    let id = (tx, block.id());
    if let Some((_, _, _, e)) = uw.lock().await.issued.get(&id) {
        return Ok(e.clone());
    }
    let free = free_bond(shared, uw, dest, ours, &key.public_key()).await;
    let now = shared.clock.now_ms();
    let mut g = uw.lock().await;
    let share = g.available(dest, free, now).min(want);
    if share == 0 {
        return Err(format!(
            "no free bond on chain {dest} (free there {free}, endorsed here lately {})",
            free.saturating_sub(g.available(dest, free, now))
        ));
    }
    let what = EndorsedTransfer {
        source: ours,
        destination: dest,
        tx,
        block_id: block.id(),
        height: block.header.header.height,
    };
    let e = what.endorse(key, share);
    g.remember(id, dest, &e, now);
    Ok(e)
}

/// `POST /v1/fast/endorse`: a share of a fast transfer in a block of ours, asked by
/// another node of this chain. The block must be one this node holds.
pub async fn co_endorse(shared: &Arc<AppState>, r: EndorseRequest) -> EndorseAnswer {
    let no = |why: String| EndorseAnswer {
        endorsement: None,
        reason: Some(why),
    };
    let Some(key) = our_key(shared).await else {
        return no("this node has no key to endorse with".into());
    };
    // The block may still be on its way here by gossip: a moment's patience.
    let mut block = None;
    for _ in 0..10 {
        let found = {
            let node = shared.node.lock().await;
            node.store.block(&r.block_id).ok().flatten()
        };
        if found.is_some() {
            block = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(block) = block else {
        return no(format!("block {} is not known here", r.block_id));
    };
    let ours = chain_of(shared);
    let Some((_, dest, total, t)) = fast_transfers(&block, ours)
        .into_iter()
        .find(|(_, _, _, t)| t.hash() == r.tx)
    else {
        return no(format!("no fast transfer {} in block {}", r.tx, r.block_id));
    };
    let uw = &shared.underwriting;
    match endorse(shared, uw, &key, &block, t, dest, r.want.min(total)).await {
        Ok(e) => EndorseAnswer {
            endorsement: Some(e),
            reason: None,
        },
        Err(why) => no(why),
    }
}

/// Runs until dropped: endorses and delivers the fast transfers of every block this
/// node's producer makes.
pub async fn fast_loop(shared: Arc<AppState>) {
    let mut reads = shared.reads.clone();
    let mut seen = shared.reads.latest().head_height;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let _ = tokio::time::timeout(super::IDLE, reads.changed()).await;
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "fast path: a delivery task failed");
            }
        }
        let snap = shared.reads.latest();
        let head = snap.head_height;
        if head <= seen {
            seen = seen.min(head);
            continue;
        }
        let Some(key) = our_key(&shared).await else {
            seen = head;
            continue;
        };
        for h in (seen + 1).max(head.saturating_sub(RECENT_BLOCKS))..=head {
            let Ok(Some(block)) = snap.store.block_at(h) else {
                continue;
            };
            if block.header.header.producer != key.public_key()
                || fast_transfers(&block, chain_of(&shared)).is_empty()
            {
                continue;
            }
            if tasks.len() >= MAX_BLOCKS_IN_FLIGHT {
                info!(height = h, "fast path: too many deliveries under way; this block's transfers go the ordinary way");
                continue;
            }
            let shared = shared.clone();
            let key = key.clone();
            // One task per block of ours: a slow destination does not hold up the next.
            tasks.spawn(async move { deliver_block(&shared, &key, &block).await });
        }
        seen = head;
    }
}

/// Endorses, co-underwrites and delivers each fast transfer of `block`.
async fn deliver_block(shared: &AppState, key: &SecretKey, block: &Block) {
    let ours = chain_of(shared);
    let transfers = fast_transfers(block, ours);
    if transfers.is_empty() {
        return;
    }
    let leaves: Vec<Hash32> = block
        .txs
        .iter()
        .map(|t| merkle::leaf_hash(&t.encode()))
        .collect();
    for (index, dest, total, t) in transfers {
        let registered = ledger::peer(&shared.reads.latest().state, dest)
            .ok()
            .flatten()
            .is_some();
        if !registered {
            continue;
        }
        let mut shares: Vec<Endorsement> = Vec::new();
        let mut covered = 0u128;
        match endorse(shared, &shared.underwriting, key, block, t, dest, total).await {
            Ok(e) => {
                covered += e.share;
                shares.push(e);
            }
            Err(why) => debug!(tx = %t.hash(), %dest, why, "fast path: this node endorses nothing"),
        }
        for url in &shared.config.peers {
            if covered >= total || shares.len() >= distpos_chain::tx::MAX_ENDORSEMENTS {
                break;
            }
            let Ok(c) = Client::with_timeout(url, CALL_TIMEOUT) else {
                continue;
            };
            let req = EndorseRequest {
                block_id: block.id(),
                tx: t.hash(),
                want: total - covered,
            };
            match c
                .post_body::<_, EndorseAnswer>("/v1/fast/endorse", &req)
                .await
            {
                Ok(EndorseAnswer {
                    endorsement: Some(e),
                    ..
                }) if e.share > 0
                    && e.share <= total - covered
                    && !shares.iter().any(|s| s.signing_key == e.signing_key) =>
                {
                    covered += e.share;
                    shares.push(e);
                }
                Ok(a) => {
                    debug!(node = %url, reason = ?a.reason, "fast path: no share from a co-underwriter")
                }
                Err(e) => {
                    debug!(node = %url, error = %e, "fast path: co-underwriter not reachable")
                }
            }
        }
        if covered != total {
            info!(tx = %t.hash(), %dest, total, covered, "fast path: the bonds do not cover this transfer; it goes the ordinary way");
            continue;
        }
        let Some(proof) = multiproof::prove_many(&leaves, &[index as usize]) else {
            continue;
        };
        let d = FastDelivery {
            source_chain: ours,
            header: block.header.clone(),
            transfer: t.clone(),
            index,
            proof,
            endorsements: shares,
        };
        send(shared, dest, &d).await;
    }
}

/// Posts a fast delivery to the destination's endpoints in route order, until one
/// takes it.
async fn send(shared: &AppState, dest: ChainId, d: &FastDelivery) {
    let now = shared.clock.now_ms();
    let endpoints = super::endpoints_for(shared, dest, now)
        .await
        .unwrap_or_default();
    for ep in endpoints {
        let Ok(c) = Client::with_timeout(&ep.url, CALL_TIMEOUT) else {
            continue;
        };
        match c.post_body::<_, RelayAck>("/v1/relay/fast", d).await {
            Ok(ack) => {
                info!(tx = %d.transfer.hash(), %dest, status = %ack.status, shares = d.endorsements.len(), "fast path: delivered before finality");
                return;
            }
            Err(e) => {
                debug!(endpoint = %ep.url, error = %e, "fast path: delivery refused or failed");
                if !e.is_retryable() {
                    return;
                }
            }
        }
    }
}
