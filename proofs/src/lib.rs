//! # distpos-proofs
//!
//! What can be proven about any DPOS chain from its headers alone: chain ids
//! ([`ChainId`]), keys and low-S signatures ([`keys`]), block headers and block ids
//! ([`header`]), strict Merkle commitments and inclusion proofs ([`merkle`]), the
//! producer schedule and slots ([`schedule`]), and irreversibility and fork choice over
//! a header chain ([`consensus`]). The node's own fork choice and (later) the light
//! client of a peer chain both use [`consensus::ConsensusState`]: one rule, one
//! implementation.
//!
//! This crate must never do I/O, read a clock, spawn tasks or touch storage: every
//! input, the current time included, is a parameter. That keeps every verifier here
//! unit- and property-testable in milliseconds.
//!
//! Start reading at [`consensus`], which ties the others together.

pub mod chain_id;
pub mod codec;
pub mod consensus;
pub mod fast;
pub mod hash;
pub mod header;
pub mod keys;
pub mod light_client;
pub mod merkle;
pub mod multiproof;
pub mod schedule;
pub mod testkit;

pub use chain_id::{ChainId, ChainIdError};
pub use hash::{hash_domain, sha256, Hash32};
pub use header::{BlockHeader, SignedHeader};
pub use keys::{PublicKey, SecretKey, Signature, SignatureError};
pub use schedule::{ProducerSchedule, SlotClock};
