//! The underwritten fast path on the destination (DESIGN §11): underwriters' bonds,
//! a transfer delivered on their endorsements before its block is irreversible at the
//! source (`InboundFast`), the shares unlocked when the ordinary proof arrives, and
//! slashed into the source's correspondent account when the endorsed block was
//! orphaned and the transfer can no longer be included (`SlashFast`), handed back
//! should the ordinary proof still arrive.
//!
//! Every token stays in one place: a bond is tokens of its owner held here (counted
//! by the supply audit); locking a share moves nothing; a slash moves the shares from
//! the bonds into `corr[peer]`, which paid the recipient; a return moves them back.
//! A share is locked once (a fast record is written once per transfer, and the
//! transfer is consumed with it), and a transfer is credited once, whichever path
//! arrives first.

use super::{available, peer_record, proven_transfer, InboundRecord};
use crate::{
    address::Address,
    bodies::{add_signed, sub_signed},
    env::BlockEnv,
    error::{ProofError, TxError},
    ledger::{self, keys},
    state::Overlay,
    tx::{Outcome, Transaction, MAX_ENDORSEMENTS},
    votes::update_account,
};
use distpos_proofs::{
    codec::dec_u128,
    fast::{check_unfinal, EndorsedTransfer, Endorsement, UnfinalError},
    light_client::{verify_batch, Commitment, Finalized},
    multiproof::MultiProof,
    ChainId, Hash32, PublicKey, SignedHeader,
};
use serde::{Deserialize, Serialize};

/// Longest a fast transfer may stay valid at its source after its block: past its
/// expiration it can no longer be included there, which is what makes a slash
/// decidable. (A chain refuses transactions expiring more than an hour ahead anyway.)
pub const MAX_FAST_EXPIRY_MS: u64 = crate::tx::MAX_EXPIRATION_MS;

/// What governance lets the fast path carry from one peer. All zero (the default):
/// off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastPolicy {
    /// Largest fast transfer (amount + fast fee); 0 = the fast path is off.
    #[serde(with = "dec_u128")]
    pub max_amount: u128,
    /// Most value delivered fast and not yet proven (or slashed) at once.
    #[serde(with = "dec_u128")]
    pub max_outstanding: u128,
    /// Part of a fast transfer's fee paid to its underwriters (pro rata to their
    /// shares), in basis points; the rest goes to the recipient.
    pub fee_share_bps: u32,
}

impl FastPolicy {
    /// Checks the fields: a share is at most 10,000 bps.
    pub fn validate(&self) -> Result<(), TxError> {
        if self.fee_share_bps > 10_000 {
            return Err(TxError::Invalid(format!(
                "fee_share_bps is {}; at most 10000 (all of the fast fee)",
                self.fee_share_bps
            )));
        }
        Ok(())
    }
}

/// The fast path's book for one peer: its policy and running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastBook {
    /// Set by governance.
    pub policy: FastPolicy,
    /// Σ bonds for this peer (locked or not).
    #[serde(with = "dec_u128")]
    pub bonded: u128,
    /// Σ fast transfers delivered and neither proven nor slashed yet.
    #[serde(with = "dec_u128")]
    pub outstanding: u128,
    /// Fast transfers delivered.
    pub delivered: u64,
    /// Of those, proven by the ordinary path (shares unlocked).
    pub proven: u64,
    /// Of those, slashed.
    pub slashed: u64,
    /// Of the slashed, proven after all (shares returned).
    pub returned: u64,
}

/// An underwriter's bond for transfers from one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bond {
    /// Who posted it (and takes it back).
    pub owner: Address,
    /// Tokens bonded, locked ones included.
    #[serde(with = "dec_u128")]
    pub amount: u128,
    /// Of those, shares locked behind fast transfers not yet proven.
    #[serde(with = "dec_u128")]
    pub locked: u128,
}

impl Bond {
    /// What the bond can still stand behind.
    pub fn free(&self) -> u128 {
        self.amount.saturating_sub(self.locked)
    }
}

/// One underwriter's locked share of a fast transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastShare {
    /// Its bond's key.
    pub signing_key: PublicKey,
    /// Its bond's owner (paid its part of the fee; gets a slashed share back).
    pub owner: Address,
    /// The share.
    #[serde(with = "dec_u128")]
    pub share: u128,
}

