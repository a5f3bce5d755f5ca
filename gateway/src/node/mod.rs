//! The node: the canonical state of our chain, its fork database, its store and its
//! mempool, and the operations that change them — admitting a transaction, importing
//! a block (fork choice and reorganisation), producing a block.
//!
//! All chain rules come from `distpos-chain`; this module decides *when* to apply
//! them and makes every change durable before it is acknowledged.

pub mod activity;
pub mod mempool;
pub mod pending;
pub mod recent;
pub mod snapshot;
pub mod transfer_log;

use crate::{
    metrics::Metrics,
    node::mempool::{Mempool, MempoolError},
    store::{Head, Store, StoreError},
};
use distpos_chain::{
    block::BuildError,
    build_block_with,
    execute::chain_rules,
    forkdb::{ForkDb, ForkError},
    genesis::GenesisError,
    genesis_state, ledger, verify_tx_signature, AppliedBlock, Block, BlockError, Body, Genesis,
    State, Transaction, TxCheck, TxError, UnsignedTx,
};
use distpos_proofs::{
    consensus::{ChainRules, ConsensusState, Participation, MIN_PARTICIPATION_PERCENT},
    header::tapos_prefix,
    Hash32, SecretKey,
};
use std::time::Instant;
use tracing::{debug, info, warn};

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed (internal).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A transaction is invalid (the client's fault).
    #[error(transparent)]
    Tx(#[from] TxError),
    /// The mempool refused it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// A block is invalid.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A block does not fit the fork database.
    #[error(transparent)]
    Fork(#[from] ForkError),
    /// Building a block failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The genesis is unusable.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// Stored data contradicts itself.
    #[error("inconsistent store: {0}")]
    Inconsistent(String),
    /// A bound on work held for others is reached; the caller retries later.
    #[error("busy: {0}")]
    Busy(String),
}

impl From<distpos_chain::StateError> for NodeError {
    fn from(e: distpos_chain::StateError) -> Self {
        NodeError::Inconsistent(e.to_string())
    }
}

/// What importing a block did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Already known.
    Known,
    /// Added; whether the head moved.
    Added {
        /// The head changed (extended or reorganised).
        head_changed: bool,
    },
}

/// Whether a node may produce in a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductionGate {
    /// No key, not scheduled, or the slot is not after the head.
    NotOurs,
    /// Ours to produce.
    Ours,
    /// Ours, but participation is below the floor: produce only when the nodes of
    /// ⌊2n/3⌋+1 of the scheduled producers are reachable and agree on `head`
    /// ([`distpos_proofs::consensus::OutageQuorum`]), or with `stale_production`.
    LowParticipation {
        /// What this node sees.
        participation: Participation,
        /// Our head, which the others must agree on.
        head: Hash32,
        /// The schedule whose producers count.
        schedule: distpos_proofs::ProducerSchedule,
    },
}

/// One node of a chain.
pub struct Node {
    /// The chain's genesis.
    pub genesis: Genesis,
    /// Its identity hash.
    pub identity: Hash32,
    /// Header rules.
    pub rules: ChainRules,
    /// State after the head block.
    pub state: State,
    /// Head height.
    pub head_height: u64,
    /// Blocks above LIB.
    pub forkdb: ForkDb,
    /// Disk.
    pub store: Store,
    /// Pending transactions.
    pub mempool: Mempool,
    /// The producer key, if this node produces.
    pub key: Option<SecretKey>,
    /// Produce even below 33% participation.
    pub stale_production: bool,
    /// Metrics.
    pub metrics: Metrics,
    /// Relay work waiting for the ledger (deliveries and receipts not provable yet, or
    /// whose transaction is in the mempool).
    pub relay: pending::RelayState,
    /// Blocks produced and applied in the current minute (the INFO summary).
    activity: activity::ActivityWindow,
    /// The last cross-chain transfer events of applied blocks (shared with snapshots).
    recent: recent::RecentTransfers,
    /// What does not change while the node runs (shared with every snapshot).
    info: std::sync::Arc<snapshot::NodeInfo>,
    /// Where the latest snapshot is published for readers.
    published: tokio::sync::watch::Sender<std::sync::Arc<snapshot::Snapshot>>,
}

