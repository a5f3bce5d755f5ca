//! The ledger side of cross-chain transfers (DESIGN §5, §6, §6.1): advancing our light
//! client of a peer (`PeerHeaders`, and the header runs batches carry), delivering a
//! proven inbound transfer against the peer's correspondent account, and settling our
//! outbound transfers with the destination's proven receipt. The batch bodies that do
//! it (`InboundBatch`, `SettleBatch`) are in [`batch`]; the per-transfer bodies of
//! interchain v1 are retired.
//!
//! Everything here is deterministic: the "now" of the light client is the block time,
//! and a proof is checked only against a peer header that our light client already
//! holds as irreversible. An inbound transfer is consumed exactly once, and an
//! outbound transfer is settled exactly once.

use crate::{
    address::{Address, QualifiedAddress},
    env::BlockEnv,
    error::{ProofError, TxError},
    ledger::{self, keys, PeerChain},
    state::Overlay,
    tx::{Body, BounceReason, Outcome, Transaction},
    votes::update_account,
};
use distpos_proofs::{
    consensus::check_double_sign,
    light_client::{admissible, Finalized, NotYet, Position},
    ChainId, Hash32, SignedHeader,
};

pub mod batch;
pub mod fast;
pub mod forward;
pub mod policy;

/// Irreversible peer header summaries kept per peer; proofs of older blocks are refused.
pub const PEER_HEADER_WINDOW: u64 = 100_000;

pub(crate) fn peer_record(o: &Overlay<'_>, peer: ChainId) -> Result<PeerChain, TxError> {
    ledger::peer(o, peer)?.ok_or(TxError::UnknownPeer(peer))
}

/// `PeerHeaders`: verifies and follows the peer's headers; stores what became final.
pub(crate) fn peer_headers(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    headers: &[SignedHeader],
) -> Result<(Outcome, u128), TxError> {
    let mut record = peer_record(o, peer)?;
    let advance = record
        .light_client
        .submit(headers, env.time_ms)
        .into_result()
        .map_err(|r| TxError::PeerHeaders(Box::new(r)))?;
    // Two headers of one producer for one slot, both verified by the light client:
    // recorded once. (A pair signed under a schedule our light client no longer
    // knows is left out; it changes nothing else.)
    for (a, b) in &advance.evidence {
        let _ = record_equivocation(o, peer, &mut record, a, b);
    }
    for f in &advance.finalized {
        ledger::write(o, keys::peer_header(peer, f.height), f);
        if let Some(old) = f.height.checked_sub(PEER_HEADER_WINDOW) {
            o.delete(keys::peer_header(peer, old));
        }
    }
    ledger::write(o, keys::peer(peer), &record);
    Ok((Outcome::Applied, advance.finalized.len() as u128))
}

/// `PeerEvidence`: two headers of `peer` signed by one of its producers for one slot.
/// Each producer and slot counts once; evidence counted already is refused.
pub(crate) fn peer_evidence(
    o: &mut Overlay<'_>,
    peer: ChainId,
    a: &SignedHeader,
    b: &SignedHeader,
) -> Result<(Outcome, u128), TxError> {
    let mut record = peer_record(o, peer)?;
    match record_equivocation(o, peer, &mut record, a, b)? {
        Some(slot) => return Err(TxError::EvidenceApplied(slot)),
        None => ledger::write(o, keys::peer(peer), &record),
    }
    Ok((Outcome::Applied, 0))
}

/// Checks that `a` and `b` are two different headers of `peer` signed for one slot by
/// a producer of a schedule our light client knows (its checkpoint's or its head's,
/// in force or pending), and counts it in `record` (the caller writes it back)
/// unless counted already, which returns `Some(slot)`.
fn record_equivocation(
    o: &mut Overlay<'_>,
    peer: ChainId,
    record: &mut PeerChain,
    a: &SignedHeader,
    b: &SignedHeader,
) -> Result<Option<u64>, TxError> {
    let lc = &record.light_client;
    let ds = check_double_sign(a, b, &lc.rules)?;
    let known = [&lc.base, lc.head_state()].into_iter().any(|c| {
        c.active.producers.contains(&ds.producer)
            || c.pending
                .as_ref()
                .is_some_and(|p| p.schedule.producers.contains(&ds.producer))
    });
    if !known {
        return Err(TxError::UnknownProducerKey(ds.producer.to_string()));
    }
    let key = keys::peer_evidence(peer, &ds.producer, ds.slot);
    if o.get(&key).is_some() {
        return Ok(Some(ds.slot));
    }
    o.put(key, Vec::new());
    record.equivocations = record.equivocations.saturating_add(1);
    Ok(None)
}

