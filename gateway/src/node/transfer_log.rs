//! What happened to cross-chain transfers in a block applied on our chain, as an
//! operator reads it in the log (DESIGN §14: "logs say what happened to every
//! transfer at INFO"): inbound transfers delivered or bounced here, and our outbound
//! transfers acknowledged or refunded (with the reason the destination gave).
//!
//! Each is also counted in `distpos_transfers_total` ([`count_transfers`]).
//!
//! The events come from the applied block alone (its transactions and their
//! receipts), never from mempool admission: a transfer is logged when the block that
//! decides it becomes part of our chain, once per application of that block.

use crate::metrics::{Metrics, TransferLabels};
use distpos_chain::{
    tx::{BounceReason, Outcome, Receipt},
    Body, Transaction,
};
use distpos_proofs::{ChainId, Hash32};
use tracing::info;

/// One transfer's fate, decided by a block of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEvent {
    /// An inbound transfer was credited to its recipient here.
    Delivered {
        /// The source chain.
        peer: ChainId,
        /// The source transaction.
        tx: Hash32,
        /// Amount.
        amount: u128,
    },
    /// An inbound transfer was refused here; the source refunds it.
    Bounced {
        /// The source chain.
        peer: ChainId,
        /// The source transaction.
        tx: Hash32,
        /// Amount.
        amount: u128,
        /// Why.
        reason: BounceReason,
    },
    /// An inbound transfer was credited here on the fast path (DESIGN §11), before its
    /// block is irreversible at the source; its underwriters' shares are locked.
    FastDelivered {
        /// The source chain.
        peer: ChainId,
        /// The source transaction.
        tx: Hash32,
        /// Amount (with the fast fee).
        amount: u128,
    },
    /// The ordinary proof of a transfer delivered on the fast path arrived: its shares
    /// are unlocked (or, if they were slashed, handed back); nothing is credited.
    FastProven {
        /// The source chain.
        peer: ChainId,
        /// The source transaction.
        tx: Hash32,
        /// Amount (with the fast fee).
        amount: u128,
    },
    /// The shares behind a fast transfer were slashed into the source's correspondent
    /// account: its block was orphaned and it expired at the source.
    FastSlashed {
        /// The source chain.
        peer: ChainId,
        /// The source transaction.
        tx: Hash32,
        /// What the shares paid.
        amount: u128,
    },
    /// Our outbound transfer was delivered, and the destination's receipt settled it.
    Acknowledged {
        /// The destination chain.
        peer: ChainId,
        /// Our transaction.
        tx: Hash32,
        /// Amount.
        amount: u128,
    },
    /// Our outbound transfer bounced at the destination; its sender was refunded.
    Refunded {
        /// The destination chain.
        peer: ChainId,
        /// Our transaction.
        tx: Hash32,
        /// Amount.
        amount: u128,
        /// Why the destination bounced it.
        reason: BounceReason,
    },
}

/// The transfer events of a block: `txs` are its transactions and `receipts` their
/// receipts, one each, in block order.
pub fn transfer_events(txs: &[Transaction], receipts: &[Receipt]) -> Vec<TransferEvent> {
    let mut out = Vec::new();
    for (tx, receipt) in txs.iter().zip(receipts) {
        match (&tx.body, &receipt.outcome) {
            (_, Outcome::FastDelivered { source, source_tx }) => {
                out.push(TransferEvent::FastDelivered {
                    peer: *source,
                    tx: *source_tx,
                    amount: receipt.amount,
                })
            }
            (_, Outcome::FastSlashed { source, source_tx }) => {
                out.push(TransferEvent::FastSlashed {
                    peer: *source,
                    tx: *source_tx,
                    amount: receipt.amount,
                })
            }
            (_, Outcome::InboundBatch { source, results }) => {
                out.extend(results.iter().map(|r| match r.bounced {
                    None if r.fast => TransferEvent::FastProven {
                        peer: *source,
                        tx: r.source_tx,
                        amount: r.amount,
                    },
                    None => TransferEvent::Delivered {
                        peer: *source,
                        tx: r.source_tx,
                        amount: r.amount,
                    },
                    Some(reason) => TransferEvent::Bounced {
                        peer: *source,
                        tx: r.source_tx,
                        amount: r.amount,
                        reason,
                    },
                }));
            }
            // The settle batch applied (all or nothing): what it settled, with amounts
            // and reasons, is what the destination's receipts it carries say.
            (Body::SettleBatch { peer, receipts, .. }, Outcome::SettleBatch { .. }) => {
                for r in receipts {
                    let Outcome::InboundBatch { results, .. } = &r.outcome else {
                        continue;
                    };
                    out.extend(results.iter().map(|r| match r.bounced {
                        None => TransferEvent::Acknowledged {
                            peer: *peer,
                            tx: r.source_tx,
                            amount: r.amount,
                        },
                        Some(reason) => TransferEvent::Refunded {
                            peer: *peer,
                            tx: r.source_tx,
                            amount: r.amount,
                            reason,
                        },
                    }));
                }
            }
            _ => {}
        }
    }
    out
}

