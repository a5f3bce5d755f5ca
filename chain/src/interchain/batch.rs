//! Interchain v2 (DESIGN §6.1): every transfer to us in one block of a peer chain, or
//! every receipt of the peer for our transfers in one of its blocks, under one
//! multiproof, with the header run that makes that block irreversible here.
//!
//! Both are system transactions (`Body::is_system`): the block's producer puts them in
//! and signs them with its block key; they pay no fee and use no nonce, and the proof,
//! not the signature, authenticates what they carry. Each applies all or nothing: a
//! transfer consumed already, or a transfer settled already, makes the whole batch
//! invalid, so a batch can never be replayed, even in part.

use super::{
    deliver, fast, finalized_header, peer_headers, peer_record, proven_transfer, settle_one,
};
use crate::{
    env::BlockEnv,
    error::{ProofError, TxError},
    ledger::{self, keys},
    state::Overlay,
    tx::{Outcome, Receipt, SettleResult, Transaction, TransferResult},
};
use distpos_proofs::{
    light_client::{verify_batch, Commitment},
    multiproof::MultiProof,
    ChainId, Hash32, SignedHeader,
};

/// What every batch body carries besides its items.
pub(crate) struct BatchProof<'a> {
    /// The peer chain.
    pub peer: ChainId,
    /// Headers that advance our light client first (may be empty).
    pub headers: &'a [SignedHeader],
    /// The peer's block.
    pub source_height: u64,
    /// Positions of the items in that block.
    pub indices: &'a [u32],
    /// Their multiproof.
    pub proof: &'a MultiProof,
}

/// Advances the light client with the batch's headers, then checks the multiproof of
/// `items` against the (now irreversible) header of the batch's block.
fn prove<T: AsRef<[u8]>>(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    b: &BatchProof<'_>,
    items: &[T],
    commitment: Commitment,
) -> Result<(), TxError> {
    if !b.headers.is_empty() {
        peer_headers(o, env, b.peer, b.headers)?;
    }
    let record = peer_record(o, b.peer)?;
    let header = finalized_header(o, &record, b.peer, b.source_height)?;
    verify_batch(&header, items, b.indices, b.proof, commitment).map_err(ProofError::Rejected)?;
    Ok(())
}

/// `InboundBatch`: delivers (or bounces) every proven transfer against the peer's
/// correspondent account, in order, and consumes each.
pub(crate) fn inbound_batch(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    our_tx: &Hash32,
    b: &BatchProof<'_>,
    transfers: &[Transaction],
) -> Result<(Outcome, u128), TxError> {
    let items: Vec<Vec<u8>> = transfers.iter().map(Transaction::encode).collect();
    prove(o, env, b, &items, Commitment::Transactions)?;
    let mut record = peer_record(o, b.peer)?;
    let mut results = Vec::with_capacity(transfers.len());
    let mut moved: u128 = 0;
    for source_tx in transfers {
        let t = proven_transfer(source_tx, b.peer, env.chain_id)?;
        let total = t.total()?;
        let fast = ledger::consumed(o, b.peer, &t.tx);
        let bounced = if fast {
            // Delivered on the fast path already: the proof unlocks its shares (or
            // hands back slashed ones), and the receipt reports it delivered. Consumed
            // any other way, the batch is a replay.
            if fast::resolve_by_proof(o, env, b.peer, &mut record.corr, &t.tx)?.is_none() {
                return Err(TxError::AlreadyConsumed(b.peer, t.tx));
            }
            None
        } else {
            match deliver(o, env, our_tx, b.peer, &mut record, &t)? {
                Outcome::Bounced { reason, .. } => Some(reason),
                // Held for forwarding: its result goes back with a later `Release`.
                Outcome::Held { .. } => {
                    moved = moved.checked_add(total).ok_or(TxError::Overflow)?;
                    continue;
                }
                _ => None,
            }
        };
        results.push(TransferResult {
            source_tx: t.tx,
            amount: total,
            bounced,
            fast,
            bounced_by: None,
        });
        moved = moved.checked_add(total).ok_or(TxError::Overflow)?;
    }
    ledger::write(o, keys::peer(b.peer), &record);
    Ok((
        Outcome::InboundBatch {
            source: b.peer,
            results,
        },
        moved,
    ))
}

/// `SettleBatch`: settles every transfer the proven receipts report, in order. Each
/// receipt must be the peer's `InboundBatch` of transfers from us.
pub(crate) fn settle_batch(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    b: &BatchProof<'_>,
    receipts: &[Receipt],
) -> Result<(Outcome, u128), TxError> {
    let items: Vec<Vec<u8>> = receipts.iter().map(Receipt::encode).collect();
    prove(o, env, b, &items, Commitment::Receipts)?;
    let mut record = peer_record(o, b.peer)?;
    let mut settled = Vec::new();
    let mut total: u128 = 0;
    for r in receipts {
        let results = match (&r.outcome, r.outcome.results_for(env.chain_id)) {
            (_, Some(results)) => results,
            (Outcome::InboundBatch { source, .. }, None) => {
                return Err(ProofError::ForeignTransfer(*source).into())
            }
            _ => return Err(ProofError::NotATransferReceipt.into()),
        };
        for res in results {
            settle_one(
                o,
                env,
                b.peer,
                &mut record,
                res.source_tx,
                res.amount,
                res.bounced.map(|r| (r, res.bounced_by.unwrap_or(b.peer))),
            )?;
            settled.push(SettleResult {
                tx: res.source_tx,
                delivered: res.bounced.is_none(),
            });
            total = total.checked_add(res.amount).ok_or(TxError::Overflow)?;
        }
    }
    ledger::write(o, keys::peer(b.peer), &record);
    Ok((Outcome::SettleBatch { settled }, total))
}
