//! # distpos (daemon)
//!
//! Will be the node: config, CLI, the producer loop, mempool, block sync, sled
//! storage, relay, inbound admission and the HTTP API (DESIGN §1, §8, §9). Only the
//! chain core (`distpos-proofs`, `distpos-chain`) exists so far; the node is the next
//! issue ("The node"). Until then this binary says so and exits with an error, rather
//! than pretending to run.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "distpos {}: the node is not built yet. The chain core (proofs/, chain/) is; \
         run `cargo test --workspace` to exercise it.",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::FAILURE
}