/// Where a fast transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FastState {
    /// Delivered; shares locked until the ordinary proof (or a slash).
    Locked,
    /// The ordinary proof arrived; shares unlocked.
    Proven,
    /// The endorsed block was orphaned and the transfer expired: shares slashed.
    Slashed,
    /// Slashed, then proven after all: shares handed back.
    Returned,
}

impl FastState {
    /// Its name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FastState::Locked => "locked",
            FastState::Proven => "proven",
            FastState::Slashed => "slashed",
            FastState::Returned => "returned",
        }
    }
}

/// What the destination remembers of a fast transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastRecord {
    /// The endorsed block of the source.
    pub block_id: Hash32,
    /// Its height.
    pub height: u64,
    /// The transfer's expiration at the source.
    pub expiration: u64,
    /// Amount + fast fee: what `corr[peer]` paid out, and what the shares cover.
    #[serde(with = "dec_u128")]
    pub total: u128,
    /// Of the fast fee, what the underwriters were paid.
    #[serde(with = "dec_u128")]
    pub fee_paid: u128,
    /// The locked shares.
    pub shares: Vec<FastShare>,
    /// Where it stands.
    pub state: FastState,
    /// Our height that delivered it.
    pub delivered_at: u64,
    /// Our height of its last change of state.
    pub resolved_at: Option<u64>,
}

/// Why a fast delivery or a slash does not apply (the transfer then takes the
/// ordinary path; nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FastError {
    /// Governance has not enabled the fast path for this peer.
    #[error("the fast path is off for chain {0} (no set_fast_policy)")]
    Off(ChainId),
    /// The peer is suspended here.
    #[error("chain {0} is suspended")]
    Suspended(ChainId),
    /// The sender did not opt in.
    #[error("the transfer pays no fast fee")]
    NoFastFee,
    /// Above the policy's largest fast transfer.
    #[error("{total} is above the largest fast transfer from this peer ({max})")]
    TooLarge {
        /// Amount + fast fee.
        total: u128,
        /// The policy's limit.
        max: u128,
    },
    /// It would take the peer's outstanding fast value above the policy's limit.
    #[error("{outstanding} already outstanding + {total} is above the limit {max}")]
    OutstandingLimit {
        /// Outstanding now.
        outstanding: u128,
        /// This transfer.
        total: u128,
        /// The policy's limit.
        max: u128,
    },
    /// The block header does not check.
    #[error("header: {0}")]
    Header(#[from] UnfinalError),
    /// The transfer is past its `deliver_by`.
    #[error("past its deliver_by ({0})")]
    Expired(u64),
    /// The transfer stays valid at its source too long for a slash to be decidable.
    #[error("expiration {expiration} is more than {MAX_FAST_EXPIRY_MS} ms after its block ({block_time})")]
    ExpiresTooLate {
        /// The transfer's expiration.
        expiration: u64,
        /// The block's time.
        block_time: u64,
    },
    /// The recipient cannot be credited.
    #[error("the recipient is the zero address")]
    BadRecipient,
    /// For another chain (forwarding, DESIGN §12): never on the fast path.
    #[error("the transfer goes on to chain {0}: a forwarded transfer takes the ordinary path")]
    Onward(ChainId),
    /// Our admission policy for the peer does not admit it now (DESIGN §13).
    #[error(
        "the admission policy for chain {0} does not admit it now: it takes the ordinary path"
    )]
    Policy(ChainId),
    /// The correspondent account cannot cover it.
    #[error("collateral of chain {peer} covers {available}, not {total}")]
    Collateral {
        /// The peer.
        peer: ChainId,
        /// What it covers.
        available: i128,
        /// What it would pay.
        total: u128,
    },
    /// Too few or too many endorsements.
    #[error("{0} endorsements; 1..={MAX_ENDORSEMENTS} are allowed")]
    EndorsementCount(usize),
    /// One key endorsed twice.
    #[error("key {0} endorses twice")]
    DuplicateEndorser(PublicKey),
    /// An endorsement of nothing.
    #[error("key {0} endorses a zero share")]
    ZeroShare(PublicKey),
    /// An endorsement whose signature does not verify.
    #[error("endorsement by {0} does not verify")]
    BadEndorsement(PublicKey),
    /// An endorser with no bond for this peer.
    #[error("key {0} has no bond for chain {1}")]
    NoBond(PublicKey, ChainId),
    /// A share above the endorser's free bond.
    #[error("key {key} endorses {share}, its free bond is {free}")]
    ShareAboveBond {
        /// The endorser.
        key: PublicKey,
        /// Its share.
        share: u128,
        /// Its free bond.
        free: u128,
    },
    /// The shares do not add up to the transfer.
    #[error("shares add up to {shares}, the transfer (amount + fast fee) is {total}")]
    SharesMismatch {
        /// Σ shares.
        shares: u128,
        /// Amount + fast fee.
        total: u128,
    },
    /// No fast record, or not locked.
    #[error("transfer {0} is not a locked fast transfer")]
    NotLocked(Hash32),
    /// The endorsed block is not known to be orphaned yet.
    #[error("the endorsed block at height {0} is not irreversible here yet")]
    NotDecidedYet(u64),
    /// The endorsed block is irreversible: nothing to slash.
    #[error("the endorsed block at height {0} is irreversible: the ordinary proof will follow")]
    BlockFinal(u64),
    /// The transfer could still be included at its source.
    #[error("the transfer expires at {expiration}; the source's irreversible time is {lib_time}")]
    NotExpired {
        /// Its expiration.
        expiration: u64,
        /// The time of the source's last irreversible block here.
        lib_time: u64,
    },
    /// A bond owner is not the one who posted it.
    #[error("the bond of key {0} for chain {1} belongs to another account")]
    NotBondOwner(PublicKey, ChainId),
    /// Unbonding more than the unlocked part.
    #[error("bond has {free} free (of {amount}, {locked} locked); asked {asked}")]
    BondLocked {
        /// Free.
        free: u128,
        /// Total.
        amount: u128,
        /// Locked.
        locked: u128,
        /// Asked.
        asked: u128,
    },
    /// Bonds or fast transfers for the peer remain.
    #[error(
        "chain {peer} still has {bonded} bonded and {outstanding} outstanding on the fast path"
    )]
    StillBonded {
        /// The peer.
        peer: ChainId,
        /// Σ bonds.
        bonded: u128,
        /// Outstanding.
        outstanding: u128,
    },
}

