//! Transfer rules (DESIGN §3.1, §6 steps 1–2): local transfers and fees, memo and
//! amount bounds, and outbound cross-chain transfers to registered, suspended and
//! unknown peers.

mod common;

use common::*;
use distpos_chain::{
    address::QualifiedAddress,
    ledger::{self, InFlight},
    supply::audit_supply,
    testkit::{address_of, TestChain, USER_BALANCE},
    tx::{GovAction, Outcome, MAX_MEMO_BYTES},
    Body, TxError,
};
use distpos_proofs::ChainId;

fn chain(producers: usize, users: usize) -> TestChain {
    TestChain::new(CHAIN, producers, users, TestChain::dev_params())
}

#[test]
fn local_transfer_moves_exactly_the_amount_and_pays_the_fee_to_the_producer() {
    let mut c = chain(1, 2);
    let (u0, u1, p0) = (
        c.users[0].clone(),
        c.users[1].clone(),
        c.producers[0].clone(),
    );
    let tx = c.tx(&u0, 7, transfer(address_of(&u1), 1_234));
    let built = produce_ok(&mut c, std::slice::from_ref(&tx));
    assert_eq!(balance(&c, &u0), USER_BALANCE - 1_234 - 7);
    assert_eq!(balance(&c, &u1), USER_BALANCE + 1_234);
    // Producer: + block reward (10) + the fee.
    assert_eq!(balance(&c, &p0), USER_BALANCE + 10 + 7);
    assert_eq!(account(&c, &address_of(&u0)).nonce, 1);
    let r = &built.applied.receipts[0];
    assert_eq!(
        (r.tx_hash, &r.outcome, r.amount, r.fee),
        (tx.hash(), &Outcome::Applied, 1_234, 7)
    );
    assert_eq!(ledger::meta(&c.state).unwrap().minted, 10);
    assert_supply(&c);
}

#[test]
fn fees_of_several_transactions_all_go_to_the_scheduled_producer() {
    let mut c = chain(3, 2);
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    let txs = vec![
        c.tx(&u0, 3, transfer(address_of(&u1), 1)),
        c.tx(&u0, 4, transfer(address_of(&u1), 1)),
        c.tx(&u1, 5, transfer(address_of(&u0), 1)),
    ];
    let built = produce_ok(&mut c, &txs);
    let signer = producer_key_of(&c, &built);
    assert_eq!(balance(&c, &signer), USER_BALANCE + 10 + 3 + 4 + 5);
    for other in c
        .producers
        .iter()
        .filter(|k| k.public_key() != signer.public_key())
    {
        assert_eq!(balance(&c, other), USER_BALANCE, "only the producer earns");
    }
    assert_eq!(balance(&c, &u0), USER_BALANCE - 2 - 7 + 1);
    assert_eq!(balance(&c, &u1), USER_BALANCE + 2 - 1 - 5);
}

#[test]
fn zero_x_and_our_own_chain_prefix_are_both_local() {
    let mut c = chain(1, 1);
    let u0 = c.users[0].clone();
    let (a, b) = (fresh("recipient a"), fresh("recipient b"));
    let local = QualifiedAddress::parse(&format!("0x{}", hex::encode(a.0))).unwrap();
    let ours = QualifiedAddress::parse(&format!("e2e4x{}", hex::encode(b.0))).unwrap();
    assert_eq!(local.chain, ChainId::LOCAL);
    assert_eq!(ours.chain, ChainId(CHAIN));
    let txs = vec![
        c.tx(&u0, 1, transfer_to(local, 100)),
        c.tx(&u0, 1, transfer_to(ours, 200)),
    ];
    let built = produce_ok(&mut c, &txs);
    assert_eq!(account(&c, &a).balance, 100);
    assert_eq!(account(&c, &b).balance, 200);
    assert!(built
        .applied
        .receipts
        .iter()
        .all(|r| r.outcome == Outcome::Applied));
    assert_eq!(balance(&c, &u0), USER_BALANCE - 300 - 2);
}

#[test]
fn zero_amount_is_invalid() {
    let mut c = chain(1, 2);
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    let tx = c.tx(&u0, 1, transfer(address_of(&u1), 0));
    assert!(matches!(validate(&c, &tx), Err(TxError::Invalid(_))));
}

#[test]
fn memo_of_256_bytes_is_fine_and_257_is_invalid() {
    let mut c = chain(1, 2);
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    let with_memo = |len: usize| Body::Transfer {
        to: QualifiedAddress::local(address_of(&u1)),
        amount: 5,
        memo: vec![0xab; len],
        deliver_by: 0,
        fast_fee: 0,
        via: None,
    };
    assert_eq!(MAX_MEMO_BYTES, 256);
    let too_long = c.unsigned(1, 1, with_memo(257)).sign(&u0);
    assert!(matches!(validate(&c, &too_long), Err(TxError::Invalid(_))));
    let ok = c.tx(&u0, 1, with_memo(256));
    validate(&c, &ok).unwrap();
    assert_eq!(
        produce_rejected(&mut c, &too_long),
        validate(&c, &too_long).unwrap_err()
    );
    c.resync_nonces();
    let ok = c.tx(&u0, 1, with_memo(256));
    produce_ok(&mut c, &[ok]);
    assert_eq!(balance(&c, &u1), USER_BALANCE + 5);
}

