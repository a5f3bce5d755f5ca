//! Forwarding on the node (DESIGN §12), for the chain in the middle: transfers our
//! ledger holds for another chain get a `Forward` in our next block once the relay's
//! forward loop has chosen their next hop from our routes
//! ([`crate::relay::forward`]), and a `Release` once their onward leg has settled. The
//! ledger checks both (`distpos_chain::interchain::forward`); what is decided here is
//! only which way a transfer goes.

use crate::node::Node;
use distpos_chain::{
    interchain::forward::{held_key, Held, HeldState},
    ledger::keys,
    tx::{Hop, MAX_BATCH_ITEMS},
    Body,
};
use distpos_proofs::{codec, ChainId, Hash32};
use std::collections::BTreeMap;

/// Most `Forward` transactions one block of ours carries.
pub const MAX_FORWARDS_PER_BLOCK: usize = 256;
/// Most `Release` transactions one block of ours carries.
pub const MAX_RELEASES_PER_BLOCK: usize = 8;

/// What our ledger holds for forwarding, as the producer and the forward loop see it.
#[derive(Debug, Default)]
pub struct HeldView {
    /// Transfers waiting for their next hop: `(peer, tx)` and the record.
    pub awaiting: Vec<(ChainId, Hash32, Held)>,
    /// Transfers whose leg settled, per peer: what a `Release` reports.
    pub settled: BTreeMap<ChainId, Vec<Hash32>>,
}

/// Reads the held transfers of `state` on chain `ours` as a block at `now_ms` would
/// see them (at most `limit` awaiting a hop).
pub fn held_view(
    state: &distpos_chain::State,
    ours: ChainId,
    now_ms: u64,
    limit: usize,
) -> HeldView {
    let mut view = HeldView::default();
    for (k, v) in state.scan_prefix(keys::HELD) {
        let (Some((peer, tx)), Ok(h)) = (held_key(k), codec::decode_canonical::<Held>(v)) else {
            continue;
        };
        if h.awaits_hop(ours, now_ms) {
            if view.awaiting.len() < limit {
                view.awaiting.push((peer, tx, h));
            }
        } else if h.releasable(ours, now_ms).is_some() {
            view.settled.entry(peer).or_default().push(tx);
        }
    }
    view
}

impl Node {
    /// The `Forward` and `Release` bodies our block at `time_ms` should carry: a
    /// decided hop for each transfer still awaiting one, and the settled (or no
    /// longer delayed) ones reported back.
    pub(crate) fn forward_bodies(&self, time_ms: u64) -> Vec<(Body, ChainId, Option<Hash32>)> {
        let view = held_view(&self.state, self.genesis.chain_id, time_ms, usize::MAX);
        let mut out = Vec::new();
        for (peer, tx, _) in &view.awaiting {
            if out.len() >= MAX_FORWARDS_PER_BLOCK {
                break;
            }
            if let Some(hop) = self.relay.forwards.get(&(*peer, *tx)) {
                out.push((
                    Body::Forward {
                        source: *peer,
                        source_tx: *tx,
                        hop: hop.clone(),
                    },
                    *peer,
                    Some(*tx),
                ));
            }
        }
        let mut releases = 0;
        for (peer, txs) in view.settled {
            for chunk in txs.chunks(MAX_BATCH_ITEMS) {
                if releases >= MAX_RELEASES_PER_BLOCK {
                    return out;
                }
                releases += 1;
                out.push((
                    Body::Release {
                        source: peer,
                        txs: chunk.to_vec(),
                    },
                    peer,
                    None,
                ));
            }
        }
        out
    }

    /// Takes the hops the forward loop chose (for transfers still awaiting one).
    pub fn decide_hops(&mut self, hops: Vec<(ChainId, Hash32, Hop)>) {
        for (peer, tx, hop) in hops {
            self.relay.forwards.entry((peer, tx)).or_insert(hop);
        }
    }

    /// Whether a hop is chosen already for `tx` from `peer`.
    pub fn hop_decided(&self, peer: ChainId, tx: &Hash32) -> bool {
        self.relay.forwards.contains_key(&(peer, *tx))
    }

    /// After a block: forgets hops that were applied or that a block refused (the
    /// forward loop decides those again).
    pub(crate) fn prune_forwards(&mut self, refused: &[(ChainId, Hash32)]) {
        for k in refused {
            self.relay.forwards.remove(k);
        }
        let state = &self.state;
        self.relay.forwards.retain(|(peer, tx), _| {
            matches!(
                distpos_chain::interchain::forward::held(state, *peer, tx),
                Ok(Some(Held {
                    state: HeldState::AwaitingHop | HeldState::Delayed { .. },
                    ..
                }))
            )
        });
    }
}
