//! Property tests of the ledger, driven through real blocks: the supply invariant,
//! determinism (same blocks → same state digest), and vote totals with proxies against
//! a brute-force count.
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use distpos_chain::{
    address::QualifiedAddress,
    ledger::{self, keys, Account},
    supply::audit_supply,
    testkit::{address_of, TestChain},
    Address, Body, State, Transaction,
};
use distpos_proofs::codec;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u128,
    },
    Stake {
        who: usize,
        amount: u128,
    },
    Unstake {
        who: usize,
        amount: u128,
    },
    Vote {
        who: usize,
        producers: Vec<usize>,
    },
    Proxy {
        who: usize,
        proxy: Option<usize>,
    },
    EndBlock {
        skip: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..6, 0usize..8, 1u128..50_000).prop_map(|(from, to, amount)| Op::Transfer {
            from,
            to,
            amount
        }),
        (0usize..6, 1u128..100_000).prop_map(|(who, amount)| Op::Stake { who, amount }),
        (0usize..6, 1u128..100_000).prop_map(|(who, amount)| Op::Unstake { who, amount }),
        (0usize..6, proptest::collection::vec(0usize..3, 0..3))
            .prop_map(|(who, producers)| Op::Vote { who, producers }),
        (0usize..6, proptest::option::of(0usize..6))
            .prop_map(|(who, proxy)| Op::Proxy { who, proxy }),
        (0u64..3).prop_map(|skip| Op::EndBlock { skip }),
    ]
}

/// Runs `ops` on a fresh 3-producer chain with 6 users; returns the chain.
fn run(ops: &[Op]) -> TestChain {
    let params = distpos_chain::ChainParams {
        unbonding_blocks: 3,
        ..TestChain::dev_params()
    };
    let mut chain = TestChain::new(0xe2e4, 3, 6, params);
    let users = chain.users.clone();
    let producers: Vec<Address> = chain.producers.iter().map(address_of).collect();
    let mut pending: Vec<Transaction> = Vec::new();
    for op in ops {
        let body_and_key = match op {
            Op::Transfer { from, to, amount } => {
                let to = if *to < users.len() {
                    address_of(&users[*to])
                } else {
                    Address([*to as u8; 20])
                };
                Some((
                    *from,
                    Body::Transfer {
                        to: QualifiedAddress::local(to),
                        amount: *amount,
                        memo: vec![],
                        deliver_by: 0,
                        fast_fee: 0,
                        via: None,
                    },
                ))
            }
            Op::Stake { who, amount } => Some((*who, Body::Stake { amount: *amount })),
            Op::Unstake { who, amount } => Some((*who, Body::Unstake { amount: *amount })),
            Op::Vote { who, producers: ps } => Some((
                *who,
                Body::Vote {
                    producers: dedup(ps).into_iter().map(|i| producers[i]).collect(),
                },
            )),
            Op::Proxy { who, proxy } => Some((
                *who,
                Body::SetProxy {
                    proxy: proxy.map(|i| address_of(&users[i])),
                },
            )),
            Op::EndBlock { skip } => {
                let slot = chain.next_slot(*skip);
                chain.produce_in_slot(slot, &pending).unwrap();
                pending.clear();
                None
            }
        };
        if let Some((who, body)) = body_and_key {
            let key = users[who].clone();
            pending.push(chain.tx(&key, 1, body));
        }
    }
    chain.produce(&pending).unwrap();
    chain
}

fn dedup(v: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    out
}

fn accounts(state: &State) -> BTreeMap<Address, Account> {
    state
        .scan_prefix(keys::ACCOUNT)
        .map(|(k, v)| {
            (
                Address::from_slice(&k[keys::ACCOUNT.len()..]).unwrap(),
                codec::decode_canonical(v).unwrap(),
            )
        })
        .collect()
}

