//! The effect of each transaction body (DESIGN §3.1), run after the envelope checks.
//! Each function checks everything it needs before it writes; the executor rolls back
//! the transaction's writes if any step fails anyway.

use crate::{
    address::{Address, QualifiedAddress},
    env::BlockEnv,
    error::TxError,
    governance,
    interchain::batch::BatchProof,
    ledger::{self, keys, InFlight, Producer},
    state::Overlay,
    tx::{
        Body, Outcome, MAX_BATCH_ITEMS, MAX_ENDORSEMENTS, MAX_MEMO_BYTES, MAX_PEER_HEADERS,
        MAX_URL_BYTES, MAX_VOTES,
    },
    votes::update_account,
};
use distpos_proofs::{consensus::check_double_sign, ChainId, Hash32, PublicKey};

/// Checks of a body that need no state: sizes, non-zero amounts, duplicates.
pub(crate) fn check_body_fields(body: &Body) -> Result<(), TxError> {
    let invalid = |m: &str| Err(TxError::Invalid(m.to_string()));
    match body {
        Body::Transfer { amount, memo, .. } => {
            if *amount == 0 {
                return invalid("transfer amount must be positive");
            }
            if memo.len() > MAX_MEMO_BYTES {
                return Err(TxError::Invalid(format!(
                    "memo is {} bytes; at most {MAX_MEMO_BYTES} are allowed",
                    memo.len()
                )));
            }
        }
        Body::Stake { amount } | Body::Unstake { amount } => {
            if *amount == 0 {
                return invalid("amount must be positive");
            }
        }
        Body::DepositCollateral { amount, .. } | Body::WithdrawCollateral { amount, .. } => {
            if *amount == 0 {
                return invalid("amount must be positive");
            }
        }
        Body::BondUnderwriter {
            signing_key,
            amount,
            ..
        }
        | Body::UnbondUnderwriter {
            signing_key,
            amount,
            ..
        } => {
            if *amount == 0 {
                return invalid("amount must be positive");
            }
            if signing_key.verifying_key().is_err() {
                return invalid("signing_key is not a valid compressed secp256k1 public key");
            }
        }
        Body::InboundFast { endorsements, .. } => {
            if endorsements.is_empty() || endorsements.len() > MAX_ENDORSEMENTS {
                return Err(TxError::Invalid(format!(
                    "a fast delivery carries 1..={MAX_ENDORSEMENTS} endorsements, this one {}",
                    endorsements.len()
                )));
            }
        }
        Body::SlashFast { .. } => {}
        Body::Forward { hop, .. } => {
            if let crate::tx::Hop::Onward(leg) = hop {
                if leg.path.is_empty() || leg.path.len() > crate::params::MAX_PATH {
                    return Err(TxError::Invalid(format!(
                        "a leg's path names 1..={} chains",
                        crate::params::MAX_PATH
                    )));
                }
            }
        }
        Body::Release { txs, .. } => {
            if txs.is_empty() || txs.len() > MAX_BATCH_ITEMS {
                return Err(TxError::Invalid(format!(
                    "a release carries 1..={MAX_BATCH_ITEMS} transfers"
                )));
            }
        }
        Body::RegisterProducer { signing_key, url } => {
            if url.len() > MAX_URL_BYTES {
                return Err(TxError::Invalid(format!(
                    "url is longer than {MAX_URL_BYTES} bytes"
                )));
            }
            if signing_key.verifying_key().is_err() {
                return invalid("signing_key is not a valid compressed secp256k1 public key");
            }
        }
        Body::Vote { producers } => {
            if producers.len() > MAX_VOTES {
                return Err(TxError::Invalid(format!(
                    "vote names {} producers; at most {MAX_VOTES} are allowed",
                    producers.len()
                )));
            }
            let mut seen = std::collections::BTreeSet::new();
            if !producers.iter().all(|p| seen.insert(*p)) {
                return invalid("vote names a producer twice");
            }
        }
        Body::PeerHeaders { headers, .. } | Body::HeaderRun { headers, .. } => {
            if headers.is_empty() || headers.len() > MAX_PEER_HEADERS {
                return Err(TxError::Invalid(format!(
                    "peer_headers must carry 1..={MAX_PEER_HEADERS} headers"
                )));
            }
        }
        Body::InboundBatch {
            headers,
            transfers,
            indices,
            ..
        } => check_batch_fields(headers.len(), transfers.len(), indices.len())?,
        Body::SettleBatch {
            headers,
            receipts,
            indices,
            ..
        } => check_batch_fields(headers.len(), receipts.len(), indices.len())?,
        Body::UnregisterProducer
        | Body::SetProxy { .. }
        | Body::Propose { .. }
        | Body::Approve { .. }
        | Body::Evidence { .. }
        | Body::PeerEvidence { .. } => {}
    }
    Ok(())
}

