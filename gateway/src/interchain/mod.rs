//! The node's side of cross-chain transfers (interchain v2, DESIGN §6.1): batches of
//! transfers and receipts from peer chains are checked when they arrive, held until
//! our next block, and put in it by its producer as system transactions carrying the
//! run of the peer's headers that proves them ([`batch`]).
//!
//! The ledger decides everything (`distpos_chain::interchain`); this module only makes
//! sure each batch leads to at most one transaction at a time, that what a peer can
//! make us hold is bounded, and that nothing waits forever. The per-transfer
//! `Inbound`/`Settle` transactions of interchain v1 are retired: their routes answer
//! 410 (see `api::peer`).

pub mod batch;
pub mod fast;
pub mod forward;
pub mod stall;
