//! Governance by the active producers (DESIGN §3.1, §5): proposals, approvals, and the
//! actions that execute once ⌊2n/3⌋+1 of the active producers approved.

use crate::{
    address::Address,
    env::BlockEnv,
    error::TxError,
    ledger::{self, keys, PeerChain, Proposal},
    state::Overlay,
    tx::{GovAction, PeerRegistration},
};
use distpos_proofs::{
    light_client::{Checkpoint, Finalized, LightClient, TrustAnchor},
    ChainId, SlotClock,
};

/// The accounts of the producers in the active schedule.
fn active_accounts(o: &Overlay<'_>, env: &BlockEnv) -> Result<Vec<Address>, TxError> {
    let mut out = Vec::new();
    for k in &env.consensus.active.producers {
        if let Some(a) = ledger::producer_by_key(o, k)? {
            out.push(a);
        }
    }
    Ok(out)
}

/// `Propose`: opens a proposal approved by its proposer; executes at once if that is
/// already enough. Returns its id and whether it executed.
pub(crate) fn propose(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    action: &GovAction,
) -> Result<(u64, bool), TxError> {
    let active = active_accounts(o, env)?;
    if !active.contains(sender) {
        return Err(TxError::NotActiveProducer(*sender));
    }
    check_action(o, env, action)?;
    let mut meta = ledger::meta(o)?;
    let id = meta.next_proposal;
    meta.next_proposal += 1;
    ledger::write(o, keys::META.to_vec(), &meta);
    let proposal = Proposal {
        id,
        action: action.clone(),
        proposer: *sender,
        approvals: vec![*sender],
        expires_at: env
            .height
            .saturating_add(env.params.proposal_lifetime_blocks),
    };
    settle(o, env, proposal, &active).map(|executed| (id, executed))
}

/// `Approve`: adds an active producer's approval; executes when enough approved
/// (returned).
pub(crate) fn approve(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    id: u64,
) -> Result<bool, TxError> {
    let active = active_accounts(o, env)?;
    if !active.contains(sender) {
        return Err(TxError::NotActiveProducer(*sender));
    }
    let mut proposal: Proposal =
        ledger::read(o, &keys::proposal(id))?.ok_or(TxError::UnknownProposal(id))?;
    if env.height > proposal.expires_at {
        return Err(TxError::ProposalExpired(id));
    }
    if proposal.approvals.contains(sender) {
        return Err(TxError::AlreadyApproved(*sender, id));
    }
    proposal.approvals.push(*sender);
    settle(o, env, proposal, &active)
}

/// Executes the proposal if enough of the *current* active producers approved it
/// (returns true), otherwise stores it.
fn settle(
    o: &mut Overlay<'_>,
    env: &BlockEnv,
    proposal: Proposal,
    active: &[Address],
) -> Result<bool, TxError> {
    let approvals = proposal
        .approvals
        .iter()
        .filter(|a| active.contains(a))
        .count();
    if approvals >= env.consensus.active.threshold() {
        execute(o, env, &proposal.action)?;
        o.delete(keys::proposal(proposal.id));
        Ok(true)
    } else {
        ledger::write(o, keys::proposal(proposal.id), &proposal);
        Ok(false)
    }
}

/// Checks an action could execute now.
fn check_action(o: &Overlay<'_>, env: &BlockEnv, action: &GovAction) -> Result<(), TxError> {
    match action {
        GovAction::RegisterPeer(reg) => check_registration(o, env.chain_id, reg),
        GovAction::UpdatePeer { chain, .. }
        | GovAction::SuspendPeer { chain }
        | GovAction::ResumePeer { chain } => ledger::peer(o, *chain)?
            .map(|_| ())
            .ok_or(TxError::UnknownPeer(*chain)),
        GovAction::SetParams(p) => Ok(env.params.validate_change(p)?),
        GovAction::ResetPeerClient { chain, anchor } => {
            let peer = ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            check_reset(&peer, anchor).map(|_| ())
        }
        GovAction::RemovePeer { chain } => {
            let peer = ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            check_removal(&peer)?;
            crate::interchain::forward::check_removable(o, *chain)?;
            crate::interchain::fast::check_removable(o, *chain)
        }
        GovAction::SetFastPolicy { chain, policy } => {
            ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            policy.validate()
        }
        GovAction::SetPeerPolicy { chain, policy } => {
            ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            policy.validate()
        }
        GovAction::CancelDelayed { chain, tx } => {
            match crate::interchain::forward::held(o, *chain, tx)? {
                Some(h)
                    if matches!(
                        h.state,
                        crate::interchain::forward::HeldState::Delayed { .. }
                    ) =>
                {
                    Ok(())
                }
                _ => Err(TxError::Governance(format!(
                    "no transfer {tx} from chain {chain} is delayed"
                ))),
            }
        }
    }
}

