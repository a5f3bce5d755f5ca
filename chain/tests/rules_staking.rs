//! Stake, unbonding, producer registration, votes and proxies (DESIGN §3.1, §4.2):
//! the per-transaction rules and the vote totals they keep.

mod common;

use common::*;
use distpos_chain::{
    ledger,
    testkit::{address_of, TestChain, PRODUCER_STAKE, USER_BALANCE},
    tx::MAX_VOTES,
    Address, Body, TxError,
};
use distpos_proofs::SecretKey;

fn chain(producers: usize, users: usize) -> TestChain {
    TestChain::new(CHAIN, producers, users, params(|p| p.unbonding_blocks = 5))
}

#[test]
fn stake_moves_balance_to_stake() {
    let mut c = chain(1, 1);
    let u0 = c.users[0].clone();
    let tx = c.tx(&u0, 1, Body::Stake { amount: 4_000 });
    let built = produce_ok(&mut c, &[tx]);
    let a = account(&c, &address_of(&u0));
    assert_eq!(
        (a.balance, a.stake, a.unbonding),
        (USER_BALANCE - 4_001, 4_000, 0)
    );
    assert_eq!(built.applied.receipts[0].amount, 4_000);
    let too_much = c.tx(
        &u0,
        1,
        Body::Stake {
            amount: USER_BALANCE,
        },
    );
    assert_eq!(
        validate(&c, &too_much),
        Err(TxError::InsufficientFunds {
            need: USER_BALANCE,
            have: USER_BALANCE - 4_002
        })
    );
    assert_supply(&c);
}

#[test]
fn unstake_unbonds_and_releases_exactly_after_unbonding_blocks() {
    let mut c = chain(1, 1);
    let u0 = c.users[0].clone();
    let addr = address_of(&u0);
    let stake = c.tx(&u0, 1, Body::Stake { amount: 4_000 });
    produce_ok(&mut c, &[stake]);
    let unstake = c.tx(&u0, 1, Body::Unstake { amount: 1_500 });
    produce_ok(&mut c, &[unstake]);
    let unstaked_at = c.height(); // 2; release at 2 + 5 = 7
    let after_unstake = USER_BALANCE - 4_000 - 2;
    let a = account(&c, &addr);
    assert_eq!(
        (a.balance, a.stake, a.unbonding),
        (after_unstake, 2_500, 1_500)
    );
    assert_supply(&c);
    // Still locked in the block before the release height…
    c.produce_empty(4).unwrap();
    assert_eq!(c.height(), unstaked_at + 4);
    let a = account(&c, &addr);
    assert_eq!((a.balance, a.unbonding), (after_unstake, 1_500));
    // …released by the block at unstake height + unbonding_blocks.
    c.produce_empty(1).unwrap();
    let a = account(&c, &addr);
    assert_eq!(
        (a.balance, a.stake, a.unbonding),
        (after_unstake + 1_500, 2_500, 0)
    );
    assert_supply(&c);
}

#[test]
fn unstake_more_than_staked_is_refused() {
    let mut c = chain(1, 1);
    let u0 = c.users[0].clone();
    let stake = c.tx(&u0, 1, Body::Stake { amount: 100 });
    produce_ok(&mut c, &[stake]);
    let tx = c.tx(&u0, 1, Body::Unstake { amount: 101 });
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::InsufficientStake {
            need: 101,
            have: 100
        })
    );
    let zero = c.unsigned(2, 1, Body::Unstake { amount: 0 }).sign(&u0);
    assert!(matches!(validate(&c, &zero), Err(TxError::Invalid(_))));
}