impl From<FastError> for TxError {
    fn from(e: FastError) -> Self {
        TxError::Fast(Box::new(e))
    }
}

/// The fast path's book for `peer` (the default, off, if governance never set it).
pub fn book(kv: &impl ledger::KvRead, peer: ChainId) -> Result<FastBook, crate::StateError> {
    Ok(ledger::read(kv, &keys::fast_book(peer))?.unwrap_or_default())
}

/// The bond of `key` for `peer`, if any.
pub fn bond(
    kv: &impl ledger::KvRead,
    peer: ChainId,
    key: &PublicKey,
) -> Result<Option<Bond>, crate::StateError> {
    ledger::read(kv, &keys::bond(peer, key))
}

/// The fast record of transfer `tx` from `peer`, if it came the fast way.
pub fn record(
    kv: &impl ledger::KvRead,
    peer: ChainId,
    tx: &Hash32,
) -> Result<Option<FastRecord>, crate::StateError> {
    ledger::read(kv, &keys::fast(peer, tx))
}

/// Whether the ordinary proof of `tx` from `peer` is still to come: delivered on the
/// fast path, its shares locked (or slashed). A batch that carries it then resolves it
/// instead of replaying it.
pub fn awaits_proof(kv: &impl ledger::KvRead, peer: ChainId, tx: &Hash32) -> bool {
    matches!(
        record(kv, peer, tx),
        Ok(Some(FastRecord {
            state: FastState::Locked | FastState::Slashed,
            ..
        }))
    )
}

/// Consumed for good: delivered or bounced, and not awaiting the ordinary proof of a
/// fast delivery ([`awaits_proof`]). What a batch carrying it must not do again.
pub fn settled_in(kv: &impl ledger::KvRead, peer: ChainId, tx: &Hash32) -> bool {
    ledger::consumed(kv, peer, tx) && !awaits_proof(kv, peer, tx)
}

