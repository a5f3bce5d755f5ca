//! Genesis rules (DESIGN §2, §4.2, §5): what a valid genesis is, and the identity hash
//! that names a chain (its genesis without the peer list).

mod common;

use common::*;
use distpos_chain::{
    genesis::GenesisAccount,
    genesis::GenesisError,
    genesis_state, ledger,
    params::ParamsError,
    testkit::{address_of, TestChain},
    Genesis,
};
use distpos_proofs::{ChainId, SecretKey};

fn base() -> Genesis {
    TestChain::new(CHAIN, 2, 2, TestChain::dev_params()).genesis
}

fn with(f: impl FnOnce(&mut Genesis)) -> Genesis {
    let mut g = base();
    f(&mut g);
    g
}

#[test]
fn a_valid_genesis_and_its_state() {
    let g = base();
    g.validate().unwrap();
    let state = genesis_state(&g).unwrap();
    assert_eq!(state.head_id, g.identity_hash());
    let meta = ledger::meta(&state).unwrap();
    assert_eq!(meta.identity, g.identity_hash());
    assert_eq!(meta.genesis_supply, g.supply().unwrap());
    assert_supply(&TestChain::from_genesis(g.clone(), vec![], vec![]));
    // Block 1 builds on the identity hash.
    let mut c = TestChain::new(CHAIN, 2, 2, TestChain::dev_params());
    c.produce_empty(1).unwrap();
    assert_eq!(c.blocks[0].header.header.prev_id, g.identity_hash());
}

#[test]
fn invalid_genesis_files_are_refused() {
    let cases: Vec<(Genesis, ParamsError)> = vec![
        (with(|g| g.chain_id = ChainId(0)), ParamsError::ZeroChainId),
        (with(|g| g.producers.clear()), ParamsError::NoProducers),
        (
            with(|g| g.params.max_producers = 1),
            ParamsError::TooManyProducers(2),
        ),
        (
            with(|g| {
                g.producers[1].stake = 999;
            }),
            ParamsError::LowStake(base().producers[1].account),
        ),
        (
            with(|g| {
                g.params.dev = false;
                g.params.block_interval_ms = 500;
            }),
            ParamsError::Interval(500),
        ),
        (
            with(|g| {
                g.params.dev = false;
                g.params.block_interval_ms = 100;
            }),
            ParamsError::Interval(100),
        ),
        (
            with(|g| g.params.block_interval_ms = 99),
            ParamsError::Interval(99),
        ),
        (
            with(|g| g.params.block_interval_ms = 30_001),
            ParamsError::Interval(30_001),
        ),
        (
            with(|g| g.params.slash_fraction_bps = 10_001),
            ParamsError::SlashFraction(10_001),
        ),
    ];
    for (g, want) in cases {
        assert_eq!(g.validate(), Err(want.clone()));
        assert_eq!(genesis_state(&g), Err(GenesisError::Params(want)));
    }
    // Duplicates: a signing key, a producer account, a funded account.
    let dup_key = with(|g| g.producers[1].signing_key = g.producers[0].signing_key);
    let dup_account = with(|g| g.producers[1].account = g.producers[0].account);
    let dup_funded = with(|g| {
        let first = g.accounts[0].clone();
        g.accounts.push(first);
    });
    for g in [dup_key, dup_account, dup_funded] {
        assert!(matches!(g.validate(), Err(ParamsError::Duplicate(_))));
    }
    let overflow = with(|g| {
        g.accounts.push(GenesisAccount {
            address: fresh("rich"),
            balance: u128::MAX,
        })
    });
    assert_eq!(overflow.validate(), Err(ParamsError::Overflow));
}

#[test]
fn allowed_intervals() {
    for (dev, interval) in [(true, 100), (true, 30_000), (false, 1_000), (false, 30_000)] {
        let g = with(|g| {
            g.params.dev = dev;
            g.params.block_interval_ms = interval;
        });
        assert_eq!(g.validate(), Ok(()), "dev={dev} interval={interval}");
    }
}

#[test]
fn identity_hash_ignores_peers_and_nothing_else() {
    let g = base();
    let id = g.identity_hash();
    let owner = address_of(&SecretKey::from_seed(b"owner"));
    let with_peers = with(|g| g.peers.push(registration(PEER, owner)));
    assert_eq!(with_peers.identity_hash(), id);
    // The peers are still registered by the genesis state.
    let state = genesis_state(&with_peers).unwrap();
    assert!(ledger::peer(&state, PEER).unwrap().is_some());
    assert_eq!(state.head_id, id);

    let changed = [
        with(|g| g.chain_id = ChainId(CHAIN + 1)),
        with(|g| g.genesis_time_ms += 1),
        with(|g| g.params.min_fee += 1),
        with(|g| g.params.block_reward += 1),
        with(|g| g.producers[0].url = "https://x.example".into()),
        with(|g| g.producers[0].stake += 1),
        with(|g| g.producers.swap(0, 1)),
        with(|g| g.accounts[0].balance += 1),
        with(|g| {
            g.accounts.pop();
        }),
    ];
    let mut seen = std::collections::BTreeSet::new();
    seen.insert(id);
    for g in changed {
        assert!(seen.insert(g.identity_hash()), "{g:?} collides");
    }
}