/// Logs each event at INFO, with our chain, the peer, the transaction, the amount
/// and, for a bounce or a refund, the reason. Nothing secret is in a transfer.
pub fn log_transfers(chain: ChainId, height: u64, events: &[TransferEvent]) {
    for e in events {
        match e {
            TransferEvent::Delivered { peer, tx, amount } => {
                info!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount,
                      "inbound transfer delivered")
            }
            TransferEvent::Bounced {
                peer,
                tx,
                amount,
                reason,
            } => {
                info!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount, reason = %reason,
                      "inbound transfer bounced")
            }
            TransferEvent::FastDelivered { peer, tx, amount } => {
                info!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount,
                      "inbound transfer delivered on the fast path (underwriters' shares locked until its block is irreversible at the source)")
            }
            TransferEvent::FastProven { peer, tx, amount } => {
                info!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount,
                      "fast transfer proven by the ordinary path: underwriters' shares released")
            }
            TransferEvent::FastSlashed { peer, tx, amount } => {
                tracing::warn!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount,
                      "fast transfer's block was orphaned and it expired at the source: its underwriters' shares were slashed into the correspondent account")
            }
            TransferEvent::Acknowledged { peer, tx, amount } => {
                info!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount,
                      "outbound transfer delivered and settled")
            }
            TransferEvent::Refunded {
                peer,
                tx,
                amount,
                reason,
            } => {
                info!(chain = %chain, height, peer = %peer, tx = %tx, amount = %amount, reason = %reason,
                      "outbound transfer bounced at the destination and refunded")
            }
        }
    }
}

impl TransferEvent {
    /// Its series of `distpos_transfers_total`.
    pub fn labels(&self) -> TransferLabels {
        match *self {
            TransferEvent::Delivered { peer, .. } | TransferEvent::FastDelivered { peer, .. } => {
                TransferLabels::new(peer, TransferLabels::DELIVERED, None)
            }
            TransferEvent::FastProven { peer, .. } => {
                TransferLabels::new(peer, TransferLabels::FAST_PROVEN, None)
            }
            TransferEvent::FastSlashed { peer, .. } => {
                TransferLabels::new(peer, TransferLabels::FAST_SLASHED, None)
            }
            TransferEvent::Bounced { peer, reason, .. } => {
                TransferLabels::new(peer, TransferLabels::BOUNCED, Some(reason))
            }
            TransferEvent::Acknowledged { peer, .. } => {
                TransferLabels::new(peer, TransferLabels::ACKNOWLEDGED, None)
            }
            TransferEvent::Refunded { peer, reason, .. } => {
                TransferLabels::new(peer, TransferLabels::REFUNDED, Some(reason))
            }
        }
    }
}

/// Counts each event in `distpos_transfers_total{peer, outcome, reason}`.
pub fn count_transfers(metrics: &Metrics, events: &[TransferEvent]) {
    for e in events {
        metrics.transfers.get_or_create(&e.labels()).inc();
    }
}

#[cfg(test)]
pub(crate) mod tests;
