//! Read-only JSON projections of the node's state for the HTTP API.

pub mod fast;
pub mod governance;
pub mod transfers;

use crate::node::{snapshot::Snapshot, NodeError};
use distpos_chain::{
    ledger::{self, Account, Producer},
    Address, Block, Receipt,
};
use distpos_proofs::{consensus::Participation, ChainId, Hash32, ProducerSchedule, PublicKey};
use serde::Serialize;

/// `GET /v1/status`.
#[derive(Serialize)]
pub struct StatusView {
    /// Chain id.
    pub chain_id: ChainId,
    /// Identity hash.
    pub identity: Hash32,
    /// Software version.
    pub version: &'static str,
    /// Head block.
    pub head: BlockRef,
    /// Last irreversible block.
    pub lib: BlockRef,
    /// State digest after the head.
    pub state_digest: Hash32,
    /// Active schedule.
    pub schedule: ProducerSchedule,
    /// Pending schedule, if any.
    pub pending_schedule: Option<ProducerSchedule>,
    /// Participation over the last 128 slots, as seen now.
    pub participation: ParticipationView,
    /// Transactions waiting.
    pub mempool_txs: usize,
    /// This node's producer key, if any.
    pub producer_key: Option<PublicKey>,
    /// Block interval.
    pub block_interval_ms: u64,
    /// Genesis time.
    pub genesis_time_ms: u64,
    /// Lowest fee a transaction may pay.
    #[serde(with = "distpos_proofs::codec::dec_u128")]
    pub min_fee: u128,
}

/// A block reference.
#[derive(Serialize)]
pub struct BlockRef {
    /// Height.
    pub height: u64,
    /// Id.
    pub id: Hash32,
}

/// Participation figures.
#[derive(Serialize)]
pub struct ParticipationView {
    /// Filled slots in the window.
    pub filled: u32,
    /// Window size.
    pub window: u32,
    /// Percent filled.
    pub percent: u32,
}

impl From<Participation> for ParticipationView {
    fn from(p: Participation) -> Self {
        Self {
            filled: p.filled,
            window: p.window,
            percent: p.percent(),
        }
    }
}

/// Participation over the last 128 slots as seen at `now_ms`: the slots passed since
/// the head count as missed.
pub fn participation_now(snap: &Snapshot, now_ms: u64) -> Participation {
    let cons = &snap.consensus;
    let now_slot = snap.info.rules.clock.slot_of(now_ms).unwrap_or(0);
    cons.participation(now_slot.max(cons.slot + 1))
}

/// Builds the status view.
pub fn status(snap: &Snapshot, now_ms: u64) -> Result<StatusView, NodeError> {
    let cons = &snap.consensus;
    let info = &snap.info;
    Ok(StatusView {
        chain_id: info.genesis.chain_id,
        identity: info.identity,
        version: env!("CARGO_PKG_VERSION"),
        head: BlockRef {
            height: snap.head_height,
            id: snap.state.head_id,
        },
        lib: BlockRef {
            height: cons.lib,
            id: snap.lib_id,
        },
        state_digest: snap.state.digest,
        pending_schedule: cons.pending.as_ref().map(|p| p.schedule.clone()),
        participation: participation_now(snap, now_ms).into(),
        schedule: cons.active.clone(),
        mempool_txs: snap.mempool.len(),
        producer_key: info.producer_key,
        block_interval_ms: info.rules.clock.interval_ms,
        genesis_time_ms: info.rules.clock.genesis_time_ms,
        min_fee: ledger::params(&snap.state)?.min_fee,
    })
}

/// `GET /v1/accounts/{address}`.
#[derive(Serialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// The account record.
    #[serde(flatten)]
    pub account: Account,
    /// The nonce the sender's next transaction should carry, counting the mempool.
    pub next_nonce: u64,
    /// Its producer record, if it registered.
    pub producer: Option<Producer>,
}

/// Builds the account view.
pub fn account(snap: &Snapshot, address: &Address) -> Result<AccountView, NodeError> {
    let account = ledger::account(&snap.state, address)?;
    let next_nonce = account.nonce + 1 + snap.mempool.pending_of(address) as u64;
    Ok(AccountView {
        address: *address,
        producer: ledger::producer(&snap.state, address)?,
        next_nonce,
        account,
    })
}

/// One producer in `GET /v1/producers`.
#[derive(Serialize)]
pub struct ProducerView {
    /// Its account.
    pub account: Address,
    /// Its record.
    #[serde(flatten)]
    pub producer: Producer,
    /// In the active schedule.
    pub active: bool,
}

/// `GET /v1/producers`.
#[derive(Serialize)]
pub struct ProducersView {
    /// Active schedule.
    pub schedule: ProducerSchedule,
    /// Pending schedule.
    pub pending_schedule: Option<ProducerSchedule>,
    /// Every producer ever registered.
    pub producers: Vec<ProducerView>,
    /// Participation.
    pub participation: ParticipationView,
}

/// Builds the producers view.
pub fn producers(snap: &Snapshot, now_ms: u64) -> Result<ProducersView, NodeError> {
    let cons = snap.consensus.clone();
    let mut out = Vec::new();
    for account in ledger::producer_list(&snap.state)? {
        if let Some(p) = ledger::producer(&snap.state, &account)? {
            out.push(ProducerView {
                account,
                active: cons.active.contains(&p.signing_key),
                producer: p,
            });
        }
    }
    Ok(ProducersView {
        participation: participation_now(snap, now_ms).into(),
        pending_schedule: cons.pending.map(|p| p.schedule),
        schedule: cons.active,
        producers: out,
    })
}

