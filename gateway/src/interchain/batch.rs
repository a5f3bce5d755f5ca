//! Interchain v2 on the node (DESIGN §6.1): batches of transfers (or receipts) from a
//! peer chain, checked when they arrive, held until our next block, and put in it by
//! its producer as `InboundBatch`/`SettleBatch` system transactions carrying the run of
//! the peer's headers that proves them. Nothing is signed per transfer and no nonce
//! is used: a batch applies once by the ledger's own rules.
//!
//! What anyone can make us hold is bounded, and only real batches take the room: a
//! batch for a block we hold a header of is checked on arrival (a forged one is
//! refused at once), and at most [`MAX_PENDING_BATCHES_PER_PEER`] checked batches wait
//! per peer and kind, beyond which `busy`. A batch for a block beyond every header we
//! hold cannot be checked: it is answered `pending`, not passed on, and kept among at
//! most [`MAX_UNSEEN_BATCHES_PER_PEER`] such batches per peer, the oldest making room,
//! until header sync brings its header (then it is checked like any other). Made-up
//! batches can only push each other (and a real one that came too early) out of that
//! small room; a real one pushed out is sent again by its sender's queue.
//!
//! Headers come only from header sync, which asks the peer chain's own endpoints,
//! never from the batches' senders: a header sent along with a batch is a hint this
//! node does not take (an anonymous caller could otherwise fill the run our next block
//! carries with forged headers). At most [`MAX_BUFFERED_HEADERS`] are held per peer.

use crate::node::{
    pending::{BatchKey, PendingBatch},
    Node, NodeError,
};
use distpos_adapters::{AckStatus, BatchDelivery, BatchReceipts, RelayAck};
use distpos_chain::{
    check_system_body, interchain::Admission, ledger, tx::Outcome, Body, Transaction, TxCheck,
    TxError, UnsignedTx,
};
use distpos_proofs::{
    header::tapos_prefix,
    light_client::{verify_batch, Commitment, Finalized, NotYet},
    ChainId, Hash32, SecretKey, SignedHeader,
};
use tracing::{debug, warn};

/// Most batches held per peer chain and kind.
pub const MAX_PENDING_BATCHES_PER_PEER: usize = 256;
/// Most batches for blocks beyond every header held, per peer chain and kind: kept
/// unchecked until header sync brings their block's header, the oldest making room.
pub const MAX_UNSEEN_BATCHES_PER_PEER: usize = 32;
/// How long such a batch is kept (its sender sends it again meanwhile anyway).
pub const UNSEEN_LIFETIME_MS: u64 = 60_000;
/// Most headers of one peer held for the next block.
pub const MAX_BUFFERED_HEADERS: usize = distpos_chain::tx::MAX_PEER_HEADERS;
/// Most system transactions in one of our blocks.
pub const MAX_SYSTEM_TXS_PER_BLOCK: usize = 64;
/// Most transfers carried by the batches of one of our blocks (a block stays a few
/// MiB, well within what this chain's nodes accept from each other).
pub const MAX_BATCH_ITEMS_PER_BLOCK: usize = 20_000;
/// A light client this many headers behind what we hold gets a run even when no
/// batch waits (it stays close to its peer, and a later batch waits for one block).
pub const LAG_WORTH_A_RUN: u64 = 64;

/// What a system transaction of ours stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemItem {
    /// A run of a peer's headers.
    Headers(ChainId),
    /// A held batch.
    Batch(BatchKey),
    /// A held fast delivery (peer, transfer).
    Fast(ChainId, Hash32),
    /// A slash of a fast transfer (peer, transfer).
    Slash(ChainId, Hash32),
    /// A `Forward` of a held transfer (peer, transfer).
    Forward(ChainId, Hash32),
    /// A `Release` of held transfers from a peer.
    Release(ChainId),
}

/// How long a batch that never becomes provable is held.
pub const BATCH_LIFETIME_MS: u64 = 60 * 60 * 1000;

fn ack(status: AckStatus, reason: Option<String>) -> RelayAck {
    RelayAck {
        status,
        tx: None,
        reason,
    }
}