/// Σ over direct voters (no proxy) approving p of (own stake + stake of those proxying
/// to them).
fn brute_force_totals(state: &State) -> BTreeMap<Address, u128> {
    let accts = accounts(state);
    let mut proxied: BTreeMap<Address, u128> = BTreeMap::new();
    for a in accts.values() {
        if let Some(p) = a.proxy {
            *proxied.entry(p).or_default() += a.stake;
        }
    }
    let mut totals = BTreeMap::new();
    for (addr, a) in &accts {
        if a.proxy.is_some() {
            continue;
        }
        let w = a.stake + proxied.get(addr).copied().unwrap_or(0);
        for p in &a.votes {
            *totals.entry(*p).or_default() += w;
        }
    }
    totals
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn supply_invariant_holds_after_every_sequence(ops in proptest::collection::vec(op(), 1..40)) {
        let chain = run(&ops);
        let report = audit_supply(&chain.state).unwrap();
        prop_assert!(report.holds(), "{report:?}");
        let meta = ledger::meta(&chain.state).unwrap();
        prop_assert_eq!(meta.minted, 10 * chain.height() as u128, "one block reward per block");
    }

    #[test]
    fn same_blocks_give_the_same_state_digest(ops in proptest::collection::vec(op(), 1..30)) {
        let chain = run(&ops);
        // A second node that only imports (verifies and applies) the same blocks.
        let mut follower = TestChain::from_genesis(chain.genesis.clone(), vec![], vec![]);
        for b in &chain.blocks {
            follower.import(b).unwrap();
            prop_assert_eq!(follower.state.digest, b.header.header.state_digest);
        }
        prop_assert_eq!(&follower.state, &chain.state);
    }

    #[test]
    fn vote_totals_match_brute_force(ops in proptest::collection::vec(op(), 1..40)) {
        let chain = run(&ops);
        let expected = brute_force_totals(&chain.state);
        for addr in ledger::producer_list(&chain.state).unwrap() {
            let p = ledger::producer(&chain.state, &addr).unwrap().unwrap();
            prop_assert_eq!(p.total_votes, expected.get(&addr).copied().unwrap_or(0), "producer {}", addr);
        }
    }
}

#[test]
fn a_different_block_gives_a_different_digest() {
    let mut a = TestChain::new(0xe2e4, 1, 2, TestChain::dev_params());
    let mut b = a.clone();
    let to = QualifiedAddress::local(address_of(&a.users[1]));
    let (ka, kb) = (a.users[0].clone(), b.users[0].clone());
    let ta = a.tx(
        &ka,
        1,
        Body::Transfer {
            to,
            amount: 5,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        },
    );
    let tb = b.tx(
        &kb,
        1,
        Body::Transfer {
            to,
            amount: 6,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        },
    );
    a.produce(&[ta]).unwrap();
    b.produce(&[tb]).unwrap();
    assert_ne!(a.state.digest, b.state.digest);
}

#[test]
fn generated_operations_really_execute() {
    // Guards the properties above against passing vacuously (e.g. every transaction
    // rejected): a fixed sequence must include every transaction and move balances.
    let ops = vec![
        Op::Transfer {
            from: 0,
            to: 1,
            amount: 10,
        },
        Op::Stake {
            who: 1,
            amount: 500,
        },
        Op::Vote {
            who: 1,
            producers: vec![0, 1],
        },
        Op::Proxy {
            who: 2,
            proxy: Some(1),
        },
        Op::EndBlock { skip: 1 },
        Op::Unstake {
            who: 1,
            amount: 100,
        },
    ];
    let chain = run(&ops);
    let included: usize = chain.blocks.iter().map(|b| b.txs.len()).sum();
    assert_eq!(included, 5);
    let u1 = ledger::account(&chain.state, &address_of(&chain.users[1])).unwrap();
    assert_eq!(u1.stake, 400);
    assert_eq!(u1.unbonding, 100);
    assert_eq!(
        u1.balance,
        distpos_chain::testkit::USER_BALANCE + 10 - 500 - 3
    );
}