/// The irreversible header of `peer` at `height`, or why a proof against it cannot be
/// checked.
pub(crate) fn finalized_header(
    o: &impl ledger::KvRead,
    record: &PeerChain,
    peer: ChainId,
    height: u64,
) -> Result<Finalized, TxError> {
    let lc = &record.light_client;
    let at = Position {
        head: lc.head(),
        lib: lc.lib(),
        oldest_kept: lc.lib().saturating_sub(PEER_HEADER_WINDOW - 1).max(1),
    };
    Ok(admissible(ledger::peer_header(o, peer, height)?, height, at).into_result()?)
}

/// The parts of a cross-chain transfer (or of a forwarded leg) that matter to the
/// chain it comes to.
pub struct ProvenTransfer {
    /// Source transaction hash.
    pub tx: Hash32,
    /// The first sender, qualified with its chain (the return path).
    pub origin: QualifiedAddress,
    /// The final recipient: here, or beyond (forwarding, DESIGN §12).
    pub to: QualifiedAddress,
    /// The chains it has left, the first sender's first, the source's last.
    pub path: Vec<ChainId>,
    /// Amount.
    pub amount: u128,
    /// Delivery deadline (0 = none).
    pub deliver_by: u64,
    /// What the sender paid for the fast path, on top of `amount`.
    pub fast_fee: u128,
    /// A leg the source's producers finalised although it breaks the rules of a
    /// leg (its path does not start at its origin's chain or end with the source):
    /// it bounces (`malformed`), a proof refused in the source's reputation.
    pub malformed: bool,
}

impl ProvenTransfer {
    /// Amount + fast fee: what the source holds in flight, and what delivering the
    /// transfer moves out of the correspondent account.
    pub fn total(&self) -> Result<u128, TxError> {
        self.amount
            .checked_add(self.fast_fee)
            .ok_or(TxError::Overflow)
    }
}

/// Checks that `source_tx` is a transfer signed for `peer` whose next hop is `ours`
/// (addressed to us, or to a chain beyond that it names us `via`), or a leg `peer`
/// forwards to us.
pub fn proven_transfer(
    source_tx: &Transaction,
    peer: ChainId,
    ours: ChainId,
) -> Result<ProvenTransfer, TxError> {
    if source_tx.chain_id != peer {
        return Err(ProofError::WrongSourceChain {
            expected: peer,
            got: source_tx.chain_id,
        }
        .into());
    }
    // No signature check: the transaction is accepted only with a proof that it is
    // in an irreversible block of the peer, whose producers validated it; its hash
    // (what the proof commits to) covers every field.
    let proven = match &source_tx.body {
        Body::Transfer {
            to,
            amount,
            deliver_by,
            fast_fee,
            via,
            ..
        } => {
            let next = via.unwrap_or(to.chain);
            if next != ours {
                return Err(ProofError::WrongDestination { ours, got: next }.into());
            }
            // The sender is derived from the signing key, as the peer did.
            let sender =
                Address::from_public_key(&source_tx.pubkey).map_err(ProofError::SourceKey)?;
            ProvenTransfer {
                tx: source_tx.hash(),
                origin: return_path(peer, sender),
                to: *to,
                path: vec![peer],
                amount: *amount,
                deliver_by: *deliver_by,
                fast_fee: *fast_fee,
                malformed: false,
            }
        }
        Body::Forward {
            hop: crate::tx::Hop::Onward(leg),
            ..
        } => {
            if leg.next != ours {
                return Err(ProofError::WrongDestination {
                    ours,
                    got: leg.next,
                }
                .into());
            }
            // The forwarding chain's ledger checked the leg against what it held: its
            // path starts at the origin's chain and ends with the forwarding chain.
            // Proven in an irreversible block, a leg that does not is the source's
            // fault, and goes back to it.
            let malformed =
                leg.path.last() != Some(&peer) || leg.path.first() != Some(&leg.origin.chain);
            ProvenTransfer {
                tx: source_tx.hash(),
                origin: leg.origin,
                to: leg.to,
                path: leg.path.clone(),
                amount: leg.amount,
                deliver_by: leg.deliver_by,
                fast_fee: 0,
                malformed,
            }
        }
        _ => return Err(ProofError::NotATransfer.into()),
    };
    Ok(proven)
}

