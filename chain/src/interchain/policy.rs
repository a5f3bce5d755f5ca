//! Per-peer admission policy (DESIGN §13, "the reputation of the chain that sent this
//! transaction, at the choice of the receiving party"): on-chain, set by governance
//! per peer chain, applied by block application to every inbound transfer from that
//! peer (delivered here or held for forwarding), after its proof and before its
//! collateral.
//!
//! - `max_transfer`: a larger transfer bounces (`above_max_transfer`).
//! - A value-rate limit, a token bucket over block time (`rate_capacity`, refilled at
//!   `rate_per_s`): a transfer the bucket cannot pay now is admitted (its collateral
//!   taken) but **delayed** until the bucket has refilled by what it owes; later
//!   transfers queue behind it.
//! - A delay for transfers above `delay_above` (`delay_ms`), during which governance
//!   can cancel them (`CancelDelayed`) into a bounce (`cancelled`).
//! - A reputation score from on-chain facts about the peer, 0–100 ([`reputation`]):
//!   bounces of its transfers by reason, proofs refused, evidence of equivocation
//!   among its producers, its correspondent account overdrawn or empty, its light
//!   client lagging. Below `min_reputation` its transfers are refused
//!   (`low_reputation`) or delayed, as `below_reputation` says.
//!
//! A delayed transfer is held like a forwarded one ([`super::forward::Held`], state
//! `Delayed`); once due, a `Release` delivers it (or it goes on with a `Forward`).

use super::{forward, peer_record};
use crate::{
    env::BlockEnv,
    error::TxError,
    ledger::{self, keys, PeerChain},
    state::Overlay,
    tx::BounceReason,
};
use distpos_proofs::{codec::dec_u128, ChainId, Hash32};
use serde::{Deserialize, Serialize};

/// What governance sets for one peer. All limits off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerPolicy {
    /// Largest transfer admitted (0 = no limit).
    #[serde(with = "dec_u128")]
    pub max_transfer: u128,
    /// Token bucket size: the most value admitted at once (0 = no rate limit).
    #[serde(with = "dec_u128")]
    pub rate_capacity: u128,
    /// Refill per second of block time.
    #[serde(with = "dec_u128")]
    pub rate_per_s: u128,
    /// Transfers above this wait `delay_ms` (0 = none delayed).
    #[serde(with = "dec_u128")]
    pub delay_above: u128,
    /// How long they wait, during which governance can cancel them.
    pub delay_ms: u64,
    /// Reputation (0–100) below which the peer's transfers are refused or delayed
    /// (0 = never).
    pub min_reputation: u32,
    /// What happens below `min_reputation`.
    pub below_reputation: BelowReputation,
}

/// What happens to transfers of a peer whose reputation is below the threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BelowReputation {
    /// They bounce with `low_reputation`.
    #[default]
    Refuse,
    /// They wait `delay_ms` (at least a minute), cancellable by governance.
    Delay,
}

/// Longest delay governance may set: a day.
pub const MAX_DELAY_MS: u64 = 86_400_000;

impl PeerPolicy {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), TxError> {
        let bad = |m: &str| Err(TxError::Governance(format!("policy: {m}")));
        if self.rate_capacity > 0 && self.rate_per_s == 0 {
            return bad("a rate limit (rate_capacity) needs rate_per_s above 0");
        }
        if self.delay_ms > MAX_DELAY_MS {
            return bad("delay_ms is above a day");
        }
        if self.delay_above > 0 && self.delay_ms == 0 {
            return bad("delay_above needs delay_ms above 0");
        }
        if self.min_reputation > 100 {
            return bad("min_reputation is a score out of 100");
        }
        i128::try_from(self.rate_capacity)
            .map_err(|_| TxError::Governance("policy: rate_capacity is too large".into()))?;
        Ok(())
    }
}

