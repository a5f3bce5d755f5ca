//! # distpos-testnets
//!
//! The ready-made local networks, as data: `specs/duo.toml` (two chains of three
//! producers, static routes) and `specs/trio.toml` (three chains that find each other
//! through DNS SRV/TXT records served by dnsmasq on loopback). `distpos testnet up
//! <spec>` (the launcher, in `distpos-gateway`'s `launcher` module) turns a spec into
//! keys, genesis files, peer registrations, routes and running node processes;
//! `distpos demo` (what `cargo run --release` runs) uses `duo`, and `distpos bench`
//! measures networks built the same way.
//!
//! The end-to-end suite that runs real `distpos` processes lives in `tests/` here.
//! Cargo hands the path of the `distpos` binary it just built only to the tests of
//! the package that defines it, so `gateway/Cargo.toml` declares these files as its
//! `[[test]]` targets; `cargo test --workspace` runs them.

/// The `duo` spec.
pub const DUO: &str = include_str!("../specs/duo.toml");
/// The `trio` spec.
pub const TRIO: &str = include_str!("../specs/trio.toml");

#[cfg(test)]
mod tests {
    /// The specs parse, and every chain has a valid id and at least one producer.
    #[test]
    fn specs_are_well_formed() {
        for (spec, chains, discovery) in [(super::DUO, 2, "static"), (super::TRIO, 3, "dns")] {
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
