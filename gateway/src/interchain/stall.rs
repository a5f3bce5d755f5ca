//! Light clients that cannot advance (DESIGN §14): a peer whose headers we hold but
//! our light client of it does not take is `stalled`, with the light client's own
//! reason, in `/v1/correspondents`, in a metric, and once in the log (at WARN, again
//! only when the reason changes, and at INFO when it advances again).
//!
//! Every node watches, producer or not: the header sync loop reports each peer's
//! light-client head; when it has not moved for [`STALL_AFTER_MS`] while headers above
//! it are held, the node tries those headers on a copy of the light client (off the
//! node lock, on the blocking pool), at most every [`RECHECK_MS`] per peer. A copy
//! that takes them means the peer is only waiting for our next block: not stalled.

use crate::metrics::{Metrics, PeerLabels};
use distpos_chain::ledger;
use distpos_proofs::{
    light_client::{LightClient, NotYet, Verdict},
    ChainId, SignedHeader,
};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};
use tracing::{info, warn};

/// How long a light client's head may stay still, with headers above it held, before
/// the node asks why.
pub const STALL_AFTER_MS: u64 = 5_000;
/// How often, at most, the node asks again for one peer.
pub const RECHECK_MS: u64 = 5_000;

/// Why a peer's light client cannot advance, since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stall {
    /// The light client's refusal.
    pub reason: String,
    /// When this node first saw it (unix ms).
    pub since_ms: u64,
}

#[derive(Debug, Default)]
struct Watch {
    head: u64,
    moved_ms: u64,
    checked_ms: u64,
    stall: Option<Stall>,
}

/// What a node knows of its light clients' progress. Bounded by the registered peers
/// (entries of peers no longer registered are dropped by [`PeerWatch::retain`]).
#[derive(Debug, Default)]
pub struct PeerWatch {
    peers: Mutex<BTreeMap<ChainId, Watch>>,
}

/// What to try on a copy of a light client: its state and the run of held headers
/// above it (empty when the held headers do not connect to it).
pub struct Trial {
    /// The peer.
    pub peer: ChainId,
    /// A copy of our light client of it.
    pub client: LightClient,
    /// The held headers that extend it (see `Node::header_run`).
    pub run: Vec<SignedHeader>,
    /// The held header just above its checkpoint, if any: when `run` is empty and
    /// this one does not follow the checkpoint, the light client is on another chain
    /// than the peer's.
    pub first_held: Option<SignedHeader>,
}

impl Trial {
    /// Why the light client would not take what we hold, `None` if it would (or if
    /// nothing is held to judge by).
    pub fn refusal(&self, now_ms: u64) -> Option<String> {
        if self.run.is_empty() {
            let lc = &self.client;
            let h = self.first_held.as_ref().filter(|h| {
                h.header.height == lc.lib() + 1 && h.header.prev_id != lc.checkpoint_id()
            })?;
            return Some(format!(
                "the peer's header at height {} does not follow our light client (checkpoint {} at height {}, head {}): \
                 its trust anchor is not on the peer's chain",
                h.header.height,
                lc.checkpoint_id(),
                lc.lib(),
                lc.head()
            ));
        }
        let mut lc = self.client.clone();
        match lc.submit(&self.run, now_ms) {
            Verdict::Accepted(_) | Verdict::NotYet(NotYet::NotPreferred) => None,
            Verdict::NotYet(n) => Some(n.to_string()),
            Verdict::Rejected(r) => Some(r.to_string()),
        }
    }
}

impl PeerWatch {
    /// Records the head of our light client of `peer`; true when it is time to ask
    /// why it does not move.
    pub fn observe(&self, peer: ChainId, head: u64, now_ms: u64, metrics: &Metrics) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let w = peers.entry(peer).or_insert_with(|| Watch {
            head,
            moved_ms: now_ms,
            ..Watch::default()
        });
        if w.head != head {
            w.head = head;
            w.moved_ms = now_ms;
            if w.stall.take().is_some() {
                info!(peer = %peer, head, "light client of the peer advances again");
                metrics.set_peer_stalled(peer, false);
            }
            return false;
        }
        let due = now_ms.saturating_sub(w.moved_ms) >= STALL_AFTER_MS
            && now_ms.saturating_sub(w.checked_ms) >= RECHECK_MS;
        if due {
            w.checked_ms = now_ms;
        }
        due
    }

    /// Records the answer of a [`Trial`]: stalled with `reason`, or not.
    pub fn verdict(&self, peer: ChainId, reason: Option<String>, now_ms: u64, metrics: &Metrics) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let w = peers.entry(peer).or_default();
        match (reason, &mut w.stall) {
            (None, stall) => {
                if stall.take().is_some() {
                    info!(peer = %peer, "light client of the peer is no longer stalled");
                    metrics.set_peer_stalled(peer, false);
                }
            }
            (Some(reason), Some(s)) if s.reason == reason => {}
            (Some(reason), stall) => {
                warn!(peer = %peer, head = w.head, reason = %reason,
                    "light client of the peer cannot advance: stalled (governance can reset it to a newer anchor)");
                if stall.is_none() {
                    metrics
                        .peer_stalls
                        .get_or_create(&PeerLabels::new(peer))
                        .inc();
                }
                metrics.set_peer_stalled(peer, true);
                *stall = Some(Stall {
                    reason,
                    since_ms: stall.as_ref().map_or(now_ms, |s| s.since_ms),
                });
            }
        }
    }

    /// Why `peer`'s light client is stalled, if it is.
    pub fn stall(&self, peer: ChainId) -> Option<Stall> {
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        peers.get(&peer).and_then(|w| w.stall.clone())
    }

    /// Forgets peers that are no longer registered.
    pub fn retain(&self, registered: &[ChainId], metrics: &Metrics) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        peers.retain(|p, _| {
            let keep = registered.contains(p);
            if !keep {
                metrics.peer_stalled.remove(&PeerLabels::new(*p));
            }
            keep
        });
    }
}