/// A peer's policy and the state it keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBook {
    /// What governance set.
    pub policy: PeerPolicy,
    /// The bucket's level when last used (may be below 0: what delayed transfers
    /// owe it).
    #[serde(with = "crate::amount::dec_i128")]
    pub level: i128,
    /// Block time of that use.
    pub level_at_ms: u64,
    /// Transfers admitted but delayed, over time.
    pub delayed: u64,
    /// Transfers refused by the policy, over time.
    pub refused: u64,
}

/// The policy book of `peer` (defaults when never set).
pub fn book(kv: &impl ledger::KvRead, peer: ChainId) -> Result<PolicyBook, TxError> {
    Ok(ledger::read(kv, &keys::policy(peer))?.unwrap_or_default())
}

/// How old the head of our light client of a peer may be before its reputation
/// suffers: 10 minutes, or 128 of the peer's block intervals if longer (our blocks
/// take an idle peer's headers in runs, so a healthy peer's head ages by up to a
/// run's worth).
pub const LAG_TOLERATED_MS: u64 = 10 * 60 * 1000;

/// Block time of the newest header our light client of `peer` follows (its branch
/// head, else its irreversible checkpoint), if known.
pub fn head_time(kv: &impl ledger::KvRead, peer: ChainId, record: &PeerChain) -> Option<u64> {
    let lc = &record.light_client;
    lc.branch
        .last()
        .map(|(h, _)| h.header.timestamp_ms)
        .or_else(|| {
            ledger::peer_header(kv, peer, lc.lib())
                .ok()
                .flatten()
                .map(|f| f.timestamp_ms)
        })
}

/// Most a peer's reputation loses for the share of its transfers that bounced for
/// reasons of its own ([`crate::tx::BounceReason::charged_to_source`]).
pub const BOUNCE_WEIGHT: u64 = 40;
/// What each proof refused (a `malformed` bounce) costs, up to [`REFUSED_CAP`].
pub const REFUSED_WEIGHT: i64 = 10;
/// Most proofs refused cost.
pub const REFUSED_CAP: i64 = 30;
/// What evidence of equivocation among the peer's producers costs (any amount).
pub const EQUIVOCATION_WEIGHT: i64 = 40;
/// What a correspondent account at or below zero costs.
pub const EMPTY_ACCOUNT_WEIGHT: i64 = 20;
/// What a light client lagging more than tolerated costs.
pub const LAG_WEIGHT: i64 = 30;

/// The peer's reputation, 0–100, from what our ledger knows of it at `now_ms`
/// (DESIGN §13), each fact costing points:
/// - the share of its transfers that bounced for reasons of its own (up to
///   [`BOUNCE_WEIGHT`]); bounces that are our own choices (suspension, policy limits,
///   a low reputation, a cancelled delay) do not count, so a refusal never feeds the
///   score that caused it;
/// - proofs refused: transfers proven in its irreversible blocks that break the rules
///   (`malformed`), [`REFUSED_WEIGHT`] each up to [`REFUSED_CAP`];
/// - evidence of equivocation among its producers ([`EQUIVOCATION_WEIGHT`]);
/// - its correspondent account at or below zero ([`EMPTY_ACCOUNT_WEIGHT`]);
/// - its light client's head (`head_ms`, [`head_time`]) older than
///   [`LAG_TOLERATED_MS`] or 128 of its block intervals ([`LAG_WEIGHT`]).
pub fn reputation(record: &PeerChain, head_ms: Option<u64>, now_ms: u64) -> u32 {
    let mut score: i64 = 100;
    let charged = record.charged_bounces();
    let total = record.delivered_in.saturating_add(charged);
    score -= BOUNCE_WEIGHT
        .saturating_mul(charged)
        .checked_div(total)
        .map_or(0, |p| p as i64);
    let refused = i64::try_from(record.refused_proofs()).unwrap_or(i64::MAX);
    score -= refused.saturating_mul(REFUSED_WEIGHT).min(REFUSED_CAP);
    if record.equivocations > 0 {
        score -= EQUIVOCATION_WEIGHT;
    }
    if record.corr <= 0 {
        score -= EMPTY_ACCOUNT_WEIGHT;
    }
    let tolerated = LAG_TOLERATED_MS.max(record.registration.block_interval_ms.saturating_mul(128));
    if head_ms.is_some_and(|t| now_ms.saturating_sub(t) > tolerated) {
        score -= LAG_WEIGHT;
    }
    score.clamp(0, 100) as u32
}

