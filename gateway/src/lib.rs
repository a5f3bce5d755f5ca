//! # distpos-gateway
//!
//! The `distpos` daemon as a library (the `distpos` binary in `bin/distpos` runs it;
//! local networks, benchmarks and soaks live in `distpos-testnets`). Folders hold one
//! idea each, and depend one way:
//!
//! - [`node`]: the canonical state of our chain, its fork database, mempool and store;
//!   admitting transactions, importing blocks (fork choice, reorganisation) and
//!   producing them. Start reading here.
//! - [`interchain`]: batches of transfers and receipts from other chains, checked on
//!   arrival, held, and put in our blocks as system transactions with the run of the
//!   peer's headers that proves them.
//! - [`queue`]: the persistent outbound queue; [`relay`]: the tasks that fill and
//!   send it and keep our light clients current.
//! - [`api`]: the HTTP router, its errors, handlers and JSON views.
//! - [`runtime`]: opening a node, serving it and supervising its tasks; [`state`] is
//!   what they share, [`clock`] the one place the wall clock is read.
//! - [`config`], [`keyfile`], [`store`], [`metrics`], [`cpu`], [`build_info`]: the
//!   pieces around them.
//!
//! Chain rules never live here: they come from `distpos-chain` and `distpos-proofs`.
//! This crate decides when to apply them, makes every change durable before it is
//! acknowledged, and talks to the world.

pub mod api;
pub mod build_info;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod interchain;
pub mod keyfile;
pub mod metrics;
pub mod node;
pub mod queue;
pub mod relay;
pub mod runtime;
pub mod state;
pub mod store;
