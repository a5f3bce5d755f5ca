//! Forwarding through correspondents (DESIGN §12), on the ledger of the chain in the
//! middle.
//!
//! A transfer from peer A for a chain C that is not us is admitted like any other
//! (against A's correspondent account) and **held**: `corr[A]` pays for it, nobody is
//! credited, and the `InboundBatch` receipt says nothing of it yet. Our producer then
//! decides, with a `Forward` system transaction, where it goes: our own leg to a
//! registered peer (in flight like any outbound transfer, less our transit fee, with a
//! deadline shortened by our margin and our chain added to its path), or back (no
//! route, a loop, too many hops). When the leg settles, a `Release` reports the result
//! to A in a receipt A settles with, as if it were an `InboundBatch`'s:
//!
//! ```text
//!   held ──Forward(bounce)──────────────────────────────▶ result to A: bounced
//!     └───Forward(onward)──▶ leg in flight ──settled──▶ Release ──▶ result to A
//! ```
//!
//! A bounce anywhere after us comes back as the settlement of our leg; our `Release`
//! hands its reason and the chain that bounced it on, and gives A's account back
//! everything it paid (the fee included). Every state is in the ledger, so a held
//! transfer is never lost across restarts, and each step applies once.

use super::{peer_record, InboundRecord, ProvenTransfer};
use crate::{
    address::QualifiedAddress,
    env::BlockEnv,
    error::TxError,
    ledger::{self, keys, InFlight},
    params::MAX_PATH,
    state::Overlay,
    tx::{BounceReason, Hop, Leg, Outcome, TransferResult, MAX_BATCH_ITEMS},
    votes::update_account,
};
use distpos_proofs::{codec::dec_u128, ChainId, Hash32};
use serde::{Deserialize, Serialize};

/// A transfer from a peer, admitted here for another chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The final recipient.
    pub to: QualifiedAddress,
    /// The first sender, qualified with its chain.
    pub origin: QualifiedAddress,
    /// What the source's correspondent account paid for it.
    #[serde(with = "dec_u128")]
    pub amount: u128,
    /// Its deadline here (0 = none).
    pub deliver_by: u64,
    /// The chains it has left, the first sender's first, the source's last.
    pub path: Vec<ChainId>,
    /// Height of our block that admitted it.
    pub height: u64,
    /// Where it stands.
    pub state: HeldState,
}

/// Where a held transfer stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldState {
    /// Admitted; our producer has not chosen its next hop yet.
    AwaitingHop,
    /// Our leg (`leg`, our `Forward` transaction) is in flight to `next`.
    Forwarded {
        /// Our `Forward` transaction: the leg's id.
        leg: Hash32,
        /// The next hop.
        next: ChainId,
        /// The transit fee kept back (ours once the leg is delivered).
        #[serde(with = "dec_u128")]
        fee: u128,
    },
    /// Delayed by our policy for the peer (DESIGN §13) until block time `until`:
    /// then released (delivered here) or forwarded. Governance may cancel it.
    Delayed {
        /// When it may go on.
        until: u64,
    },
    /// The leg settled (or a delay was cancelled); a `Release` reports it.
    Settled {
        /// `None`: delivered. Else why, and the chain that bounced it.
        bounced: Option<(BounceReason, ChainId)>,
        /// The transit fee kept back.
        #[serde(with = "dec_u128")]
        fee: u128,
    },
}

impl Held {
    /// Waiting for a `Forward` at block time `now_ms` on chain `ours`: admitted for
    /// another chain, and not (or no longer) delayed.
    pub fn awaits_hop(&self, ours: ChainId, now_ms: u64) -> bool {
        match self.state {
            HeldState::AwaitingHop => true,
            HeldState::Delayed { until } => self.to.chain != ours && until <= now_ms,
            _ => false,
        }
    }

    /// What a `Release` at block time `now_ms` on chain `ours` would report: `None`
    /// if it is not releasable; `Some(None)` delivered; `Some(Some(..))` bounced.
    pub fn releasable(
        &self,
        ours: ChainId,
        now_ms: u64,
    ) -> Option<Option<(BounceReason, ChainId)>> {
        match self.state {
            HeldState::Settled { bounced, .. } => Some(bounced),
            // Its deadline passed while our policy delayed it: it goes back instead.
            HeldState::Delayed { until } if self.to.chain == ours && until <= now_ms => {
                if self.deliver_by != 0 && now_ms > self.deliver_by {
                    Some(Some((BounceReason::Expired, ours)))
                } else {
                    Some(None)
                }
            }
            _ => None,
        }
    }