/// `SetFastPolicy` (governance).
pub(crate) fn set_policy(
    o: &mut Overlay<'_>,
    peer: ChainId,
    policy: &FastPolicy,
) -> Result<(), TxError> {
    policy.validate()?;
    peer_record(o, peer)?;
    let mut b = book(o, peer)?;
    b.policy = policy.clone();
    ledger::write(o, keys::fast_book(peer), &b);
    Ok(())
}

/// `RemovePeer` is refused while bonds or fast transfers for the peer remain.
pub(crate) fn check_removable(o: &Overlay<'_>, peer: ChainId) -> Result<(), TxError> {
    let b = book(o, peer)?;
    if b.bonded > 0 || b.outstanding > 0 {
        return Err(FastError::StillBonded {
            peer,
            bonded: b.bonded,
            outstanding: b.outstanding,
        }
        .into());
    }
    Ok(())
}

/// Forgets the book of a removed peer (its bonds are all zero: see
/// [`check_removable`]).
pub(crate) fn forget(o: &mut Overlay<'_>, peer: ChainId) {
    o.delete(keys::fast_book(peer));
}

/// `BondUnderwriter`: `owner` bonds `amount` behind what `key` endorses for `peer`.
pub(crate) fn bond_underwriter(
    o: &mut Overlay<'_>,
    owner: &Address,
    peer: ChainId,
    key: &PublicKey,
    amount: u128,
) -> Result<(Outcome, u128), TxError> {
    peer_record(o, peer)?;
    let mut b = bond(o, peer, key)?.unwrap_or(Bond {
        owner: *owner,
        amount: 0,
        locked: 0,
    });
    if &b.owner != owner {
        return Err(FastError::NotBondOwner(*key, peer).into());
    }
    update_account(o, owner, |a| {
        a.balance = a
            .balance
            .checked_sub(amount)
            .ok_or(TxError::InsufficientFunds {
                need: amount,
                have: a.balance,
            })?;
        Ok(())
    })?;
    b.amount = b.amount.checked_add(amount).ok_or(TxError::Overflow)?;
    let mut bk = book(o, peer)?;
    bk.bonded = bk.bonded.checked_add(amount).ok_or(TxError::Overflow)?;
    ledger::write(o, keys::bond(peer, key), &b);
    ledger::write(o, keys::fast_book(peer), &bk);
    Ok((Outcome::Applied, amount))
}

/// `UnbondUnderwriter`: the owner takes `amount` of the unlocked part back; it unbonds
/// like stake (`unbonding_blocks`).
pub(crate) fn unbond_underwriter(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    owner: &Address,
    peer: ChainId,
    key: &PublicKey,
    amount: u128,
) -> Result<(Outcome, u128), TxError> {
    let mut b = bond(o, peer, key)?.ok_or(FastError::NoBond(*key, peer))?;
    if &b.owner != owner {
        return Err(FastError::NotBondOwner(*key, peer).into());
    }
    if amount > b.free() {
        return Err(FastError::BondLocked {
            free: b.free(),
            amount: b.amount,
            locked: b.locked,
            asked: amount,
        }
        .into());
    }
    b.amount -= amount;
    let mut bk = book(o, peer)?;
    bk.bonded = bk.bonded.checked_sub(amount).ok_or(TxError::Overflow)?;
    ledger::write(o, keys::bond(peer, key), &b);
    ledger::write(o, keys::fast_book(peer), &bk);
    crate::bodies::start_unbonding(o, env, owner, amount)?;
    Ok((Outcome::Applied, amount))
}

/// What an `InboundFast` carries.
pub(crate) struct FastDelivery<'a> {
    /// The source chain.
    pub peer: ChainId,
    /// The source block.
    pub header: &'a SignedHeader,
    /// The transfer.
    pub transfer: &'a Transaction,
    /// Its position in the block.
    pub index: u32,
    /// Its inclusion proof.
    pub proof: &'a MultiProof,
    /// The shares.
    pub endorsements: &'a [Endorsement],
}

