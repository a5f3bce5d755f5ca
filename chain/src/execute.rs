//! Executing a block: the block-level steps before and after its transactions, and
//! the envelope every transaction goes through (chain id, expiration, TaPoS,
//! duplicates, nonce, fee) before its body runs.
//!
//! [`Executor`] is shared by block building (where a failing transaction is skipped)
//! and block application (where it invalidates the block), so both compute exactly the
//! same state changes.

pub use crate::env::BlockEnv;
use crate::{
    address::Address,
    bodies,
    error::{BlockError, StateError, TxError},
    ledger::{self, keys, Producer},
    state::{ChangeSet, Overlay, State},
    tx::{Receipt, Transaction, MAX_EXPIRATION_MS},
    votes,
};
use distpos_proofs::{
    consensus::{ChainRules, ConsensusState},
    hash_domain,
    header::tapos_prefix,
    sha256, BlockHeader, Hash32, ProducerSchedule, PublicKey, SecretKey, SlotClock,
};

/// The header rules of the chain whose state this is.
pub fn chain_rules(kv: &impl ledger::KvRead) -> Result<ChainRules, StateError> {
    let meta = ledger::meta(kv)?;
    let params = ledger::params(kv)?;
    Ok(ChainRules {
        chain_id: meta.chain_id,
        clock: SlotClock {
            genesis_time_ms: meta.genesis_time_ms,
            interval_ms: params.block_interval_ms,
        },
        max_drift_ms: params.max_clock_drift_ms,
    })
}

/// The secret a producer commits to in its block at `height` and reveals in its next
/// block. Derived from its key, so a restarted producer can always recompute it.
pub fn producer_secret(key: &SecretKey, height: u64) -> Hash32 {
    hash_domain(
        b"DISTPOS/SECRET/v1",
        &[&key.to_bytes(), &height.to_be_bytes()],
    )
}

/// Executes one block on an overlay of the parent state.
pub(crate) struct Executor<'a> {
    pub(crate) o: Overlay<'a>,
    pub(crate) env: BlockEnv,
    producer_account: Option<Address>,
    /// The block producer's signing key (system transactions are signed with it).
    producer_key: Option<PublicKey>,
    fees: u128,
    new_round_seed: Option<Hash32>,
    /// Nonces this far ahead of the account are accepted (mempool validation of a
    /// sender's later transactions; always 0 in blocks).
    nonce_slack: u64,
    pub(crate) receipts: Vec<Receipt>,
}

/// A transaction whose envelope and signature were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxCheck {
    /// Its hash.
    pub hash: Hash32,
    /// Its sender.
    pub sender: Address,
}

/// Verifies a transaction's signature and derives its sender. This is the expensive
/// part of validation; a node may run it for many transactions in parallel.
pub fn verify_tx_signature(tx: &Transaction) -> Result<TxCheck, TxError> {
    let hash = tx.hash();
    let xy = distpos_proofs::keys::verify_and_uncompress(&tx.pubkey, &hash, &tx.signature)?;
    Ok(TxCheck {
        hash,
        sender: Address::from_uncompressed_xy(&xy),
    })
}