#[test]
fn insufficient_funds_counts_the_fee_first() {
    let mut c = chain(1, 2);
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    // The fee (2) is debited before the body runs, so the body sees balance − fee.
    let tx = c.tx(&u0, 2, transfer(address_of(&u1), USER_BALANCE - 1));
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::InsufficientFunds {
            need: USER_BALANCE - 1,
            have: USER_BALANCE - 2
        })
    );
    let exact = c
        .unsigned(1, 2, transfer(address_of(&u1), USER_BALANCE - 2))
        .sign(&u0);
    validate(&c, &exact).unwrap();
    // An unfunded sender cannot even pay the fee.
    let poor = distpos_proofs::SecretKey::from_seed(b"poor");
    let tx = c.tx(&poor, 1, transfer(address_of(&u1), 1));
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::InsufficientFunds { need: 1, have: 0 })
    );
}

#[test]
fn fee_below_min_fee_is_refused() {
    let c = TestChain::new(CHAIN, 1, 2, params(|p| p.min_fee = 3));
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    let low = c.unsigned(1, 2, transfer(address_of(&u1), 1)).sign(&u0);
    assert_eq!(
        validate(&c, &low),
        Err(TxError::FeeTooLow { min: 3, got: 2 })
    );
    let ok = c.unsigned(1, 3, transfer(address_of(&u1), 1)).sign(&u0);
    validate(&c, &ok).unwrap();
}

#[test]
fn transfer_to_an_unregistered_chain_is_refused_and_changes_nothing() {
    let mut c = chain(1, 2);
    let u0 = c.users[0].clone();
    let to = QualifiedAddress::parse(&format!("beefx{}", hex::encode(fresh("far").0))).unwrap();
    let tx = c.tx(&u0, 1, transfer_to(to, 50));
    assert_eq!(validate(&c, &tx), Err(TxError::UnknownPeer(PEER)));
    let mut twin = c.clone();
    twin.produce_empty(1).unwrap();
    assert_eq!(produce_rejected(&mut c, &tx), TxError::UnknownPeer(PEER));
    // Same block, same state as a block that never saw the transaction.
    assert_eq!(c.blocks, twin.blocks);
    assert_eq!(c.state, twin.state);
    assert_eq!(balance(&c, &u0), USER_BALANCE);
}

#[test]
fn outbound_transfer_debits_the_sender_and_creates_an_in_flight_entry() {
    let mut c = chain(1, 2);
    let (u0, owner) = (c.users[0].clone(), address_of(&c.users[1]));
    register_peer(&mut c, owner);
    let recipient = fresh("over there");
    let to = QualifiedAddress::new(PEER, recipient);
    let tx = c.tx(
        &u0,
        2,
        Body::Transfer {
            to,
            amount: 5_000,
            memo: b"hi".to_vec(),
            deliver_by: 1_800_000_000_000,
            fast_fee: 0,
            via: None,
        },
    );
    let built = produce_ok(&mut c, std::slice::from_ref(&tx));
    assert_eq!(balance(&c, &u0), USER_BALANCE - 5_000 - 2);
    assert_eq!(
        ledger::in_flight(&c.state, &tx.hash()).unwrap(),
        Some(InFlight {
            destination: PEER,
            sender: address_of(&u0),
            recipient,
            amount: 5_000,
            deliver_by: 1_800_000_000_000,
            height: c.height(),
            forwarding: None,
        })
    );
    let r = &built.applied.receipts[0];
    assert_eq!(r.outcome, Outcome::InFlight { destination: PEER });
    assert_eq!((r.amount, r.fee), (5_000, 2));
    let p = peer(&c, PEER).unwrap();
    assert_eq!((p.sent_out, p.volume_out), (1, 5_000));
    assert_eq!(
        p.corr, 0,
        "nothing is credited before the destination acknowledges"
    );
    // The in-flight amount is counted by the supply audit.
    let report = audit_supply(&c.state).unwrap();
    assert_eq!(report.in_flight, 5_000);
    assert!(report.holds(), "{report:?}");

    let tx2 = c.tx(&u0, 1, transfer_to(to, 7));
    produce_ok(&mut c, &[tx2]);
    let p = peer(&c, PEER).unwrap();
    assert_eq!((p.sent_out, p.volume_out), (2, 5_007));
    assert_eq!(audit_supply(&c.state).unwrap().in_flight, 5_007);
    assert_supply(&c);
}

#[test]
fn suspended_peer_refuses_outbound_transfers_until_resumed() {
    let mut c = chain(1, 2);
    let (u0, owner) = (c.users[0].clone(), address_of(&c.users[1]));
    register_peer(&mut c, owner);
    govern(&mut c, GovAction::SuspendPeer { chain: PEER });
    assert!(peer(&c, PEER).unwrap().suspended);
    let to = QualifiedAddress::new(PEER, fresh("over there"));
    let tx = c.tx(&u0, 1, transfer_to(to, 10));
    assert_eq!(validate(&c, &tx), Err(TxError::PeerSuspended(PEER)));
    assert_eq!(produce_rejected(&mut c, &tx), TxError::PeerSuspended(PEER));
    assert_eq!(balance(&c, &u0), USER_BALANCE);

    govern(&mut c, GovAction::ResumePeer { chain: PEER });
    assert!(!peer(&c, PEER).unwrap().suspended);
    c.resync_nonces();
    let tx = c.tx(&u0, 1, transfer_to(to, 10));
    let built = produce_ok(&mut c, &[tx]);
    assert_eq!(
        built.applied.receipts[0].outcome,
        Outcome::InFlight { destination: PEER }
    );
    assert_eq!(balance(&c, &u0), USER_BALANCE - 11);
    assert_supply(&c);
}