impl Node {
    /// A v2 batch of transfers to us (`POST /v1/relay/v2/deliveries`).
    pub fn handle_batch_delivery(
        &mut self,
        d: BatchDelivery,
        now_ms: u64,
    ) -> Result<RelayAck, NodeError> {
        let peer = d.source_chain;
        self.check_peer(peer)?;
        let hashes: Vec<Hash32> = d.transfers.iter().map(Transaction::hash).collect();
        let consumed = hashes
            .iter()
            .filter(|h| distpos_chain::interchain::fast::settled_in(&self.state, peer, h))
            .count();
        if consumed > 0 && consumed == hashes.len() {
            // A forged proof is refused even for transfers consumed already (checked
            // against the irreversible header we keep: no signature to verify).
            if let Ok(Some(header)) = ledger::peer_header(&self.state, peer, d.height) {
                let items: Vec<Vec<u8>> = d.transfers.iter().map(Transaction::encode).collect();
                verify_batch(
                    &header,
                    &items,
                    &d.indices,
                    &d.proof,
                    Commitment::Transactions,
                )
                .map_err(|r| TxError::from(distpos_chain::ProofError::Rejected(r)))?;
            }
            return Ok(ack(AckStatus::AlreadyConsumed, None));
        }
        if consumed > 0 {
            return Err(TxError::Invalid(format!(
                "{consumed} of the batch's {} transfers were consumed already; send the others as their own batch",
                hashes.len()
            ))
            .into());
        }
        let amount = d
            .transfers
            .iter()
            .filter_map(|t| t.body.carried())
            .fold(0u128, u128::saturating_add);
        let key = BatchKey {
            peer,
            settle: false,
            height: d.height,
            first_index: d.indices.first().copied().unwrap_or(0),
            digest: claim_digest(&d.indices, &hashes),
        };
        let body = Body::InboundBatch {
            peer,
            headers: Vec::new(),
            source_height: d.height,
            transfers: d.transfers,
            indices: d.indices,
            proof: d.proof,
        };
        self.hold(key, PendingBatch::new(body, hashes, amount, now_ms), now_ms)
    }

    /// A v2 batch of receipts for our transfers (`POST /v1/relay/v2/receipts`).
    pub fn handle_batch_receipts(
        &mut self,
        r: BatchReceipts,
        now_ms: u64,
    ) -> Result<RelayAck, NodeError> {
        let peer = r.receipt_chain;
        self.check_peer(peer)?;
        let ours = self.genesis.chain_id;
        let mut transfers = Vec::new();
        let mut amount = 0u128;
        for receipt in &r.receipts {
            match &receipt.outcome {
                Outcome::InboundBatch { source, results } if *source == ours => {
                    for res in results {
                        transfers.push(res.source_tx);
                        amount = amount.saturating_add(res.amount);
                    }
                }
                _ => {
                    return Err(
                        TxError::from(distpos_chain::ProofError::NotATransferReceipt).into(),
                    )
                }
            }
        }
        let settled = transfers
            .iter()
            .filter_map(|t| interchain_settled(self, t))
            .collect::<Vec<u64>>();
        if !transfers.is_empty() && settled.len() == transfers.len() {
            // Final only once every settling block is irreversible here.
            let lib = self.consensus()?.lib;
            return Ok(if settled.iter().all(|h| *h <= lib) {
                ack(AckStatus::AlreadySettled, None)
            } else {
                ack(
                    AckStatus::Accepted,
                    Some("settled in a block that is not irreversible yet".into()),
                )
            });
        }
        let receipt_hashes: Vec<Hash32> = r
            .receipts
            .iter()
            .map(|rc| distpos_proofs::sha256(&rc.encode()))
            .collect();
        let key = BatchKey {
            peer,
            settle: true,
            height: r.height,
            first_index: r.indices.first().copied().unwrap_or(0),
            digest: claim_digest(&r.indices, &receipt_hashes),
        };
        let body = Body::SettleBatch {
            peer,
            headers: Vec::new(),
            source_height: r.height,
            receipts: r.receipts,
            indices: r.indices,
            proof: r.proof,
        };
        self.hold(
            key,
            PendingBatch::new(body, transfers, amount, now_ms),
            now_ms,
        )
    }

    /// Whether a batch of `peer` (receipts when `settle`) from its block `height`,
    /// starting at `first_index`, is held for our next block.
    pub fn holds_batch(&self, peer: ChainId, settle: bool, height: u64, first_index: u32) -> bool {
        self.relay.batches.keys().any(|k| {
            k.peer == peer
                && k.settle == settle
                && k.height == height
                && k.first_index == first_index
        })
    }

