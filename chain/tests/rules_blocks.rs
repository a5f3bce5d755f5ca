//! Block validity (DESIGN §4.1): `apply_block` refuses a block whose header, commitments
//! (tx root and count, receipts root, state digest, new schedule, reveal) or
//! transactions do not match, with the exact `BlockError`, and leaves the state alone;
//! commit then revert restores the exact previous state (the reorg primitive).
// Helpers and property tests outside `#[test]` functions: a panic is the failure
// report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use distpos_chain::{
    apply_block,
    block::tx_root,
    build_block,
    testkit::{address_of, TestChain, USER_BALANCE},
    Block, BlockError, Body, BuiltBlock, Transaction, TxError,
};
use distpos_proofs::{
    consensus::HeaderError, BlockHeader, Hash32, ProducerSchedule, SecretKey, SignatureError,
};

/// A 3-producer chain after 4 empty blocks (every producer has committed a secret).
fn setup() -> TestChain {
    let mut c = TestChain::new(CHAIN, 3, 3, TestChain::dev_params());
    c.produce_empty(4).unwrap();
    c
}

/// Builds (without committing) the next block with `txs`; returns it, its signer and
/// its time.
fn build(c: &TestChain, txs: &[Transaction]) -> (BuiltBlock, SecretKey, u64) {
    let slot = c.next_slot(0);
    let (key, time) = (c.signer_for_slot(slot).unwrap(), c.slot_time(slot));
    let built = build_block(&c.state, &key, time, txs).unwrap();
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    assert_eq!(
        apply_block(&c.state, &built.block, time).unwrap(),
        built.applied
    );
    (built, key, time)
}

/// `block` with its header changed by `f` and signed again by `key`.
fn resigned(block: &Block, key: &SecretKey, f: impl FnOnce(&mut BlockHeader)) -> Block {
    let mut h = block.header.header.clone();
    f(&mut h);
    Block {
        header: h.sign(key),
        txs: block.txs.clone(),
    }
}

/// Applies a block that must fail; checks the state did not change.
fn refuse(c: &TestChain, block: &Block, time: u64) -> BlockError {
    let snapshot = c.state.clone();
    let err = apply_block(&c.state, block, time).expect_err("block must be refused");
    assert_eq!(c.state, snapshot);
    err
}

fn two_txs(c: &mut TestChain) -> Vec<Transaction> {
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    vec![
        c.tx(&u0, 1, transfer(address_of(&u1), 100)),
        c.tx(&u1, 2, Body::Stake { amount: 50 }),
    ]
}

#[test]
fn transaction_list_must_match_tx_count_and_tx_root() {
    let mut c = setup();
    let txs = two_txs(&mut c);
    let (built, key, time) = build(&c, &txs);
    let good = &built.block;

    let mut dropped = good.clone();
    dropped.txs.pop();
    assert_eq!(refuse(&c, &dropped, time), BlockError::TxRoot("tx_count"));

    let mut swapped = good.clone();
    swapped.txs.reverse();
    assert_eq!(refuse(&c, &swapped, time), BlockError::TxRoot("tx_root"));

    let mut replaced = good.clone();
    let u2 = c.users[2].clone();
    replaced.txs[1] = c.tx(&u2, 1, Body::Stake { amount: 50 });
    assert_eq!(refuse(&c, &replaced, time), BlockError::TxRoot("tx_root"));

    // Changing tx_count breaks the producer's signature…
    let mut unsigned = good.clone();
    unsigned.header.header.tx_count = 1;
    assert_eq!(
        refuse(&c, &unsigned, time),
        BlockError::Header(HeaderError::BadSignature(SignatureError::Mismatch))
    );
    // …and re-signed it still does not match the transactions.
    let count = resigned(good, &key, |h| h.tx_count = 1);
    assert_eq!(refuse(&c, &count, time), BlockError::TxRoot("tx_count"));

    // Dropping a transaction with a consistent count and root, re-signed: the
    // receipts committed no longer match.
    let mut consistent = resigned(good, &key, |h| {
        h.tx_count = 1;
        h.tx_root = tx_root(&txs[..1]);
    });
    consistent.txs.pop();
    assert_eq!(refuse(&c, &consistent, time), BlockError::ReceiptsRoot);
}