#[test]
fn register_producer_needs_min_producer_stake() {
    let mut c = chain(1, 1);
    let u0 = c.users[0].clone();
    let key = SecretKey::from_seed(b"new signing key").public_key();
    let reg = Body::RegisterProducer {
        signing_key: key,
        url: "https://p.example".into(),
    };
    let tx = c.tx(&u0, 1, reg.clone());
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::InsufficientStake {
            need: 1_000,
            have: 0
        })
    );
    c.resync_nonces();
    let stake = c.tx(&u0, 1, Body::Stake { amount: 999 });
    produce_ok(&mut c, &[stake]);
    let tx = c.tx(&u0, 1, reg.clone());
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::InsufficientStake {
            need: 1_000,
            have: 999
        })
    );
    c.resync_nonces();
    let stake = c.tx(&u0, 1, Body::Stake { amount: 1 });
    let tx = c.tx(&u0, 1, reg);
    produce_ok(&mut c, &[stake, tx]);
    let p = producer(&c, &address_of(&u0));
    assert!(p.registered && !p.slashed);
    assert_eq!((p.signing_key, p.total_votes), (key, 0));
    assert_eq!(
        ledger::producer_by_key(&c.state, &key).unwrap(),
        Some(address_of(&u0))
    );
}

#[test]
fn a_signing_key_of_another_producer_is_refused() {
    let mut c = chain(2, 1);
    let u0 = c.users[0].clone();
    let stake = c.tx(&u0, 1, Body::Stake { amount: 1_000 });
    produce_ok(&mut c, &[stake]);
    let taken = c.producers[1].public_key();
    let tx = c.tx(
        &u0,
        1,
        Body::RegisterProducer {
            signing_key: taken,
            url: String::new(),
        },
    );
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::KeyInUse(address_of(&c.producers[1])))
    );
}

#[test]
fn votes_must_name_registered_producers_at_most_30_once_each() {
    let c = chain(2, 1);
    let u0 = c.users[0].clone();
    let (p0, p1) = (address_of(&c.producers[0]), address_of(&c.producers[1]));
    let nobody = fresh("not a producer");
    let vote = |c: &TestChain, producers: Vec<Address>| {
        c.unsigned(1, 1, Body::Vote { producers }).sign(&u0)
    };
    assert_eq!(
        validate(&c, &vote(&c, vec![p0, nobody])),
        Err(TxError::NotAProducer(nobody))
    );
    assert!(matches!(
        validate(&c, &vote(&c, vec![p0, p1, p0])),
        Err(TxError::Invalid(_))
    ));
    assert_eq!(MAX_VOTES, 30);
    // 31 distinct names is too many even before checking they are producers…
    let many: Vec<Address> = (0..31u8).map(|i| Address([i + 1; 20])).collect();
    assert!(matches!(
        validate(&c, &vote(&c, many.clone())),
        Err(TxError::Invalid(_))
    ));
    // …while 30 fails only on the first non-producer.
    assert_eq!(
        validate(&c, &vote(&c, many[..30].to_vec())),
        Err(TxError::NotAProducer(many[0]))
    );
    validate(&c, &vote(&c, vec![p0, p1])).unwrap();
    validate(&c, &vote(&c, vec![])).unwrap();
}

#[test]
fn votes_carry_stake_to_every_approved_producer() {
    let mut c = chain(2, 1);
    let u0 = c.users[0].clone();
    let (p0, p1) = (address_of(&c.producers[0]), address_of(&c.producers[1]));
    let txs = vec![
        c.tx(&u0, 1, Body::Stake { amount: 3_000 }),
        c.tx(
            &u0,
            1,
            Body::Vote {
                producers: vec![p0, p1],
            },
        ),
    ];
    produce_ok(&mut c, &txs);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE + 3_000);
    assert_eq!(producer(&c, &p1).total_votes, PRODUCER_STAKE + 3_000);
    // Stake changes move the weight; a new vote replaces the old one.
    let txs = vec![
        c.tx(&u0, 1, Body::Unstake { amount: 1_000 }),
        c.tx(
            &u0,
            1,
            Body::Vote {
                producers: vec![p1],
            },
        ),
    ];
    produce_ok(&mut c, &txs);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE);
    assert_eq!(producer(&c, &p1).total_votes, PRODUCER_STAKE + 2_000);
}

