//! The end-to-end suite: real `distpos` processes on 127.0.0.1 with ephemeral ports,
//! each network in its own temporary folder, every process killed when its test ends
//! (also when it fails; the folder is then kept and its path printed). One test
//! binary; the tests take [`support::serial`] so that one network runs at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod chain;
mod chaos;
mod cli;
mod cross_bounce;
mod cross_chain;
mod cross_resilience;
mod dashboard;
mod demo;
mod election;
mod equivocation;
mod fast_path;
mod flood;
mod interchain_v2;
mod kill_restart;
mod light_client;
mod mesh;
mod metrics_docs;
mod outage;
mod peering;
mod policy;
mod recovery;
mod relay;
mod route_overrides;
mod supervision;
mod trio_dns;
