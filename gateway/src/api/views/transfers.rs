//! JSON projections of the cross-chain state: correspondent accounts, and the
//! lifecycle of a transfer on either side.

use crate::{
    interchain::stall::{PeerWatch, Stall},
    node::{snapshot::Snapshot, NodeError},
    queue::{OutboundQueue, QueueItem},
};
use distpos_adapters::TransferStage;
use distpos_chain::{
    interchain::{self, correspondent_status, CorrespondentStatus, InboundRecord, SettledRecord},
    ledger::{self, PeerChain},
    tx::{BounceReason, Outcome},
};
use distpos_proofs::{codec, ChainId, Hash32};
use serde::Serialize;

/// One correspondent account (`GET /v1/correspondents/{chain}`).
#[derive(Serialize)]
pub struct CorrespondentView {
    /// The peer chain.
    pub chain: ChainId,
    /// The peer's identity hash.
    pub identity: Hash32,
    /// Owner account here.
    pub owner: distpos_chain::Address,
    /// `corr`: collateral + acknowledged outbound − delivered inbound (signed).
    #[serde(with = "distpos_chain::amount::dec_i128")]
    pub collateral: i128,
    /// Collateral deposited in total.
    #[serde(with = "codec::dec_u128")]
    pub deposited: u128,
    /// Held for inbound transfers waiting in the mempool.
    #[serde(with = "codec::dec_u128")]
    pub reserved: u128,
    /// `corr − reserved + credit_limit`.
    #[serde(with = "distpos_chain::amount::dec_i128")]
    pub available: i128,
    /// Credit extended beyond collateral.
    #[serde(with = "codec::dec_u128")]
    pub credit_limit: u128,
    /// Below this available amount the status is `low`.
    #[serde(with = "codec::dec_u128")]
    pub low_watermark: u128,
    /// ok / low / exhausted / suspended (the ledger's), or `stalled` when our light
    /// client of the peer cannot advance (this node's view; the reason is in
    /// `light_client.stalled`).
    pub status: PeerStatus,
    /// Inbound transfers delivered / bounced, volume in.
    pub delivered_in: u64,
    /// Inbound transfers bounced.
    pub bounced_in: u64,
    /// Inbound transfers this chain bounced, by reason (`insufficient_collateral`…).
    pub bounces: std::collections::BTreeMap<distpos_chain::tx::BounceReason, u64>,
    /// Transfers proven in the peer's irreversible blocks that broke the rules
    /// (bounced `malformed`).
    pub refused_proofs: u64,
    /// Equivocations among the peer's producers we hold evidence of.
    pub equivocations: u64,
    /// Volume delivered inbound.
    #[serde(with = "codec::dec_u128")]
    pub volume_in: u128,
    /// Outbound transfers sent / acknowledged / refunded, volume out.
    pub sent_out: u64,
    /// Outbound transfers acknowledged.
    pub acked_out: u64,
    /// Outbound transfers refunded.
    pub refunded_out: u64,
    /// Volume sent outbound.
    #[serde(with = "codec::dec_u128")]
    pub volume_out: u128,
    /// Our light client of the peer.
    pub light_client: LightClientView,
    /// Who relays to the peer now (DESIGN §6.1).
    pub relay_duty: RelayDutyView,
    /// The peer's reputation here, 0–100, from on-chain facts (DESIGN §13): bounces
    /// by reason, proofs refused, equivocations, collateral, light-client lag.
    pub reputation: u32,
    /// Our admission policy for the peer and what it has done (bucket level,
    /// transfers delayed and refused).
    pub policy: distpos_chain::interchain::policy::PolicyBook,
}

/// How a peer stands, as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerStatus {
    /// Enough available collateral.
    Ok,
    /// Available below the low watermark.
    Low,
    /// Nothing available: inbound transfers bounce.
    Exhausted,
    /// Suspended by governance.
    Suspended,
    /// Our light client of it cannot advance: nothing from it can be proven.
    Stalled,
}

impl PeerStatus {
    /// Every status (the values of the `status` label of
    /// `distpos_correspondent_status`).
    pub const ALL: [PeerStatus; 5] = [
        PeerStatus::Ok,
        PeerStatus::Low,
        PeerStatus::Exhausted,
        PeerStatus::Suspended,
        PeerStatus::Stalled,
    ];

    /// Its name, as it is spelled in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerStatus::Ok => "ok",
            PeerStatus::Low => "low",
            PeerStatus::Exhausted => "exhausted",
            PeerStatus::Suspended => "suspended",
            PeerStatus::Stalled => "stalled",
        }
    }
}