impl<'a> Executor<'a> {
    /// Starts a block at `height`/`time_ms` by `producer` with `reveal`: TaPoS entry
    /// for the parent, unbonding releases, pruning of expired transaction ids, missed
    /// slots, commit/reveal, the round seed.
    pub(crate) fn begin(
        state: &'a State,
        time_ms: u64,
        producer: &PublicKey,
        reveal: &Hash32,
        commit: &Hash32,
    ) -> Result<Self, BlockError> {
        let mut ex = Self::for_state(state, time_ms)?;
        let o = &mut ex.o;
        let env = &ex.env;
        let height = env.height;

        // TaPoS: transactions may reference the parent from now on.
        let parent_num = (height - 1) as u16;
        ledger::write(o, keys::tapos(parent_num), &tapos_prefix(&state.head_id));

        // Unbonding releases due at this height.
        let due: Vec<(Address, u128)> =
            ledger::read(o, &keys::unbonding(height))?.unwrap_or_default();
        for (addr, amount) in due {
            release_unbonding(o, &addr, amount)?;
        }
        o.delete(keys::unbonding(height));

        // Forget expired transaction ids (bounded per block; leftovers go next block).
        let mut to = keys::TX_EXPIRY.to_vec();
        to.extend_from_slice(&time_ms.to_be_bytes());
        for (k, _) in o.range(keys::TX_EXPIRY, &to, 20_000) {
            if let Some(h) = k
                .get(keys::TX_EXPIRY.len() + 8..)
                .and_then(Hash32::from_slice)
            {
                o.delete(keys::tx_seen(&h));
            }
            o.delete(k);
        }

        // Missed slots between the parent and this block.
        let slot = env.rules.clock.slot_of(time_ms).unwrap_or(0);
        let cons = &env.consensus;
        let n = cons.active.len() as u64;
        if n > 0 && slot > cons.slot + 1 {
            let (first, last) = (cons.slot + 1, slot - 1);
            for (i, key) in cons.active.producers.iter().enumerate() {
                let i = i as u64;
                // Slots t in [first, last] with t ≡ i (mod n).
                let count = count_congruent(first, last, i, n);
                if count > 0 {
                    if let Some(addr) = ledger::producer_by_key(o, key)? {
                        if let Some(mut p) = ledger::producer(o, &addr)? {
                            p.missed += count;
                            ledger::write(o, keys::producer(&addr), &p);
                        }
                    }
                }
            }
        }

        // The producer: commit/reveal and block count.
        let addr = ledger::producer_by_key(o, producer)?.ok_or(BlockError::UnknownProducer)?;
        let mut p: Producer = ledger::producer(o, &addr)?.ok_or(BlockError::UnknownProducer)?;
        let reveal_ok = if p.last_commit.is_zero() {
            reveal.is_zero()
        } else {
            sha256(&reveal.0) == p.last_commit
        };
        if !reveal_ok {
            return Err(BlockError::Reveal);
        }
        p.last_commit = *commit;
        p.produced += 1;
        p.last_block_height = height;
        ledger::write(o, keys::producer(&addr), &p);

        // Round seed: the hash of the previous round's reveals.
        let mut meta = ledger::meta(o)?;
        let new_round =
            cons.height == 0 || cons.active.round_of(slot) != cons.active.round_of(cons.slot);
        if new_round {
            ex.new_round_seed = Some(hash_domain(b"DISTPOS/SEED/v1", &[&meta.seed_acc.0]));
            meta.seed_acc = Hash32::ZERO;
        }
        meta.seed_acc = hash_domain(b"DISTPOS/SEED/v1", &[&meta.seed_acc.0, &reveal.0]);
        meta.time_ms = time_ms;
        ledger::write(o, keys::META.to_vec(), &meta);

        ex.producer_account = Some(addr);
        ex.producer_key = Some(*producer);
        ex.o.commit_tx();
        Ok(ex)
    }

    /// An executor for validating transactions against `state` at `time_ms`, without
    /// the block-level steps (the mempool's view).
    pub(crate) fn for_state(state: &'a State, time_ms: u64) -> Result<Self, StateError> {
        let o = Overlay::new(state);
        let consensus = ledger::consensus(&o)?;
        let env = BlockEnv {
            chain_id: ledger::meta(&o)?.chain_id,
            height: consensus.height + 1,
            time_ms,
            params: ledger::params(&o)?,
            rules: chain_rules(&o)?,
            consensus,
        };
        Ok(Self {
            o,
            env,
            producer_account: None,
            producer_key: None,
            fees: 0,
            new_round_seed: None,
            nonce_slack: 0,
            receipts: Vec::new(),
        })
    }

    /// Applies one transaction whose signature was verified. On error nothing it did
    /// remains.
    pub(crate) fn apply_tx(&mut self, tx: &Transaction, check: &TxCheck) -> Result<(), TxError> {
        // Fees are counted checked: an overflow refuses the transaction, never caps.
        let applied = self.try_apply(tx, check).and_then(|receipt| {
            let fees = self.fees.checked_add(tx.fee).ok_or(TxError::Overflow)?;
            Ok((receipt, fees))
        });
        match applied {
            Ok((receipt, fees)) => {
                self.o.commit_tx();
                self.fees = fees;
                self.receipts.push(receipt);
                Ok(())
            }
            Err(e) => {
                self.o.rollback_tx();
                Err(e)
            }
        }
    }

    fn try_apply(&mut self, tx: &Transaction, check: &TxCheck) -> Result<Receipt, TxError> {
        if tx.body.is_system() {
            return self.try_apply_system(tx, check);
        }
        let env = &self.env;
        let o = &mut self.o;
        check_envelope(tx, env)?;
        let prefix: Option<u32> = ledger::read(o, &keys::tapos(tx.ref_block_num))?;
        if prefix != Some(tx.ref_block_prefix) {
            return Err(TxError::Tapos {
                num: tx.ref_block_num,
                prefix: tx.ref_block_prefix,
            });
        }
        if o.get(&keys::tx_seen(&check.hash)).is_some() {
            return Err(TxError::Duplicate(check.hash));
        }
        let sender = check.sender;
        let acct = ledger::account(o, &sender)?;
        let expected = acct.nonce.saturating_add(1);
        if tx.nonce < expected || tx.nonce > expected.saturating_add(self.nonce_slack) {
            return Err(TxError::BadNonce {
                expected,
                got: tx.nonce,
            });
        }
        if acct.balance < tx.fee {
            return Err(TxError::InsufficientFunds {
                need: tx.fee,
                have: acct.balance,
            });
        }
        votes::update_account(o, &sender, |a| {
            a.balance -= tx.fee;
            a.nonce = tx.nonce;
            Ok(())
        })?;
        o.put(
            keys::tx_seen(&check.hash),
            tx.expiration.to_be_bytes().to_vec(),
        );
        o.put(keys::tx_expiry(tx.expiration, &check.hash), Vec::new());
        let (outcome, amount) = bodies::apply_body(o, env, &sender, &check.hash, &tx.body)?;
        Ok(Receipt {
            tx_hash: check.hash,
            outcome,
            amount,
            fee: tx.fee,
        })
    }