    fn check_peer(&self, peer: ChainId) -> Result<(), NodeError> {
        if peer == self.genesis.chain_id {
            return Err(
                TxError::Invalid("a batch cannot come from this chain itself".into()).into(),
            );
        }
        ledger::peer(&self.state, peer)?.ok_or(TxError::UnknownPeer(peer))?;
        Ok(())
    }

    /// Checks a batch against our state with the headers we hold for its peer, and
    /// keeps it for our next block unless it is refused or cannot be checked yet.
    fn hold(
        &mut self,
        key: BatchKey,
        mut batch: PendingBatch,
        now_ms: u64,
    ) -> Result<RelayAck, NodeError> {
        if let Some(p) = self.relay.batches.get(&key) {
            return Ok(match &p.reason {
                None => ack(AckStatus::Accepted, None),
                Some(why) => ack(AckStatus::Pending, Some(why.clone())),
            });
        }
        let held = self
            .relay
            .batches
            .keys()
            .filter(|k| k.peer == key.peer && k.settle == key.settle)
            .count();
        if held >= MAX_PENDING_BATCHES_PER_PEER {
            return Err(NodeError::Busy(format!(
                "{held} batches from chain {} wait already; send again later",
                key.peer
            )));
        }
        let verdict = self.check_batch(&batch.body, now_ms);
        let reason = match verdict {
            Admission::Refused(e) => return Err(e.into()),
            Admission::Admissible(_) => None,
            Admission::NotYet(why @ NotYet::Unseen { .. }) => {
                // Nothing to check it against: kept apart, in a small room of its own,
                // so that made-up batches for blocks far ahead take no room from real
                // ones; checked once header sync has brought its block's header.
                self.keep_unseen(key, batch);
                return Ok(ack(
                    AckStatus::Pending,
                    Some(format!("{why}; kept until header sync brings it")),
                ));
            }
            Admission::NotYet(why) => Some(why.to_string()),
        };
        debug!(peer = %key.peer, height = key.height, items = batch.transfers.len(), settle = key.settle, ?reason, "holding a batch for our next block");
        self.relay.unseen.remove(&key);
        batch.reason = reason.clone();
        self.relay.batches.insert(key, batch);
        self.publish();
        Ok(match reason {
            None => ack(AckStatus::Accepted, None),
            Some(why) => ack(AckStatus::Pending, Some(why)),
        })
    }