/// A batch carries 1..=[`MAX_BATCH_ITEMS`] items, one index per item, and at most
/// [`MAX_PEER_HEADERS`] headers.
fn check_batch_fields(headers: usize, items: usize, indices: usize) -> Result<(), TxError> {
    if items == 0 || items > MAX_BATCH_ITEMS {
        return Err(TxError::Invalid(format!(
            "a batch carries 1..={MAX_BATCH_ITEMS} items, this one {items}"
        )));
    }
    if indices != items {
        return Err(TxError::Invalid(format!(
            "a batch needs one index per item: {items} items, {indices} indices"
        )));
    }
    if headers > MAX_PEER_HEADERS {
        return Err(TxError::Invalid(format!(
            "a batch carries at most {MAX_PEER_HEADERS} headers"
        )));
    }
    Ok(())
}

/// Runs the body's effect. Returns the receipt outcome and the amount it moved.
pub(crate) fn apply_body(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    tx_hash: &Hash32,
    body: &Body,
) -> Result<(Outcome, u128), TxError> {
    match body {
        Body::Transfer {
            to,
            amount,
            deliver_by,
            fast_fee,
            via,
            ..
        } => transfer(
            o,
            env,
            sender,
            tx_hash,
            to,
            Sending {
                amount: *amount,
                deliver_by: *deliver_by,
                fast_fee: *fast_fee,
                via: *via,
            },
        ),
        Body::Stake { amount } => {
            update_account(o, sender, |a| {
                a.balance = debit(a.balance, *amount)?;
                a.stake = a.stake.checked_add(*amount).ok_or(TxError::Overflow)?;
                Ok(())
            })?;
            Ok((Outcome::Applied, *amount))
        }
        Body::Unstake { amount } => {
            update_account(o, sender, |a| {
                a.stake = a
                    .stake
                    .checked_sub(*amount)
                    .ok_or(TxError::InsufficientStake {
                        need: *amount,
                        have: a.stake,
                    })?;
                Ok(())
            })?;
            start_unbonding(o, env, sender, *amount)?;
            Ok((Outcome::Applied, *amount))
        }
        Body::BondUnderwriter {
            peer,
            signing_key,
            amount,
        } => crate::interchain::fast::bond_underwriter(o, sender, *peer, signing_key, *amount),
        Body::UnbondUnderwriter {
            peer,
            signing_key,
            amount,
        } => {
            crate::interchain::fast::unbond_underwriter(o, env, sender, *peer, signing_key, *amount)
        }
        Body::InboundFast {
            peer,
            header,
            transfer,
            index,
            proof,
            endorsements,
        } => crate::interchain::fast::inbound_fast(
            o,
            env,
            tx_hash,
            &crate::interchain::fast::FastDelivery {
                peer: *peer,
                header,
                transfer,
                index: *index,
                proof,
                endorsements,
            },
        ),
        Body::SlashFast { peer, tx } => crate::interchain::fast::slash_fast(o, env, *peer, tx),
        Body::Forward {
            source,
            source_tx,
            hop,
        } => crate::interchain::forward::forward(o, env, tx_hash, *source, source_tx, hop),
        Body::Release { source, txs } => crate::interchain::forward::release(o, env, *source, txs),
        Body::RegisterProducer { signing_key, url } => {
            register_producer(o, env, sender, signing_key, url)
        }
        Body::UnregisterProducer => {
            let mut p = ledger::producer(o, sender)?
                .filter(|p| p.registered)
                .ok_or(TxError::Invalid(format!(
                    "{sender} is not a registered producer"
                )))?;
            p.registered = false;
            ledger::write(o, keys::producer(sender), &p);
            Ok((Outcome::Applied, 0))
        }
        Body::Vote { producers } => {
            for p in producers {
                if !ledger::producer(o, p)?.is_some_and(|r| r.registered) {
                    return Err(TxError::NotAProducer(*p));
                }
            }
            update_account(o, sender, |a| {
                a.votes = producers.clone();
                Ok(())
            })?;
            Ok((Outcome::Applied, 0))
        }
        Body::SetProxy { proxy } => set_proxy(o, sender, *proxy),
        Body::Propose { action } => {
            let (id, executed) = governance::propose(o, env, sender, action)?;
            Ok((Outcome::Proposal { id, executed }, 0))
        }
        Body::Approve { proposal } => {
            let executed = governance::approve(o, env, sender, *proposal)?;
            Ok((
                Outcome::Proposal {
                    id: *proposal,
                    executed,
                },
                0,
            ))
        }
        Body::DepositCollateral { peer, amount } => {
            let mut record = ledger::peer(o, *peer)?.ok_or(TxError::UnknownPeer(*peer))?;
            update_account(o, sender, |a| {
                a.balance = debit(a.balance, *amount)?;
                Ok(())
            })?;
            record.corr = add_signed(record.corr, *amount)?;
            record.deposited = record
                .deposited
                .checked_add(*amount)
                .ok_or(TxError::Overflow)?;
            ledger::write(o, keys::peer(*peer), &record);
            Ok((Outcome::Applied, *amount))
        }
        Body::WithdrawCollateral { peer, amount } => {
            let mut record = ledger::peer(o, *peer)?.ok_or(TxError::UnknownPeer(*peer))?;
            if &record.registration.owner != sender {
                return Err(TxError::NotPeerOwner(*peer));
            }
            // Only the positive part may leave; credit extended is not withdrawable.
            let available = u128::try_from(record.corr.max(0)).unwrap_or(0);
            if *amount > available {
                return Err(TxError::InsufficientCollateral {
                    peer: *peer,
                    available,
                });
            }
            record.corr = sub_signed(record.corr, *amount)?;
            ledger::write(o, keys::peer(*peer), &record);
            update_account(o, sender, |a| {
                a.balance = a.balance.checked_add(*amount).ok_or(TxError::Overflow)?;
                Ok(())
            })?;
            Ok((Outcome::Applied, *amount))
        }
        Body::Evidence { header_a, header_b } => {
            let ds = check_double_sign(header_a, header_b, &env.rules)?;
            slash(o, env, &ds.producer, ds.slot)
        }
        Body::PeerEvidence {
            peer,
            header_a,
            header_b,
        } => crate::interchain::peer_evidence(o, *peer, header_a, header_b),
        Body::PeerHeaders { peer, headers } | Body::HeaderRun { peer, headers } => {
            crate::interchain::peer_headers(o, env, *peer, headers)
        }
        Body::InboundBatch {
            peer,
            headers,
            source_height,
            transfers,
            indices,
            proof,
        } => crate::interchain::batch::inbound_batch(
            o,
            env,
            tx_hash,
            &BatchProof {
                peer: *peer,
                headers,
                source_height: *source_height,
                indices,
                proof,
            },
            transfers,
        ),
        Body::SettleBatch {
            peer,
            headers,
            source_height,
            receipts,
            indices,
            proof,
        } => crate::interchain::batch::settle_batch(
            o,
            env,
            &BatchProof {
                peer: *peer,
                headers,
                source_height: *source_height,
                indices,
                proof,
            },
            receipts,
        ),
    }
}