    /// A system transaction (DESIGN §6.1): only in a block, signed with the block's
    /// key, nonce 0, no fee; no TaPoS, expiration or replay entry (what it carries is
    /// consumed once by its own rules, so it cannot apply twice).
    fn try_apply_system(&mut self, tx: &Transaction, check: &TxCheck) -> Result<Receipt, TxError> {
        let Some(producer) = self.producer_key else {
            return Err(TxError::SystemOutsideBlock);
        };
        if tx.pubkey != producer || tx.nonce != 0 || tx.fee != 0 {
            return Err(TxError::SystemEnvelope);
        }
        if tx.chain_id != self.env.chain_id {
            return Err(TxError::WrongChain {
                expected: self.env.chain_id,
                got: tx.chain_id,
            });
        }
        bodies::check_body_fields(&tx.body)?;
        let (outcome, amount) =
            bodies::apply_body(&mut self.o, &self.env, &check.sender, &check.hash, &tx.body)?;
        Ok(Receipt {
            tx_hash: check.hash,
            outcome,
            amount,
            fee: 0,
        })
    }

    /// The schedule change this block must carry, if it starts a round and the elected
    /// set differs from the active one (and no change is pending).
    pub(crate) fn election(&self) -> Result<Option<ProducerSchedule>, StateError> {
        let Some(seed) = self.new_round_seed else {
            return Ok(None);
        };
        let cons = &self.env.consensus;
        if cons.pending.is_some() {
            return Ok(None);
        }
        let elected = votes::elect(&self.o, &self.env.params)?;
        if elected.is_empty() {
            return Ok(None);
        }
        let mut new_set: Vec<PublicKey> = elected.iter().map(|(_, k)| *k).collect();
        let mut old_set = cons.active.producers.clone();
        new_set.sort();
        old_set.sort();
        if new_set == old_set {
            return Ok(None);
        }
        Ok(Some(ProducerSchedule {
            version: cons.active.version.wrapping_add(1),
            producers: votes::order_schedule(&elected, &seed),
        }))
    }

    /// Ends the block: reward and fees to the producer, the consensus state after
    /// `header`, and the block's change set.
    pub(crate) fn finish(
        mut self,
        header: &BlockHeader,
    ) -> Result<(ChangeSet, Vec<Receipt>, ConsensusState), BlockError> {
        if let Some(addr) = self.producer_account {
            let reward = self.env.params.block_reward;
            let total = reward
                .checked_add(self.fees)
                .ok_or(TxError::Overflow)
                .map_err(block_level)?;
            votes::update_account(&mut self.o, &addr, |a| {
                a.balance = a.balance.checked_add(total).ok_or(TxError::Overflow)?;
                Ok(())
            })
            .map_err(block_level)?;
            let mut meta = ledger::meta(&self.o)?;
            meta.minted = meta
                .minted
                .checked_add(reward)
                .ok_or(TxError::Overflow)
                .map_err(block_level)?;
            ledger::write(&mut self.o, keys::META.to_vec(), &meta);
        }
        let consensus = self.env.consensus.advance(header, &self.env.rules.clock);
        ledger::write(&mut self.o, keys::CONSENSUS.to_vec(), &consensus);
        Ok((self.o.into_changes(), self.receipts, consensus))
    }
}

/// Checks a system transaction's body (an `InboundBatch` or `SettleBatch`) against
/// `state` as the next block at `time_ms` would apply it, and changes nothing: what a
/// node asks when a batch arrives, before it keeps it for its next block.
pub fn check_system_body(
    state: &State,
    body: &crate::tx::Body,
    time_ms: u64,
) -> Result<(crate::tx::Outcome, u128), TxError> {
    if !body.is_system() {
        return Err(TxError::Invalid(
            "not a system transaction body".to_string(),
        ));
    }
    bodies::check_body_fields(body)?;
    let mut ex = Executor::for_state(state, time_ms)?;
    bodies::apply_body(&mut ex.o, &ex.env, &Address::ZERO, &Hash32::ZERO, body)
}

