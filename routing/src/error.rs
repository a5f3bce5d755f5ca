//! The one error type of the crate.

use distpos_proofs::{ChainId, Hash32};

/// Why a transfer cannot be routed (or a routing config is refused).
///
/// Callers mostly need to tell permanent outcomes (bounce the transfer) from temporary
/// ones (keep it queued and retry): see [`RoutingError::is_temporary`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// The destination is our own chain: forwarding there would loop.
    #[error("chain {0} is our own chain; refusing to forward to it")]
    OwnChain(ChainId),
    /// The transfer has already passed through more gateways than allowed.
    #[error("transfer has passed {hops} hops; the limit is {max}")]
    TooManyHops {
        /// Hops the transfer carries.
        hops: u8,
        /// The configured `max_hops`.
        max: u8,
    },
    /// DNS says the chain does not exist (NXDOMAIN, no SRV records, or an SRV target of
    /// "."). Permanent; cached for `negative_ttl_ms`.
    #[error("no such chain {0}: DNS has no distpos service for it")]
    NoSuchChain(ChainId),
    /// The DNS route's `v=distpos1 id=` TXT record names another chain identity.
    #[error("DNS route for chain {chain} claims identity {found}, expected {expected}")]
    IdentityMismatch {
        /// The chain being resolved.
        chain: ChainId,
        /// The identity the caller expected.
        expected: Hash32,
        /// The identity published in DNS.
        found: Hash32,
    },
    /// A DNS route has no usable `v=distpos1 id=` TXT record although an identity was
    /// expected.
    #[error("DNS route for chain {0} has no `v=distpos1 id=` TXT record")]
    IdentityMissing(ChainId),
    /// DNS failed (timeout, SERVFAIL, refused, …) and nothing was cached to fall back on.
    #[error("temporary DNS failure for chain {chain}: {reason}")]
    Temporary {
        /// The chain being resolved.
        chain: ChainId,
        /// What went wrong.
        reason: String,
    },
    /// No static route, no override, and DNS discovery is not configured.
    #[error("no route to chain {0}: no static route and DNS discovery is not configured")]
    NoRoute(ChainId),
    /// The routing configuration is invalid; the message names the field.
    #[error("routing config: {0}")]
    Config(String),
}

impl RoutingError {
    /// True when trying again later may succeed (only [`RoutingError::Temporary`]);
    /// every other error is a permanent verdict for this transfer.
    pub fn is_temporary(&self) -> bool {
        matches!(self, RoutingError::Temporary { .. })
    }
}
