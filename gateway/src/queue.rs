//! The persistent outbound queue (DESIGN §6 step 3, §7): deliveries of our transfers
//! to their destinations and receipts back to their sources, in sled, surviving
//! restarts. Idempotent by transfer: enqueuing the same one twice is a no-op. Each item
//! has an attempt count, an explicit retry schedule, a maximum lifetime, and can be
//! held, released, retried now or deleted by an operator, one item or all of them
//! ([`QueueAction`], in `queue/operator.rs`).

mod operator;

pub use operator::{Operated, OperatedAll, QueueAction};

use crate::store::StoreError;
use distpos_adapters::{AckStatus, BatchDelivery, BatchReceipts};
use distpos_proofs::{codec, ChainId, Hash32};
use serde::{Deserialize, Serialize};

/// Delay before attempt n+1 after n failures (then the last value repeats).
pub const RETRY_SCHEDULE_MS: [u64; 8] = [500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000];
/// How often an item the other side took (its transaction is in that side's mempool,
/// or the transfer is consumed there) is re-sent until it is final: a mempool does not
/// survive a restart, so nothing is final until the other side's ledger says so.
pub const REDELIVER_MS: u64 = 15_000;
/// How soon an item is re-sent after the other side answered "pending" (its light
/// client of us has not seen the item's block as irreversible yet).
pub const PENDING_RETRY_MS: u64 = 1_000;

/// What an item carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// Interchain v2: the transfers to one destination in one block (or a chunk).
    DeliveryBatch(BatchDelivery),
    /// Interchain v2: the receipts for one source in one block.
    ReceiptBatch(BatchReceipts),
}

impl Payload {
    /// Goes back to a transfer's source (a receipt), rather than to its destination.
    pub fn is_receipt(&self) -> bool {
        matches!(self, Payload::ReceiptBatch(_))
    }
}

/// The id of the v2 item carrying `source`'s receipts from our block `height`.
pub fn batch_receipts_id(source: ChainId, height: u64) -> String {
    format!("v2-receipts-{source}-{height}")
}

/// Where an item is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting for its next attempt.
    Queued,
    /// Taken by the other side, not final there yet; re-sent now and then until it
    /// is (a delivery: until our ledger settled it; a receipt: until the source
    /// answers that it settled or refunded the transfer).
    Delivered,
    /// Final: the source settled or refunded the transfer (receipts; a delivery is
    /// done once our own ledger settled it).
    Done,
    /// Past its maximum lifetime without finishing.
    Expired,
}

/// One queued delivery or receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Stable id: `v2-delivery-<destination>-<height>-<first index>` or
    /// `v2-receipts-<source>-<height>`.
    pub id: String,
    /// The chain it goes to.
    pub destination: ChainId,
    /// The first transfer it is about (a source transaction's hash).
    pub transfer: Hash32,
    /// What is sent.
    pub payload: Payload,
    /// Enqueued at.
    pub created_ms: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Failed attempts since the last answer (what the retry schedule counts: a
    /// destination that was down for a while is not punished for it forever).
    pub failures: u32,
    /// Next attempt not before.
    pub next_attempt_ms: u64,
    /// State.
    pub state: ItemState,
    /// Held by an operator (not attempted until released).
    pub held: bool,
    /// Last error.
    pub last_error: Option<String>,
    /// Endpoint of the last success.
    pub last_endpoint: Option<String>,
    /// The peer's transaction for it (its `InboundBatch` or `SettleBatch`), once known.
    pub peer_tx: Option<Hash32>,
}

impl QueueItem {
    /// A new v2 item: the transfers of `d` to `destination`. Its `transfer` is the
    /// first of them (each is found by [`OutboundQueue::for_transfer`]).
    pub fn batch_delivery(d: BatchDelivery, destination: ChainId, now_ms: u64) -> Self {
        let first = d
            .transfers
            .first()
            .map(|t| t.hash())
            .unwrap_or(Hash32::ZERO);
        Self::new(
            format!(
                "v2-delivery-{destination}-{}-{}",
                d.height,
                d.indices.first().copied().unwrap_or(0)
            ),
            destination,
            first,
            Payload::DeliveryBatch(d),
            now_ms,
        )
    }

    /// A new v2 item: our receipts in `r` going back to `source`.
    pub fn batch_receipts(r: BatchReceipts, source: ChainId, first: Hash32, now_ms: u64) -> Self {
        Self::new(
            batch_receipts_id(source, r.height),
            source,
            first,
            Payload::ReceiptBatch(r),
            now_ms,
        )
    }