    /// Keeps an unchecked batch for a block beyond every header held, within
    /// [`MAX_UNSEEN_BATCHES_PER_PEER`] per peer and kind (the oldest makes room).
    fn keep_unseen(&mut self, key: BatchKey, batch: PendingBatch) {
        if self.relay.unseen.contains_key(&key) {
            return;
        }
        let mine = |k: &BatchKey| k.peer == key.peer && k.settle == key.settle;
        if self.relay.unseen.keys().filter(|k| mine(k)).count() >= MAX_UNSEEN_BATCHES_PER_PEER {
            let oldest = self
                .relay
                .unseen
                .iter()
                .filter(|(k, _)| mine(k))
                .min_by_key(|(_, p)| p.since_ms)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.relay.unseen.remove(&k);
            }
        }
        self.relay.unseen.insert(key, batch);
    }

    /// Checks the unseen batches of `peer` whose block header is now held (after
    /// header sync): each is then held, or dropped if refused or the room is full.
    pub fn promote_unseen(&mut self, peer: ChainId, now_ms: u64) {
        let (reach, _) = self.held_run_tip(peer);
        let ready: Vec<BatchKey> = self
            .relay
            .unseen
            .keys()
            .filter(|k| k.peer == peer && k.height <= reach)
            .copied()
            .collect();
        for key in ready {
            let Some(p) = self.relay.unseen.remove(&key) else {
                continue;
            };
            match self.hold(key, p, now_ms) {
                Ok(a) => {
                    debug!(peer = %peer, height = key.height, status = %a.status, "an early batch checked now")
                }
                Err(e) => {
                    debug!(peer = %peer, height = key.height, error = %e, "an early batch refused or no room; dropped")
                }
            }
        }
    }

    /// Whether `body` (without headers) would apply in our next block, with the run
    /// of its peer's headers we hold.
    fn check_batch(&self, body: &Body, now_ms: u64) -> Admission<()> {
        let (peer, source_height) = match body {
            Body::InboundBatch {
                peer,
                source_height,
                ..
            }
            | Body::SettleBatch {
                peer,
                source_height,
                ..
            } => (*peer, *source_height),
            _ => return Admission::Refused(TxError::Invalid("not a batch".into())),
        };
        let Ok(Some(record)) = ledger::peer(&self.state, peer) else {
            return Admission::Refused(TxError::UnknownPeer(peer));
        };
        let lc = &record.light_client;
        let mut body = body.clone();
        if source_height > lc.lib() {
            let run = self.header_run(peer);
            let reach = run.last().map_or(lc.head(), |h| h.header.height);
            if source_height > reach {
                // Beyond every header we hold: nothing to check yet, and nothing is
                // verified for it (a batch from the future costs a look-up).
                return Admission::NotYet(NotYet::Unseen {
                    height: source_height,
                    head: reach,
                });
            }
            // Cheap before costly: the proof against the header we hold for that
            // height (not verified yet) before the run's signatures are.
            if let Some(h) = run.iter().find(|h| h.header.height == source_height) {
                if let Err(e) = cheap_proof_check(h, &body_items(&body)) {
                    return Admission::Refused(e);
                }
            }
            if let Body::InboundBatch { headers, .. } | Body::SettleBatch { headers, .. } =
                &mut body
            {
                *headers = run;
            }
        }
        let result: Result<(), TxError> =
            crate::cpu::blocking(|| check_system_body(&self.state, &body, now_ms).map(|_| ()));
        result.into()
    }

    /// Keeps `headers` of `peer` above our light client's head (bounded).
    pub fn buffer_peer_headers(&mut self, peer: ChainId, headers: &[SignedHeader]) {
        let Ok(Some(record)) = ledger::peer(&self.state, peer) else {
            // Not (or no longer) a registered peer: nothing of it is kept.
            self.relay.peer_headers.remove(&peer);
            return;
        };
        let lib = record.light_client.lib();
        let buf = self.relay.peer_headers.entry(peer).or_default();
        for h in headers {
            if h.header.height > lib {
                buf.insert(h.header.height, h.clone());
            }
        }
        buf.retain(|height, _| *height > lib);
        while buf.len() > MAX_BUFFERED_HEADERS {
            buf.pop_last();
        }
    }

    /// The height and id of the last header of `peer` that extends our light client's
    /// head without a gap, through the headers we hold (the head itself if none):
    /// where header sync goes on from. Headers sent along with batches may sit above a
    /// gap, and resuming after the highest one held would never fill it.
    pub fn held_run_tip(&self, peer: ChainId) -> (u64, Hash32) {
        let Ok(Some(record)) = ledger::peer(&self.state, peer) else {
            return (0, Hash32::ZERO);
        };
        let lc = &record.light_client;
        let (mut at, mut prev) = (lc.head(), lc.head_id());
        if let Some(held) = self.relay.peer_headers.get(&peer) {
            while let Some(h) = held.get(&(at + 1)) {
                if h.header.prev_id != prev {
                    break;
                }
                prev = h.id();
                at += 1;
            }
        }
        (at, prev)
    }

    /// The run of `peer`'s headers that extends our light client: from its head if
    /// the held headers connect there, else from its checkpoint (another branch).
    pub fn header_run(&self, peer: ChainId) -> Vec<SignedHeader> {
        let (Ok(Some(record)), Some(buf)) = (
            ledger::peer(&self.state, peer),
            self.relay.peer_headers.get(&peer),
        ) else {
            return Vec::new();
        };
        let lc = &record.light_client;
        let from = |height: u64, parent: Hash32| -> Vec<SignedHeader> {
            let mut run: Vec<SignedHeader> = Vec::new();
            let mut prev = parent;
            for (_, h) in buf.range(height..) {
                if h.header.height != height + run.len() as u64 || h.header.prev_id != prev {
                    break;
                }
                prev = h.id();
                run.push(h.clone());
                if run.len() >= MAX_BUFFERED_HEADERS {
                    break;
                }
            }
            run
        };
        let run = from(lc.head() + 1, lc.head_id());
        if !run.is_empty() {
            return run;
        }
        from(lc.lib() + 1, lc.checkpoint_id())
    }

    /// The system transactions of our block at `time_ms`, signed with `key`: per peer,
    /// the run of its headers we hold (when batches of it wait, or our light client
    /// lags by [`LAG_WORTH_A_RUN`] or more), then its batches in order of kind and
    /// height. Returns them with what each stands for.
    pub(crate) fn system_txs(
        &self,
        key: &SecretKey,
        time_ms: u64,
    ) -> Vec<(Transaction, TxCheck, SystemItem)> {
        let sender = crate::keyfile::address(key);
        let sign = |body: Body| {
            let tx = UnsignedTx {
                chain_id: self.genesis.chain_id,
                nonce: 0,
                fee: 0,
                ref_block_num: self.head_height as u16,
                ref_block_prefix: tapos_prefix(&self.state.head_id),
                expiration: time_ms + 60_000,
                body,
            }
            .sign(key);
            let check = TxCheck {
                hash: tx.hash(),
                sender,
            };
            (tx, check)
        };
        let mut peers: std::collections::BTreeSet<ChainId> =
            self.relay.batches.keys().map(|k| k.peer).collect();
        let mut out = Vec::new();
        // The fast path first: it is what makes a fast transfer fast. Then slashes due.
        for ((peer, tx), p) in &self.relay.fast {
            if out.len() >= MAX_SYSTEM_TXS_PER_BLOCK / 2 {
                break;
            }
            let (t, check) = sign(p.body.clone());
            out.push((t, check, SystemItem::Fast(*peer, *tx)));
        }
        for (peer, tx) in self.due_slashes() {
            let (t, check) = sign(Body::SlashFast { peer, tx });
            out.push((t, check, SystemItem::Slash(peer, tx)));
        }
        // Forwarding: hops chosen for held transfers, and results of settled legs.
        for (body, peer, tx) in self.forward_bodies(time_ms) {
            let (t, check) = sign(body);
            let item = match tx {
                Some(tx) => SystemItem::Forward(peer, tx),
                None => SystemItem::Release(peer),
            };
            out.push((t, check, item));
        }
        peers.extend(
            self.relay
                .peer_headers
                .iter()
                .filter(|(_, b)| b.len() as u64 >= LAG_WORTH_A_RUN)
                .map(|(p, _)| *p),
        );
        let mut items = 0usize;
        for peer in peers {
            let run = self.header_run(peer);
            if !run.is_empty() {
                let (tx, check) = sign(Body::HeaderRun { peer, headers: run });
                out.push((tx, check, SystemItem::Headers(peer)));
            }
            for (k, p) in self.relay.batches.range(
                BatchKey {
                    peer,
                    settle: false,
                    height: 0,
                    first_index: 0,
                    digest: Hash32::ZERO,
                }..=BatchKey {
                    peer,
                    settle: true,
                    height: u64::MAX,
                    first_index: u32::MAX,
                    digest: Hash32([0xff; 32]),
                },
            ) {
                if out.len() >= MAX_SYSTEM_TXS_PER_BLOCK
                    || items + p.transfers.len() > MAX_BATCH_ITEMS_PER_BLOCK
                {
                    return out;
                }
                items += p.transfers.len();
                let (tx, check) = sign(p.body.clone());
                out.push((tx, check, SystemItem::Batch(*k)));
            }
        }
        out
    }

    /// After a block: forgets batches that were applied (their transfers consumed or
    /// settled), that a block refused for good, or that outlived their lifetime; keeps
    /// the peer header buffers above the light clients' checkpoints.
    pub(crate) fn prune_batches(&mut self, refused: &[(SystemItem, TxError)], now_ms: u64) {
        let mut forwards_refused = Vec::new();
        for (item, e) in refused {
            let k = match item {
                SystemItem::Batch(k) => k,
                SystemItem::Fast(peer, tx) => {
                    debug!(peer = %peer, tx = %tx, error = %e, "a fast delivery was refused by our block; the transfer takes the ordinary path");
                    self.relay.fast.remove(&(*peer, *tx));
                    continue;
                }
                SystemItem::Slash(peer, tx) => {
                    warn!(peer = %peer, tx = %tx, error = %e, "a slash of a fast transfer was refused by our block");
                    continue;
                }
                SystemItem::Forward(peer, tx) => {
                    warn!(peer = %peer, tx = %tx, error = %e, "a forward was refused by our block; its hop is chosen again");
                    forwards_refused.push((*peer, *tx));
                    continue;
                }
                SystemItem::Release(peer) => {
                    warn!(peer = %peer, error = %e, "a release of forwarded transfers was refused by our block");
                    continue;
                }
                SystemItem::Headers(peer) => {
                    // Headers our light client refuses: fetch them again. Said at
                    // DEBUG: the stall watcher says it once, at WARN, with the reason.
                    debug!(peer = %peer, error = %e, "a run of peer headers was refused by our block; dropped");
                    self.relay.peer_headers.remove(peer);
                    continue;
                }
            };
            match e {
                TxError::NotYetProvable(why) => {
                    if let Some(p) = self.relay.batches.get_mut(k) {
                        p.reason = Some(why.to_string());
                    }
                }
                other => {
                    warn!(peer = %k.peer, height = k.height, settle = k.settle, error = %other, "a batch was refused by our block; dropped");
                    self.relay.batches.remove(k);
                }
            }
        }
        let state = &self.state;
        let ours_settled = |t: &Hash32| {
            distpos_chain::interchain::settled_record(state, t)
                .ok()
                .flatten()
                .is_some()
        };
        self.relay.batches.retain(|k, p| {
            let done = match p.transfers.first() {
                Some(t) if k.settle => ours_settled(t),
                // (A transfer delivered on the fast path still needs its batch.)
                Some(t) => distpos_chain::interchain::fast::settled_in(state, k.peer, t),
                None => true,
            };
            let old = now_ms.saturating_sub(p.since_ms) > BATCH_LIFETIME_MS;
            if old && !done {
                warn!(peer = %k.peer, height = k.height, "giving up on a batch that never became provable");
            }
            !done && !old
        });
        self.relay
            .unseen
            .retain(|_, p| now_ms.saturating_sub(p.since_ms) <= UNSEEN_LIFETIME_MS);
        let peers: Vec<ChainId> = self.relay.peer_headers.keys().copied().collect();
        for peer in peers {
            self.buffer_peer_headers(peer, &[]);
        }
        self.prune_fast(&[], now_ms);
        self.prune_forwards(&forwards_refused);
    }

    /// Collateral held per peer by inbound batches waiting for our next block.
    pub(crate) fn batch_reserved(&self) -> std::collections::BTreeMap<ChainId, u128> {
        let mut out = std::collections::BTreeMap::new();
        for (k, p) in &self.relay.batches {
            if !k.settle {
                *out.entry(k.peer).or_insert(0u128) += p.amount;
            }
        }
        for ((peer, _), p) in &self.relay.fast {
            *out.entry(*peer).or_insert(0u128) += p.total;
        }
        out
    }
}