impl Node {
    /// Opens the node's store: loads and checks the saved chain, or initialises it
    /// from `genesis`.
    pub fn open(
        genesis: Genesis,
        store: Store,
        key: Option<SecretKey>,
        max_mempool: usize,
        metrics: Metrics,
    ) -> Result<Self, NodeError> {
        let identity = genesis.identity_hash();
        let (state, head) = match store.load(&identity)? {
            Some((state, head)) => {
                if head.height > 0 {
                    let block = store.block(&head.id)?.ok_or_else(|| {
                        NodeError::Inconsistent(format!("head block {} missing", head.id))
                    })?;
                    if block.header.header.state_digest != state.digest {
                        return Err(NodeError::Inconsistent(format!(
                            "state digest {} does not match head block {} (digest {})",
                            state.digest, head.id, block.header.header.state_digest
                        )));
                    }
                }
                info!(height = head.height, head = %head.id, "loaded chain from disk");
                (state, head)
            }
            None => {
                let state = genesis_state(&genesis)?;
                store.init(&state, &identity)?;
                info!(chain = %genesis.chain_id, identity = %identity, "initialised new chain from genesis");
                let head = Head {
                    id: state.head_id,
                    height: 0,
                    digest: state.digest,
                };
                (state, head)
            }
        };
        let rules = chain_rules(&state)?;
        let consensus = ledger::consensus(&state)?;
        let lib = consensus.lib;
        let (root_id, root_consensus) = if lib == 0 {
            (
                identity,
                ConsensusState::genesis(genesis.schedule())
                    .map_err(|e| NodeError::Inconsistent(e.to_string()))?,
            )
        } else {
            let id = store
                .id_at(lib)?
                .ok_or_else(|| NodeError::Inconsistent(format!("no block at LIB {lib}")))?;
            let c = store.consensus(&id)?.ok_or_else(|| {
                NodeError::Inconsistent(format!("no consensus state for block {id}"))
            })?;
            (id, c)
        };
        let mut forkdb = ForkDb::new(root_id, lib, root_consensus);
        for h in lib + 1..=head.height {
            let block = store
                .block_at(h)?
                .ok_or_else(|| NodeError::Inconsistent(format!("canonical block {h} missing")))?;
            forkdb.insert(block, &rules, u64::MAX / 2)?;
        }
        let info = std::sync::Arc::new(snapshot::NodeInfo {
            genesis: genesis.clone(),
            identity,
            rules,
            producer_key: key.as_ref().map(|k| k.public_key()),
        });
        let mempool = Mempool::new(max_mempool);
        let recent = recent::RecentTransfers::default();
        let first = snapshot::Snapshot {
            recent: recent.clone(),
            info: info.clone(),
            state: state.clone(),
            head_height: head.height,
            consensus: consensus.clone(),
            lib_id: root_id,
            reserved: Default::default(),
            store: store.clone(),
            mempool: mempool.index(),
        };
        let (published, _) = tokio::sync::watch::channel(std::sync::Arc::new(first));
        let node = Self {
            genesis,
            identity,
            rules,
            state,
            head_height: head.height,
            forkdb,
            store,
            mempool,
            key,
            stale_production: false,
            metrics,
            relay: Default::default(),
            activity: Default::default(),
            recent,
            info,
            published,
        };
        node.update_gauges();
        node.publish();
        Ok(node)
    }

    /// Where readers get this node's latest snapshot.
    pub fn reads(&self) -> snapshot::Reads {
        snapshot::Reads::new(self.published.subscribe())
    }