fn debit(balance: u128, amount: u128) -> Result<u128, TxError> {
    balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientFunds {
            need: amount,
            have: balance,
        })
}

/// `v + amount` in signed correspondent arithmetic, or `Overflow`.
pub(crate) fn add_signed(v: i128, amount: u128) -> Result<i128, TxError> {
    i128::try_from(amount)
        .ok()
        .and_then(|a| v.checked_add(a))
        .ok_or(TxError::Overflow)
}

/// `v − amount` in signed correspondent arithmetic, or `Overflow`.
pub(crate) fn sub_signed(v: i128, amount: u128) -> Result<i128, TxError> {
    i128::try_from(amount)
        .ok()
        .and_then(|a| v.checked_sub(a))
        .ok_or(TxError::Overflow)
}

/// What a transfer sends: its amount, deadline, fast fee and first hop.
struct Sending {
    amount: u128,
    deliver_by: u64,
    fast_fee: u128,
    via: Option<ChainId>,
}

fn transfer(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    tx_hash: &Hash32,
    to: &QualifiedAddress,
    sending: Sending,
) -> Result<(Outcome, u128), TxError> {
    let Sending {
        amount,
        deliver_by,
        fast_fee,
        via,
    } = sending;
    if to.is_local_to(env.chain_id) {
        if fast_fee != 0 {
            return Err(TxError::Invalid(
                "fast_fee is for transfers to another chain".to_string(),
            ));
        }
        if via.is_some() {
            return Err(TxError::Invalid(
                "via is for transfers to another chain".to_string(),
            ));
        }
        update_account(o, sender, |a| {
            a.balance = debit(a.balance, amount)?;
            Ok(())
        })?;
        update_account(o, &to.address, |a| {
            a.balance = a.balance.checked_add(amount).ok_or(TxError::Overflow)?;
            Ok(())
        })?;
        return Ok((Outcome::Applied, amount));
    }
    // Cross-chain: only to a registered, active peer (a mail server refuses to relay
    // for an unknown domain), or through one (`via`, DESIGN §12).
    let next = match via {
        None => to.chain,
        Some(v) if v == to.chain || v == env.chain_id || v.is_local() => {
            return Err(TxError::Invalid(format!(
                "via must name a chain between this one and {}, not {v}",
                to.chain
            )))
        }
        Some(_) if fast_fee != 0 => {
            return Err(TxError::Invalid(
                "a forwarded transfer (via) cannot take the fast path: fast_fee must be 0"
                    .to_string(),
            ))
        }
        Some(v) => v,
    };
    let mut peer = ledger::peer(o, next)?.ok_or(TxError::UnknownPeer(next))?;
    if peer.suspended {
        return Err(TxError::PeerSuspended(next));
    }
    // In-flight tokens count toward the supply, so the amount (with the fast fee,
    // which travels with it) must fit the signed correspondent arithmetic that
    // settles it later.
    let amount = amount.checked_add(fast_fee).ok_or(TxError::Overflow)?;
    i128::try_from(amount).map_err(|_| TxError::Overflow)?;
    update_account(o, sender, |a| {
        a.balance = debit(a.balance, amount)?;
        Ok(())
    })?;
    let entry = InFlight {
        destination: next,
        sender: *sender,
        recipient: to.address,
        amount,
        deliver_by,
        height: env.height,
        forwarding: None,
    };
    ledger::write(o, keys::in_flight(tx_hash), &entry);
    peer.sent_out += 1;
    peer.volume_out = peer.volume_out.saturating_add(amount);
    ledger::write(o, keys::peer(next), &peer);
    Ok((Outcome::InFlight { destination: next }, amount))
}