/// How peer `p` stands with this node: the amount available to its inbound transfers
/// (`reserved` held for those in the mempool) and its status, `stalled` when our light
/// client of it cannot advance (unless governance suspended it: that says more).
pub fn standing(p: &PeerChain, reserved: u128, stalled: bool) -> (i128, PeerStatus) {
    let (available, status) = correspondent_status(p, reserved);
    let status = match (status, stalled) {
        (CorrespondentStatus::Suspended, _) | (_, false) => status.into(),
        (_, true) => PeerStatus::Stalled,
    };
    (available, status)
}

/// Time of the header at the head of our light client of `p`: the newest of its
/// branch, or its irreversible one's (stored in the ledger).
pub fn light_client_head_time(snap: &Snapshot, p: &PeerChain) -> Option<u64> {
    interchain::policy::head_time(&snap.state, p.registration.chain, p)
}

impl From<CorrespondentStatus> for PeerStatus {
    fn from(s: CorrespondentStatus) -> Self {
        match s {
            CorrespondentStatus::Ok => Self::Ok,
            CorrespondentStatus::Low => Self::Low,
            CorrespondentStatus::Exhausted => Self::Exhausted,
            CorrespondentStatus::Suspended => Self::Suspended,
        }
    }
}

/// The relaying duty to one peer.
#[derive(Serialize)]
pub struct RelayDutyView {
    /// The producer whose node relays now.
    pub holder: Option<distpos_proofs::PublicKey>,
    /// This node is that producer's.
    pub ours: bool,
}

/// Light-client position.
#[derive(Serialize)]
pub struct LightClientView {
    /// Head height.
    pub head: u64,
    /// Irreversible height.
    pub lib: u64,
    /// Time of its head header.
    pub head_time_ms: Option<u64>,
    /// Age of its head header.
    pub head_age_ms: Option<u64>,
    /// Height of the checkpoint it was started (or last reset) at.
    pub anchor_height: u64,
    /// Why it cannot advance, if it cannot.
    pub stalled: Option<Stall>,
}

fn view(snap: &Snapshot, watch: &PeerWatch, p: &PeerChain, now_ms: u64) -> CorrespondentView {
    let chain = p.registration.chain;
    let reserved = snap.reserved.get(&chain).copied().unwrap_or(0);
    let stalled = watch.stall(chain);
    let (available, status) = standing(p, reserved, stalled.is_some());
    let lc = &p.light_client;
    let head_time = light_client_head_time(snap, p);
    let policy = distpos_chain::interchain::policy::book(&snap.state, chain).unwrap_or_default();
    CorrespondentView {
        reputation: distpos_chain::interchain::policy::reputation(p, head_time, now_ms),
        policy,
        chain,
        identity: p.registration.identity,
        owner: p.registration.owner,
        collateral: p.corr,
        deposited: p.deposited,
        reserved,
        available,
        credit_limit: p.registration.credit_limit,
        low_watermark: p.registration.low_watermark,
        status,
        delivered_in: p.delivered_in,
        bounced_in: p.bounced_in,
        bounces: p.bounces.clone(),
        refused_proofs: p.refused_proofs(),
        equivocations: p.equivocations,
        volume_in: p.volume_in,
        sent_out: p.sent_out,
        acked_out: p.acked_out,
        refunded_out: p.refunded_out,
        volume_out: p.volume_out,
        relay_duty: RelayDutyView {
            holder: crate::relay::duty_holder(&snap.consensus.active, chain, now_ms),
            ours: crate::relay::on_duty(snap, chain, now_ms),
        },
        light_client: LightClientView {
            head: lc.head(),
            lib: lc.lib(),
            head_time_ms: head_time,
            head_age_ms: head_time.map(|t| now_ms.saturating_sub(t)),
            anchor_height: p.registration.anchor.height(),
            stalled,
        },
    }
}

/// Every registered peer's correspondent account.
pub fn correspondents(
    snap: &Snapshot,
    watch: &PeerWatch,
    now_ms: u64,
) -> Result<Vec<CorrespondentView>, NodeError> {
    let mut out = Vec::new();
    for (k, v) in snap.state.scan_prefix(ledger::keys::PEER) {
        let p: PeerChain = codec::decode_canonical(v)
            .map_err(|e| NodeError::Inconsistent(format!("peer record {}: {e}", hex::encode(k))))?;
        out.push(view(snap, watch, &p, now_ms));
    }
    Ok(out)
}

/// One peer's correspondent account.
pub fn correspondent(
    snap: &Snapshot,
    watch: &PeerWatch,
    chain: ChainId,
    now_ms: u64,
) -> Result<Option<CorrespondentView>, NodeError> {
    Ok(ledger::peer(&snap.state, chain)?.map(|p| view(snap, watch, &p, now_ms)))
}