    /// The transfers this item is about.
    pub fn transfers(&self) -> Vec<Hash32> {
        match &self.payload {
            Payload::DeliveryBatch(d) => d.transfers.iter().map(|t| t.hash()).collect(),
            Payload::ReceiptBatch(r) => r
                .receipts
                .iter()
                .flat_map(|rc| match &rc.outcome {
                    distpos_chain::tx::Outcome::InboundBatch { results, .. } => {
                        results.iter().map(|x| x.source_tx).collect::<Vec<_>>()
                    }
                    _ => Vec::new(),
                })
                .collect(),
        }
    }

    fn new(
        id: String,
        destination: ChainId,
        transfer: Hash32,
        payload: Payload,
        now_ms: u64,
    ) -> Self {
        Self {
            id,
            destination,
            transfer,
            payload,
            created_ms: now_ms,
            attempts: 0,
            failures: 0,
            next_attempt_ms: now_ms,
            state: ItemState::Queued,
            held: false,
            last_error: None,
            last_endpoint: None,
            peer_tx: None,
        }
    }

    /// Records a failed attempt and schedules the next one.
    pub fn failed(&mut self, error: String, now_ms: u64) {
        self.attempts += 1;
        self.failures += 1;
        let i = (self.failures as usize - 1).min(RETRY_SCHEDULE_MS.len() - 1);
        self.next_attempt_ms = now_ms + RETRY_SCHEDULE_MS[i];
        self.last_error = Some(error);
    }

    /// Records the other side's answer. An item is finished only once the other
    /// side's ledger has applied it; "pending" and "accepted" (a transaction in a
    /// mempool, which a restart loses) keep it due.
    pub fn answered(&mut self, status: AckStatus, now_ms: u64) {
        self.failures = 0;
        match (&self.payload, status) {
            (Payload::ReceiptBatch(_), s) if s.settles_receipt() => {
                self.state = ItemState::Done;
            }
            (_, AckStatus::Pending) => {
                self.state = ItemState::Queued;
                self.next_attempt_ms = now_ms + PENDING_RETRY_MS;
            }
            _ => {
                self.state = ItemState::Delivered;
                self.next_attempt_ms = now_ms + REDELIVER_MS;
            }
        }
    }

    /// Due for an attempt at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        !self.held
            && matches!(self.state, ItemState::Queued | ItemState::Delivered)
            && self.next_attempt_ms <= now_ms
    }
}

const ITEM: &[u8] = b"q/";
/// Transfer hash → id of the v2 item that carries it.
const BY_TRANSFER: &[u8] = b"x/";
const CURSOR: &[u8] = b"m/scanned";

/// When an unfinished item is next due, kept in memory so that finding due items
/// does not read the whole queue (finished items stay stored for their status).
#[derive(Clone, Copy, Debug)]
struct Schedule {
    destination: ChainId,
    next_attempt_ms: u64,
    created_ms: u64,
}

/// The unfinished, unheld items to one destination (what its relay still owes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// How many.
    pub items: u64,
    /// When the oldest of them was enqueued (or revived).
    pub oldest_created_ms: u64,
}