    /// Publishes the chain as it is now to readers. Called at the end of every
    /// operation that changes it, so that readers never see a half-done reorganisation.
    pub fn publish(&self) {
        let consensus = match ledger::consensus(&self.state) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot publish a snapshot: consensus state unreadable");
                return;
            }
        };
        let lib_id = if consensus.lib == 0 {
            self.identity
        } else {
            match self.store.id_at(consensus.lib) {
                Ok(Some(id)) => id,
                Ok(None) | Err(_) => self.published.borrow().lib_id,
            }
        };
        let reserved = self.batch_reserved();
        self.published
            .send_replace(std::sync::Arc::new(snapshot::Snapshot {
                recent: self.recent.clone(),
                info: self.info.clone(),
                state: self.state.clone(),
                head_height: self.head_height,
                consensus,
                lib_id,
                reserved,
                store: self.store.clone(),
                mempool: self.mempool.index(),
            }));
    }

    /// The consensus state after the head.
    pub fn consensus(&self) -> Result<ConsensusState, NodeError> {
        Ok(ledger::consensus(&self.state)?)
    }

    /// Admits a transaction to the mempool. Returns its hash and whether it was new.
    pub fn submit_tx(&mut self, tx: Transaction, now_ms: u64) -> Result<(Hash32, bool), NodeError> {
        if self.mempool.contains(&tx.hash()) {
            return Ok((tx.hash(), false));
        }
        let check = verify_tx_signature(&tx)?;
        self.submit_checked(tx, check, now_ms)
    }

    /// Admits a transaction whose signature was verified (`check`), e.g. in parallel
    /// outside the node lock.
    pub fn submit_checked(
        &mut self,
        tx: Transaction,
        check: TxCheck,
        now_ms: u64,
    ) -> Result<(Hash32, bool), NodeError> {
        self.submit_checked_many(vec![(tx, check)], now_ms)
            .pop()
            .unwrap_or_else(|| Err(NodeError::Inconsistent("no admission result".into())))
    }

    /// Admits many transactions whose signatures were verified, in order, each on its
    /// own: one result per transaction, as [`Self::submit_checked`] would give. The
    /// chain's parameters and consensus are decoded once for the lot.
    pub fn submit_checked_many(
        &mut self,
        items: Vec<(Transaction, TxCheck)>,
        now_ms: u64,
    ) -> Vec<Result<(Hash32, bool), NodeError>> {
        let mut validator = match distpos_chain::Validator::new(&self.state, now_ms) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                return items
                    .iter()
                    .map(|_| Err(NodeError::Inconsistent(msg.clone())))
                    .collect();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (tx, check) in items {
            let r = (|| {
                let hash = check.hash;
                if hash != tx.hash() {
                    // A caller bug, never a client's: refuse rather than admit under
                    // the wrong sender.
                    return Err(NodeError::Inconsistent(format!(
                        "signature check for {hash} given with another transaction"
                    )));
                }
                if self.mempool.contains(&hash) {
                    return Ok((hash, false));
                }
                if self.store.tx_location(&hash)?.is_some() {
                    return Err(TxError::Duplicate(hash).into());
                }
                // Later nonces of a sender whose earlier transactions wait here are
                // fine (up to one past the last pending nonce: a gap left by a dropped
                // transaction may be filled, and nothing further ahead is held); the
                // body is checked in full either way.
                let account = ledger::account(&self.state, &check.sender)?;
                let account_nonce = account.nonce;
                let slack =
                    self.mempool.next_nonce_of(&check.sender, account_nonce) - account_nonce - 1;
                validator.validate(&tx, &check, slack)?;
                // What the sender's pending transactions take counts too: a balance
                // that covers one transfer does not admit a hundred.
                let need = self
                    .mempool
                    .pending_debit(&check.sender, tx.nonce)
                    .saturating_add(mempool::debit_of(&tx));
                if need > account.balance {
                    return Err(TxError::InsufficientFunds {
                        need,
                        have: account.balance,
                    }
                    .into());
                }
                let new = self.mempool.insert(tx, hash, check.sender)?;
                Ok((hash, new))
            })();
            out.push(r);
        }
        self.metrics.mempool.set(self.mempool.len() as i64);
        self.publish();
        out
    }

    /// Imports a block from a peer (or a sync batch): header checks into the fork
    /// database, double-sign detection, then fork choice.
    pub fn on_block(&mut self, block: Block, now_ms: u64) -> Result<BlockOutcome, NodeError> {
        let _serial = crate::cpu::SerialWork::start();
        let id = block.id();
        if self.forkdb.contains(&id) {
            return Ok(BlockOutcome::Known);
        }
        if let Some(other) = self.forkdb.equivocation(&block.header) {
            warn!(producer = %block.header.header.producer, slot_time = block.header.header.timestamp_ms,
                  a = %other.id(), b = %id, "double signing detected");
            self.report_evidence(other, block.header.clone(), now_ms);
        }
        self.forkdb.insert(block, &self.rules, now_ms)?;
        let head_changed = self.update_head(now_ms);
        self.prune_batches(&[], now_ms);
        self.publish();
        Ok(BlockOutcome::Added {
            head_changed: head_changed?,
        })
    }

    /// Moves the head to the fork database's best tip, undoing and applying blocks.
    /// A block that fails to apply is dropped with its descendants and fork choice
    /// runs again.
    fn update_head(&mut self, now_ms: u64) -> Result<bool, NodeError> {
        let mut changed = false;
        let mut reverted: Vec<Transaction> = Vec::new();
        loop {
            let best = self.forkdb.best();
            if best.id == self.state.head_id {
                break;
            }
            let Some(path) = self.forkdb.reorg(&self.state.head_id, &best.id) else {
                return Err(NodeError::Inconsistent(
                    "head is not in the fork database".into(),
                ));
            };
            if !path.revert.is_empty() {
                info!(from = %self.state.head_id, to = %best.id, undo = path.revert.len(),
                      apply = path.apply.len(), "reorganising");
                self.metrics.reorgs.inc();
            }
            for _ in &path.revert {
                reverted.extend(self.revert_head()?);
                changed = true;
            }
            for id in &path.apply {
                let Some(entry) = self.forkdb.get(id) else {
                    break;
                };
                let block = entry.block.clone();
                let started = Instant::now();
                // A transaction verified on admission to our mempool (the same bytes,
                // signature included) is not verified again: with gossip, that is most
                // of a block on every node but its producer.
                let mempool = &self.mempool;
                let applied = distpos_chain::check_block_signatures_with(
                    &self.state,
                    &block,
                    now_ms,
                    |tx, hash| mempool.verified_sender(tx, hash),
                )
                .and_then(|checks| {
                    distpos_chain::apply_checked_block(&self.state, &block, &checks)
                });
                match applied {
                    Ok(applied) => {
                        self.metrics
                            .block_apply_seconds
                            .observe(started.elapsed().as_secs_f64());
                        self.commit(&block, &applied, now_ms, false)?;
                        changed = true;
                    }
                    Err(e) => {
                        warn!(block = %id, height = block.height(), error = %e, "block failed to apply; dropping it");
                        self.forkdb.remove_subtree(id);
                        break;
                    }
                }
            }
        }
        // Transactions of undone blocks that the new branch did not include go back to
        // the mempool if still valid.
        for tx in reverted {
            let _ = self.submit_tx(tx, now_ms);
        }
        Ok(changed)
    }

    /// Makes `applied` (the next block of our chain, `produced` here or imported) our
    /// head, durably, and says what it did: its transfers at INFO (and counted in the
    /// metrics), and once a minute how the node keeps up.
    fn commit(
        &mut self,
        block: &Block,
        applied: &AppliedBlock,
        now_ms: u64,
        produced: bool,
    ) -> Result<(), NodeError> {
        let old_lib = self.consensus()?.lib;
        let new_lib = applied.consensus.lib;
        let mut newly_final = Vec::new();
        for h in old_lib + 1..=new_lib {
            if h == applied.height {
                newly_final.push(applied.id);
            } else if let Some(id) = self.store.id_at(h)? {
                newly_final.push(id);
            }
        }
        let hashes: Vec<Hash32> = block.txs.iter().map(Transaction::hash).collect();
        let undo = self.state.commit(applied);
        if let Err(e) = self
            .store
            .commit_block(block, &hashes, applied, &undo, &newly_final)
        {
            self.state.revert(&undo);
            return Err(e.into());
        }
        self.head_height = applied.height;
        // Senders by key: an address costs a point decompression, once per key.
        let keys: std::collections::BTreeSet<&distpos_proofs::PublicKey> =
            block.txs.iter().map(|tx| &tx.pubkey).collect();
        let senders: std::collections::BTreeSet<distpos_chain::Address> = keys
            .into_iter()
            .filter_map(|k| distpos_chain::Address::from_public_key(k).ok())
            .collect();
        for hash in &hashes {
            self.mempool.remove(hash);
        }
        for s in senders {
            if let Ok(acct) = ledger::account(&self.state, &s) {
                self.mempool.remove_stale(&s, acct.nonce);
            }
        }
        if let Some(root) = newly_final.last() {
            self.forkdb.advance_root(root);
        }
        self.metrics.txs_applied.inc_by(block.txs.len() as u64);
        self.metrics.blocks_applied.inc();
        self.update_gauges();
        debug!(height = applied.height, id = %applied.id, txs = block.txs.len(), lib = new_lib, "committed block");
        let chain = self.genesis.chain_id;
        let events = transfer_log::transfer_events(&block.txs, &applied.receipts);
        transfer_log::log_transfers(chain, applied.height, &events);
        transfer_log::count_transfers(&self.metrics, &events);
        self.recent.record(
            applied.height,
            block.header.header.timestamp_ms,
            &block.txs,
            &applied.receipts,
            &events,
        );
        if let Some(summary) = self.activity.record(produced, now_ms) {
            let cons = &applied.consensus;
            let now_slot = self.rules.clock.slot_of(now_ms).unwrap_or(0);
            let participation = cons
                .participation(now_slot.max(cons.slot.saturating_add(1)))
                .percent();
            activity::log_activity(chain, &summary, applied.height, new_lib, participation);
        }
        Ok(())
    }

    /// Undoes the head block; returns its transactions.
    fn revert_head(&mut self) -> Result<Vec<Transaction>, NodeError> {
        let id = self.state.head_id;
        let block = self
            .store
            .block(&id)?
            .ok_or_else(|| NodeError::Inconsistent(format!("head block {id} missing")))?;
        let undo = self.store.undo(&id)?.ok_or_else(|| {
            NodeError::Inconsistent(format!("no undo record for {id}: cannot revert below LIB"))
        })?;
        self.store
            .revert_block(&block, &undo, self.head_height - 1)?;
        self.state.revert(&undo);
        self.head_height -= 1;
        self.update_gauges();
        Ok(block.txs)
    }

    fn update_gauges(&self) {
        self.metrics.head.set(self.head_height as i64);
        if let Ok(c) = ledger::consensus(&self.state) {
            self.metrics.lib.set(c.lib as i64);
        }
        self.metrics.mempool.set(self.mempool.len() as i64);
    }

    /// Whether this node may produce the block for `slot`, as far as the chain it holds
    /// can tell (the outage rule needs the other nodes: see [`ProductionGate`]).
    pub fn production_gate(&self, slot: u64) -> Result<ProductionGate, NodeError> {
        let Some(key) = self.key.as_ref() else {
            return Ok(ProductionGate::NotOurs);
        };
        let cons = self.consensus()?;
        if slot <= cons.slot || cons.scheduled_producer(slot) != Some(&key.public_key()) {
            return Ok(ProductionGate::NotOurs);
        }
        let participation = cons.participation(slot);
        if cons.height > 0
            && participation.percent() < MIN_PARTICIPATION_PERCENT
            && !self.stale_production
        {
            return Ok(ProductionGate::LowParticipation {
                participation,
                head: self.state.head_id,
                schedule: cons.active,
            });
        }
        Ok(ProductionGate::Ours)
    }

    /// Produces the block for `slot` if this node holds the key scheduled for it.
    /// `agreed_head` is the head on which the outage rule was checked and met (DESIGN
    /// §14): below the participation floor, a node produces only on that head.
    /// Returns the block to broadcast.
    pub fn produce(
        &mut self,
        slot: u64,
        now_ms: u64,
        agreed_head: Option<Hash32>,
    ) -> Result<Option<Block>, NodeError> {
        let key = match (self.production_gate(slot)?, &self.key) {
            (ProductionGate::NotOurs, _) | (_, None) => return Ok(None),
            (ProductionGate::LowParticipation { head, .. }, _) if agreed_head != Some(head) => {
                return Ok(None)
            }
            (_, Some(key)) => key.clone(),
        };
        if self.store.watermark()? >= slot {
            warn!(
                slot,
                "already signed a block for this slot; not signing again"
            );
            return Ok(None);
        }
        self.store.set_watermark(slot)?;
        let _serial = crate::cpu::SerialWork::start();
        self.mempool.prune_expired(now_ms);
        let params = ledger::params(&self.state)?;
        let candidates = self
            .mempool
            .candidates_checked(params.max_block_txs as usize);
        let time = self.rules.clock.slot_start(slot);
        let started = Instant::now();
        // Interchain v2 batches first: system transactions signed with the block key.
        let system = self.system_txs(&key, time);
        // Signatures were verified at admission; they are not verified again here.
        let built = build_block_with(
            &self.state,
            &key,
            time,
            system
                .iter()
                .map(|(t, c, _)| (t, Some(*c)))
                .chain(candidates.iter().map(|(t, c)| (t, Some(*c)))),
        )?;
        let system_refused: Vec<(crate::interchain::batch::SystemItem, TxError)> = built
            .rejected
            .iter()
            .filter_map(|(hash, err)| {
                system
                    .iter()
                    .find(|(_, c, _)| c.hash == *hash)
                    .map(|(_, _, k)| (*k, err.clone()))
            })
            .collect();
        for (hash, err) in built
            .rejected
            .iter()
            .filter(|(h, _)| !system.iter().any(|(_, c, _)| c.hash == *h))
        {
            let future_nonce = matches!(err, TxError::BadNonce { expected, got } if got > expected);
            if !future_nonce {
                debug!(tx = %hash, error = %err, "dropping transaction that is no longer valid");
                // Its sender's later transactions can never apply now; drop them too
                // (their sender re-signs; the relayer does so by itself).
                match self.mempool.sender_of(hash) {
                    Some((sender, nonce)) => self.mempool.remove_from(&sender, nonce),
                    None => self.mempool.remove(hash),
                }
            }
        }
        self.forkdb
            .insert(built.block.clone(), &self.rules, now_ms.max(time))?;
        self.commit(&built.block, &built.applied, now_ms, true)?;
        self.prune_batches(&system_refused, now_ms);
        self.publish();
        debug!(height = built.applied.height, id = %built.applied.id, txs = built.block.txs.len(),
              ms = started.elapsed().as_millis() as u64, "produced block");
        Ok(Some(built.block))
    }

    /// Signs `body` with this node's key (the relayer) and admits it to the mempool.
    pub fn relayer_submit(&mut self, body: Body, now_ms: u64) -> Result<Hash32, NodeError> {
        let Some(key) = self.key.clone() else {
            return Err(NodeError::Inconsistent(
                "this node has no key to relay with (set producer_key)".into(),
            ));
        };
        let sender = crate::keyfile::address(&key);
        let acct = ledger::account(&self.state, &sender)?;
        let params = ledger::params(&self.state)?;
        let tx = UnsignedTx {
            chain_id: self.genesis.chain_id,
            nonce: self.mempool.next_nonce_of(&sender, acct.nonce),
            fee: params.min_fee,
            ref_block_num: self.head_height as u16,
            ref_block_prefix: tapos_prefix(&self.state.head_id),
            expiration: now_ms + 10 * 60 * 1000,
            body,
        }
        .sign(&key);
        // Signed here a moment ago: its hash and sender are known, no need to verify.
        let check = distpos_chain::TxCheck {
            hash: tx.hash(),
            sender,
        };
        Ok(self.submit_checked(tx, check, now_ms)?.0)
    }

    /// Builds and submits `Evidence` of double signing, signed by this node's key.
    fn report_evidence(
        &mut self,
        a: distpos_proofs::SignedHeader,
        b: distpos_proofs::SignedHeader,
        now_ms: u64,
    ) {
        if self.key.is_none() {
            warn!("double signing seen, but this node has no key to submit evidence with");
            return;
        }
        let body = Body::Evidence {
            header_a: Box::new(a),
            header_b: Box::new(b),
        };
        match self.relayer_submit(body, now_ms) {
            Ok(h) => info!(tx = %h, "submitted double-sign evidence"),
            Err(e) => warn!(error = %e, "could not submit double-sign evidence"),
        }
    }
}

#[cfg(test)]
mod tests;
