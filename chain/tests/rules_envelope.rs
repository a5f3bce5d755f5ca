//! Envelope rules every transaction passes before its body runs (DESIGN §3, §3.2):
//! chain id, nonce, duplicates, expiration, TaPoS and signatures — through the mempool
//! check (`validate_tx`) and through block production, where an invalid transaction is
//! left out and changes nothing.

mod common;

use common::*;
use distpos_chain::{
    ledger::keys,
    testkit::{address_of, TestChain, USER_BALANCE},
    tx::MAX_EXPIRATION_MS,
    Transaction, TxError,
};
use distpos_proofs::{header::tapos_prefix, keys::high_s_twin, ChainId, SecretKey, SignatureError};

/// A 1-producer chain with 2 users, and a signed transfer user0 → user1 of 10 with
/// nonce 1 (not built through `tx()`, so the chain's nonce tracking is untouched).
fn setup() -> (TestChain, SecretKey, SecretKey) {
    let c = TestChain::new(CHAIN, 1, 2, TestChain::dev_params());
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    (c, u0, u1)
}

fn pay(c: &TestChain, from: &SecretKey, to: &SecretKey, nonce: u64) -> Transaction {
    c.unsigned(nonce, 1, transfer(address_of(to), 10))
        .sign(from)
}

#[test]
fn wrong_chain_id_is_refused() {
    let (mut c, u0, u1) = setup();
    let mut u = c.unsigned(1, 1, transfer(address_of(&u1), 10));
    u.chain_id = ChainId(0xe2e5);
    let tx = u.sign(&u0);
    let want = TxError::WrongChain {
        expected: ChainId(CHAIN),
        got: ChainId(0xe2e5),
    };
    assert_eq!(validate(&c, &tx), Err(want.clone()));
    assert_eq!(produce_rejected(&mut c, &tx), want);
}

#[test]
fn nonces_are_strictly_sequential() {
    let (mut c, u0, u1) = setup();
    assert_eq!(
        validate(&c, &pay(&c, &u0, &u1, 2)),
        Err(TxError::BadNonce {
            expected: 1,
            got: 2
        })
    );
    assert_eq!(
        validate(&c, &pay(&c, &u0, &u1, 0)),
        Err(TxError::BadNonce {
            expected: 1,
            got: 0
        })
    );
    let first = pay(&c, &u0, &u1, 1);
    produce_ok(&mut c, &[first]);
    // Reusing nonce 1 with different content (so it is not a duplicate id).
    let mut u = c.unsigned(1, 1, transfer(address_of(&u1), 11));
    u.fee = 2;
    let reuse = u.sign(&u0);
    assert_eq!(
        validate(&c, &reuse),
        Err(TxError::BadNonce {
            expected: 2,
            got: 1
        })
    );
    // Within one block the second of two transactions with the same nonce fails.
    let a = pay(&c, &u0, &u1, 2);
    let b = c.unsigned(2, 3, transfer(address_of(&u1), 10)).sign(&u0);
    let built = c.produce(&[a, b.clone()]).unwrap();
    assert_eq!(built.block.txs.len(), 1);
    assert_eq!(
        built.rejected,
        vec![(
            b.hash(),
            TxError::BadNonce {
                expected: 3,
                got: 2
            }
        )]
    );
    assert_eq!(account(&c, &address_of(&u0)).nonce, 2);
}

/// A transaction included once and submitted again is refused as `Duplicate`, not
/// `BadNonce`: its id is remembered until it expires, and the duplicate check runs
/// before the nonce check. After it expires, the envelope refuses it as `Expired`
/// (the expiration check comes first of all), and its id is forgotten.
#[test]
fn duplicate_is_refused_as_duplicate_until_it_expires() {
    let (mut c, u0, u1) = setup();
    let mut u = c.unsigned(1, 1, transfer(address_of(&u1), 10));
    u.expiration = next_time(&c) + 250; // covers the next 2 slots (100 ms each)
    let tx = u.sign(&u0);
    produce_ok(&mut c, std::slice::from_ref(&tx));
    assert!(c.state.get(&keys::tx_seen(&tx.hash())).is_some());
    assert_eq!(validate(&c, &tx), Err(TxError::Duplicate(tx.hash())));
    assert_eq!(produce_rejected(&mut c, &tx), TxError::Duplicate(tx.hash()));
    assert_eq!(balance(&c, &u1), USER_BALANCE + 10, "paid exactly once");
    c.produce_empty(2).unwrap();
    assert!(matches!(validate(&c, &tx), Err(TxError::Expired { .. })));
    assert!(
        c.state.get(&keys::tx_seen(&tx.hash())).is_none(),
        "expired ids are pruned"
    );
}