/// Puts `amount` (taken from stake or a bond by the caller) into `owner`'s unbonding
/// part, released to its balance `unbonding_blocks` later.
pub(crate) fn start_unbonding(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    amount: u128,
) -> Result<(), TxError> {
    update_account(o, sender, |a| {
        a.unbonding = a.unbonding.checked_add(amount).ok_or(TxError::Overflow)?;
        Ok(())
    })?;
    let release = env
        .height
        .saturating_add(env.params.unbonding_blocks.max(1));
    let key = keys::unbonding(release);
    let mut due: Vec<(Address, u128)> = ledger::read(o, &key)?.unwrap_or_default();
    due.push((*sender, amount));
    ledger::write(o, key, &due);
    Ok(())
}

fn register_producer(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    signing_key: &PublicKey,
    url: &str,
) -> Result<(Outcome, u128), TxError> {
    if let Some(owner) = ledger::producer_by_key(o, signing_key)? {
        if &owner != sender {
            return Err(TxError::KeyInUse(owner));
        }
    }
    let stake = ledger::account(o, sender)?.stake;
    if stake < env.params.min_producer_stake {
        return Err(TxError::InsufficientStake {
            need: env.params.min_producer_stake,
            have: stake,
        });
    }
    let record = match ledger::producer(o, sender)? {
        Some(mut p) => {
            if &p.signing_key != signing_key {
                // The old key may still sign scheduled slots; changing it then would
                // orphan those slots (and the commit/reveal chain). Once it is out of
                // every schedule it may be replaced. Its index entry stays, so that
                // evidence of its past double signing still finds this producer and no
                // other account can take it over.
                let cons = &env.consensus;
                let scheduled = cons.active.contains(&p.signing_key)
                    || cons
                        .pending
                        .as_ref()
                        .is_some_and(|x| x.schedule.contains(&p.signing_key));
                if scheduled {
                    return Err(TxError::Invalid(
                        "cannot change the signing key while the current key is in the active or pending \
                         schedule: unregister, wait until the next schedule drops it, then register the new key"
                            .into(),
                    ));
                }
                p.signing_key = *signing_key;
                p.last_commit = Hash32::ZERO;
                p.last_block_height = 0;
            }
            p.url = url.to_string();
            p.registered = true;
            p
        }
        None => {
            let mut list = ledger::producer_list(o)?;
            list.push(*sender);
            ledger::write(o, keys::PRODUCER_LIST.to_vec(), &list);
            Producer::new(*signing_key, url.to_string())
        }
    };
    ledger::write(o, keys::producer(sender), &record);
    ledger::write(o, keys::producer_key(signing_key), sender);
    Ok((Outcome::Applied, 0))
}