/// Delivers (or bounces, or holds for forwarding) one proven, unconsumed inbound
/// transfer against `record` (the caller writes it back) and marks it consumed by
/// `our_tx`.
pub(crate) fn deliver(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    our_tx: &Hash32,
    peer: ChainId,
    record: &mut PeerChain,
    t: &ProvenTransfer,
) -> Result<Outcome, TxError> {
    // A fast fee not earned on the fast path is delivered with the amount.
    let total = t.total()?;
    let onward = t.to.chain != env.chain_id;
    let bounce = if t.malformed {
        Some(BounceReason::Malformed)
    } else if t.deliver_by != 0 && env.time_ms > t.deliver_by {
        Some(BounceReason::Expired)
    } else if record.suspended {
        Some(BounceReason::PeerSuspended)
    } else if t.to.address == Address::ZERO {
        Some(BounceReason::BadRecipient)
    } else if let Some(r) = onward.then(|| forward::refusal(env, t, total)).flatten() {
        Some(r)
    } else if i128::try_from(total).map_or(true, |a| available(record) < a) {
        Some(BounceReason::InsufficientCollateral)
    } else {
        None
    };
    // The receiving chain's own choice (DESIGN §13): its policy for this peer, on
    // what would otherwise be admitted.
    let verdict = match bounce {
        Some(_) => policy::Verdict::Admit,
        None => policy::admit(o, env, peer, record, total)?,
    };
    let bounce = match verdict {
        policy::Verdict::Refuse(r) => Some(r),
        _ => bounce,
    };
    let outcome = match bounce {
        Some(reason) => {
            record.count_bounce(reason);
            Outcome::Bounced {
                source: peer,
                source_tx: t.tx,
                reason,
            }
        }
        None if onward || matches!(verdict, policy::Verdict::Delay { .. }) => {
            // Paid for by the source's account now; the result goes back once the
            // onward leg has settled, or the delay is over (`forward::release`).
            record.corr = crate::bodies::sub_signed(record.corr, total)?;
            let until = match verdict {
                policy::Verdict::Delay { until } => Some(until),
                _ => None,
            };
            forward::hold(o, env, peer, t, total, until);
            Outcome::Held {
                source: peer,
                source_tx: t.tx,
            }
        }
        None => {
            record.corr = crate::bodies::sub_signed(record.corr, total)?;
            record.delivered_in += 1;
            record.volume_in = record.volume_in.saturating_add(total);
            update_account(o, &t.to.address, |a| {
                a.balance = a.balance.checked_add(total).ok_or(TxError::Overflow)?;
                Ok(())
            })?;
            Outcome::Delivered {
                source: peer,
                source_tx: t.tx,
            }
        }
    };
    let inbound = InboundRecord {
        tx: *our_tx,
        sender: t.origin,
        recipient: t.to.address,
        amount: total,
        height: env.height,
        outcome: outcome.clone(),
    };
    ledger::write(o, keys::consumed(peer, &t.tx), &inbound);
    Ok(outcome)
}

/// The ledger's answer to "may this inbound transfer (or receipt) be admitted now":
/// the light client's three-way verdict carried up to the chain, with the chain's own
/// reasons for "never". The node acts on it without looking at any message: admit,
/// keep and retry once the light client moved, or refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Proven against an irreversible header: may be admitted.
    Admissible(T),
    /// Not decidable yet (the peer's block is not irreversible here, or not seen).
    NotYet(NotYet),
    /// Never admissible.
    Refused(TxError),
}

impl<T> From<Result<T, TxError>> for Admission<T> {
    fn from(r: Result<T, TxError>) -> Self {
        match r {
            Ok(t) => Admission::Admissible(t),
            Err(TxError::NotYetProvable(n)) => Admission::NotYet(n),
            Err(e) => Admission::Refused(e),
        }
    }
}

/// What the destination remembers of a consumed inbound transfer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InboundRecord {
    /// Our `InboundBatch` transaction that consumed it.
    pub tx: Hash32,
    /// The first sender, qualified with its chain (the return path; for a forwarded
    /// transfer, the chain it started on).
    pub sender: QualifiedAddress,
    /// The recipient here (or, for a transfer held for forwarding, on its final
    /// chain).
    pub recipient: Address,
    /// Amount.
    #[serde(with = "distpos_proofs::codec::dec_u128")]
    pub amount: u128,
    /// Height of our block that consumed it.
    pub height: u64,
    /// Delivered or bounced.
    pub outcome: Outcome,
}

/// The record of a consumed inbound transfer, if any.
pub fn inbound_record(
    kv: &impl ledger::KvRead,
    peer: ChainId,
    tx: &Hash32,
) -> Result<Option<InboundRecord>, crate::error::StateError> {
    ledger::read(kv, &keys::consumed(peer, tx))
}