/// A light client of `peer` restarted at `anchor`, if that is a newer checkpoint of
/// the same chain than the one it holds.
fn check_reset(peer: &PeerChain, anchor: &Checkpoint) -> Result<LightClient, TxError> {
    let lc = &peer.light_client;
    if anchor.height() <= lc.lib() {
        return Err(TxError::Governance(format!(
            "a reset needs a checkpoint above the light client's (height {}); this one is at height {}",
            lc.lib(),
            anchor.height()
        )));
    }
    let reg = PeerRegistration {
        anchor: anchor.clone(),
        ..peer.registration.clone()
    };
    LightClient::new(&trust_anchor(&reg))
        .map_err(|e| TxError::Governance(format!("peer trust anchor invalid: {e}")))
}

/// A peer may be removed only when nothing binds the two chains any more: no transfer
/// of ours to it waits for its receipt, and its correspondent account is zero (no
/// collateral held for it, no credit it owes).
fn check_removal(peer: &PeerChain) -> Result<(), TxError> {
    let chain = peer.registration.chain;
    let settled = peer.acked_out.saturating_add(peer.refunded_out);
    let in_flight = peer.sent_out.saturating_sub(settled);
    if in_flight > 0 {
        return Err(TxError::Governance(format!(
            "chain {chain} cannot be removed: {in_flight} transfers to it are in flight (wait for their receipts)"
        )));
    }
    if peer.corr > 0 {
        return Err(TxError::Governance(format!(
            "chain {chain} cannot be removed: its correspondent account holds {} (the owner withdraws it first)",
            peer.corr
        )));
    }
    if peer.corr < 0 {
        return Err(TxError::Governance(format!(
            "chain {chain} cannot be removed: it owes {} on credit",
            peer.corr.unsigned_abs()
        )));
    }
    Ok(())
}

/// Checks a peer registration: another, real chain, not yet registered, with a usable
/// trust anchor (identity, clock and checkpoint).
pub(crate) fn check_registration(
    o: &impl ledger::KvRead,
    ours: ChainId,
    reg: &PeerRegistration,
) -> Result<(), TxError> {
    let refuse = |m: String| Err(TxError::Governance(m));
    if reg.chain.is_local() || reg.chain == ours {
        return refuse(format!(
            "chain {} cannot be registered as a peer of chain {ours}",
            reg.chain
        ));
    }
    if ledger::peer(o, reg.chain)?.is_some() {
        return refuse(format!("chain {} is already a registered peer", reg.chain));
    }
    if reg.identity.is_zero() {
        return refuse("peer identity hash is zero".into());
    }
    if reg.block_interval_ms == 0 {
        return refuse("peer block_interval_ms is zero".into());
    }
    trust_anchor(reg)
        .validate()
        .or_else(|e| refuse(format!("peer trust anchor invalid: {e}")))
}

/// Registers a peer: its record, and the summary of its checkpoint's header (if not
/// genesis), against which proofs of that block are checked.
pub(crate) fn add_peer(o: &mut Overlay<'_>, reg: &PeerRegistration) -> Result<(), TxError> {
    let peer = new_peer(reg)?;
    if let Some(h) = &reg.anchor.header {
        ledger::write(
            o,
            keys::peer_header(reg.chain, h.header.height),
            &Finalized::of(h),
        );
    }
    ledger::write(o, keys::peer(reg.chain), &peer);
    Ok(())
}