impl crate::node::Node {
    /// What to try on a copy of our light client of `peer` (`None` if not registered).
    pub fn stall_trial(&self, peer: ChainId) -> Option<Trial> {
        let record = ledger::peer(&self.state, peer).ok().flatten()?;
        let run = self.header_run(peer);
        let lib = record.light_client.lib();
        let first_held = self
            .relay
            .peer_headers
            .get(&peer)
            .and_then(|b| b.get(&(lib + 1)).cloned());
        Some(Trial {
            peer,
            client: record.light_client,
            run,
            first_held,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_reported_once_per_reason_and_cleared_when_the_head_moves() {
        let m = Metrics::new();
        let w = PeerWatch::default();
        let p = ChainId(0xb0b);
        assert!(!w.observe(p, 5, 0, &m));
        assert!(!w.observe(p, 5, STALL_AFTER_MS - 1, &m));
        assert!(w.observe(p, 5, STALL_AFTER_MS, &m));
        // Asked just now: not again before RECHECK_MS.
        assert!(!w.observe(p, 5, STALL_AFTER_MS + 1, &m));
        w.verdict(p, Some("bad header".into()), 6_000, &m);
        w.verdict(p, Some("bad header".into()), 12_000, &m);
        let s = w.stall(p).unwrap();
        assert_eq!((s.reason.as_str(), s.since_ms), ("bad header", 6_000));
        w.verdict(p, Some("other".into()), 13_000, &m);
        assert_eq!(
            w.stall(p).unwrap().since_ms,
            6_000,
            "still stalled since then"
        );
        let text = m.render();
        assert!(
            text.contains("distpos_peer_stalled{peer=\"b0b\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("distpos_peer_stalls_total{peer=\"b0b\"} 1"),
            "{text}"
        );
        // The head moves: no longer stalled.
        assert!(!w.observe(p, 6, 14_000, &m));
        assert_eq!(w.stall(p), None);
        assert!(m.render().contains("distpos_peer_stalled{peer=\"b0b\"} 0"));
        // An accepting trial clears a stall too.
        w.verdict(p, Some("again".into()), 20_000, &m);
        w.verdict(p, None, 21_000, &m);
        assert_eq!(w.stall(p), None);
        w.retain(&[], &m);
        assert!(!m.render().contains("distpos_peer_stalled{"));
    }

    #[test]
    fn a_trial_names_the_light_clients_refusal() {
        use distpos_proofs::testkit::{HeaderChainSim, NOW};
        let keys: Vec<_> = (0..3u8)
            .map(|i| distpos_proofs::SecretKey::from_seed(&[b's', i]))
            .collect();
        let mut peer = HeaderChainSim::new(keys.clone());
        for _ in 0..3 {
            peer.block(0);
        }
        let good = LightClient::new(&peer.anchor_at_head()).unwrap();
        let mut wrong = peer.anchor_at_head();
        wrong.checkpoint.consensus.active.producers =
            vec![distpos_proofs::SecretKey::from_seed(b"other").public_key()];
        let bad = LightClient::new(&wrong).unwrap();
        let next = vec![peer.block(0)];
        let trial = |client: LightClient, run: Vec<SignedHeader>| Trial {
            peer: ChainId(0xa11),
            client,
            first_held: next.first().cloned(),
            run,
        };
        assert_eq!(trial(good, next.clone()).refusal(NOW), None);
        let why = trial(bad.clone(), next.clone()).refusal(NOW).unwrap();
        assert!(why.contains("not scheduled"), "{why}");
        // Nothing that extends it held, and the header above its checkpoint is not
        // its child: the light client is on another chain.
        let mut elsewhere = HeaderChainSim::new(keys);
        for _ in 0..3 {
            elsewhere.block(1);
        }
        let stranger = LightClient::new(&elsewhere.anchor_at_head()).unwrap();
        let why = trial(stranger, vec![]).refusal(NOW).unwrap();
        assert!(why.contains("does not follow our light client"), "{why}");
        // A held header that is its child, or none at all: nothing to say.
        assert_eq!(trial(bad.clone(), vec![]).refusal(NOW), None);
        let none = Trial {
            first_held: None,
            ..trial(bad, vec![])
        };
        assert_eq!(none.refusal(NOW), None);
    }
}