/// What the peer's correspondent account can still cover: `corr + credit_limit`
/// (reservations of pending deliveries are the mempool's, which re-checks with them).
pub fn available(record: &PeerChain) -> i128 {
    let credit = i128::try_from(record.registration.credit_limit).unwrap_or(i128::MAX);
    record.corr.saturating_add(credit)
}

/// Settles one of our in-flight transfers to `peer` that its receipt says was
/// delivered (`bounced` is `None`: credit the peer's account with us) or bounced
/// (refund the sender, and remember why and which chain did it), against `record`
/// (the caller writes it back). A leg we forwarded has no sender here: its held
/// transfer learns the result instead. Applies once.
pub(crate) fn settle_one(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    record: &mut PeerChain,
    tx: Hash32,
    amount: u128,
    bounced: Option<(BounceReason, ChainId)>,
) -> Result<Outcome, TxError> {
    let entry = ledger::in_flight(o, &tx)?.ok_or(TxError::NotInFlight(tx))?;
    if entry.destination != peer {
        return Err(ProofError::WrongPeer {
            tx,
            went: entry.destination,
            peer,
        }
        .into());
    }
    if amount != entry.amount {
        return Err(ProofError::AmountMismatch {
            expected: entry.amount,
            got: amount,
        }
        .into());
    }
    o.delete(keys::in_flight(&tx));
    ledger::write(
        o,
        keys::settled(&tx),
        &SettledRecord {
            destination: peer,
            bounced: bounced.map(|b| b.0),
            bounced_by: bounced.map(|b| b.1),
            height: env.height,
            amount: entry.amount,
        },
    );
    if let Some((source, source_tx)) = entry.forwarding {
        forward::leg_settled(o, source, &source_tx, &tx, bounced)?;
    }
    if bounced.is_none() {
        record.corr = crate::bodies::add_signed(record.corr, entry.amount)?;
        record.acked_out += 1;
        Ok(Outcome::Acknowledged { tx })
    } else if entry.forwarding.is_some() {
        record.refunded_out += 1;
        Ok(Outcome::Refunded { tx })
    } else {
        update_account(o, &entry.sender, |a| {
            a.balance = a
                .balance
                .checked_add(entry.amount)
                .ok_or(TxError::Overflow)?;
            Ok(())
        })?;
        record.refunded_out += 1;
        Ok(Outcome::Refunded { tx })
    }
}

/// The sender of a proven inbound transfer as recorded here: the source chain's id in
/// place of `0x` (DESIGN §2, the SMTP return path).
pub fn return_path(peer: ChainId, sender: Address) -> QualifiedAddress {
    QualifiedAddress::new(peer, sender)
}

/// How one of our outbound transfers ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SettledRecord {
    /// Its destination.
    pub destination: ChainId,
    /// `None` when delivered (acknowledged); why the destination bounced it (and we
    /// refunded it) otherwise, as the destination's receipt said.
    pub bounced: Option<BounceReason>,
    /// The chain that bounced it: the destination, or a chain beyond it that it
    /// forwarded the transfer to (DESIGN §12).
    #[serde(default)]
    pub bounced_by: Option<ChainId>,
    /// Height of our block that settled it.
    pub height: u64,
    /// Amount.
    #[serde(with = "distpos_proofs::codec::dec_u128")]
    pub amount: u128,
}

impl SettledRecord {
    /// Delivered and acknowledged (not bounced and refunded).
    pub fn delivered(&self) -> bool {
        self.bounced.is_none()
    }
}

/// How an outbound transfer settled, if it has.
pub fn settled_record(
    kv: &impl ledger::KvRead,
    tx: &Hash32,
) -> Result<Option<SettledRecord>, crate::error::StateError> {
    ledger::read(kv, &keys::settled(tx))
}

/// How a correspondent account stands (DESIGN §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrespondentStatus {
    /// Enough available collateral.
    Ok,
    /// Available below the low watermark: ask the peer for more reserves.
    Low,
    /// Nothing available: further inbound transfers bounce.
    Exhausted,
    /// Suspended by governance: everything from the peer bounces.
    Suspended,
}

/// `corr − reserved + credit_limit`, and what that means.
pub fn correspondent_status(record: &PeerChain, reserved: u128) -> (i128, CorrespondentStatus) {
    let reserved = i128::try_from(reserved).unwrap_or(i128::MAX);
    let available = available(record).saturating_sub(reserved);
    let low = i128::try_from(record.registration.low_watermark).unwrap_or(i128::MAX);
    let status = if record.suspended {
        CorrespondentStatus::Suspended
    } else if available <= 0 {
        CorrespondentStatus::Exhausted
    } else if available < low {
        CorrespondentStatus::Low
    } else {
        CorrespondentStatus::Ok
    };
    (available, status)
}