/// `GET /v1/txs/{hash}`.
#[derive(Serialize)]
pub struct TxStatusView {
    /// Transaction hash.
    pub hash: Hash32,
    /// `pending`, `included` or `irreversible`.
    pub status: &'static str,
    /// Block height (included).
    pub height: Option<u64>,
    /// Block id (included).
    pub block_id: Option<Hash32>,
    /// Position in the block (included).
    pub index: Option<u32>,
    /// Its receipt (included).
    pub receipt: Option<Receipt>,
}

/// Builds the transaction status, `None` if unknown.
pub fn tx_status(snap: &Snapshot, hash: &Hash32) -> Result<Option<TxStatusView>, NodeError> {
    if let Some(loc) = snap.store.tx_location(hash)? {
        let lib = snap.consensus.lib;
        let receipt = snap
            .store
            .receipts(&loc.block_id)?
            .and_then(|r| r.get(loc.index as usize).cloned());
        return Ok(Some(TxStatusView {
            hash: *hash,
            status: if loc.height <= lib {
                "irreversible"
            } else {
                "included"
            },
            height: Some(loc.height),
            block_id: Some(loc.block_id),
            index: Some(loc.index),
            receipt,
        }));
    }
    if snap.mempool.contains(hash) {
        return Ok(Some(TxStatusView {
            hash: *hash,
            status: "pending",
            height: None,
            block_id: None,
            index: None,
            receipt: None,
        }));
    }
    Ok(None)
}

/// `GET /v1/blocks/{which}`.
#[derive(Serialize)]
pub struct BlockView {
    /// Block id.
    pub id: Hash32,
    /// Irreversible.
    pub irreversible: bool,
    /// The block.
    pub block: Block,
    /// Receipts.
    pub receipts: Vec<Receipt>,
}

/// The canonical block at `height`, `None` if there is none.
pub fn block_at(snap: &Snapshot, height: u64) -> Result<Option<BlockView>, NodeError> {
    let Some(block) = snap.store.block_at(height)? else {
        return Ok(None);
    };
    let id = block.id();
    let receipts = snap.store.receipts(&id)?.unwrap_or_default();
    Ok(Some(BlockView {
        id,
        irreversible: height <= snap.consensus.lib,
        block,
        receipts,
    }))
}

/// `GET /v1/proofs/tx/{hash}`: what a peer chain needs to prove a transaction and its
/// outcome: the transaction and its receipt, each with an inclusion proof against the
/// block's signed header.
#[derive(Serialize)]
pub struct TxProofView {
    /// Block height.
    pub height: u64,
    /// Block id.
    pub block_id: Hash32,
    /// Irreversible on this chain (a peer accepts only proofs of irreversible blocks).
    pub irreversible: bool,
    /// The signed header.
    pub header: distpos_proofs::SignedHeader,
    /// The transaction with its proof against `tx_root`.
    pub tx: distpos_proofs::light_client::ProofBundle,
    /// The receipt with its proof against `receipts_root`.
    pub receipt: distpos_proofs::light_client::ProofBundle,
    /// The decoded transaction.
    pub transaction: distpos_chain::Transaction,
    /// The decoded receipt.
    pub receipt_decoded: Receipt,
}

/// Builds the proof of an included transaction, `None` if not included here.
pub fn tx_proof(snap: &Snapshot, hash: &Hash32) -> Result<Option<TxProofView>, NodeError> {
    use distpos_proofs::{light_client::ProofBundle, merkle};
    let Some(loc) = snap.store.tx_location(hash)? else {
        return Ok(None);
    };
    let block = snap
        .store
        .block(&loc.block_id)?
        .ok_or_else(|| NodeError::Inconsistent(format!("block {} missing", loc.block_id)))?;
    let receipts = snap
        .store
        .receipts(&loc.block_id)?
        .ok_or_else(|| NodeError::Inconsistent(format!("receipts of {} missing", loc.block_id)))?;
    let index = loc.index as usize;
    let tx_items: Vec<Vec<u8>> = block.txs.iter().map(|t| t.encode()).collect();
    let r_items: Vec<Vec<u8>> = receipts.iter().map(|r| r.encode()).collect();
    let leaves = |items: &[Vec<u8>]| {
        items
            .iter()
            .map(|i| merkle::leaf_hash(i))
            .collect::<Vec<_>>()
    };
    let (Some(tx_proof), Some(r_proof)) = (
        merkle::prove(&leaves(&tx_items), index),
        merkle::prove(&leaves(&r_items), index),
    ) else {
        return Err(NodeError::Inconsistent(format!(
            "index {index} outside block {}",
            loc.block_id
        )));
    };
    Ok(Some(TxProofView {
        height: loc.height,
        block_id: loc.block_id,
        irreversible: loc.height <= snap.consensus.lib,
        header: block.header.clone(),
        tx: ProofBundle {
            height: loc.height,
            index: loc.index,
            item: tx_items[index].clone(),
            proof: tx_proof,
        },
        receipt: ProofBundle {
            height: loc.height,
            index: loc.index,
            item: r_items[index].clone(),
            proof: r_proof,
        },
        transaction: block.txs[index].clone(),
        receipt_decoded: receipts[index].clone(),
    }))
}

#[cfg(test)]
mod tests;