/// `InboundFast`: checks everything, then credits the recipient against `corr[peer]`,
/// pays the underwriters their part of the fast fee, locks their shares and consumes
/// the transfer. Any failed check makes the transaction invalid (the transfer then
/// takes the ordinary path, which delivers or bounces it).
pub(crate) fn inbound_fast(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    our_tx: &Hash32,
    f: &FastDelivery<'_>,
) -> Result<(Outcome, u128), TxError> {
    let mut record = peer_record(o, f.peer)?;
    if record.suspended {
        return Err(FastError::Suspended(f.peer).into());
    }
    let mut bk = book(o, f.peer)?;
    if bk.policy.max_amount == 0 {
        return Err(FastError::Off(f.peer).into());
    }
    // Cheap before costly: everything that needs no signature first (the transfer,
    // limits, collateral, bonds and shares), so that a made-up delivery costs lookups;
    // then the header's signature, the inclusion proof and the endorsements'.
    let t = proven_transfer(f.transfer, f.peer, env.chain_id)?;
    if t.fast_fee == 0 {
        return Err(FastError::NoFastFee.into());
    }
    if ledger::consumed(o, f.peer, &t.tx) {
        return Err(TxError::AlreadyConsumed(f.peer, t.tx));
    }
    if t.deliver_by != 0 && env.time_ms > t.deliver_by {
        return Err(FastError::Expired(t.deliver_by).into());
    }
    let block_time = f.header.header.timestamp_ms;
    if f.transfer.expiration > block_time.saturating_add(MAX_FAST_EXPIRY_MS) {
        return Err(FastError::ExpiresTooLate {
            expiration: f.transfer.expiration,
            block_time,
        }
        .into());
    }
    let total = t.total()?;
    if total > bk.policy.max_amount {
        return Err(FastError::TooLarge {
            total,
            max: bk.policy.max_amount,
        }
        .into());
    }
    let outstanding = bk.outstanding.checked_add(total).ok_or(TxError::Overflow)?;
    if outstanding > bk.policy.max_outstanding {
        return Err(FastError::OutstandingLimit {
            outstanding: bk.outstanding,
            total,
            max: bk.policy.max_outstanding,
        }
        .into());
    }
    // Only a transfer that ends here: a forwarded one never takes the fast path.
    if t.to.chain != env.chain_id {
        return Err(FastError::Onward(t.to.chain).into());
    }
    if t.to.address == Address::ZERO {
        return Err(FastError::BadRecipient.into());
    }
    if i128::try_from(total).map_or(true, |a| available(&record) < a) {
        return Err(FastError::Collateral {
            peer: f.peer,
            available: available(&record),
            total,
        }
        .into());
    }
    // Our admission policy for the peer (DESIGN §13) admits it now, or the transfer
    // takes the ordinary path, where the policy delays or bounces it.
    if super::policy::admit(o, env, f.peer, &record, total)? != super::policy::Verdict::Admit {
        return Err(FastError::Policy(f.peer).into());
    }
    // The shares: distinct bonded keys, each within its free bond, adding up to the
    // total exactly.
    let n = f.endorsements.len();
    if n == 0 || n > MAX_ENDORSEMENTS {
        return Err(FastError::EndorsementCount(n).into());
    }
    let mut shares = Vec::with_capacity(n);
    let mut sum: u128 = 0;
    for (i, e) in f.endorsements.iter().enumerate() {
        if f.endorsements[..i]
            .iter()
            .any(|p| p.signing_key == e.signing_key)
        {
            return Err(FastError::DuplicateEndorser(e.signing_key).into());
        }
        if e.share == 0 {
            return Err(FastError::ZeroShare(e.signing_key).into());
        }
        let b = bond(o, f.peer, &e.signing_key)?.ok_or(FastError::NoBond(e.signing_key, f.peer))?;
        if e.share > b.free() {
            return Err(FastError::ShareAboveBond {
                key: e.signing_key,
                share: e.share,
                free: b.free(),
            }
            .into());
        }
        sum = sum.checked_add(e.share).ok_or(TxError::Overflow)?;
        shares.push(FastShare {
            signing_key: e.signing_key,
            owner: b.owner,
            share: e.share,
        });
    }
    if sum != total {
        return Err(FastError::SharesMismatch { shares: sum, total }.into());
    }
    // Then what costs: the block's producer signature (against our light client's
    // schedule, not its finality), the transfer's inclusion, the endorsements.
    check_unfinal(&record.light_client, f.header, env.time_ms).map_err(FastError::Header)?;
    let summary = Finalized::of(f.header);
    verify_batch(
        &summary,
        &[f.transfer.encode()],
        &[f.index],
        f.proof,
        Commitment::Transactions,
    )
    .map_err(ProofError::Rejected)?;
    let what = EndorsedTransfer {
        source: f.peer,
        destination: env.chain_id,
        tx: t.tx,
        block_id: summary.id,
        height: summary.height,
    };
    for e in f.endorsements {
        e.verify(&what)
            .map_err(|_| FastError::BadEndorsement(e.signing_key))?;
    }
    // Verified: apply. The underwriters' part of the fast fee, pro rata to their
    // shares (rounded down); the rest of the fee and the amount to the recipient.
    let pool = t
        .fast_fee
        .checked_mul(u128::from(bk.policy.fee_share_bps))
        .map(|x| x / 10_000)
        .ok_or(TxError::Overflow)?;
    let mut fee_paid: u128 = 0;
    for s in &shares {
        // Pro rata, and never more than what is left of the pool (rounding of huge
        // amounts in `mul_div` cannot make the underwriters' part exceed it).
        let pay = mul_div(pool, s.share, total).min(pool - fee_paid);
        if pay > 0 {
            update_account(o, &s.owner, |a| {
                a.balance = a.balance.checked_add(pay).ok_or(TxError::Overflow)?;
                Ok(())
            })?;
        }
        fee_paid += pay;
        let mut b =
            bond(o, f.peer, &s.signing_key)?.ok_or(FastError::NoBond(s.signing_key, f.peer))?;
        b.locked = b.locked.checked_add(s.share).ok_or(TxError::Overflow)?;
        ledger::write(o, keys::bond(f.peer, &s.signing_key), &b);
    }
    let to_recipient = total - fee_paid;
    update_account(o, &t.to.address, |a| {
        a.balance = a
            .balance
            .checked_add(to_recipient)
            .ok_or(TxError::Overflow)?;
        Ok(())
    })?;
    record.corr = sub_signed(record.corr, total)?;
    record.delivered_in += 1;
    record.volume_in = record.volume_in.saturating_add(total);
    ledger::write(o, keys::peer(f.peer), &record);
    bk.outstanding = outstanding;
    bk.delivered += 1;
    ledger::write(o, keys::fast_book(f.peer), &bk);
    let outcome = Outcome::FastDelivered {
        source: f.peer,
        source_tx: t.tx,
    };
    ledger::write(
        o,
        keys::fast(f.peer, &t.tx),
        &FastRecord {
            block_id: summary.id,
            height: summary.height,
            expiration: f.transfer.expiration,
            total,
            fee_paid,
            shares,
            state: FastState::Locked,
            delivered_at: env.height,
            resolved_at: None,
        },
    );
    ledger::write(
        o,
        keys::consumed(f.peer, &t.tx),
        &InboundRecord {
            tx: *our_tx,
            sender: t.origin,
            recipient: t.to.address,
            amount: total,
            height: env.height,
            outcome: outcome.clone(),
        },
    );
    Ok((outcome, total))
}