#[test]
fn expiration_must_be_after_block_time_and_at_most_one_hour_ahead() {
    let (c, u0, u1) = setup();
    let now = next_time(&c);
    let with_exp = |exp: u64| {
        let mut u = c.unsigned(1, 1, transfer(address_of(&u1), 10));
        u.expiration = exp;
        u.sign(&u0)
    };
    for exp in [now, now - 1] {
        assert_eq!(
            validate(&c, &with_exp(exp)),
            Err(TxError::Expired {
                expiration: exp,
                now
            })
        );
    }
    validate(&c, &with_exp(now + 1)).unwrap();
    assert_eq!(MAX_EXPIRATION_MS, 3_600_000);
    validate(&c, &with_exp(now + 3_600_000)).unwrap();
    assert_eq!(
        validate(&c, &with_exp(now + 3_600_001)),
        Err(TxError::ExpirationTooFar {
            expiration: now + 3_600_001,
            now
        })
    );
}

#[test]
fn expired_transaction_in_produce_is_rejected_and_changes_nothing() {
    let (mut c, u0, u1) = setup();
    c.produce_empty(2).unwrap();
    let mut u = c.unsigned(1, 1, transfer(address_of(&u1), 10));
    u.expiration = c.head_time(); // ≤ the next block's time
    let tx = u.sign(&u0);
    let mut twin = c.clone();
    twin.produce(&[]).unwrap();
    assert!(matches!(
        produce_rejected(&mut c, &tx),
        TxError::Expired { .. }
    ));
    assert_eq!(c.state.digest, twin.state.digest);
    assert_eq!(c.state, twin.state);
    assert_eq!(balance(&c, &u0), USER_BALANCE);
    assert_eq!(account(&c, &address_of(&u0)).nonce, 0);
}

#[test]
fn tapos_must_name_a_block_of_this_chain() {
    let (mut c, u0, u1) = setup();
    c.produce_empty(5).unwrap();
    let with_ref = |num: u16, prefix: u32| {
        let mut u = c.unsigned(1, 1, transfer(address_of(&u1), 10));
        u.ref_block_num = num;
        u.ref_block_prefix = prefix;
        u.sign(&u0)
    };
    let head_prefix = tapos_prefix(&c.state.head_id);
    // Head (5) is valid; so are older blocks and genesis (block 0's "id" is the
    // identity hash).
    validate(&c, &with_ref(5, head_prefix)).unwrap();
    let three_back = with_ref(2, c.blocks[1].header.tapos_prefix());
    validate(&c, &three_back).unwrap();
    let identity = distpos_chain::ledger::meta(&c.state).unwrap().identity;
    validate(&c, &with_ref(0, tapos_prefix(&identity))).unwrap();
    // Wrong prefix for a real block number.
    assert_eq!(
        validate(&c, &with_ref(5, head_prefix ^ 1)),
        Err(TxError::Tapos {
            num: 5,
            prefix: head_prefix ^ 1
        })
    );
    // A prefix of another block at the right number.
    let other = c.blocks[3].header.tapos_prefix();
    assert_eq!(
        validate(&c, &with_ref(2, other)),
        Err(TxError::Tapos {
            num: 2,
            prefix: other
        })
    );
    // Block numbers not produced yet (the block being built is 6).
    for num in [6u16, 9] {
        assert_eq!(
            validate(&c, &with_ref(num, head_prefix)),
            Err(TxError::Tapos {
                num,
                prefix: head_prefix
            })
        );
    }
    let built = produce_ok(&mut c, &[three_back]);
    assert_eq!(built.block.height(), 6);
    assert_eq!(balance(&c, &u1), USER_BALANCE + 10);
}

#[test]
fn tampering_after_signing_breaks_the_signature() {
    let (mut c, u0, u1) = setup();
    let tx = pay(&c, &u0, &u1, 1);
    validate(&c, &tx).unwrap();
    let mut fee = tx.clone();
    fee.fee += 1;
    let mut amount = tx.clone();
    if let distpos_chain::Body::Transfer { amount: a, .. } = &mut amount.body {
        *a += 1;
    }
    let mut key = tx.clone();
    key.pubkey = u1.public_key();
    let mut expiration = tx.clone();
    expiration.expiration += 1;
    for bad in [&fee, &amount, &key, &expiration] {
        assert_eq!(
            validate(&c, bad),
            Err(TxError::BadSignature(SignatureError::Mismatch))
        );
    }
    assert_eq!(
        produce_rejected(&mut c, &fee),
        TxError::BadSignature(SignatureError::Mismatch)
    );
    assert_eq!(balance(&c, &u0), USER_BALANCE);
}