/// Hash of a batch's claim: its indices and the hashes of its items.
fn claim_digest(indices: &[u32], items: &[Hash32]) -> Hash32 {
    let mut bytes = Vec::with_capacity(indices.len() * 4 + items.len() * 32);
    for i in indices {
        bytes.extend_from_slice(&i.to_be_bytes());
    }
    for h in items {
        bytes.extend_from_slice(&h.0);
    }
    distpos_proofs::hash_domain(b"DISTPOS/BATCH-CLAIM/v1", &[&bytes])
}

/// What a batch body proves: its items' encodings, their indices and the proof, and
/// which commitment they are proven against.
type BatchItems<'a> = (
    Vec<Vec<u8>>,
    &'a [u32],
    &'a distpos_proofs::multiproof::MultiProof,
    Commitment,
);

fn body_items(body: &Body) -> Option<BatchItems<'_>> {
    match body {
        Body::InboundBatch {
            transfers,
            indices,
            proof,
            ..
        } => Some((
            transfers.iter().map(Transaction::encode).collect(),
            indices,
            proof,
            Commitment::Transactions,
        )),
        Body::SettleBatch {
            receipts,
            indices,
            proof,
            ..
        } => Some((
            receipts.iter().map(|r| r.encode()).collect(),
            indices,
            proof,
            Commitment::Receipts,
        )),
        _ => None,
    }
}

/// The batch's multiproof against header `h` (whose signature is not checked here).
fn cheap_proof_check(h: &SignedHeader, items: &Option<BatchItems<'_>>) -> Result<(), TxError> {
    let Some((items, indices, proof, commitment)) = items else {
        return Ok(());
    };
    verify_batch(&Finalized::of(h), items, indices, proof, *commitment)
        .map_err(|r| distpos_chain::ProofError::Rejected(r).into())
}

/// The height of the block that settled our transfer `t`, if it is settled.
fn interchain_settled(node: &Node, t: &Hash32) -> Option<u64> {
    distpos_chain::interchain::settled_record(&node.state, t)
        .ok()
        .flatten()
        .map(|s| s.height)
}

#[cfg(test)]
mod tests;