/// The queue, in its own sled tree.
#[derive(Clone)]
pub struct OutboundQueue {
    tree: sled::Tree,
    /// Orders the writes that read an item first (operator actions, and the relay's
    /// saves that keep an operator's hold): an attempt under way when an operator
    /// holds or deletes its item must not undo that when it saves its outcome.
    writes: std::sync::Arc<std::sync::Mutex<()>>,
    /// Unfinished, unheld items by id.
    schedule: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Schedule>>>,
    /// Signalled whenever an item is added or its schedule changes (the relay's send
    /// loop sleeps until then or until the next item is due).
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl OutboundQueue {
    /// Opens the queue in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let q = Self {
            tree: db.open_tree("relay")?,
            writes: Default::default(),
            schedule: Default::default(),
            changed: Default::default(),
        };
        for it in q.list()? {
            q.reschedule(&it);
        }
        Ok(q)
    }

    fn schedule(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Schedule>> {
        self.schedule.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the queue changes (an item added, answered, revived or acted on).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// When the earliest unfinished item is due, if any.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.schedule().values().map(|s| s.next_attempt_ms).min()
    }

    fn reschedule(&self, it: &QueueItem) {
        self.changed.notify_one();
        let mut s = self.schedule();
        if !it.held && matches!(it.state, ItemState::Queued | ItemState::Delivered) {
            s.insert(
                it.id.clone(),
                Schedule {
                    destination: it.destination,
                    next_attempt_ms: it.next_attempt_ms,
                    created_ms: it.created_ms,
                },
            );
        } else {
            s.remove(&it.id);
        }
    }

    /// Unfinished items per destination (not counting held ones, which wait for an
    /// operator), for the queue's depth and age gauges: a pass over the in-memory
    /// schedule, no read of the store.
    pub fn backlog(&self) -> std::collections::BTreeMap<ChainId, Backlog> {
        let mut out = std::collections::BTreeMap::<ChainId, Backlog>::new();
        for s in self.schedule().values() {
            let b = out.entry(s.destination).or_insert(Backlog {
                items: 0,
                oldest_created_ms: s.created_ms,
            });
            b.items += 1;
            b.oldest_created_ms = b.oldest_created_ms.min(s.created_ms);
        }
        out
    }

    fn key(id: &str) -> Vec<u8> {
        [ITEM, id.as_bytes()].concat()
    }

    fn decode(k: &[u8], v: &[u8]) -> Result<QueueItem, StoreError> {
        codec::decode_canonical(v).map_err(|e| StoreError::Corrupt {
            key: hex::encode(k),
            message: e.to_string(),
        })
    }

    /// Height up to which finalized blocks were scanned for items.
    pub fn cursor(&self) -> Result<u64, StoreError> {
        match self.tree.get(CURSOR)? {
            Some(v) => codec::decode_canonical(&v).map_err(|e| StoreError::Corrupt {
                key: "cursor".into(),
                message: e.to_string(),
            }),
            None => Ok(0),
        }
    }

    /// Adds new items (existing ids are kept as they are) and moves the cursor, in one
    /// atomic batch, flushed.
    pub fn enqueue(&self, items: &[QueueItem], cursor: u64) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut added = 0;
        let mut seen = std::collections::BTreeSet::new();
        for it in items {
            let k = Self::key(&it.id);
            if seen.insert(k.clone()) && self.tree.get(&k)?.is_none() {
                batch.insert(k, codec::encode(it));
                if matches!(it.payload, Payload::DeliveryBatch(_)) {
                    for t in it.transfers() {
                        let mut x = BY_TRANSFER.to_vec();
                        x.extend_from_slice(&t.0);
                        batch.insert(x, it.id.as_bytes());
                    }
                }
                added += 1;
            }
        }
        batch.insert(CURSOR, codec::encode(&cursor));
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        for it in items {
            if !self.schedule().contains_key(&it.id) {
                if let Some(stored) = self.get(&it.id)? {
                    self.reschedule(&stored);
                }
            }
        }
        Ok(added)
    }

    /// Adds one item unless present; returns whether it was added.
    pub fn add(&self, item: &QueueItem) -> Result<bool, StoreError> {
        let k = Self::key(&item.id);
        let added = self
            .tree
            .compare_and_swap(k, None as Option<&[u8]>, Some(codec::encode(item)))?
            .is_ok();
        self.tree.flush()?;
        if added {
            self.reschedule(item);
        }
        Ok(added)
    }

    /// Saves an item's new state (see [`Self::update_many`]).
    pub fn update(&self, item: &QueueItem) -> Result<(), StoreError> {
        self.update_many(std::slice::from_ref(item))
    }

    /// Saves the new states of items (the relay's outcome of an attempt), in one
    /// atomic batch, flushed. What an operator did meanwhile stands: an item deleted
    /// since it was read is not written back, and a stored hold is kept.
    pub fn update_many(&self, items: &[QueueItem]) -> Result<(), StoreError> {
        let _w = self.writing();
        let mut batch = sled::Batch::default();
        let mut written = Vec::with_capacity(items.len());
        for item in items {
            let Some(stored) = self.get(&item.id)? else {
                continue;
            };
            let item = QueueItem {
                held: stored.held,
                ..item.clone()
            };
            batch.insert(Self::key(&item.id), codec::encode(&item));
            written.push(item);
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        for item in &written {
            self.reschedule(item);
        }
        Ok(())
    }

    /// One item.
    pub fn get(&self, id: &str) -> Result<Option<QueueItem>, StoreError> {
        match self.tree.get(Self::key(id))? {
            Some(v) => Ok(Some(Self::decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// The item (a batch) that delivers our transfer `t`.
    pub fn for_transfer(&self, t: &Hash32) -> Result<Option<QueueItem>, StoreError> {
        let mut x = BY_TRANSFER.to_vec();
        x.extend_from_slice(&t.0);
        match self.tree.get(x)? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// At most `limit` items with an id after `after` (from the first when `None`), in
    /// id order: a page of the listing.
    pub fn page(&self, after: Option<&str>, limit: usize) -> Result<Vec<QueueItem>, StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(id) => Bound::Excluded(Self::key(id)),
            None => Bound::Included(ITEM.to_vec()),
        };
        let mut out = Vec::new();
        for kv in self
            .tree
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = kv?;
            if !k.starts_with(ITEM) {
                break;
            }
            out.push(Self::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Every item, in id order.
    pub fn list(&self) -> Result<Vec<QueueItem>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(ITEM) {
            let (k, v) = kv?;
            out.push(Self::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Removes the items that are done (final on both sides: a delivery our ledger
    /// settled irreversibly, a receipt its source settled irreversibly) and were
    /// created before `before_ms`, with their look-up entries. Expired items stay: an
    /// operator may still retry them. Returns how many went.
    pub fn prune_done(&self, before_ms: u64) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut pruned = 0;
        for kv in self.tree.scan_prefix(ITEM) {
            let (k, v) = kv?;
            let it = Self::decode(&k, &v)?;
            if it.state != ItemState::Done || it.created_ms >= before_ms {
                continue;
            }
            if matches!(it.payload, Payload::DeliveryBatch(_)) {
                for t in it.transfers() {
                    let mut x = BY_TRANSFER.to_vec();
                    x.extend_from_slice(&t.0);
                    batch.remove(x);
                }
            }
            batch.remove(k);
            pruned += 1;
        }
        if pruned > 0 {
            self.tree.apply_batch(batch)?;
            self.tree.flush()?;
        }
        Ok(pruned)
    }

    /// Items due now, at most `per_destination` per destination.
    pub fn due(&self, now_ms: u64, per_destination: usize) -> Result<Vec<QueueItem>, StoreError> {
        let mut counts = std::collections::BTreeMap::<ChainId, usize>::new();
        let ids: Vec<String> = self
            .schedule()
            .iter()
            .filter(|(_, s)| s.next_attempt_ms <= now_ms)
            .filter(|(_, s)| {
                let c = counts.entry(s.destination).or_default();
                *c += 1;
                *c <= per_destination
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(it) = self.get(&id)? {
                if it.due(now_ms) {
                    out.push(it);
                }
            }
        }
        Ok(out)
    }

    /// Makes an item due now whatever its state, done included: for a receipt whose
    /// transfer the source still delivers (so the source has not settled it, whatever
    /// it answered before). Unknown ids are ignored.
    pub fn revive(&self, id: &str, now_ms: u64) -> Result<(), StoreError> {
        let Some(mut it) = self.get(id)? else {
            return Ok(());
        };
        if it.state == ItemState::Queued && it.next_attempt_ms <= now_ms {
            return Ok(());
        }
        if it.state == ItemState::Expired {
            it.created_ms = now_ms;
        }
        it.state = ItemState::Queued;
        it.next_attempt_ms = now_ms;
        self.update(&it)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue in a temporary folder holding five deliveries to chain `b`.
    pub(super) fn five_queued() -> (tempfile::TempDir, OutboundQueue, Vec<QueueItem>) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let q = OutboundQueue::open(&db).unwrap();
        let items: Vec<_> = (1..=5).map(|n| item(n, 0)).collect();
        q.enqueue(&items, 1).unwrap();
        (dir, q, items)
    }

    /// Opens a sled database again after the test dropped it: sled's background
    /// flusher may hold the file lock a moment longer than the handle lives.
    fn reopen(path: &std::path::Path) -> sled::Db {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match sled::open(path) {
                Ok(db) => return db,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("cannot reopen {}: {e}", path.display()),
            }
        }
    }
    use distpos_chain::{
        testkit::TestChain,
        tx::{Outcome, Receipt, TransferResult},
        Body, QualifiedAddress,
    };
    use distpos_proofs::multiproof::MultiProof;

    /// A batch of one transfer to chain `b`, from block `height` of chain `a`.
    fn delivery(height: u64) -> BatchDelivery {
        let mut c = TestChain::new(0xa, 1, 1, TestChain::dev_params());
        let key = c.users[0].clone();
        let tx = c.tx(
            &key,
            1,
            Body::Transfer {
                to: QualifiedAddress::new(ChainId(0xb), distpos_chain::Address::ZERO),
                amount: 5,
                memo: vec![],
                deliver_by: height,
                fast_fee: 0,
                via: None,
            },
        );
        BatchDelivery {
            source_chain: ChainId(0xa),
            height,
            transfers: vec![tx],
            indices: vec![0],
            proof: MultiProof { siblings: vec![] },
            headers: vec![],
        }
    }

    pub(super) fn item(height: u64, now_ms: u64) -> QueueItem {
        QueueItem::batch_delivery(delivery(height), ChainId(0xb), now_ms)
    }

    #[test]
    fn persistent_idempotent_and_scheduled() {
        let dir = tempfile::tempdir().unwrap();
        let item = item(1, 1_000);
        {
            let db = sled::open(dir.path()).unwrap();
            let q = OutboundQueue::open(&db).unwrap();
            assert_eq!(q.enqueue(&[item.clone(), item.clone()], 7).unwrap(), 1);
            assert_eq!(
                q.enqueue(std::slice::from_ref(&item), 8).unwrap(),
                0,
                "same transfer twice is a no-op"
            );
        }
        // Reopened: still there, with the cursor.
        let db = reopen(dir.path());
        let q = OutboundQueue::open(&db).unwrap();
        assert_eq!(q.cursor().unwrap(), 8);
        let mut it = q.get(&item.id).unwrap().unwrap();
        assert!(it.due(1_000));
        it.failed("down".into(), 1_000);
        assert_eq!(it.next_attempt_ms, 1_500);
        it.failed("down".into(), 1_500);
        assert_eq!(it.next_attempt_ms, 2_500);
        q.update(&it).unwrap();
        assert!(q.due(2_000, 4).unwrap().is_empty());
        assert_eq!(q.due(2_500, 4).unwrap().len(), 1);
        q.operate(&it.id, QueueAction::Hold, 3_000).unwrap();
        assert!(q.due(10_000, 4).unwrap().is_empty(), "held items wait");
        q.operate(&it.id, QueueAction::Release, 3_000).unwrap();
        q.operate(&it.id, QueueAction::Retry, 3_000).unwrap();
        assert_eq!(q.due(3_000, 4).unwrap().len(), 1);
    }

    pub(super) fn receipt_item() -> QueueItem {
        let d = delivery(1);
        let transfer = d.transfers[0].hash();
        let r = BatchReceipts {
            receipt_chain: ChainId(0xb),
            height: 1,
            receipts: vec![Receipt {
                tx_hash: Hash32::ZERO,
                outcome: Outcome::InboundBatch {
                    source: ChainId(0xa),
                    results: vec![TransferResult {
                        source_tx: transfer,
                        amount: 5,
                        bounced: None,
                        fast: false,
                        bounced_by: None,
                    }],
                },
                amount: 5,
                fee: 0,
            }],
            indices: vec![0],
            proof: MultiProof { siblings: vec![] },
            headers: vec![],
        };
        QueueItem::batch_receipts(r, ChainId(0xa), transfer, 0)
    }

    #[test]
    fn nothing_is_done_until_the_other_side_applied_it() {
        for item in [item(1, 0), receipt_item()] {
            let mut it = item.clone();
            it.answered(AckStatus::Pending, 1_000);
            assert_eq!(it.state, ItemState::Queued, "{}: pending stays due", it.id);
            assert!(it.due(1_000 + PENDING_RETRY_MS));
            it.answered(AckStatus::Accepted, 2_000);
            assert_eq!(
                it.state,
                ItemState::Delivered,
                "{}: a mempool is not final",
                it.id
            );
            assert!(!it.due(2_000 + REDELIVER_MS - 1) && it.due(2_000 + REDELIVER_MS));
            it.answered(AckStatus::AlreadyConsumed, 3_000);
            assert_eq!(it.state, ItemState::Delivered, "consumed is not settled");
        }
        let mut r = receipt_item();
        r.answered(AckStatus::AlreadySettled, 5);
        assert_eq!(r.state, ItemState::Done);
        let mut r = receipt_item();
        r.answered(AckStatus::AlreadyRefunded, 5);
        assert_eq!(r.state, ItemState::Done);
        // A delivery ends only when our own ledger settles it, whatever the answer.
        let mut d = item(1, 0);
        d.answered(AckStatus::AlreadySettled, 5);
        assert_ne!(d.state, ItemState::Done);
    }

    #[test]
    fn retry_revives_what_is_not_final_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let q = OutboundQueue::open(&db).unwrap();
        let mut expired = receipt_item();
        expired.state = ItemState::Expired;
        let mut waiting = item(2, 0);
        waiting.answered(AckStatus::Accepted, 0);
        let mut done = item(3, 0);
        done.state = ItemState::Done;
        q.enqueue(&[expired.clone(), waiting.clone(), done.clone()], 1)
            .unwrap();
        assert!(q.due(100, 10).unwrap().is_empty());
        for it in [&expired, &waiting, &done] {
            q.operate(&it.id, QueueAction::Retry, 100).unwrap();
        }
        let due: Vec<String> = q.due(100, 10).unwrap().into_iter().map(|i| i.id).collect();
        assert!(due.contains(&expired.id), "an expired item is revived");
        assert!(due.contains(&waiting.id), "a taken item is re-sent now");
        assert!(!due.contains(&done.id), "a final item stays final");
        // A source that still delivers has not settled: its receipt comes back to
        // life even when it was done.
        q.revive(&done.id, 200).unwrap();
        q.revive("v2-receipts-unknown", 200).unwrap();
        assert!(q.due(200, 10).unwrap().iter().any(|i| i.id == done.id));
        assert_eq!(
            q.get(&expired.id).unwrap().unwrap().created_ms,
            100,
            "with a new lifetime"
        );
    }

    #[test]
    fn per_destination_limit() {
        let (_dir, q, _) = five_queued();
        assert_eq!(q.due(0, 2).unwrap().len(), 2);
    }

    #[test]
    fn the_listing_comes_a_page_at_a_time_in_id_order() {
        let (_dir, q, items) = five_queued();
        let mut ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        ids.sort();
        let first = q.page(None, 2).unwrap();
        assert_eq!(
            first.iter().map(|i| &i.id).collect::<Vec<_>>(),
            vec![&ids[0], &ids[1]]
        );
        let rest = q.page(Some(&ids[1]), 10).unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0].id, ids[2]);
        assert!(q.page(Some(&ids[4]), 10).unwrap().is_empty());
    }

    #[test]
    fn done_items_are_pruned_after_their_retention_and_nothing_else() {
        let (_dir, q, items) = five_queued();
        let mut done = q.get(&items[0].id).unwrap().unwrap();
        done.state = ItemState::Done;
        let mut expired = q.get(&items[1].id).unwrap().unwrap();
        expired.state = ItemState::Expired;
        q.update_many(&[done.clone(), expired]).unwrap();
        let transfer = done.transfers()[0];
        assert!(q.for_transfer(&transfer).unwrap().is_some());
        assert_eq!(q.prune_done(0).unwrap(), 0, "too young");
        assert_eq!(q.prune_done(1).unwrap(), 1, "created at 0, before 1");
        assert!(q.get(&done.id).unwrap().is_none());
        assert!(
            q.for_transfer(&transfer).unwrap().is_none(),
            "its index went too"
        );
        assert_eq!(
            q.list().unwrap().len(),
            4,
            "expired and unfinished items stay"
        );
        assert_eq!(q.prune_done(u64::MAX).unwrap(), 0);
    }

    #[test]
    fn finished_items_leave_the_schedule_and_it_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<_> = (1..=3).map(|n| item(n, n * 10)).collect();
        {
            let db = sled::open(dir.path()).unwrap();
            let q = OutboundQueue::open(&db).unwrap();
            q.enqueue(&items, 1).unwrap();
            let backlog = q.backlog().get(&ChainId(0xb)).copied();
            assert_eq!(
                backlog,
                Some(Backlog {
                    items: 3,
                    oldest_created_ms: 10
                })
            );
            let mut done = q.get(&items[0].id).unwrap().unwrap();
            done.state = ItemState::Done;
            q.update_many(&[done]).unwrap();
            q.operate(&items[1].id, QueueAction::Hold, 0).unwrap();
            let backlog = q.backlog().get(&ChainId(0xb)).copied();
            assert_eq!(
                backlog,
                Some(Backlog {
                    items: 1,
                    oldest_created_ms: 30
                }),
                "the finished and the held one no longer count"
            );
            assert_eq!(q.due(100, 10).unwrap().len(), 1);
        }
        let db = reopen(dir.path());
        let q = OutboundQueue::open(&db).unwrap();
        let due = q.due(100, 10).unwrap();
        assert_eq!(due.len(), 1, "only the unfinished, unheld one");
        assert_eq!(due[0].id, items[2].id);
        assert_eq!(q.list().unwrap().len(), 3, "finished ones stay listed");
    }
}
