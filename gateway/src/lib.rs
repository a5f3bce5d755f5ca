//! # distpos-gateway
//!
//! The `distpos` daemon: configuration ([`config`]), key files ([`keyfile`]), sled
//! storage ([`store`]), the node — canonical state, fork database, mempool, block
//! import and production ([`node`], [`mempool`]) — gossip and sync with the chain's
//! other nodes ([`peers`]), the HTTP API ([`api`], [`views`], [`api_error`]), metrics
//! ([`metrics`]), the process around them ([`service`]), chain-spec generation
//! ([`testnet`]) and the operator's client ([`client`]).
//!
//! Chain rules never live here: they come from `distpos-chain` and `distpos-proofs`.
//! This crate decides when to apply them, makes every change durable before it is
//! acknowledged, and talks to the world. Start reading at [`node`].
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod api_error;
pub mod api_interchain;
pub mod bench;
pub mod client;
pub mod config;
pub mod cpu;
pub mod demo;
pub mod fleet;
pub mod keyfile;
pub mod launcher;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod node_interchain;
pub mod peers;
pub mod relay;
pub mod relay_queue;
pub mod service;
pub mod soak;
pub mod store;
pub mod testnet;
pub mod views;
pub mod views_interchain;