#[test]
fn results_in_the_header_must_match_execution() {
    let mut c = setup();
    let txs = two_txs(&mut c);
    let (built, key, time) = build(&c, &txs);
    let good = &built.block;

    let digest = resigned(good, &key, |h| h.state_digest = Hash32([1; 32]));
    assert_eq!(
        refuse(&c, &digest, time),
        BlockError::StateDigest {
            computed: built.applied.state_digest,
            header: Hash32([1; 32])
        }
    );
    let receipts = resigned(good, &key, |h| h.receipts_root = Hash32([2; 32]));
    assert_eq!(refuse(&c, &receipts, time), BlockError::ReceiptsRoot);

    // A schedule change nobody was elected for (well-formed, next version).
    let schedule = resigned(good, &key, |h| {
        h.new_schedule = Some(ProducerSchedule {
            version: 1,
            producers: vec![key.public_key()],
        })
    });
    assert_eq!(refuse(&c, &schedule, time), BlockError::Schedule);

    // The producer's reveal must open its previous commit.
    assert!(!good.header.header.reveal.is_zero());
    let reveal = resigned(good, &key, |h| h.reveal = Hash32([3; 32]));
    assert_eq!(refuse(&c, &reveal, time), BlockError::Reveal);
    let zero = resigned(good, &key, |h| h.reveal = Hash32::ZERO);
    assert_eq!(refuse(&c, &zero, time), BlockError::Reveal);

    // The original passes, and committing it works.
    let applied = apply_block(&c.state, good, time).unwrap();
    c.state.commit(&applied);
    assert_eq!(c.state.digest, good.header.header.state_digest);
}

#[test]
fn a_first_block_must_reveal_nothing() {
    let c = TestChain::new(CHAIN, 1, 0, TestChain::dev_params());
    let (built, key, time) = build(&c, &[]);
    assert!(built.block.header.header.reveal.is_zero());
    let reveal = resigned(&built.block, &key, |h| h.reveal = Hash32([3; 32]));
    assert_eq!(refuse(&c, &reveal, time), BlockError::Reveal);
}

#[test]
fn a_due_schedule_change_must_be_announced_exactly() {
    // One producer: every slot starts a round, so block 1 already runs an election.
    let mut c = TestChain::new(CHAIN, 1, 1, TestChain::dev_params());
    let u0 = c.users[0].clone();
    let new_key = SecretKey::from_seed(b"elected");
    let txs = vec![
        c.tx(&u0, 1, Body::Stake { amount: 1_000 }),
        c.tx(
            &u0,
            1,
            Body::RegisterProducer {
                signing_key: new_key.public_key(),
                url: String::new(),
            },
        ),
        c.tx(
            &u0,
            1,
            Body::Vote {
                producers: vec![address_of(&u0)],
            },
        ),
    ];
    let (built, key, time) = build(&c, &txs);
    let announced = built.block.header.header.new_schedule.clone().expect("due");
    assert_eq!(announced.version, 1);
    assert_eq!(announced.len(), 2);
    let missing = resigned(&built.block, &key, |h| h.new_schedule = None);
    assert_eq!(refuse(&c, &missing, time), BlockError::Schedule);
    let reordered = resigned(&built.block, &key, |h| {
        if let Some(s) = &mut h.new_schedule {
            s.producers.reverse();
        }
    });
    assert_eq!(refuse(&c, &reordered, time), BlockError::Schedule);
}

#[test]
fn only_the_scheduled_producer_may_sign() {
    let c = setup();
    let (built, key, time) = build(&c, &[]);
    let other = c
        .producers
        .iter()
        .find(|k| k.public_key() != key.public_key())
        .unwrap()
        .clone();
    let slot = c.next_slot(0);
    let intruder = resigned(&built.block, &other, |h| h.producer = other.public_key());
    assert_eq!(
        refuse(&c, &intruder, time),
        BlockError::Header(HeaderError::NotScheduled {
            slot,
            expected: key.public_key(),
            got: other.public_key()
        })
    );
    // build_block refuses to sign for someone else's slot too.
    assert!(build_block(&c.state, &other, time, []).is_err());
    // Other header errors.
    let parent = resigned(&built.block, &key, |h| h.prev_id = Hash32([5; 32]));
    assert!(matches!(
        refuse(&c, &parent, time),
        BlockError::Header(HeaderError::WrongParent { .. })
    ));
    assert!(matches!(
        refuse(&c, &built.block, time - 600),
        BlockError::Header(HeaderError::FromFuture { .. })
    ));
}

