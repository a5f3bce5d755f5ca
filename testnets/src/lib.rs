//! # distpos-testnets
//!
//! Local networks of real `distpos` processes, as a library: the ready-made specs
//! (`specs/duo.toml`: two chains of three producers, static routes; `specs/trio.toml`:
//! three chains that find each other through DNS SRV/TXT records served by dnsmasq on
//! loopback), writing keys, genesis files and node configs ([`testnet`]), the launcher
//! behind `distpos testnet up|down` ([`launcher`]), a [`fleet`] of node processes a
//! harness owns (kill, pause, restart), the demo that `cargo run --release` runs
//! ([`demo`]), the throughput benchmarks ([`bench`]) and the crash soaks ([`soak`]);
//! [`metrics_text`] reads a node's `/metrics`.
//!
//! It never runs inside a node: the daemon is `distpos-gateway`, and the `distpos`
//! binary (`bin/distpos`) calls into both. The end-to-end suite in `tests/e2e/` is one
//! test binary that runs the `distpos` binary cargo built next to it.

pub mod bench;
pub mod demo;
pub mod fleet;
pub mod launcher;
pub mod metrics_text;
pub mod soak;
pub mod testnet;

/// The `duo` spec.
pub const DUO: &str = include_str!("../specs/duo.toml");
/// The `trio` spec.
pub const TRIO: &str = include_str!("../specs/trio.toml");
/// The `mesh` spec: six chains in a ring that reach each other through
/// correspondents, up to three hops (DESIGN §12).
pub const MESH: &str = include_str!("../specs/mesh.toml");

#[cfg(test)]
mod tests {
    /// The specs parse, and every chain has a valid id and at least one producer.
    #[test]
    fn specs_are_well_formed() {
        for (spec, chains, discovery) in [
            (super::DUO, 2, "static"),
            (super::TRIO, 3, "dns"),
            (super::MESH, 6, "dns"),
        ] {
            let v: toml::Value = toml::from_str(spec).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v["discovery"].as_str(), Some(discovery));
            let list = v["chains"]
                .as_array()
                .map(|a| a.to_vec())
                .unwrap_or_default();
            assert_eq!(list.len(), chains);
            for c in list {
                let id = c["id"].as_str().unwrap_or("");
                assert!(
                    distpos_proofs::ChainId::parse(id).is_ok_and(|c| !c.is_local()),
                    "bad chain id {id:?}"
                );
                assert!(c["producers"].as_integer().unwrap_or(0) >= 1);
            }
        }
    }
}