/// What the policy decides for an inbound transfer of `amount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admit it now.
    Admit,
    /// Admit it, but hold it until block time `until`.
    Delay {
        /// When it may be delivered (or forwarded).
        until: u64,
    },
    /// Bounce it.
    Refuse(BounceReason),
}

/// Applies `peer`'s policy to a transfer of `amount` at this block (and records
/// what it used of the bucket). Cheap: no signature, no proof.
pub(crate) fn admit(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    record: &PeerChain,
    amount: u128,
) -> Result<Verdict, TxError> {
    let mut b = book(o, peer)?;
    let p = b.policy.clone();
    if p == PeerPolicy::default() {
        return Ok(Verdict::Admit);
    }
    let now = env.time_ms;
    let mut until = 0u64;
    if p.max_transfer > 0 && amount > p.max_transfer {
        b.refused += 1;
        ledger::write(o, keys::policy(peer), &b);
        return Ok(Verdict::Refuse(BounceReason::AboveMaxTransfer));
    }
    if p.min_reputation > 0
        && reputation(record, head_time(o, peer, record), now) < p.min_reputation
    {
        match p.below_reputation {
            BelowReputation::Refuse => {
                b.refused += 1;
                ledger::write(o, keys::policy(peer), &b);
                return Ok(Verdict::Refuse(BounceReason::LowReputation));
            }
            BelowReputation::Delay => until = now.saturating_add(p.delay_ms.max(60_000)),
        }
    }
    if p.delay_above > 0 && amount > p.delay_above {
        until = until.max(now.saturating_add(p.delay_ms));
    }
    if p.rate_capacity > 0 {
        let cap = i128::try_from(p.rate_capacity).unwrap_or(i128::MAX);
        let rate = i128::try_from(p.rate_per_s).unwrap_or(i128::MAX);
        let elapsed = i128::from(now.saturating_sub(b.level_at_ms));
        let refill = rate.saturating_mul(elapsed) / 1000;
        let level = if b.level_at_ms == 0 {
            cap
        } else {
            b.level.saturating_add(refill).min(cap)
        };
        let level = level.saturating_sub(i128::try_from(amount).unwrap_or(i128::MAX));
        b.level = level;
        b.level_at_ms = now;
        if level < 0 {
            // Due once the bucket has refilled by what it owes (rounded up).
            let wait_ms = (level.unsigned_abs().saturating_mul(1000)).div_ceil(rate.unsigned_abs());
            until = until.max(now.saturating_add(u64::try_from(wait_ms).unwrap_or(u64::MAX)));
        }
    }
    if until > now {
        b.delayed += 1;
        ledger::write(o, keys::policy(peer), &b);
        return Ok(Verdict::Delay { until });
    }
    ledger::write(o, keys::policy(peer), &b);
    Ok(Verdict::Admit)
}

/// `SetPeerPolicy` (governance). The bucket starts full.
pub(crate) fn set_policy(
    o: &mut Overlay<'_>,
    peer: ChainId,
    policy: &PeerPolicy,
) -> Result<(), TxError> {
    policy.validate()?;
    peer_record(o, peer)?;
    let mut b = book(o, peer)?;
    b.policy = policy.clone();
    b.level_at_ms = 0;
    b.level = 0;
    ledger::write(o, keys::policy(peer), &b);
    Ok(())
}

/// `CancelDelayed` (governance): a delayed transfer from `peer` bounces (`cancelled`)
/// instead of being delivered.
pub(crate) fn cancel(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    peer: ChainId,
    tx: &Hash32,
) -> Result<(), TxError> {
    forward::cancel_delayed(o, env, peer, tx)
}
