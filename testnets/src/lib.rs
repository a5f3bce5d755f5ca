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
//! The end-to-end suite that runs real `distpos` processes lives in
//! `gateway/tests/`: only there does Cargo hand a test the path of the `distpos`
//! binary it just built. This crate holds no code that runs.

/// The `duo` spec.
pub const DUO: &str = include_str!("../specs/duo.toml");
/// The `trio` spec.
pub const TRIO: &str = include_str!("../specs/trio.toml");

#[cfg(test)]
mod tests {
    #[test]
    fn specs_name_their_chains() {
        for (spec, chains) in [(super::DUO, 2), (super::TRIO, 3)] {
            let table: toml_like::Table = toml_like::parse(spec);
            assert_eq!(table.chains, chains, "{spec}");
        }
    }

    /// Just enough TOML reading to count `[[chains]]` without a dependency.
    mod toml_like {
        pub(super) struct Table {
            pub(super) chains: usize,
        }
        pub(super) fn parse(text: &str) -> Table {
            Table {
                chains: text.lines().filter(|l| l.trim() == "[[chains]]").count(),
            }
        }
    }
}