#[test]
fn high_s_twin_signature_is_refused() {
    let (mut c, u0, u1) = setup();
    let mut tx = pay(&c, &u0, &u1, 1);
    tx.signature = high_s_twin(&tx.signature).unwrap();
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::BadSignature(SignatureError::HighS))
    );
    assert_eq!(
        produce_rejected(&mut c, &tx),
        TxError::BadSignature(SignatureError::HighS)
    );
}

#[test]
fn a_later_nonce_within_the_slack_is_validated_in_full() {
    // The mempool admits a sender's later transactions (earlier ones pending) with a
    // nonce slack; the body must still be checked, and the slack must be a bound.
    let (c, u0, u1) = setup();
    let body = |amount| transfer(address_of(&u1), amount);
    let at = c.slot_time(c.next_slot(0));
    let check = |tx: &distpos_chain::Transaction, slack| {
        let chk = distpos_chain::verify_tx_signature(tx).unwrap();
        distpos_chain::validate_checked(&c.state, tx, &chk, at, slack)
    };
    let ahead = c.unsigned(3, 1, body(5)).sign(&u0);
    assert!(matches!(
        check(&ahead, 0),
        Err(TxError::BadNonce {
            expected: 1,
            got: 3
        })
    ));
    assert_eq!(check(&ahead, 2), Ok(()));
    assert!(
        matches!(check(&ahead, 1), Err(TxError::BadNonce { .. })),
        "slack is a bound"
    );
    // A later nonce does not skip the body: still refused for what it does.
    let too_much = c.unsigned(3, 1, body(u128::MAX / 4)).sign(&u0);
    assert!(matches!(
        check(&too_much, 2),
        Err(TxError::InsufficientFunds { .. })
    ));
    let stale = c.unsigned(0, 1, body(5)).sign(&u0);
    assert!(
        matches!(check(&stale, 5), Err(TxError::BadNonce { .. })),
        "never below the account's"
    );
}

#[test]
fn a_validator_checks_each_transaction_against_the_same_state() {
    // Many at once (the mempool's batch admission): each gives what
    // `validate_checked` gives alone, and nothing one of them would write is seen by
    // the next.
    let (c, u0, u1) = setup();
    let at = c.slot_time(c.next_slot(0));
    let txs = [
        c.unsigned(1, 1, transfer(address_of(&u1), USER_BALANCE - 1))
            .sign(&u0),
        // Would fail after the first if its writes stayed: same nonce, all the funds.
        c.unsigned(1, 1, transfer(address_of(&u1), USER_BALANCE - 1))
            .sign(&u0),
        c.unsigned(1, 1, transfer(address_of(&u1), u128::MAX / 4))
            .sign(&u0),
        c.unsigned(2, 1, transfer(address_of(&u0), 3)).sign(&u1),
        c.unsigned(7, 1, transfer(address_of(&u0), 3)).sign(&u1),
    ];
    let mut v = distpos_chain::Validator::new(&c.state, at).unwrap();
    for (i, tx) in txs.iter().enumerate() {
        let chk = distpos_chain::verify_tx_signature(tx).unwrap();
        for slack in [0, 1] {
            assert_eq!(
                v.validate(tx, &chk, slack),
                distpos_chain::validate_checked(&c.state, tx, &chk, at, slack),
                "transaction {i}, slack {slack}"
            );
        }
    }
    let chk = |tx| distpos_chain::verify_tx_signature(tx).unwrap();
    assert_eq!(v.validate(&txs[0], &chk(&txs[0]), 0), Ok(()));
    assert_eq!(
        v.validate(&txs[1], &chk(&txs[1]), 0),
        Ok(()),
        "no writes kept"
    );
    assert!(matches!(
        v.validate(&txs[2], &chk(&txs[2]), 0),
        Err(TxError::InsufficientFunds { .. })
    ));
    assert!(matches!(v.validate(&txs[3], &chk(&txs[3]), 1), Ok(())));
    assert!(matches!(
        v.validate(&txs[4], &chk(&txs[4]), 1),
        Err(TxError::BadNonce { .. })
    ));
}
