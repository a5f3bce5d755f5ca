//! The node's side of cross-chain transfers: turning deliveries and receipts from
//! peer chains into `Inbound` and `Settle` transactions signed by this node's relayer
//! key, keeping those that cannot be proven yet until our light client catches up, and
//! advancing the light client with `PeerHeaders`.
//!
//! The ledger decides everything (`distpos_chain::interchain`); this module only makes
//! sure each transfer leads to at most one transaction in the mempool at a time, and
//! that nothing waits forever.

pub mod batch;

use crate::node::{pending::PendingRelay, Node, NodeError};
use distpos_adapters::{AckStatus, Delivery, ReceiptDelivery, RelayAck};
use distpos_chain::{
    interchain::{self, proven_transfer, Admission},
    ledger,
    tx::Outcome,
    Body, ProofError, TxError,
};
use distpos_proofs::{ChainId, Hash32, SignedHeader};
use tracing::{debug, info, warn};

/// Most relays a delivery may have passed.
pub const MAX_HOPS: u8 = 4;
/// How long a delivery or receipt may wait to become provable.
pub const PENDING_LIFETIME_MS: u64 = 60 * 60 * 1000;

fn ack(status: AckStatus, tx: Option<Hash32>, reason: Option<String>) -> RelayAck {
    RelayAck { status, tx, reason }
}

impl Node {
    /// A transfer delivered to us by its source chain (`POST /v1/relay/deliveries`).
    pub fn handle_delivery(&mut self, d: Delivery, now_ms: u64) -> Result<RelayAck, NodeError> {
        let ours = self.genesis.chain_id;
        if d.source_chain == ours {
            return Err(
                TxError::Invalid("a delivery cannot come from this chain itself".into()).into(),
            );
        }
        if d.hops > MAX_HOPS {
            return Err(TxError::Invalid(format!(
                "delivery passed {} relays; at most {MAX_HOPS}",
                d.hops
            ))
            .into());
        }
        ledger::peer(&self.state, d.source_chain)?.ok_or(TxError::UnknownPeer(d.source_chain))?;
        let t = proven_transfer(&d.source_tx, d.source_chain, ours)?;
        // A forged proof is refused at once, even for a transfer consumed already; one
        // that cannot be checked yet waits below for our light client.
        if let Admission::Refused(e) = interchain::inbound_admission(
            &self.state,
            d.source_chain,
            ours,
            &d.source_tx,
            &d.proof,
            d.height,
            d.index,
        ) {
            return Err(e.into());
        }
        if let Some(rec) = interchain::inbound_record(&self.state, d.source_chain, &t.tx)? {
            return Ok(ack(AckStatus::AlreadyConsumed, Some(rec.tx), None));
        }
        let key = (d.source_chain, t.tx);
        if let Some(p) = self.relay.inbound.get(&key) {
            if let Some(h) = p.tx.filter(|h| self.mempool.contains(h)) {
                return Ok(ack(AckStatus::Accepted, Some(h), None));
            }
        }
        let body = Body::Inbound {
            peer: d.source_chain,
            source_tx: Box::new(d.source_tx),
            proof: d.proof,
            source_height: d.height,
            source_index: d.index,
        };
        self.submit_pending(key, body, t.amount, true, now_ms)
    }

    /// A destination's receipt for one of our transfers (`POST /v1/relay/receipts`).
    pub fn handle_receipt(
        &mut self,
        r: ReceiptDelivery,
        now_ms: u64,
    ) -> Result<RelayAck, NodeError> {
        let ours = self.genesis.chain_id;
        if r.receipt_chain == ours {
            return Err(
                TxError::Invalid("a receipt cannot come from this chain itself".into()).into(),
            );
        }
        // A forged proof, or a receipt that is not one of ours, is refused at once;
        // one that cannot be checked yet waits below for our light client.
        let transfer = match interchain::receipt_admission(
            &self.state,
            r.receipt_chain,
            ours,
            &r.receipt,
            &r.proof,
            r.height,
            r.index,
        ) {
            Admission::Refused(e) => return Err(e.into()),
            Admission::Admissible(p) => p.transfer,
            Admission::NotYet(_) => match &r.receipt.outcome {
                Outcome::Delivered { source_tx, .. } | Outcome::Bounced { source_tx, .. } => {
                    *source_tx
                }
                _ => return Err(TxError::from(ProofError::NotATransferReceipt).into()),
            },
        };
        if let Some(done) = interchain::settled_record(&self.state, &transfer)? {
            // Final only once the settling block is irreversible: a block above our
            // LIB may still be undone by a reorganisation, and the receipt must then
            // come again.
            if done.height > self.consensus()?.lib {
                return Ok(ack(
                    AckStatus::Accepted,
                    None,
                    Some(format!(
                        "settled in block {}, not irreversible yet",
                        done.height
                    )),
                ));
            }
            let status = if done.delivered {
                AckStatus::AlreadySettled
            } else {
                AckStatus::AlreadyRefunded
            };
            return Ok(ack(status, None, None));
        }
        if ledger::in_flight(&self.state, &transfer)?.is_none() {
            return Err(TxError::NotInFlight(transfer).into());
        }
        let key = (r.receipt_chain, transfer);
        if let Some(p) = self.relay.settle.get(&key) {
            if let Some(h) = p.tx.filter(|h| self.mempool.contains(h)) {
                return Ok(ack(AckStatus::Accepted, Some(h), None));
            }
        }
        let amount = r.receipt.amount;
        let body = Body::Settle {
            peer: r.receipt_chain,
            receipt: r.receipt,
            proof: r.proof,
            source_height: r.height,
            source_index: r.index,
        };
        self.submit_pending(key, body, amount, false, now_ms)
    }

