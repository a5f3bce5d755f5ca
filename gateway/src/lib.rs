//! # distpos-gateway
//!
//! The `distpos` daemon as a library (the `distpos` binary in `bin/distpos` runs it;
//! local networks, benchmarks and soaks live in `distpos-testnets`): configuration ([`config`]), key files ([`keyfile`]), sled
//! storage ([`store`]), the node — canonical state, fork database, mempool, block
//! import and production ([`node`], [`mempool`]) — gossip and sync with the chain's
//! other nodes ([`peers`]), the HTTP API ([`api`], [`views`], [`api_error`]), metrics
//! ([`metrics`]), the process around them ([`service`]), and the cross-chain parts:
//! inbound admission ([`node_interchain`]), the persistent outbound queue
//! ([`relay_queue`]) and the relay ([`relay`]).
//!
//! Chain rules never live here: they come from `distpos-chain` and `distpos-proofs`.
//! This crate decides when to apply them, makes every change durable before it is
//! acknowledged, and talks to the world. Start reading at [`node`].

pub mod api;
pub mod api_error;
pub mod api_interchain;
pub mod config;
pub mod cpu;
pub mod keyfile;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod node_interchain;
pub mod peers;
pub mod relay;
pub mod relay_queue;
pub mod service;
pub mod store;
pub mod views;
pub mod views_interchain;
