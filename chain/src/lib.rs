//! # distpos-chain
//!
//! The ledger a distpos node produces (DESIGN §2–§5): addresses ([`address`]),
//! transactions and receipts with their canonical encoding ([`tx`]), the state as a
//! key-value map with typed records ([`state`], [`ledger`]), the state machine
//! ([`execute`], [`bodies`], [`votes`], [`governance`]), genesis ([`genesis`]), and
//! blocks ([`block`]: [`build_block`], [`apply_block`]).
//!
//! Like `distpos-proofs`, this crate is pure: no I/O, no clock, no threads. The time
//! and every input are parameters, so every rule is testable in milliseconds. Header
//! validity, LIB and the schedule come from `distpos-proofs`; this crate adds what
//! needs the ledger (election, commit/reveal, balances).
//!
//! Start reading at [`block`], then [`execute`].

pub mod address;
pub mod amount;
pub mod block;
pub mod bodies;
pub mod env;
pub mod error;
pub mod execute;
pub mod forkdb;
pub mod genesis;
pub mod governance;
pub mod interchain;
pub mod ledger;
pub mod params;
pub mod state;
pub mod supply;
pub mod testkit;
pub mod tx;
pub mod votes;

pub use address::{Address, AddressError, QualifiedAddress};
pub use block::{
    apply_block, apply_checked_block, build_block, build_block_with, check_block_signatures,
    check_block_signatures_with, AppliedBlock, Block, BuiltBlock, Undo,
};
pub use error::{BlockError, ProofError, StateError, TxError};
pub use execute::{
    check_system_body, validate_checked, validate_tx, verify_tx_signature, TxCheck, Validator,
};
pub use genesis::genesis_state;
pub use genesis::Genesis;
pub use params::ChainParams;
pub use state::{ChangeSet, State};
pub use tx::{Body, Receipt, Transaction, UnsignedTx};