    fn submit_pending(
        &mut self,
        key: (ChainId, Hash32),
        body: Body,
        amount: u128,
        inbound: bool,
        now_ms: u64,
    ) -> Result<RelayAck, NodeError> {
        let lc_lib = ledger::peer(&self.state, key.0)
            .ok()
            .flatten()
            .map_or(0, |p| p.light_client.lib());
        let result = self.relayer_submit(body.clone(), now_ms);
        let map = if inbound {
            &mut self.relay.inbound
        } else {
            &mut self.relay.settle
        };
        let entry = map.entry(key).or_insert_with(|| PendingRelay {
            body,
            tx: None,
            amount,
            since_ms: now_ms,
            reason: None,
            tried_at_lib: 0,
        });
        match result {
            Ok(h) => {
                entry.tx = Some(h);
                entry.reason = None;
                Ok(ack(AckStatus::Accepted, Some(h), None))
            }
            Err(NodeError::Tx(TxError::NotYetProvable(why))) => {
                let why = why.to_string();
                entry.tx = None;
                entry.reason = Some(why.clone());
                entry.tried_at_lib = lc_lib;
                Ok(ack(AckStatus::Pending, None, Some(why)))
            }
            Err(e) => {
                map.remove(&key);
                Err(e)
            }
        }
    }

    /// Retries pending deliveries and receipts (after our light clients advanced), and
    /// forgets those that are done, refused, or too old.
    pub fn retry_pending(&mut self, now_ms: u64) {
        let mut submitted = 0usize;
        for inbound in [true, false] {
            let keys: Vec<(ChainId, Hash32)> = if inbound {
                self.relay.inbound.keys().copied().collect()
            } else {
                self.relay.settle.keys().copied().collect()
            };
            for key in keys {
                let done = if inbound {
                    interchain::inbound_record(&self.state, key.0, &key.1)
                        .ok()
                        .flatten()
                        .is_some()
                } else {
                    interchain::settled_record(&self.state, &key.1)
                        .ok()
                        .flatten()
                        .is_some()
                };
                let map = if inbound {
                    &mut self.relay.inbound
                } else {
                    &mut self.relay.settle
                };
                let Some(p) = map.get(&key).cloned() else {
                    continue;
                };
                if done || now_ms.saturating_sub(p.since_ms) > PENDING_LIFETIME_MS {
                    if !done {
                        warn!(peer = %key.0, transfer = %key.1, "giving up on a relay item that never became provable");
                    }
                    map.remove(&key);
                    continue;
                }
                if p.tx.is_some_and(|h| self.mempool.contains(&h)) {
                    continue;
                }
                // Not provable yet, and our light client has not moved since: wait.
                let lc_lib = ledger::peer(&self.state, key.0)
                    .ok()
                    .flatten()
                    .map_or(0, |r| r.light_client.lib());
                if p.tx.is_none() && p.reason.is_some() && lc_lib == p.tried_at_lib {
                    continue;
                }
                match self.submit_pending(key, p.body.clone(), p.amount, inbound, now_ms) {
                    Ok(a) if a.status == AckStatus::Accepted => {
                        submitted += 1;
                        debug!(peer = %key.0, transfer = %key.1, tx = ?a.tx, "relay item now provable; submitted")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(peer = %key.0, transfer = %key.1, error = %e, "relay item refused; dropped")
                    }
                }
            }
        }
        if submitted > 0 {
            info!(
                submitted,
                "relay items now provable (our light client caught up); submitted"
            );
        }
    }

    /// Collateral of `peer` reserved by inbound transfers waiting in the mempool.
    pub fn reserved(&self, peer: ChainId) -> u128 {
        self.relay
            .inbound
            .iter()
            .filter(|((p, _), e)| *p == peer && e.tx.is_some_and(|h| self.mempool.contains(&h)))
            .map(|(_, e)| e.amount)
            .sum()
    }

    /// Whether a `PeerHeaders` transaction for `peer` is still waiting in the mempool.
    pub fn headers_pending(&self, peer: ChainId) -> bool {
        self.relay
            .headers_tx
            .get(&peer)
            .is_some_and(|h| self.mempool.contains(h))
    }

    /// Submits peer headers for our light client of `peer`.
    pub fn submit_peer_headers(
        &mut self,
        peer: ChainId,
        headers: Vec<SignedHeader>,
        now_ms: u64,
    ) -> Result<Hash32, NodeError> {
        let n = headers.len();
        let h = self.relayer_submit(Body::PeerHeaders { peer, headers }, now_ms)?;
        debug!(peer = %peer, headers = n, tx = %h, "submitted peer headers");
        self.relay.headers_tx.insert(peer, h);
        Ok(h)
    }
}
