//! The last cross-chain transfer events of this node's chain, as its blocks were
//! applied here: sent, delivered, bounced, acknowledged, refunded. A small ring that
//! `GET /v1/transfers/recent` and the dashboard read without touching the store
//! (decoding recent blocks on every anonymous request would cost far more).
//!
//! Node-local and in memory: it starts empty after a restart, and a block undone by a
//! reorganisation keeps its entries (each carries its height).

use super::transfer_log::TransferEvent;
use distpos_chain::{
    tx::{BounceReason, Outcome, Receipt},
    Transaction,
};
use distpos_proofs::{codec, ChainId, Hash32};
use serde::Serialize;
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

/// Events kept.
pub const RECENT_TRANSFERS: usize = 200;

/// What happened to a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecentKind {
    /// Our transfer left (debited, in flight to `peer`).
    Sent,
    /// A transfer from `peer` was credited here.
    Delivered,
    /// A transfer from `peer` was refused here.
    Bounced,
    /// Our transfer to `peer` was delivered there and settled here.
    Acknowledged,
    /// Our transfer bounced at `peer`; the sender was refunded.
    Refunded,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecentTransfer {
    /// Height of our block that did it.
    pub height: u64,
    /// That block's time.
    pub time_ms: u64,
    /// What happened.
    pub kind: RecentKind,
    /// The other chain.
    pub peer: ChainId,
    /// The transfer (its hash on the source chain).
    pub tx: Hash32,
    /// Amount.
    #[serde(with = "codec::dec_u128")]
    pub amount: u128,
    /// Why it bounced (bounced, refunded).
    pub reason: Option<BounceReason>,
}

/// The ring; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct RecentTransfers(Arc<Mutex<VecDeque<RecentTransfer>>>);

impl RecentTransfers {
    /// Records the events of a block applied at `height`, `time_ms`: the transfers it
    /// sent (from its receipts) and what `events` says it decided.
    pub fn record(
        &self,
        height: u64,
        time_ms: u64,
        txs: &[Transaction],
        receipts: &[Receipt],
        events: &[TransferEvent],
    ) {
        let sent = txs
            .iter()
            .zip(receipts)
            .filter_map(|(tx, r)| match r.outcome {
                Outcome::InFlight { destination } => Some(RecentTransfer {
                    height,
                    time_ms,
                    kind: RecentKind::Sent,
                    peer: destination,
                    tx: tx.hash(),
                    amount: r.amount,
                    reason: None,
                }),
                _ => None,
            });
        let decided = events.iter().filter_map(|e| {
            let (kind, peer, tx, amount, reason) = match *e {
                TransferEvent::Delivered { peer, tx, amount }
                | TransferEvent::FastDelivered { peer, tx, amount } => {
                    (RecentKind::Delivered, peer, tx, amount, None)
                }
                // Resolutions of a delivery already shown: not a new transfer event.
                TransferEvent::FastProven { .. } | TransferEvent::FastSlashed { .. } => {
                    return None
                }
                TransferEvent::Bounced {
                    peer,
                    tx,
                    amount,
                    reason,
                } => (RecentKind::Bounced, peer, tx, amount, Some(reason)),
                TransferEvent::Acknowledged { peer, tx, amount } => {
                    (RecentKind::Acknowledged, peer, tx, amount, None)
                }
                TransferEvent::Refunded {
                    peer,
                    tx,
                    amount,
                    reason,
                } => (RecentKind::Refunded, peer, tx, amount, Some(reason)),
            };
            Some(RecentTransfer {
                height,
                time_ms,
                kind,
                peer,
                tx,
                amount,
                reason,
            })
        });
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for e in sent.chain(decided) {
            if ring.len() >= RECENT_TRANSFERS {
                ring.pop_front();
            }
            ring.push_back(e);
        }
    }

    /// Up to `limit` events, newest first.
    pub fn newest(&self, limit: usize) -> Vec<RecentTransfer> {
        let ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_first_and_is_bounded() {
        let r = RecentTransfers::default();
        for h in 0..(RECENT_TRANSFERS as u64 + 10) {
            let e = TransferEvent::Delivered {
                peer: ChainId(0xb),
                tx: Hash32([h as u8; 32]),
                amount: u128::from(h),
            };
            r.record(h, 1_000 + h, &[], &[], &[e]);
        }
        let all = r.newest(usize::MAX);
        assert_eq!(all.len(), RECENT_TRANSFERS);
        assert_eq!(all[0].height, RECENT_TRANSFERS as u64 + 9);
        assert_eq!(all[0].kind, RecentKind::Delivered);
        assert_eq!(r.newest(3).len(), 3);
        let bounced = TransferEvent::Refunded {
            peer: ChainId(0xb),
            tx: Hash32::ZERO,
            amount: 5,
            reason: BounceReason::Expired,
        };
        r.record(999, 2_000, &[], &[], &[bounced]);
        let top = &r.newest(1)[0];
        assert_eq!(
            (top.kind, top.reason, top.amount),
            (RecentKind::Refunded, Some(BounceReason::Expired), 5)
        );
    }
}