/// Creates the record of a newly registered peer.
fn new_peer(reg: &PeerRegistration) -> Result<PeerChain, TxError> {
    let light_client = LightClient::new(&trust_anchor(reg))
        .map_err(|e| TxError::Governance(format!("peer trust anchor invalid: {e}")))?;
    Ok(PeerChain {
        registration: reg.clone(),
        suspended: false,
        corr: 0,
        deposited: 0,
        delivered_in: 0,
        bounced_in: 0,
        bounces: Default::default(),
        equivocations: 0,
        volume_in: 0,
        sent_out: 0,
        volume_out: 0,
        acked_out: 0,
        refunded_out: 0,
        light_client,
    })
}

/// The trust anchor of a registered peer: its identity, clock and checkpoint. Peer
/// headers may be dated up to one peer block interval (at least 1 s) ahead of our
/// block time.
pub fn trust_anchor(reg: &PeerRegistration) -> TrustAnchor {
    TrustAnchor {
        chain_id: reg.chain,
        identity: reg.identity,
        clock: SlotClock {
            genesis_time_ms: reg.genesis_time_ms,
            interval_ms: reg.block_interval_ms,
        },
        max_drift_ms: reg.block_interval_ms.max(1_000),
        checkpoint: reg.anchor.clone(),
    }
}

fn execute(o: &mut Overlay<'_>, env: &BlockEnv, action: &GovAction) -> Result<(), TxError> {
    check_action(o, env, action)?;
    match action {
        GovAction::RegisterPeer(reg) => add_peer(o, reg)?,
        GovAction::UpdatePeer {
            chain,
            owner,
            credit_limit,
            low_watermark,
        } => {
            let mut peer = ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            peer.registration.owner = *owner;
            peer.registration.credit_limit = *credit_limit;
            peer.registration.low_watermark = *low_watermark;
            ledger::write(o, keys::peer(*chain), &peer);
        }
        GovAction::SuspendPeer { chain } | GovAction::ResumePeer { chain } => {
            let mut peer = ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            peer.suspended = matches!(action, GovAction::SuspendPeer { .. });
            ledger::write(o, keys::peer(*chain), &peer);
        }
        GovAction::SetParams(p) => ledger::write(o, keys::PARAMS.to_vec(), p),
        GovAction::ResetPeerClient { chain, anchor } => {
            let mut peer = ledger::peer(o, *chain)?.ok_or(TxError::UnknownPeer(*chain))?;
            peer.light_client = check_reset(&peer, anchor)?;
            peer.registration.anchor = anchor.clone();
            if let Some(h) = &anchor.header {
                ledger::write(
                    o,
                    keys::peer_header(*chain, h.header.height),
                    &Finalized::of(h),
                );
            }
            ledger::write(o, keys::peer(*chain), &peer);
        }
        GovAction::SetFastPolicy { chain, policy } => {
            crate::interchain::fast::set_policy(o, *chain, policy)?;
        }
        GovAction::SetPeerPolicy { chain, policy } => {
            crate::interchain::policy::set_policy(o, *chain, policy)?;
        }
        GovAction::CancelDelayed { chain, tx } => {
            crate::interchain::policy::cancel(o, env, *chain, tx)?;
        }
        GovAction::RemovePeer { chain } => {
            o.delete(keys::peer(*chain));
            crate::interchain::fast::forget(o, *chain);
            o.delete(keys::policy(*chain));
            // Its irreversible header summaries go with it (at most the window);
            // what it delivered stays consumed, so a later registration cannot
            // deliver it again.
            let from = keys::peer_header(*chain, 0);
            let to = keys::peer_header(*chain, u64::MAX);
            for (k, _) in o.range(&from, &to, usize::MAX) {
                o.delete(k);
            }
            o.delete(to);
            // And the evidence against its producers, which its record counted (a
            // later registration starts a new record, and may count it again).
            let from = keys::peer_evidence_of(*chain);
            let mut to = from.clone();
            to.extend_from_slice(&[0xff; 48]);
            for (k, _) in o.range(&from, &to, usize::MAX) {
                o.delete(k);
            }
        }
    }
    Ok(())
}