fn set_proxy(
    o: &mut Overlay<'_>,
    sender: &Address,
    proxy: Option<Address>,
) -> Result<(Outcome, u128), TxError> {
    if let Some(p) = proxy {
        if &p == sender {
            return Err(TxError::Invalid(
                "an account cannot be its own proxy".into(),
            ));
        }
        if ledger::account(o, &p)?.proxy.is_some() {
            return Err(TxError::Invalid(format!(
                "{p} has a proxy itself; proxies are one level only"
            )));
        }
        if ledger::account(o, sender)?.delegators > 0 {
            return Err(TxError::Invalid(
                "this account is a proxy for others and cannot choose a proxy".into(),
            ));
        }
    }
    update_account(o, sender, |a| {
        a.proxy = proxy;
        Ok(())
    })?;
    Ok((Outcome::Applied, 0))
}

fn slash(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    key: &PublicKey,
    slot: u64,
) -> Result<(Outcome, u128), TxError> {
    let owner = ledger::producer_by_key(o, key)?
        .ok_or_else(|| TxError::UnknownProducerKey(key.to_string()))?;
    let ev_key = keys::evidence(key, slot);
    if o.get(&ev_key).is_some() {
        return Err(TxError::EvidenceApplied(slot));
    }
    // A producer is slashed once: it is already out of every future schedule, and
    // evidence from the other slots it double-signed before leaving adds nothing.
    if ledger::producer(o, &owner)?.is_some_and(|p| p.slashed) {
        return Err(TxError::AlreadySlashed(owner));
    }
    o.put(ev_key, Vec::new());
    let stake = ledger::account(o, &owner)?.stake;
    // stake × bps / 10000 without overflow: split into quotient and remainder.
    let bps = u128::from(env.params.slash_fraction_bps.min(10_000));
    let penalty = (stake / 10_000) * bps + (stake % 10_000) * bps / 10_000;
    update_account(o, &owner, |a| {
        a.stake -= penalty;
        Ok(())
    })?;
    let mut meta = ledger::meta(o)?;
    meta.burned = meta.burned.checked_add(penalty).ok_or(TxError::Overflow)?;
    ledger::write(o, keys::META.to_vec(), &meta);
    if let Some(mut p) = ledger::producer(o, &owner)? {
        p.slashed = true;
        ledger::write(o, keys::producer(&owner), &p);
    }
    Ok((Outcome::Applied, penalty))
}

/// Whether a chain id names a registered peer (used by mempools for early refusal).
pub fn is_registered_peer(
    kv: &impl ledger::KvRead,
    chain: ChainId,
) -> Result<bool, crate::error::StateError> {
    Ok(ledger::peer(kv, chain)?.is_some())
}