/// Checks of a transaction that need no state beyond the block's constants.
pub(crate) fn check_envelope(tx: &Transaction, env: &BlockEnv) -> Result<(), TxError> {
    if tx.chain_id != env.chain_id {
        return Err(TxError::WrongChain {
            expected: env.chain_id,
            got: tx.chain_id,
        });
    }
    if tx.expiration <= env.time_ms {
        return Err(TxError::Expired {
            expiration: tx.expiration,
            now: env.time_ms,
        });
    }
    if tx.expiration > env.time_ms.saturating_add(MAX_EXPIRATION_MS) {
        return Err(TxError::ExpirationTooFar {
            expiration: tx.expiration,
            now: env.time_ms,
        });
    }
    if tx.fee < env.params.min_fee {
        return Err(TxError::FeeTooLow {
            min: env.params.min_fee,
            got: tx.fee,
        });
    }
    bodies::check_body_fields(&tx.body)
}

fn release_unbonding(o: &mut Overlay<'_>, addr: &Address, amount: u128) -> Result<(), BlockError> {
    votes::update_account(o, addr, |a| {
        a.unbonding = a.unbonding.checked_sub(amount).ok_or(TxError::Overflow)?;
        a.balance = a.balance.checked_add(amount).ok_or(TxError::Overflow)?;
        Ok(())
    })
    .map_err(block_level)
}

/// An error in a block-level step (not in any one transaction): reported as a
/// transaction error at index `usize::MAX`, or as the state error it is.
fn block_level(e: TxError) -> BlockError {
    match e {
        TxError::State(s) => BlockError::State(s),
        other => BlockError::Tx {
            index: usize::MAX,
            hash: Hash32::ZERO,
            error: other,
        },
    }
}

/// Number of integers t in `[first, last]` with `t mod n == i`.
fn count_congruent(first: u64, last: u64, i: u64, n: u64) -> u64 {
    if first > last || n == 0 {
        return 0;
    }
    // Count of t in [0, x] with t ≡ i (mod n).
    let upto = |x: u64| if x < i { 0 } else { (x - i) / n + 1 };
    upto(last) - if first == 0 { 0 } else { upto(first - 1) }
}

/// Validates a transaction against `state` as if included in a block at `time_ms`:
/// signature, envelope and the full body effect (on a throwaway overlay). The
/// mempool's admission check.
pub fn validate_tx(state: &State, tx: &Transaction, time_ms: u64) -> Result<TxCheck, TxError> {
    let check = verify_tx_signature(tx)?;
    validate_checked(state, tx, &check, time_ms, 0)?;
    Ok(check)
}

/// Like [`validate_tx`] for a transaction whose signature was verified (`check`), and
/// accepting a nonce up to `nonce_slack` ahead of the account's next one — for a
/// sender whose earlier transactions wait in the mempool. The body is validated
/// against the current state all the same, so a forged proof or a malformed body is
/// refused at once whatever its nonce.
pub fn validate_checked(
    state: &State,
    tx: &Transaction,
    check: &TxCheck,
    time_ms: u64,
    nonce_slack: u64,
) -> Result<(), TxError> {
    Validator::new(state, time_ms)?.validate(tx, check, nonce_slack)
}

/// Validates many transactions against one state at one time, each on its own (as
/// [`validate_checked`] does), decoding the chain's parameters and consensus once
/// rather than per transaction.
pub struct Validator<'a> {
    ex: Executor<'a>,
}

impl<'a> Validator<'a> {
    /// A validator for `state` at `time_ms`.
    pub fn new(state: &'a State, time_ms: u64) -> Result<Self, StateError> {
        let mut ex = Executor::for_state(state, time_ms)?;
        // The block that would include them writes the TaPoS entry of the current head.
        let head_num = (ex.env.height - 1) as u16;
        ledger::write(
            &mut ex.o,
            keys::tapos(head_num),
            &tapos_prefix(&state.head_id),
        );
        ex.o.commit_tx();
        Ok(Self { ex })
    }

    /// Checks `tx` (signature already verified as `check`) as [`validate_checked`]
    /// does. Nothing it would write stays: the next one is checked against the same
    /// state.
    pub fn validate(
        &mut self,
        tx: &Transaction,
        check: &TxCheck,
        nonce_slack: u64,
    ) -> Result<(), TxError> {
        self.ex.nonce_slack = nonce_slack;
        let r = self.ex.try_apply(tx, check).map(|_| ());
        self.ex.o.rollback_tx();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::count_congruent;

    #[test]
    fn congruence_count_matches_brute_force() {
        for n in 1..6u64 {
            for i in 0..n {
                for first in 0..12u64 {
                    for last in 0..12u64 {
                        let brute = (first..=last).filter(|t| t % n == i).count() as u64;
                        assert_eq!(
                            count_congruent(first, last, i, n),
                            brute,
                            "{first}..={last} ≡{i} mod {n}"
                        );
                    }
                }
            }
        }
    }
}