/// `⌊a × b / c⌋` for `b ≤ c` (0 when `c` is 0), exact whenever `a × b` fits in 128
/// bits; when it does not (amounts beyond 2⁶⁴), `b` and `c` are shifted right together
/// until it does, which keeps the result at most `a`. Never panics, never loops long.
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    for k in 0..128 {
        let (bb, cc) = (b >> k, c >> k);
        if cc == 0 {
            return 0;
        }
        if let Some(x) = a.checked_mul(bb) {
            return x / cc;
        }
    }
    0
}

/// The ordinary proof of a transfer that was already consumed by the fast path, as an
/// `InboundBatch` meets it: unlocks the shares of a locked one, hands back the shares
/// of a slashed one (debiting `corr[peer]` again: the transfer was real); `None` when
/// the transfer is not a pending fast one (then it was consumed already, and the
/// batch is invalid). Returns what the receipt reports: delivered, for its total.
pub(crate) fn resolve_by_proof(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    corr: &mut i128,
    tx: &Hash32,
) -> Result<Option<u128>, TxError> {
    let Some(mut r) = record(o, peer, tx)? else {
        return Ok(None);
    };
    let mut bk = book(o, peer)?;
    match r.state {
        FastState::Locked => {
            for s in &r.shares {
                let mut b =
                    bond(o, peer, &s.signing_key)?.ok_or(FastError::NoBond(s.signing_key, peer))?;
                b.locked = b.locked.checked_sub(s.share).ok_or(TxError::Overflow)?;
                ledger::write(o, keys::bond(peer, &s.signing_key), &b);
            }
            bk.outstanding = bk
                .outstanding
                .checked_sub(r.total)
                .ok_or(TxError::Overflow)?;
            bk.proven += 1;
            r.state = FastState::Proven;
        }
        FastState::Slashed => {
            for s in &r.shares {
                let mut b = bond(o, peer, &s.signing_key)?.unwrap_or(Bond {
                    owner: s.owner,
                    amount: 0,
                    locked: 0,
                });
                b.amount = b.amount.checked_add(s.share).ok_or(TxError::Overflow)?;
                ledger::write(o, keys::bond(peer, &s.signing_key), &b);
            }
            bk.bonded = bk.bonded.checked_add(r.total).ok_or(TxError::Overflow)?;
            *corr = sub_signed(*corr, r.total)?;
            bk.returned += 1;
            r.state = FastState::Returned;
        }
        FastState::Proven | FastState::Returned => return Ok(None),
    }
    r.resolved_at = Some(env.height);
    ledger::write(o, keys::fast_book(peer), &bk);
    ledger::write(o, keys::fast(peer, tx), &r);
    Ok(Some(r.total))
}