#[test]
fn proxy_rules_and_weight() {
    let mut c = chain(1, 3);
    let (u0, u1, u2) = (c.users[0].clone(), c.users[1].clone(), c.users[2].clone());
    let (a0, a1, a2) = (address_of(&u0), address_of(&u1), address_of(&u2));
    let p0 = address_of(&c.producers[0]);

    let to_self = c.tx(&u0, 1, Body::SetProxy { proxy: Some(a0) });
    assert!(matches!(validate(&c, &to_self), Err(TxError::Invalid(_))));
    c.resync_nonces();

    // u0 delegates 5000 to u1; u1 stakes 1000 and votes for p0.
    let txs = vec![
        c.tx(&u0, 1, Body::Stake { amount: 5_000 }),
        c.tx(&u0, 1, Body::SetProxy { proxy: Some(a1) }),
        c.tx(&u1, 1, Body::Stake { amount: 1_000 }),
        c.tx(
            &u1,
            1,
            Body::Vote {
                producers: vec![p0],
            },
        ),
    ];
    produce_ok(&mut c, &txs);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE + 6_000);
    let proxy = account(&c, &a1);
    assert_eq!((proxy.proxied_weight, proxy.delegators), (5_000, 1));

    // One level only: nobody may choose u0 (who has a proxy), and u1 (a proxy for
    // others) may not choose one.
    let via_u0 = c.tx(&u2, 1, Body::SetProxy { proxy: Some(a0) });
    assert!(matches!(validate(&c, &via_u0), Err(TxError::Invalid(_))));
    let proxy_of_proxy = c.tx(&u1, 1, Body::SetProxy { proxy: Some(a2) });
    assert!(matches!(
        validate(&c, &proxy_of_proxy),
        Err(TxError::Invalid(_))
    ));
    c.resync_nonces();

    // The delegator's own vote counts for nothing while it has a proxy.
    let own_vote = c.tx(
        &u0,
        1,
        Body::Vote {
            producers: vec![p0],
        },
    );
    produce_ok(&mut c, &[own_vote]);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE + 6_000);
    // More delegated stake moves with it; taking the proxy back votes directly.
    let more = c.tx(&u0, 1, Body::Stake { amount: 500 });
    produce_ok(&mut c, &[more]);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE + 6_500);
    let back = c.tx(&u0, 1, Body::SetProxy { proxy: None });
    let unvote = c.tx(&u1, 1, Body::Vote { producers: vec![] });
    produce_ok(&mut c, &[back]);
    assert_eq!(account(&c, &a1).delegators, 0);
    assert_eq!(
        producer(&c, &p0).total_votes,
        PRODUCER_STAKE + 5_500 + 1_000
    );
    produce_ok(&mut c, &[unvote]);
    assert_eq!(producer(&c, &p0).total_votes, PRODUCER_STAKE + 5_500);
    assert_supply(&c);
}

#[test]
fn a_scheduled_producer_cannot_change_its_signing_key() {
    // Changing the key of a producer that is still scheduled would orphan its slots
    // and let it escape evidence against the old key.
    let c = chain(2, 1);
    let p0 = c.producers[0].clone();
    let new_key = SecretKey::from_seed(b"replacement");
    let tx = c
        .unsigned(
            1,
            1,
            Body::RegisterProducer {
                signing_key: new_key.public_key(),
                url: String::new(),
            },
        )
        .sign(&p0);
    match validate(&c, &tx) {
        Err(TxError::Invalid(m)) => assert!(m.contains("signing key"), "{m}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Re-registering with the same key (e.g. to change the URL) is fine.
    let same = c
        .unsigned(
            1,
            1,
            Body::RegisterProducer {
                signing_key: p0.public_key(),
                url: "http://x".into(),
            },
        )
        .sign(&p0);
    assert!(validate(&c, &same).is_ok());
}
