//! The label sets of the metric families. `chain` (our chain id) is not among them: it
//! is a label of the registry, on every series.

use distpos_chain::{tx::BounceReason, Address};
use distpos_proofs::ChainId;
use prometheus_client::encoding::EncodeLabelSet;

/// A peer chain.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// Its chain id.
    pub peer: String,
}

impl PeerLabels {
    /// The labels of `peer`.
    pub fn new(peer: ChainId) -> Self {
        Self {
            peer: peer.to_string(),
        }
    }
}

/// Where relay items go (a peer chain).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    /// Its chain id.
    pub destination: String,
}

impl DestinationLabels {
    /// The labels of `destination`.
    pub fn new(destination: ChainId) -> Self {
        Self {
            destination: destination.to_string(),
        }
    }
}

/// A block producer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProducerLabels {
    /// Its account (checksummed hex).
    pub producer: String,
}

impl ProducerLabels {
    /// The labels of the producer registered by `account`.
    pub fn new(account: &Address) -> Self {
        Self {
            producer: account.to_string(),
        }
    }
}

/// One of the statuses a peer can be in (a series per status, 1 for the current one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerStatusLabels {
    /// The peer chain.
    pub peer: String,
    /// `ok`, `low`, `exhausted`, `suspended` or `stalled`.
    pub status: &'static str,
}

/// A transfer's fate, decided by a block of ours.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    /// The other chain (the source of an inbound transfer, the destination of ours).
    pub peer: String,
    /// One of [`TransferLabels::OUTCOMES`].
    pub outcome: &'static str,
    /// Why it bounced (bounced and refunded only; empty otherwise).
    pub reason: &'static str,
}

impl TransferLabels {
    /// Inbound, credited to its recipient here.
    pub const DELIVERED: &'static str = "delivered";
    /// Inbound, refused here (the source refunds it).
    pub const BOUNCED: &'static str = "bounced";
    /// Ours, delivered at the destination and settled here.
    pub const ACKNOWLEDGED: &'static str = "acknowledged";
    /// Ours, bounced at the destination and refunded here.
    pub const REFUNDED: &'static str = "refunded";
    /// Inbound, delivered on the fast path before: its ordinary proof arrived and its
    /// underwriters' shares were released (counted once more, not as a delivery).
    pub const FAST_PROVEN: &'static str = "fast_proven";
    /// Inbound, delivered on the fast path: its block was orphaned and its
    /// underwriters' shares were slashed.
    pub const FAST_SLASHED: &'static str = "fast_slashed";
    /// Every outcome.
    pub const OUTCOMES: [&'static str; 6] = [
        Self::DELIVERED,
        Self::BOUNCED,
        Self::ACKNOWLEDGED,
        Self::REFUNDED,
        Self::FAST_PROVEN,
        Self::FAST_SLASHED,
    ];

    /// The labels of a transfer with `peer` that ended in `outcome`, bounced for
    /// `reason` if it did.
    pub fn new(peer: ChainId, outcome: &'static str, reason: Option<BounceReason>) -> Self {
        Self {
            peer: peer.to_string(),
            outcome,
            reason: reason.map_or("", BounceReason::as_str),
        }
    }

    /// Every series of `peer`: delivered and acknowledged, and bounced and refunded
    /// for each reason. Created at zero as soon as the peer is registered, so that the
    /// first transfer of each kind counts in `rate()` / `increase()`.
    pub fn all_for(peer: ChainId) -> Vec<Self> {
        let mut out = vec![
            Self::new(peer, Self::DELIVERED, None),
            Self::new(peer, Self::ACKNOWLEDGED, None),
        ];
        for reason in bounce_reasons() {
            out.push(Self::new(peer, Self::BOUNCED, Some(reason)));
            out.push(Self::new(peer, Self::REFUNDED, Some(reason)));
        }
        out
    }
}

/// Every bounce reason.
fn bounce_reasons() -> [BounceReason; 13] {
    use BounceReason::*;
    // A reason added to the enum fails this match: list it below too.
    let listed = |r: BounceReason| match r {
        Expired
        | PeerSuspended
        | InsufficientCollateral
        | BadRecipient
        | NoForwarding
        | NoRoute
        | Loop
        | HopLimit
        | BelowTransitFee
        | AboveMaxTransfer
        | LowReputation
        | Cancelled
        | Malformed => r,
    };
    [
        listed(Expired),
        listed(PeerSuspended),
        listed(InsufficientCollateral),
        listed(BadRecipient),
        listed(NoForwarding),
        listed(NoRoute),
        listed(Loop),
        listed(HopLimit),
        listed(BelowTransitFee),
        listed(AboveMaxTransfer),
        listed(LowReputation),
        listed(Cancelled),
        listed(Malformed),
    ]
}

/// What the daemon was built from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The git revision, or `unknown`.
    pub git: &'static str,
}