/// `SlashFast`: the endorsed block of a locked fast transfer is not the irreversible
/// block at its height, and the source's irreversible time is past the transfer's
/// expiration (so it can never be included there): its shares go from the bonds into
/// `corr[peer]`.
pub(crate) fn slash_fast(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    tx: &Hash32,
) -> Result<(Outcome, u128), TxError> {
    let mut r = record(o, peer, tx)?
        .filter(|r| r.state == FastState::Locked)
        .ok_or(FastError::NotLocked(*tx))?;
    let mut record_p = peer_record(o, peer)?;
    slashable(o, &record_p.light_client, peer, &r)?;
    for s in &r.shares {
        let mut b = bond(o, peer, &s.signing_key)?.ok_or(FastError::NoBond(s.signing_key, peer))?;
        b.locked = b.locked.checked_sub(s.share).ok_or(TxError::Overflow)?;
        b.amount = b.amount.checked_sub(s.share).ok_or(TxError::Overflow)?;
        ledger::write(o, keys::bond(peer, &s.signing_key), &b);
    }
    let mut bk = book(o, peer)?;
    bk.bonded = bk.bonded.checked_sub(r.total).ok_or(TxError::Overflow)?;
    bk.outstanding = bk
        .outstanding
        .checked_sub(r.total)
        .ok_or(TxError::Overflow)?;
    bk.slashed += 1;
    ledger::write(o, keys::fast_book(peer), &bk);
    record_p.corr = add_signed(record_p.corr, r.total)?;
    ledger::write(o, keys::peer(peer), &record_p);
    r.state = FastState::Slashed;
    r.resolved_at = Some(env.height);
    let total = r.total;
    ledger::write(o, keys::fast(peer, tx), &r);
    Ok((
        Outcome::FastSlashed {
            source: peer,
            source_tx: *tx,
        },
        total,
    ))
}

/// Whether a locked fast transfer may be slashed now, by our light client of `peer`:
/// `Ok` when its block is provably orphaned and the transfer expired at the source.
pub fn slashable(
    kv: &impl ledger::KvRead,
    lc: &distpos_proofs::light_client::LightClient,
    peer: ChainId,
    r: &FastRecord,
) -> Result<(), TxError> {
    if r.height > lc.lib() {
        return Err(FastError::NotDecidedYet(r.height).into());
    }
    let at = ledger::peer_header(kv, peer, r.height)?.ok_or(FastError::NotDecidedYet(r.height))?;
    if at.id == r.block_id {
        return Err(FastError::BlockFinal(r.height).into());
    }
    let lib_time = ledger::peer_header(kv, peer, lc.lib())?
        .map(|h| h.timestamp_ms)
        .ok_or(FastError::NotDecidedYet(r.height))?;
    if lib_time <= r.expiration {
        return Err(FastError::NotExpired {
            expiration: r.expiration,
            lib_time,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