/// The cross-chain part of `GET /v1/txs/{hash}`.
#[derive(Serialize)]
pub struct CrossChainView {
    /// `outbound` (we sent it) or `inbound` (we received it).
    pub direction: &'static str,
    /// Where the transfer is (outbound) or how it ended (inbound).
    pub stage: TransferStage,
    /// Why the destination bounced it: set when it was `refunded` (outbound, as the
    /// destination's receipt said) or `bounced` (inbound); `null` otherwise.
    pub bounce_reason: Option<BounceReason>,
    /// The chain that bounced it, when it was refunded: the peer, or a chain beyond
    /// it that the transfer was forwarded to (DESIGN §12).
    pub bounced_by: Option<ChainId>,
    /// The other chain.
    pub peer: ChainId,
    /// The relay item, if queued.
    pub relay: Option<QueueItem>,
    /// How it settled (outbound).
    pub settled: Option<SettledRecord>,
    /// What we recorded (inbound).
    pub inbound: Option<InboundRecord>,
    /// Inbound: how it came, `fast` (on its underwriters' endorsements, before its
    /// block was irreversible at the source; DESIGN §11) or `ordinary`.
    pub path: Option<&'static str>,
    /// Inbound on the fast path: its block, shares, and where it stands (`locked`
    /// until the ordinary proof, then `proven`; `slashed`, `returned`).
    pub fast: Option<distpos_chain::interchain::fast::FastRecord>,
    /// Inbound for another chain (DESIGN §12): what we hold while its onward leg is
    /// decided and settles (state `awaiting_hop`, `forwarded` with the leg, `settled`).
    pub forwarding: Option<distpos_chain::interchain::forward::Held>,
}

/// The cross-chain lifecycle of `hash`, if it is a cross-chain transfer seen here.
pub fn cross_chain(
    snap: &Snapshot,
    queue: &OutboundQueue,
    hash: &Hash32,
) -> Result<Option<CrossChainView>, NodeError> {
    // Outbound: our transfer.
    let in_flight = ledger::in_flight(&snap.state, hash)?;
    let settled = interchain::settled_record(&snap.state, hash)?;
    let relay = queue.for_transfer(hash)?;
    if in_flight.is_some() || settled.is_some() || relay.is_some() {
        let peer = in_flight
            .as_ref()
            .map(|f| f.destination)
            .or(settled.as_ref().map(|s| s.destination))
            .or(relay.as_ref().map(|r| r.destination))
            .unwrap_or_default();
        let stage = match (&settled, &relay) {
            (Some(s), _) if s.delivered() => TransferStage::SettledDelivered,
            (Some(_), _) => TransferStage::Refunded,
            (None, Some(r)) => match r.state {
                crate::queue::ItemState::Delivered => TransferStage::Delivered,
                crate::queue::ItemState::Expired => TransferStage::Expired,
                _ => TransferStage::Forwarding,
            },
            (None, None) => TransferStage::InFlight,
        };
        return Ok(Some(CrossChainView {
            direction: "outbound",
            stage,
            bounce_reason: settled.as_ref().and_then(|s| s.bounced),
            bounced_by: settled.as_ref().and_then(|s| s.bounced_by),
            peer,
            relay,
            settled,
            inbound: None,
            path: None,
            fast: None,
            forwarding: None,
        }));
    }
    // Inbound: a transfer from one of our peers.
    for (_, v) in snap.state.scan_prefix(ledger::keys::PEER) {
        let Ok(p) = codec::decode_canonical::<PeerChain>(v) else {
            continue;
        };
        let peer = p.registration.chain;
        if let Some(rec) = interchain::inbound_record(&snap.state, peer, hash)? {
            let (stage, bounce_reason) = match rec.outcome {
                Outcome::Delivered { .. } | Outcome::FastDelivered { .. } => {
                    (TransferStage::Delivered, None)
                }
                Outcome::Bounced { reason, .. } => (TransferStage::Bounced, Some(reason)),
                Outcome::Held { .. } => (TransferStage::Forwarding, None),
                _ => (TransferStage::Bounced, None),
            };
            let forwarding = interchain::forward::held(&snap.state, peer, hash)?;
            let stage = match &forwarding {
                Some(h) if matches!(h.state, interchain::forward::HeldState::Delayed { .. }) => {
                    TransferStage::Delayed
                }
                _ => stage,
            };
            let fast = interchain::fast::record(&snap.state, peer, hash)?;
            let relay = queue.get(&crate::queue::batch_receipts_id(peer, rec.height))?;
            return Ok(Some(CrossChainView {
                direction: "inbound",
                stage,
                bounce_reason,
                bounced_by: None,
                peer,
                relay,
                settled: None,
                inbound: Some(rec),
                path: Some(if fast.is_some() { "fast" } else { "ordinary" }),
                fast,
                forwarding,
            }));
        }
    }
    Ok(None)
}