    /// The tokens the hold itself stands for (the supply audit counts them): all of
    /// the amount until a leg carries it on, then the fee kept back, and all of it
    /// again once the leg came back bounced.
    pub fn holding(&self) -> u128 {
        match &self.state {
            HeldState::AwaitingHop | HeldState::Delayed { .. } => self.amount,
            HeldState::Forwarded { fee, .. } => *fee,
            HeldState::Settled { bounced: None, fee } => *fee,
            HeldState::Settled {
                bounced: Some(_), ..
            } => self.amount,
        }
    }
}

/// The `(peer, tx)` of a held record's key.
pub fn held_key(k: &[u8]) -> Option<(ChainId, Hash32)> {
    let rest = k.strip_prefix(keys::HELD)?;
    let tx: [u8; 32] = rest.get(4..36)?.try_into().ok()?;
    Some((keys::chain_of(rest)?, Hash32(tx)))
}

/// The held transfer `tx` from `peer`, if any.
pub fn held(
    kv: &impl ledger::KvRead,
    peer: ChainId,
    tx: &Hash32,
) -> Result<Option<Held>, crate::error::StateError> {
    ledger::read(kv, &keys::held(peer, tx))
}

/// Why an inbound transfer for `t.to.chain` (not us) cannot be forwarded here, if it
/// cannot: forwarding off, a loop, the hop limit, or an amount the fee eats.
pub(crate) fn refusal(env: &BlockEnv, t: &ProvenTransfer, total: u128) -> Option<BounceReason> {
    let p = &env.params;
    if !p.forwarding {
        Some(BounceReason::NoForwarding)
    } else if t.path.contains(&env.chain_id) || t.path.contains(&t.to.chain) {
        Some(BounceReason::Loop)
    } else if t.path.len() >= p.max_hops as usize || t.path.len() >= MAX_PATH {
        Some(BounceReason::HopLimit)
    } else if total <= p.transit_fee {
        Some(BounceReason::BelowTransitFee)
    } else {
        None
    }
}

/// Holds an admitted transfer for forwarding, or until `until` when the policy
/// delays it (the caller debited the correspondent account by `total`).
pub(crate) fn hold(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    t: &ProvenTransfer,
    total: u128,
    until: Option<u64>,
) {
    let h = Held {
        to: t.to,
        origin: t.origin,
        amount: total,
        deliver_by: t.deliver_by,
        path: t.path.clone(),
        height: env.height,
        state: match until {
            Some(until) => HeldState::Delayed { until },
            None => HeldState::AwaitingHop,
        },
    };
    ledger::write(o, keys::held(peer, &t.tx), &h);
}

/// The leg a `Forward` to `next` of `h` must carry, under the parameters in force.
pub fn leg_for(env: &BlockEnv, h: &Held, next: ChainId) -> Result<Leg, TxError> {
    leg_with(env.chain_id, &env.params, h, next)
}

/// [`leg_for`] on chain `ours` under `params` (what a producer asks before its block).
pub fn leg_with(
    ours: ChainId,
    params: &crate::params::ChainParams,
    h: &Held,
    next: ChainId,
) -> Result<Leg, TxError> {
    let amount = h
        .amount
        .checked_sub(params.transit_fee)
        .filter(|a| *a > 0)
        .ok_or(TxError::Invalid(
            "the held transfer does not cover the transit fee: bounce it".into(),
        ))?;
    let deliver_by = match h.deliver_by {
        0 => 0,
        d => d.saturating_sub(params.forward_margin_ms).max(1),
    };
    let mut path = h.path.clone();
    path.push(ours);
    Ok(Leg {
        next,
        to: h.to,
        amount,
        deliver_by,
        path,
        origin: h.origin,
    })
}

/// Whether a leg of `h` forwarded at block time `now_ms` would be too late: its
/// deadline (shortened by the margin) leaves no time to arrive by the block after
/// next. Then the producer bounces it (`expired`), and only then may it.
pub fn leg_too_late(params: &crate::params::ChainParams, h: &Held, now_ms: u64) -> bool {
    let leg_deadline = h.deliver_by.saturating_sub(params.forward_margin_ms).max(1);
    h.deliver_by != 0
        && leg_deadline <= now_ms.saturating_add(params.block_interval_ms.saturating_mul(2))
}

/// Reasons a producer may give for sending a held transfer back (what routes say
/// is its own word; `expired` the ledger checks, [`leg_too_late`]).
fn producer_may_bounce(r: BounceReason) -> bool {
    matches!(
        r,
        BounceReason::NoRoute | BounceReason::Loop | BounceReason::HopLimit | BounceReason::Expired
    )
}

