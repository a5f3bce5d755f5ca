//! JSON projections for linking chains (DESIGN §14): this chain's trust anchor, and the
//! open governance proposals.

use crate::node::{snapshot::Snapshot, NodeError};
use distpos_chain::{
    ledger::{self, Proposal},
    tx::PeerAnchor,
    Address,
};
use distpos_proofs::{consensus::ConsensusState, light_client::Checkpoint};
use serde::Serialize;

/// Most proposals one listing shows (only active producers can open them).
pub const MAX_LISTED_PROPOSALS: usize = 1_000;

/// `GET /v1/anchor[?height=H]`: this chain's identity and clock, and an irreversible
/// block (the last one, or the one at `H` ≤ LIB) with the consensus state after it:
/// what another chain's light client of this one starts from. At height 0 (or before
/// anything is irreversible) the checkpoint is the genesis. `None` for a height above
/// the LIB (not irreversible, so no anchor).
pub fn anchor(snap: &Snapshot, height: Option<u64>) -> Result<Option<PeerAnchor>, NodeError> {
    let info = &snap.info;
    let lib = snap.consensus.lib;
    let at = height.unwrap_or(lib);
    if at > lib {
        return Ok(None);
    }
    let checkpoint = if at == 0 {
        Checkpoint {
            header: None,
            consensus: ConsensusState::genesis(info.genesis.schedule())
                .map_err(|e| NodeError::Inconsistent(format!("genesis schedule: {e}")))?,
        }
    } else {
        let id = if at == lib {
            snap.lib_id
        } else {
            snap.store.id_at(at)?.ok_or_else(|| {
                NodeError::Inconsistent(format!("no canonical block at irreversible height {at}"))
            })?
        };
        let block = snap
            .store
            .block(&id)?
            .ok_or_else(|| NodeError::Inconsistent(format!("irreversible block {id} missing")))?;
        let consensus = snap.store.consensus(&id)?.ok_or_else(|| {
            NodeError::Inconsistent(format!("no consensus state for irreversible block {id}"))
        })?;
        Checkpoint {
            header: Some(block.header),
            consensus,
        }
    };
    Ok(Some(PeerAnchor {
        chain: info.genesis.chain_id,
        identity: info.identity,
        genesis_time_ms: info.rules.clock.genesis_time_ms,
        block_interval_ms: info.rules.clock.interval_ms,
        anchor: checkpoint,
    }))
}

/// `GET /v1/proposals`.
#[derive(Serialize)]
pub struct ProposalsView {
    /// Approvals a proposal needs (⌊2n/3⌋+1 of the active producers).
    pub threshold: usize,
    /// Head height (a proposal may be approved up to its `expires_at`).
    pub head: u64,
    /// The open proposals, oldest first.
    pub proposals: Vec<ProposalView>,
}

/// One open proposal.
#[derive(Serialize)]
pub struct ProposalView {
    /// Its id (what `tx approve --proposal` takes).
    pub id: u64,
    /// What it does.
    pub action: distpos_chain::tx::GovAction,
    /// Who proposed it.
    pub proposer: Address,
    /// Who approved it (the proposer first).
    pub approvals: Vec<Address>,
    /// Approvals by producers active now (those that count).
    pub active_approvals: usize,
    /// Last height at which it may be approved.
    pub expires_at: u64,
}

/// The open proposals.
pub fn proposals(snap: &Snapshot) -> Result<ProposalsView, NodeError> {
    let mut active = Vec::new();
    for k in &snap.consensus.active.producers {
        if let Some(a) = ledger::producer_by_key(&snap.state, k)? {
            active.push(a);
        }
    }
    let proposals = ledger::proposals(&snap.state, MAX_LISTED_PROPOSALS)?
        .into_iter()
        .map(|p: Proposal| ProposalView {
            id: p.id,
            active_approvals: p.approvals.iter().filter(|a| active.contains(a)).count(),
            action: p.action,
            proposer: p.proposer,
            approvals: p.approvals,
            expires_at: p.expires_at,
        })
        .collect();
    Ok(ProposalsView {
        threshold: snap.consensus.active.threshold(),
        head: snap.head_height,
        proposals,
    })
}
