//! The underwritten fast path on the node (DESIGN §11), destination side: a fast
//! delivery (`POST /v1/relay/fast`) is checked against our state as our next block
//! would apply it, held (bounded per peer) and put in our next block as an
//! `InboundFast` system transaction; a locked fast transfer whose endorsed block our
//! light client proves orphaned, and which has expired at its source, is slashed by
//! our next block (`SlashFast`). The ledger decides everything
//! (`distpos_chain::interchain::fast`); the source side (endorsing and delivering) is
//! in [`crate::relay::fast`].

use crate::node::{Node, NodeError};
use distpos_adapters::{AckStatus, FastDelivery, RelayAck};
use distpos_chain::{
    check_system_body,
    interchain::fast::{self as ledger_fast, FastRecord, FastState},
    ledger::{self, keys},
    Body, TxError,
};
use distpos_proofs::{codec, ChainId, Hash32};
use tracing::debug;

/// Most fast deliveries held per peer chain.
pub const MAX_PENDING_FAST_PER_PEER: usize = 256;
/// How long a held fast delivery may wait for our block (it is refused for good once
/// its block is irreversible here, and its transfer comes the ordinary way).
pub const FAST_LIFETIME_MS: u64 = 60_000;
/// Most slashes one block of ours carries.
pub const MAX_SLASHES_PER_BLOCK: usize = 16;

/// A fast delivery held for our next block.
#[derive(Clone, Debug)]
pub struct PendingFast {
    /// The `InboundFast` body.
    pub body: Body,
    /// Amount + fast fee (collateral reserved while it waits).
    pub total: u128,
    /// First seen.
    pub since_ms: u64,
}

impl Node {
    /// A fast delivery of a transfer to us (`POST /v1/relay/fast`).
    pub fn handle_fast_delivery(
        &mut self,
        d: FastDelivery,
        now_ms: u64,
    ) -> Result<RelayAck, NodeError> {
        let peer = d.source_chain;
        if peer == self.genesis.chain_id {
            return Err(
                TxError::Invalid("a fast delivery cannot come from this chain".into()).into(),
            );
        }
        ledger::peer(&self.state, peer)?.ok_or(TxError::UnknownPeer(peer))?;
        let tx = d.transfer.hash();
        if ledger::consumed(&self.state, peer, &tx) {
            return Ok(RelayAck {
                status: AckStatus::AlreadyConsumed,
                tx: None,
                reason: None,
            });
        }
        if self.relay.fast.contains_key(&(peer, tx)) {
            return Ok(RelayAck {
                status: AckStatus::Accepted,
                tx: None,
                reason: None,
            });
        }
        let held = self.relay.fast.keys().filter(|(p, _)| *p == peer).count();
        if held >= MAX_PENDING_FAST_PER_PEER {
            return Err(NodeError::Busy(format!(
                "{held} fast deliveries from chain {peer} wait already"
            )));
        }
        let total = match &d.transfer.body {
            Body::Transfer {
                amount, fast_fee, ..
            } => amount.saturating_add(*fast_fee),
            _ => 0,
        };
        let body = Body::InboundFast {
            peer,
            header: Box::new(d.header),
            transfer: Box::new(d.transfer),
            index: d.index,
            proof: d.proof,
            endorsements: d.endorsements,
        };
        // What our next block would do with it (collateral held by what already waits
        // counts against it).
        let reserved = self.batch_reserved().get(&peer).copied().unwrap_or(0);
        let available = ledger::peer(&self.state, peer)?
            .map(|r| distpos_chain::interchain::available(&r))
            .unwrap_or(0);
        if i128::try_from(total.saturating_add(reserved)).map_or(true, |t| available < t) {
            return Err(TxError::Fast(Box::new(ledger_fast::FastError::Collateral {
                peer,
                available: available.saturating_sub(i128::try_from(reserved).unwrap_or(i128::MAX)),
                total,
            }))
            .into());
        }
        crate::cpu::blocking(|| check_system_body(&self.state, &body, now_ms))?;
        debug!(peer = %peer, tx = %tx, total, "holding a fast delivery for our next block");
        self.relay.fast.insert(
            (peer, tx),
            PendingFast {
                body,
                total,
                since_ms: now_ms,
            },
        );
        self.publish();
        Ok(RelayAck {
            status: AckStatus::Accepted,
            tx: None,
            reason: None,
        })
    }

    /// Whether a fast delivery of `tx` from `peer` waits for our next block.
    pub fn holds_fast(&self, peer: ChainId, tx: &Hash32) -> bool {
        self.relay.fast.contains_key(&(peer, *tx))
    }

    /// The `SlashFast` bodies our next block should carry: locked fast transfers whose
    /// endorsed block our light client proves orphaned and which expired at their
    /// source (at most [`MAX_SLASHES_PER_BLOCK`]).
    pub(crate) fn due_slashes(&self) -> Vec<(ChainId, Hash32)> {
        let mut out = Vec::new();
        // Only peers with fast transfers outstanding have anything to slash.
        let mut prefixes = Vec::new();
        for (k, _) in self.state.scan_prefix(keys::PEER) {
            let Some(peer) = k.strip_prefix(keys::PEER).and_then(keys::chain_of) else {
                continue;
            };
            if ledger_fast::book(&self.state, peer).is_ok_and(|b| b.outstanding > 0) {
                let mut p = keys::FAST.to_vec();
                p.extend_from_slice(&peer.0.to_be_bytes());
                prefixes.push(p);
            }
        }
        for (k, v) in prefixes.iter().flat_map(|p| self.state.scan_prefix(p)) {
            if out.len() >= MAX_SLASHES_PER_BLOCK {
                break;
            }
            let Some((peer, tx)) = fast_key(k) else {
                continue;
            };
            let Ok(r) = codec::decode_canonical::<FastRecord>(v) else {
                continue;
            };
            if r.state != FastState::Locked {
                continue;
            }
            let Ok(Some(record)) = ledger::peer(&self.state, peer) else {
                continue;
            };
            if ledger_fast::slashable(&self.state, &record.light_client, peer, &r).is_ok() {
                out.push((peer, tx));
            }
        }
        out
    }

    /// After a block: forgets fast deliveries that were applied or refused by it, or
    /// that waited too long.
    pub(crate) fn prune_fast(&mut self, refused: &[(ChainId, Hash32)], now_ms: u64) {
        for k in refused {
            self.relay.fast.remove(k);
        }
        let state = &self.state;
        self.relay.fast.retain(|(peer, tx), p| {
            !ledger::consumed(state, *peer, tx)
                && now_ms.saturating_sub(p.since_ms) <= FAST_LIFETIME_MS
        });
    }
}

/// The (peer, transaction) of a fast record's key.
fn fast_key(k: &[u8]) -> Option<(ChainId, Hash32)> {
    let rest = k.strip_prefix(keys::FAST)?;
    let tx: [u8; 32] = rest.get(4..36)?.try_into().ok()?;
    Some((keys::chain_of(rest)?, Hash32(tx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_keys_read_back() {
        let k = keys::fast(ChainId(0xab12), &Hash32([7; 32]));
        assert_eq!(fast_key(&k), Some((ChainId(0xab12), Hash32([7; 32]))));
        assert_eq!(fast_key(b"q/short"), None);
    }
}