/// `Forward`: sends a held transfer on as our leg `our_tx`, or back.
pub(crate) fn forward(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    our_tx: &Hash32,
    source: ChainId,
    source_tx: &Hash32,
    hop: &Hop,
) -> Result<(Outcome, u128), TxError> {
    let mut h = held(o, source, source_tx)?
        .filter(|h| h.awaits_hop(env.chain_id, env.time_ms))
        .ok_or_else(|| {
            TxError::Invalid(format!(
                "no transfer {source_tx} from chain {source} awaits its next hop"
            ))
        })?;
    match hop {
        Hop::Bounce(reason) => {
            if !producer_may_bounce(*reason) {
                return Err(TxError::Invalid(format!(
                    "a forward may not bounce with {reason}"
                )));
            }
            if *reason == BounceReason::Expired && !leg_too_late(&env.params, &h, env.time_ms) {
                return Err(TxError::Invalid(format!(
                    "transfer {source_tx} from chain {source} still has time to go on: it may not bounce expired"
                )));
            }
            let mut record = peer_record(o, source)?;
            record.corr = crate::bodies::add_signed(record.corr, h.amount)?;
            record.count_bounce(*reason);
            ledger::write(o, keys::peer(source), &record);
            o.delete(keys::held(source, source_tx));
            let result = TransferResult {
                source_tx: *source_tx,
                amount: h.amount,
                bounced: Some(*reason),
                fast: false,
                bounced_by: None,
            };
            finish_record(o, source, source_tx, &result)?;
            Ok((
                Outcome::InboundBatch {
                    source,
                    results: vec![result],
                },
                h.amount,
            ))
        }
        Hop::Onward(leg) => {
            let next = leg.next;
            if next == env.chain_id {
                return Err(TxError::Invalid(
                    "a leg cannot go to this chain itself".into(),
                ));
            }
            if h.path.contains(&next) {
                return Err(TxError::Invalid(format!(
                    "chain {next} is on the transfer's path already: bounce it (loop)"
                )));
            }
            if h.path.len() >= env.params.max_hops as usize {
                return Err(TxError::Invalid(
                    "the transfer has travelled max_hops already: bounce it".into(),
                ));
            }
            let expected = leg_for(env, &h, next)?;
            if **leg != expected {
                return Err(TxError::Invalid(format!(
                    "the leg differs from the held transfer's: expected {expected:?}"
                )));
            }
            if expected.deliver_by != 0 && expected.deliver_by <= env.time_ms {
                return Err(TxError::Invalid(
                    "the leg's deadline has passed: bounce it (expired)".into(),
                ));
            }
            let mut peer = ledger::peer(o, next)?.ok_or(TxError::UnknownPeer(next))?;
            if peer.suspended {
                return Err(TxError::PeerSuspended(next));
            }
            let entry = InFlight {
                destination: next,
                sender: crate::address::Address::ZERO,
                recipient: leg.to.address,
                amount: leg.amount,
                deliver_by: leg.deliver_by,
                height: env.height,
                forwarding: Some((source, *source_tx)),
            };
            ledger::write(o, keys::in_flight(our_tx), &entry);
            peer.sent_out += 1;
            peer.volume_out = peer.volume_out.saturating_add(leg.amount);
            ledger::write(o, keys::peer(next), &peer);
            h.state = HeldState::Forwarded {
                leg: *our_tx,
                next,
                fee: h.amount - leg.amount,
            };
            ledger::write(o, keys::held(source, source_tx), &h);
            Ok((Outcome::InFlight { destination: next }, leg.amount))
        }
    }
}

/// Our leg `leg` carrying `(source, source_tx)` settled (the caller removed it from
/// the in-flight set and credited the next hop's account if it was delivered).
pub(crate) fn leg_settled(
    o: &mut Overlay<'_>,
    source: ChainId,
    source_tx: &Hash32,
    leg: &Hash32,
    bounced: Option<(BounceReason, ChainId)>,
) -> Result<(), TxError> {
    let mut h = held(o, source, source_tx)?.ok_or(TxError::NotInFlight(*leg))?;
    let HeldState::Forwarded { leg: ours, fee, .. } = h.state else {
        return Err(TxError::NotInFlight(*leg));
    };
    if ours != *leg {
        return Err(TxError::NotInFlight(*leg));
    }
    h.state = HeldState::Settled { bounced, fee };
    ledger::write(o, keys::held(source, source_tx), &h);
    Ok(())
}