#[test]
fn a_block_with_an_invalid_transaction_is_refused() {
    let mut c = setup();
    let (u0, u1, u2) = (c.users[0].clone(), c.users[1].clone(), c.users[2].clone());
    let good = c.tx(&u0, 1, transfer(address_of(&u1), 100));
    let (built, key, time) = build(&c, std::slice::from_ref(&good));
    // u2 cannot pay more than it has.
    let broke = c.tx(&u2, 1, transfer(address_of(&u1), USER_BALANCE));
    let with = |txs: Vec<Transaction>| {
        let mut b = resigned(&built.block, &key, |h| {
            h.tx_count = txs.len() as u32;
            h.tx_root = tx_root(&txs);
        });
        b.txs = txs;
        b
    };
    assert_eq!(
        refuse(&c, &with(vec![good.clone(), broke.clone()]), time),
        BlockError::Tx {
            index: 1,
            hash: broke.hash(),
            error: TxError::InsufficientFunds {
                need: USER_BALANCE,
                have: USER_BALANCE - 1
            }
        }
    );
    // The same transaction twice in one block.
    assert_eq!(
        refuse(&c, &with(vec![good.clone(), good.clone()]), time),
        BlockError::Tx {
            index: 1,
            hash: good.hash(),
            error: TxError::Duplicate(good.hash())
        }
    );
    // A bad signature is found before anything executes.
    let mut forged = broke.clone();
    forged.fee = 2;
    assert_eq!(
        refuse(&c, &with(vec![good.clone(), forged.clone()]), time),
        BlockError::Tx {
            index: 1,
            hash: forged.hash(),
            error: TxError::BadSignature(SignatureError::Mismatch)
        }
    );
}

#[test]
fn too_many_transactions_are_refused() {
    let mut c = TestChain::new(CHAIN, 1, 3, params(|p| p.max_block_txs = 2));
    let users = c.users.clone();
    let txs: Vec<Transaction> = users
        .iter()
        .map(|u| c.tx(u, 1, transfer(address_of(&users[0]), 1)))
        .collect();
    // build_block stops at the limit…
    let (built, key, time) = build(&c, &txs);
    assert_eq!(built.block.txs, txs[..2].to_vec());
    // …and apply_block refuses a block above it.
    let mut over = resigned(&built.block, &key, |h| {
        h.tx_count = 3;
        h.tx_root = tx_root(&txs);
    });
    over.txs = txs;
    assert_eq!(
        refuse(&c, &over, time),
        BlockError::TooManyTxs { max: 2, got: 3 }
    );
}

#[test]
fn commit_then_revert_restores_the_exact_state() {
    let mut c = setup();
    let genesis_like = c.state.clone();
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    let mut undos = Vec::new();
    let mut states = vec![c.state.clone()];
    let batches = vec![
        vec![
            c.tx(&u0, 1, transfer(fresh("new account"), 77)),
            c.tx(&u1, 1, Body::Stake { amount: 5_000 }),
        ],
        vec![
            c.tx(&u1, 1, Body::Unstake { amount: 2_000 }),
            c.tx(
                &u0,
                1,
                Body::SetProxy {
                    proxy: Some(address_of(&u1)),
                },
            ),
        ],
        vec![],
    ];
    for txs in batches {
        let (built, _, time) = build(&c, &txs);
        let applied = apply_block(&c.state, &built.block, time).unwrap();
        undos.push(c.state.commit(&applied));
        c.blocks.push(built.block);
        assert_ne!(&c.state, states.last().unwrap());
        states.push(c.state.clone());
    }
    assert_eq!(account(&c, &fresh("new account")).balance, 77);
    // Undo in reverse order, one block at a time.
    while let Some(undo) = undos.pop() {
        states.pop();
        c.state.revert(&undo);
        assert_eq!(&c.state, states.last().unwrap());
    }
    assert_eq!(c.state, genesis_like);
    assert!(
        distpos_chain::ledger::account(&c.state, &fresh("new account"))
            .unwrap()
            .balance
            == 0
    );
}