/// `Release`: reports the settled held transfers `txs` from `source` back to it, pays
/// our transit fees on the delivered ones and gives `corr[source]` back what the
/// bounced ones cost it.
pub(crate) fn release(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    source: ChainId,
    txs: &[Hash32],
) -> Result<(Outcome, u128), TxError> {
    if txs.is_empty() || txs.len() > MAX_BATCH_ITEMS {
        return Err(TxError::Invalid(format!(
            "a release carries 1..={MAX_BATCH_ITEMS} transfers, this one {}",
            txs.len()
        )));
    }
    let mut record = peer_record(o, source)?;
    let mut results = Vec::with_capacity(txs.len());
    let mut moved: u128 = 0;
    for tx in txs {
        // Deleted as it is released: a transfer named twice is not found the second
        // time, and the release is invalid.
        let h = held(o, source, tx)?.ok_or_else(|| {
            TxError::Invalid(format!("no transfer {tx} from chain {source} is held"))
        })?;
        let Some(bounced) = h.releasable(env.chain_id, env.time_ms) else {
            return Err(TxError::Invalid(format!(
                "transfer {tx} from chain {source} has not settled onward, nor waited out its delay"
            )));
        };
        let fee = match h.state {
            HeldState::Settled { fee, .. } => fee,
            _ => 0,
        };
        o.delete(keys::held(source, tx));
        match bounced {
            None => {
                record.delivered_in += 1;
                record.volume_in = record.volume_in.saturating_add(h.amount);
                if matches!(h.state, HeldState::Delayed { .. }) {
                    // Delayed here, for here: the recipient is credited now.
                    update_account(o, &h.to.address, |a| {
                        a.balance = a.balance.checked_add(h.amount).ok_or(TxError::Overflow)?;
                        Ok(())
                    })?;
                }
                if fee > 0 {
                    update_account(o, &env.params.transit_fee_to, |a| {
                        a.balance = a.balance.checked_add(fee).ok_or(TxError::Overflow)?;
                        Ok(())
                    })?;
                }
            }
            Some((reason, by)) => {
                record.corr = crate::bodies::add_signed(record.corr, h.amount)?;
                if by == env.chain_id && !matches!(h.state, HeldState::Delayed { .. }) {
                    record.count_bounce(reason);
                } else {
                    // Bounced further on, or expired while our policy delayed it: not
                    // a fact about the source.
                    record.bounced_in += 1;
                }
            }
        }
        let result = TransferResult {
            source_tx: *tx,
            amount: h.amount,
            bounced: bounced.map(|b| b.0),
            fast: false,
            bounced_by: bounced.map(|b| b.1),
        };
        finish_record(o, source, tx, &result)?;
        results.push(result);
        moved = moved.checked_add(h.amount).ok_or(TxError::Overflow)?;
    }
    ledger::write(o, keys::peer(source), &record);
    Ok((Outcome::InboundBatch { source, results }, moved))
}

/// `RemovePeer` is refused while transfers from the peer are held here.
pub(crate) fn check_removable(o: &Overlay<'_>, peer: ChainId) -> Result<(), TxError> {
    let from = keys::held(peer, &Hash32::ZERO);
    let to = keys::held(peer, &Hash32([0xff; 32]));
    if !o.range(&from, &to, 1).is_empty() || o.get(&to).is_some() {
        return Err(TxError::Governance(format!(
            "transfers from chain {peer} are held here (forwarded or delayed); remove it once they are released"
        )));
    }
    Ok(())
}

/// Governance cancels a transfer our policy delays: it will be released as bounced
/// (`cancelled`), and the source refunds it.
pub(crate) fn cancel_delayed(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    source: ChainId,
    tx: &Hash32,
) -> Result<(), TxError> {
    let mut h = held(o, source, tx)?
        .filter(|h| matches!(h.state, HeldState::Delayed { .. }))
        .ok_or_else(|| {
            TxError::Governance(format!("no transfer {tx} from chain {source} is delayed"))
        })?;
    h.state = HeldState::Settled {
        bounced: Some((BounceReason::Cancelled, env.chain_id)),
        fee: 0,
    };
    ledger::write(o, keys::held(source, tx), &h);
    Ok(())
}

/// Rewrites the consumed record of a held transfer with how it ended.
fn finish_record(
    o: &mut Overlay<'_>,
    source: ChainId,
    tx: &Hash32,
    result: &TransferResult,
) -> Result<(), TxError> {
    let key = keys::consumed(source, tx);
    let mut r: InboundRecord = ledger::read(o, &key)?.ok_or(TxError::NotInFlight(*tx))?;
    r.outcome = match result.bounced {
        None => Outcome::Delivered {
            source,
            source_tx: *tx,
        },
        Some(reason) => Outcome::Bounced {
            source,
            source_tx: *tx,
            reason,
        },
    };
    ledger::write(o, key, &r);
    Ok(())
}
