//! The underwritten fast path (DESIGN §11) on the destination's ledger: bonds, a
//! transfer credited on endorsements before its block is irreversible at the source,
//! the shares unlocked by the ordinary proof, slashed into the correspondent account
//! when the endorsed block was orphaned and the transfer expired, and handed back if
//! the transfer is proven after all. Supply holds on both chains at every step; a
//! transfer is credited once, whichever path arrives first.
// Helpers outside `#[test]` functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    interchain::fast::{self, Bond, FastError, FastPolicy, FastState},
    testkit::{address_of, peer_pair, TestChain},
    tx::{GovAction, Outcome, TransferResult},
    Body, Transaction, TxError,
};
use distpos_proofs::{
    fast::{EndorsedTransfer, Endorsement, UnfinalError},
    merkle::{leaf_hash, merkle_root_of_items},
    multiproof::prove_many,
    ChainId, Hash32, SecretKey, SignedHeader,
};

const A: u32 = 0xfa;
const B: u32 = 0xfb;
/// The user of B that owns both bonds.
const BONDER: usize = 2;
const POLICY: FastPolicy = FastPolicy {
    max_amount: 5_000,
    max_outstanding: 8_000,
    fee_share_bps: 5_000,
};

fn uw(i: u8) -> SecretKey {
    SecretKey::from_seed(&[b'u', b'w', i])
}

/// Two one-producer chains; B holds 10,000 of collateral for A, the fast path on with
/// [`POLICY`], and bonds of 600 (key 1) and 500 (key 2) for A.
fn setup() -> (TestChain, TestChain) {
    let (a, mut b) = peer_pair(A, B, 1, USERS, TestChain::dev_params());
    deposit(&mut b, a.chain_id(), 10_000);
    govern(
        &mut b,
        GovAction::SetFastPolicy {
            chain: a.chain_id(),
            policy: POLICY,
        },
    );
    let peer = a.chain_id();
    bond_each(&mut b, |signing_key, amount| Body::BondUnderwriter {
        peer,
        signing_key,
        amount,
    });
    assert_supply(&b);
    (a, b)
}

/// [`BONDER`] sends `body` for 600 on key 1 and 500 on key 2, in one block of `b`.
fn bond_each(b: &mut TestChain, body: impl Fn(distpos_proofs::PublicKey, u128) -> Body) {
    let owner = key(b, BONDER);
    let txs: Vec<Transaction> = [(1, 600), (2, 500)]
        .into_iter()
        .map(|(i, amount)| b.tx(&owner, 1, body(uw(i).public_key(), amount)))
        .collect();
    produce_ok(b, &txs);
}

fn to_b(b: &TestChain) -> QualifiedAddress {
    QualifiedAddress {
        chain: b.chain_id(),
        address: address_of(&b.users[0]),
    }
}

fn fast_transfer(to: QualifiedAddress, amount: u128, fast_fee: u128) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: Vec::new(),
        deliver_by: 0,
        fast_fee,
        via: None,
    }
}

/// A's sender sends `amount` + `fast_fee` to B's user 0 in A's next block; returns the
/// transfer and that block's header.
fn send_fast(
    a: &mut TestChain,
    b: &TestChain,
    amount: u128,
    fast_fee: u128,
) -> (Transaction, SignedHeader) {
    let sender = key(a, SENDER);
    let t = a.tx(&sender, FEE, fast_transfer(to_b(b), amount, fast_fee));
    produce_ok(a, std::slice::from_ref(&t));
    let h = a.height();
    (t, a.headers(h, h).remove(0))
}

/// `InboundFast` of `t` (in `header`'s block, whose transactions are `block_txs`) with
/// the given shares by underwriter keys.
fn inbound_fast(
    a: ChainId,
    b: ChainId,
    header: &SignedHeader,
    block_txs: &[Transaction],
    t: &Transaction,
    shares: &[(u8, u128)],
) -> Body {
    let index = block_txs.iter().position(|x| x == t).unwrap();
    let leaves: Vec<Hash32> = block_txs.iter().map(|x| leaf_hash(&x.encode())).collect();
    let what = EndorsedTransfer {
        source: a,
        destination: b,
        tx: t.hash(),
        block_id: header.id(),
        height: header.header.height,
    };
    Body::InboundFast {
        peer: a,
        header: Box::new(header.clone()),
        transfer: Box::new(t.clone()),
        index: index as u32,
        proof: prove_many(&leaves, &[index]).unwrap(),
        endorsements: shares
            .iter()
            .map(|&(i, s)| what.endorse(&uw(i), s))
            .collect(),
    }
}

/// `b` follows `a`'s headers up to `a`'s head (a relayer's `PeerHeaders`).
fn sync_headers(b: &mut TestChain, a: &TestChain) {
    keep_up(b, a.height());
    let headers = header_run(b, a);
    if !headers.is_empty() {
        submit(
            b,
            Body::PeerHeaders {
                peer: a.chain_id(),
                headers,
            },
        );
    }
}

/// The producer of `b` puts system transaction `body` in its next block, which must
/// include it; returns its receipt.
fn apply_system(b: &mut TestChain, body: Body) -> distpos_chain::Receipt {
    let tx = system(b, body);
    produce_ok(b, &[tx]).applied.receipts.remove(0)
}

fn block_txs(a: &TestChain, height: u64) -> Vec<Transaction> {
    a.blocks[height as usize - 1].txs.clone()
}

fn bond(b: &TestChain, a: &TestChain, i: u8) -> Bond {
    fast::bond(&b.state, a.chain_id(), &uw(i).public_key())
        .unwrap()
        .unwrap()
}

fn book(b: &TestChain, a: &TestChain) -> fast::FastBook {
    fast::book(&b.state, a.chain_id()).unwrap()
}

fn fast_error(e: TxError) -> FastError {
    match e {
        TxError::Fast(f) => *f,
        other => panic!("expected a fast-path error, got {other:?}"),
    }
}

#[test]
fn a_fast_transfer_is_credited_before_finality_and_its_proof_unlocks_the_shares() {
    let (mut a, mut b) = setup();
    let recipient = address_of(&b.users[0]);
    let before = account(&b, &recipient).balance;
    let owner_before = balance(&b, &key(&b, BONDER));
    let (t, header) = send_fast(&mut a, &b, 1_000, 20);
    // A's sender paid amount + fast fee, which is in flight.
    assert_supply(&a);
    keep_up(&mut b, a.height());
    assert!(
        light_client(&b, a.chain_id()).lib() < header.header.height,
        "B's light client has not seen the block: this is before finality there"
    );
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &header,
        &block_txs(&a, header.header.height),
        &t,
        &[(1, 600), (2, 420)],
    );
    let fast_tx = system(&b, body.clone());
    let receipt = produce_ok(&mut b, std::slice::from_ref(&fast_tx))
        .applied
        .receipts
        .remove(0);
    assert_eq!(
        receipt.outcome,
        Outcome::FastDelivered {
            source: a.chain_id(),
            source_tx: t.hash()
        }
    );
    assert_eq!(receipt.amount, 1_020);
    // Half the fast fee (10) goes to the underwriters pro rata (600/1020 → 5, 420/1020
    // → 4, rounded down); the recipient gets the amount and the rest (11).
    assert_eq!(account(&b, &recipient).balance, before + 1_011);
    assert_eq!(balance(&b, &key(&b, BONDER)), owner_before + 9);
    assert_eq!(corr(&b, a.chain_id()), 10_000 - 1_020);
    assert_eq!((bond(&b, &a, 1).locked, bond(&b, &a, 2).locked), (600, 420));
    assert_eq!(bond(&b, &a, 1).free(), 0);
    assert_eq!(book(&b, &a).outstanding, 1_020);
    let rec = fast::record(&b.state, a.chain_id(), &t.hash())
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.state, rec.total, rec.fee_paid),
        (FastState::Locked, 1_020, 9)
    );
    assert_supply(&b);

    // Again: consumed already.
    let again = refused_system(&mut b, body);
    assert!(matches!(again, TxError::AlreadyConsumed(..)), "{again:?}");

    // The ordinary proof: the shares unlock, nothing is credited twice, and the
    // receipt reports the transfer delivered for what A holds in flight.
    finalize(&mut a, header.header.height);
    let (_, receipt, hb) = deliver_batch(&mut b, &a, std::slice::from_ref(&t));
    assert_eq!(
        receipt.outcome,
        Outcome::InboundBatch {
            source: a.chain_id(),
            results: vec![TransferResult {
                source_tx: t.hash(),
                amount: 1_020,
                bounced: None,
                fast: true,
                bounced_by: None,
            }]
        }
    );
    assert_eq!(account(&b, &recipient).balance, before + 1_011);
    assert_eq!(corr(&b, a.chain_id()), 10_000 - 1_020);
    assert_eq!((bond(&b, &a, 1).locked, bond(&b, &a, 2).locked), (0, 0));
    assert_eq!((bond(&b, &a, 1).amount, bond(&b, &a, 2).amount), (600, 500));
    assert_eq!(book(&b, &a).outstanding, 0);
    let rec = fast::record(&b.state, a.chain_id(), &t.hash())
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, FastState::Proven);
    assert_supply(&b);
    // The batch again: consumed.
    finalize(&mut b, hb);
    let replay = inbound_of(&mut b.clone(), &a, std::slice::from_ref(&t));
    let err = refused_system(&mut b, replay);
    assert!(matches!(err, TxError::AlreadyConsumed(..)), "{err:?}");

    // A settles it as delivered: amount + fast fee leave its books for good.
    finalize(&mut b, hb);
    let corr_a = corr(&a, b.chain_id());
    settle_back(&mut a, &b, hb);
    assert_eq!(corr(&a, b.chain_id()), corr_a + 1_020);
    assert_supplies(&a, &b);
}

#[test]
fn the_ordinary_path_delivers_an_unearned_fast_fee_with_the_amount() {
    let (mut a, mut b) = setup();
    let recipient = address_of(&b.users[0]);
    let before = account(&b, &recipient).balance;
    let (t, header) = send_fast(&mut a, &b, 300, 7);
    finalize(&mut a, header.header.height);
    let (_, receipt, _) = deliver_batch(&mut b, &a, std::slice::from_ref(&t));
    assert_eq!(receipt.amount, 307);
    assert_eq!(account(&b, &recipient).balance, before + 307);
    assert_eq!(corr(&b, a.chain_id()), 10_000 - 307);
    assert!(fast::record(&b.state, a.chain_id(), &t.hash())
        .unwrap()
        .is_none());
    // The fast path after the ordinary one: consumed.
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &header,
        &block_txs(&a, header.header.height),
        &t,
        &[(1, 307)],
    );
    let err = refused_system(&mut b, body);
    assert!(matches!(err, TxError::AlreadyConsumed(..)), "{err:?}");
    assert_supplies(&a, &b);
}

#[test]
fn a_fast_delivery_that_breaks_a_rule_is_refused_and_changes_nothing() {
    let (mut a, mut b) = setup();
    let (t, header) = send_fast(&mut a, &b, 1_000, 20);
    keep_up(&mut b, a.height());
    let txs = block_txs(&a, header.header.height);
    let (ia, ib) = (a.chain_id(), b.chain_id());
    let with = |shares: &[(u8, u128)]| inbound_fast(ia, ib, &header, &txs, &t, shares);
    // Shares short of the total, above the total, above a free bond, by an unbonded
    // key, twice by one key, or a zero share.
    let cases: Vec<(Body, &str)> = vec![
        (with(&[(1, 600), (2, 419)]), "shares_mismatch"),
        (with(&[(1, 600), (2, 421)]), "shares_mismatch"),
        (with(&[(1, 601), (2, 419)]), "above_bond"),
        (with(&[(1, 600), (3, 420)]), "no_bond"),
        (with(&[(1, 510), (1, 510)]), "duplicate"),
        (with(&[(1, 600), (2, 420), (3, 0)]), "zero"),
    ];
    for (body, what) in cases {
        let e = fast_error(refused_system(&mut b, body));
        let ok = match what {
            "shares_mismatch" => matches!(e, FastError::SharesMismatch { .. }),
            "above_bond" => matches!(e, FastError::ShareAboveBond { .. }),
            "no_bond" => matches!(e, FastError::NoBond(..)),
            "duplicate" => matches!(e, FastError::DuplicateEndorser(_)),
            _ => matches!(e, FastError::ZeroShare(_)),
        };
        assert!(ok, "{what}: {e:?}");
    }
    // An endorsement of another block (or height) does not count for this one.
    let mut body = with(&[(1, 600), (2, 420)]);
    if let Body::InboundFast { endorsements, .. } = &mut body {
        let other = EndorsedTransfer {
            source: a.chain_id(),
            destination: b.chain_id(),
            tx: t.hash(),
            block_id: Hash32([7; 32]),
            height: header.header.height,
        };
        endorsements[1] = other.endorse(&uw(2), 420);
    }
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::BadEndorsement(_)
    ));
    // A signature by a key other than the one named.
    let mut body = with(&[(1, 600), (2, 420)]);
    if let Body::InboundFast { endorsements, .. } = &mut body {
        let signed = endorsements[1].clone();
        endorsements[1] = Endorsement {
            signing_key: uw(1).public_key(),
            ..signed
        };
    }
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::DuplicateEndorser(_) | FastError::BadEndorsement(_)
    ));
    // A header not signed by A's scheduled producer.
    let mut forged = header.clone();
    forged.signature = uw(1).sign(&forged.id());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &forged,
        &txs,
        &t,
        &[(1, 600), (2, 420)],
    );
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::Header(_)
    ));
    // A transfer that is not in the block (the proof fails).
    let mut body = with(&[(1, 600), (2, 420)]);
    if let Body::InboundFast { index, .. } = &mut body {
        *index += 1;
    }
    assert!(matches!(refused_system(&mut b, body), TxError::BadProof(_)));
    // No fast fee: the sender did not opt in.
    let (plain, h2) = send_fast(&mut a, &b, 100, 0);
    keep_up(&mut b, a.height());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &h2,
        &block_txs(&a, h2.header.height),
        &plain,
        &[(1, 100)],
    );
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::NoFastFee
    ));
    // Above the largest fast transfer, and above the outstanding limit.
    let (big, h3) = send_fast(&mut a, &b, 5_000, 1);
    keep_up(&mut b, a.height());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &h3,
        &block_txs(&a, h3.header.height),
        &big,
        &[(1, 600), (2, 500)],
    );
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::TooLarge { .. }
    ));
    // B's admission policy for A (DESIGN §13) does not admit it now: the transfer
    // takes the ordinary path, where the policy delays or bounces it.
    let policy = |max_transfer| GovAction::SetPeerPolicy {
        chain: a.chain_id(),
        policy: distpos_chain::interchain::policy::PeerPolicy {
            max_transfer,
            ..Default::default()
        },
    };
    govern(&mut b, policy(500));
    assert!(matches!(
        fast_error(refused_system(&mut b, with(&[(1, 600), (2, 420)]))),
        FastError::Policy(_)
    ));
    govern(&mut b, policy(0));
    // The honest one still goes through after all these.
    let honest = with(&[(1, 600), (2, 420)]);
    apply_system(&mut b, honest);
    assert_supply(&b);
    // Off by governance: refused.
    govern(
        &mut b,
        GovAction::SetFastPolicy {
            chain: a.chain_id(),
            policy: FastPolicy::default(),
        },
    );
    let (t4, h4) = send_fast(&mut a, &b, 10, 1);
    keep_up(&mut b, a.height());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &h4,
        &block_txs(&a, h4.header.height),
        &t4,
        &[(2, 11)],
    );
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::Off(_)
    ));
    // Once B's light client holds the block as irreversible: the ordinary path only.
    govern(
        &mut b,
        GovAction::SetFastPolicy {
            chain: a.chain_id(),
            policy: POLICY,
        },
    );
    let head = a.height();
    finalize(&mut a, head);
    keep_up(&mut b, a.height());
    sync_headers(&mut b, &a);
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &h4,
        &block_txs(&a, h4.header.height),
        &t4,
        &[(2, 11)],
    );
    assert!(matches!(
        fast_error(refused_system(&mut b, body)),
        FastError::Header(UnfinalError::AlreadyIrreversible { .. })
    ));
    assert_supplies(&a, &b);
}

#[test]
fn outstanding_fast_value_is_capped() {
    let (mut a, mut b) = setup();
    // Bonds enough for three transfers of 3,000: 9,000 > the 8,000 cap.
    let owner = key(&b, BONDER);
    let more = b.tx(
        &owner,
        1,
        Body::BondUnderwriter {
            peer: a.chain_id(),
            signing_key: uw(3).public_key(),
            amount: 9_000,
        },
    );
    produce_ok(&mut b, &[more]);
    let mut delivered = 0;
    for i in 0..3 {
        let (t, h) = send_fast(&mut a, &b, 2_999, 1);
        keep_up(&mut b, a.height());
        let body = inbound_fast(
            a.chain_id(),
            b.chain_id(),
            &h,
            &block_txs(&a, h.header.height),
            &t,
            &[(3, 3_000)],
        );
        if i < 2 {
            apply_system(&mut b, body);
            delivered += 1;
        } else {
            assert!(matches!(
                fast_error(refused_system(&mut b, body)),
                FastError::OutstandingLimit {
                    outstanding: 6_000,
                    ..
                }
            ));
        }
    }
    assert_eq!(delivered, 2);
    assert_eq!(bond(&b, &a, 3).locked, 6_000);
    assert_supply(&b);
}

/// A's producer signs a second block at height `h` (same slot, same parent) holding
/// only `t`: a block the chain never builds on.
fn orphan_block(a: &TestChain, h: u64, t: &Transaction) -> SignedHeader {
    let real = a.headers(h, h).remove(0);
    let mut fake = real.header.clone();
    fake.tx_root = merkle_root_of_items(&[t.encode()]);
    fake.tx_count = 1;
    fake.receipts_root = Hash32([0xee; 32]);
    let key = a
        .producers
        .iter()
        .find(|k| k.public_key() == fake.producer)
        .unwrap();
    fake.sign(key)
}

/// A transfer of `amount` + `fast_fee` from A's user `user` to B, expiring `ms` after
/// A's head, that is never submitted to A.
fn unsent(
    a: &TestChain,
    b: &TestChain,
    user: usize,
    amount: u128,
    fast_fee: u128,
    ms: u64,
) -> Transaction {
    let mut u = a.unsigned(1, FEE, fast_transfer(to_b(b), amount, fast_fee));
    u.expiration = a.head_time() + ms;
    u.sign(&a.users[user])
}

#[test]
fn an_orphaned_endorsement_is_slashed_into_the_correspondent_account() {
    let (mut a, mut b) = setup();
    a.produce_empty(1).unwrap();
    let t = unsent(&a, &b, RELAYER, 900, 100, 2_000);
    a.produce_empty(1).unwrap();
    let h = a.height();
    let fake = orphan_block(&a, h, &t);
    keep_up(&mut b, a.height());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &fake,
        std::slice::from_ref(&t),
        &t,
        &[(1, 600), (2, 400)],
    );
    apply_system(&mut b, body);
    let corr_after_fast = corr(&b, a.chain_id());
    assert_eq!(corr_after_fast, 10_000 - 1_000);
    assert_supply(&b);
    let slash = Body::SlashFast {
        peer: a.chain_id(),
        tx: t.hash(),
    };
    // Not yet: B's light client has not seen height h become irreversible.
    assert!(matches!(
        fast_error(refused_system(&mut b, slash.clone())),
        FastError::NotDecidedYet(_)
    ));
    // A's real block at h is irreversible, but the transfer has not expired there yet.
    finalize(&mut a, h);
    keep_up(&mut b, a.height());
    sync_headers(&mut b, &a);
    assert!(matches!(
        fast_error(refused_system(&mut b, slash.clone())),
        FastError::NotExpired { .. }
    ));
    // Past its expiration at A's irreversible time: slashed.
    while a.head_time() <= t.expiration {
        a.produce_empty(1).unwrap();
    }
    keep_up(&mut b, a.height());
    sync_headers(&mut b, &a);
    let receipt = apply_system(&mut b, slash.clone());
    assert_eq!(
        receipt.outcome,
        Outcome::FastSlashed {
            source: a.chain_id(),
            source_tx: t.hash()
        }
    );
    // The correspondent account is whole again; the bonds paid.
    assert_eq!(corr(&b, a.chain_id()), 10_000);
    assert_eq!((bond(&b, &a, 1).amount, bond(&b, &a, 2).amount), (0, 100));
    assert_eq!((bond(&b, &a, 1).locked, bond(&b, &a, 2).locked), (0, 0));
    let bk = book(&b, &a);
    assert_eq!((bk.bonded, bk.outstanding, bk.slashed), (100, 0, 1));
    assert_supplies(&a, &b);
    // Not twice.
    assert!(matches!(
        fast_error(refused_system(&mut b, slash)),
        FastError::NotLocked(_)
    ));
}

#[test]
fn a_slashed_transfer_proven_after_all_hands_the_shares_back() {
    let (mut a, mut b) = setup();
    let t = unsent(&a, &b, RELAYER, 900, 100, 3_000);
    a.produce_empty(1).unwrap();
    let h = a.height();
    // Endorsed in an orphaned block at h…
    let fake = orphan_block(&a, h, &t);
    keep_up(&mut b, a.height());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &fake,
        std::slice::from_ref(&t),
        &t,
        &[(1, 600), (2, 400)],
    );
    apply_system(&mut b, body);
    // …but included by A's real chain at h + 1, before it expired.
    produce_ok(&mut a, std::slice::from_ref(&t));
    let included = a.height();
    assert_supply(&a);
    while a.head_time() <= t.expiration {
        a.produce_empty(1).unwrap();
    }
    keep_up(&mut b, a.height());
    sync_headers(&mut b, &a);
    // Slashed first (the proof of the real inclusion has not come yet).
    apply_system(
        &mut b,
        Body::SlashFast {
            peer: a.chain_id(),
            tx: t.hash(),
        },
    );
    assert_eq!(corr(&b, a.chain_id()), 10_000);
    assert_supply(&b);
    // The ordinary proof arrives: the shares go back, corr pays the transfer, the
    // recipient is not credited again, and the receipt says delivered.
    let recipient = address_of(&b.users[0]);
    let credited = account(&b, &recipient).balance;
    let (_, receipt, hb) = deliver_batch(&mut b, &a, std::slice::from_ref(&t));
    assert!(
        matches!(&receipt.outcome, Outcome::InboundBatch { results, .. } if results[0].bounced.is_none() && results[0].amount == 1_000)
    );
    assert_eq!(account(&b, &recipient).balance, credited);
    assert_eq!(corr(&b, a.chain_id()), 10_000 - 1_000);
    assert_eq!((bond(&b, &a, 1).amount, bond(&b, &a, 2).amount), (600, 500));
    assert_eq!(
        fast::record(&b.state, a.chain_id(), &t.hash())
            .unwrap()
            .unwrap()
            .state,
        FastState::Returned
    );
    assert_eq!(a.locate(&t.hash()).map(|x| x.0), Some(included));
    finalize(&mut b, hb);
    settle_back(&mut a, &b, hb);
    assert_supplies(&a, &b);
}

#[test]
fn bonds_unbond_only_their_free_part_and_only_by_their_owner() {
    let (mut a, mut b) = setup();
    let (t, header) = send_fast(&mut a, &b, 500, 50);
    keep_up(&mut b, a.height());
    let body = inbound_fast(
        a.chain_id(),
        b.chain_id(),
        &header,
        &block_txs(&a, header.header.height),
        &t,
        &[(1, 550)],
    );
    apply_system(&mut b, body);
    let unbond = |amount| Body::UnbondUnderwriter {
        peer: a.chain_id(),
        signing_key: uw(1).public_key(),
        amount,
    };
    // 50 of 600 are free.
    let owner = key(&b, BONDER);
    let tx = b.tx(&owner, 1, unbond(51));
    assert!(matches!(
        fast_error(produce_rejected(&mut b, &tx)),
        FastError::BondLocked { free: 50, .. }
    ));
    b.resync_nonces();
    // Not the owner.
    let stranger = key(&b, DEPOSITOR);
    let tx = b.tx(&stranger, 1, unbond(10));
    assert!(matches!(
        fast_error(produce_rejected(&mut b, &tx)),
        FastError::NotBondOwner(..)
    ));
    b.resync_nonces();
    // Another owner cannot add to it either.
    let tx = b.tx(
        &stranger,
        1,
        Body::BondUnderwriter {
            peer: a.chain_id(),
            signing_key: uw(1).public_key(),
            amount: 5,
        },
    );
    assert!(matches!(
        fast_error(produce_rejected(&mut b, &tx)),
        FastError::NotBondOwner(..)
    ));
    b.resync_nonces();
    // The free 50 unbond like stake.
    let tx = b.tx(&owner, 1, unbond(50));
    produce_ok(&mut b, &[tx]);
    assert_eq!(account(&b, &address_of(&owner)).unbonding, 50);
    assert_eq!((bond(&b, &a, 1).amount, bond(&b, &a, 1).locked), (550, 550));
    assert_supply(&b);
}

#[test]
fn a_peer_with_bonds_cannot_be_removed_until_they_are_unbonded() {
    let (a, mut b) = setup();
    // Nothing in flight and the collateral taken back: only the bonds bind.
    let owner = b.producers[0].clone();
    let tx = b.tx(
        &owner,
        1,
        Body::WithdrawCollateral {
            peer: a.chain_id(),
            amount: 10_000,
        },
    );
    produce_ok(&mut b, &[tx]);
    assert_eq!(corr(&b, a.chain_id()), 0);
    let remove = |b: &mut TestChain| {
        let p0 = b.producers[0].clone();
        b.tx(
            &p0,
            1,
            Body::Propose {
                action: Box::new(GovAction::RemovePeer {
                    chain: a.chain_id(),
                }),
            },
        )
    };
    let tx = remove(&mut b);
    let e = fast_error(produce_rejected(&mut b, &tx));
    assert!(
        matches!(
            e,
            FastError::StillBonded {
                bonded: 1_100,
                outstanding: 0,
                ..
            }
        ),
        "{e:?}"
    );
    b.resync_nonces();
    let from = a.chain_id();
    bond_each(&mut b, |signing_key, amount| Body::UnbondUnderwriter {
        peer: from,
        signing_key,
        amount,
    });
    let tx = remove(&mut b);
    produce_ok(&mut b, &[tx]);
    assert!(peer(&b, a.chain_id()).is_none());
    assert_supply(&b);
}

/// One transfer of the property test: its amount and fast fee, whether it is offered
/// to the fast path, split between both underwriters, and when each path arrives.
#[derive(Clone, Debug)]
struct Spec {
    amount: u128,
    fast_fee: u128,
    fast: bool,
    split: bool,
    fast_at: u8,
    proof_at: u8,
}

fn spec() -> impl proptest::strategy::Strategy<Value = Spec> {
    use proptest::prelude::*;
    (
        1u128..1_200,
        0u128..60,
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(|(amount, fast_fee, fast, split, fast_at, proof_at)| Spec {
            amount,
            fast_fee,
            fast,
            split,
            fast_at,
            proof_at,
        })
}

/// The invariants of B's fast-path books: supply holds (bonds counted); no bond has
/// more locked than it holds; what the bonds have locked is exactly the shares of the
/// locked fast records, and the book's outstanding their totals.
fn check_books(a: &TestChain, b: &TestChain, sent: &[Transaction]) {
    assert_supplies(a, b);
    let mut locked_by_key = std::collections::BTreeMap::new();
    let mut outstanding = 0u128;
    for t in sent {
        if let Some(r) = fast::record(&b.state, a.chain_id(), &t.hash()).unwrap() {
            if r.state == FastState::Locked {
                outstanding += r.total;
                for s in &r.shares {
                    *locked_by_key.entry(s.signing_key).or_insert(0u128) += s.share;
                }
            }
        }
    }
    for i in 1..=2u8 {
        let bd = bond(b, a, i);
        assert!(bd.locked <= bd.amount, "{bd:?}");
        assert_eq!(
            bd.locked,
            locked_by_key.get(&uw(i).public_key()).copied().unwrap_or(0),
            "key {i}"
        );
    }
    assert_eq!(book(b, a).outstanding, outstanding);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the order in which the fast path and the ordinary proof of each
    /// transfer arrive (or whether the fast path is taken at all), every transfer is
    /// credited once, for its total less what its underwriters were paid; shares are
    /// locked once and unlocked by the proof; supply holds on both chains throughout.
    #[test]
    fn each_transfer_is_credited_once_whichever_path_comes_first(
        specs in proptest::collection::vec(spec(), 1..7)
    ) {
        let (mut a, mut b) = setup();
        let recipient = address_of(&b.users[0]);
        let start = account(&b, &recipient).balance;
        // Events in the order of their keys: (key, transfer, is the proof). A transfer
        // is sent at its first event, so that a proof of an earlier one does not make
        // the later ones irreversible at B before their fast path is tried.
        let mut events: Vec<(u8, usize, bool)> = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            events.push((s.proof_at, i, true));
            if s.fast {
                events.push((s.fast_at, i, false));
            }
        }
        events.sort();
        let mut sent: Vec<Option<(Transaction, SignedHeader)>> = vec![None; specs.len()];
        let mut txs: Vec<Transaction> = Vec::new();
        for (_, i, proof) in events {
            if sent[i].is_none() {
                let s = &specs[i];
                let fee = if s.fast { s.fast_fee.max(1) } else { s.fast_fee };
                let (t, h) = send_fast(&mut a, &b, s.amount, fee);
                txs.push(t.clone());
                sent[i] = Some((t, h));
            }
            let Some((t, header)) = sent[i].clone() else { unreachable!() };
            if proof {
                deliver_batch(&mut b, &a, std::slice::from_ref(&t));
            } else {
                keep_up(&mut b, a.height());
                let total = specs[i].amount + t_fast_fee(&t);
                let free1 = bond(&b, &a, 1).free();
                let free2 = bond(&b, &a, 2).free();
                let shares: Vec<(u8, u128)> = if specs[i].split && total >= 2 {
                    let half = total / 2;
                    vec![(1, half), (2, total - half)]
                } else if total <= free1 {
                    vec![(1, total)]
                } else {
                    vec![(2, total)]
                };
                let body = inbound_fast(
                    a.chain_id(),
                    b.chain_id(),
                    &header,
                    &block_txs(&a, header.header.height),
                    &t,
                    &shares,
                );
                let fits = shares.iter().all(|&(k, s)| s <= if k == 1 { free1 } else { free2 });
                // Refused (consumed, irreversible here already, above a free bond or
                // a limit), the block goes on without it: the transfer takes the
                // ordinary path.
                let tx = system(&b, body);
                let built = b.produce(std::slice::from_ref(&tx)).unwrap();
                if built.rejected.is_empty() {
                    proptest::prop_assert!(fits, "a share above a free bond was locked");
                }
            }
            check_books(&a, &b, &txs);
        }
        let sent: Vec<(Transaction, SignedHeader)> = sent.into_iter().flatten().collect();
        // Every transfer ended delivered once: the recipient holds each total less the
        // underwriters' pay, and nothing is locked any more.
        let mut expected = start;
        for (t, _) in &sent {
            let rec = distpos_chain::interchain::inbound_record(&b.state, a.chain_id(), &t.hash())
                .unwrap()
                .expect("every transfer consumed");
            let paid = fast::record(&b.state, a.chain_id(), &t.hash())
                .unwrap()
                .map_or(0, |r| {
                    assert_eq!(r.state, FastState::Proven);
                    r.fee_paid
                });
            expected += rec.amount - paid;
        }
        proptest::prop_assert_eq!(account(&b, &recipient).balance, expected);
        proptest::prop_assert_eq!(book(&b, &a).outstanding, 0);
        check_books(&a, &b, &txs);
    }
}

fn t_fast_fee(t: &Transaction) -> u128 {
    match &t.body {
        Body::Transfer { fast_fee, .. } => *fast_fee,
        _ => 0,
    }
}

/// An orphaned fast delivery of the property test: its amount and fast fee, whether
/// two underwriters share it, and whether A's real chain includes the transfer after
/// all (before it expires).
#[derive(Clone, Debug)]
struct Orphan {
    amount: u128,
    fast_fee: u128,
    split: bool,
    included: bool,
}

fn orphan() -> impl proptest::strategy::Strategy<Value = Orphan> {
    use proptest::prelude::*;
    (1u128..500, 1u128..40, any::<bool>(), any::<bool>()).prop_map(
        |(amount, fast_fee, split, included)| Orphan {
            amount,
            fast_fee,
            split,
            included,
        },
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Fast deliveries endorsed in orphaned blocks: each is slashed once its block is
    /// provably orphaned and it expired, making the correspondent account whole; one
    /// that A's real chain included after all has its shares handed back when its
    /// proof arrives. Supply holds on both chains at every step, what the bonds have
    /// locked is always exactly the locked shares, and every transfer is credited once.
    #[test]
    fn slashes_and_returns_keep_supply_and_credit_once(
        orphans in proptest::collection::vec(orphan(), 1..3)
    ) {
        let (mut a, mut b) = setup();
        let recipient = address_of(&b.users[0]);
        let start = account(&b, &recipient).balance;
        let corr_start = corr(&b, a.chain_id());
        let mut sent: Vec<(Transaction, bool)> = Vec::new();
        for (i, o) in orphans.iter().enumerate() {
            a.produce_empty(1).unwrap();
            let t = unsent(&a, &b, 2 + i, o.amount, o.fast_fee, 2_000);
            a.produce_empty(1).unwrap();
            let fake = orphan_block(&a, a.height(), &t);
            keep_up(&mut b, a.height());
            let total = o.amount + o.fast_fee;
            let shares: Vec<(u8, u128)> = if o.split && total >= 2 {
                vec![(1, total / 2), (2, total - total / 2)]
            } else {
                vec![(1, total)]
            };
            let fits = shares.iter().all(|&(k, s)| s <= bond(&b, &a, k).free());
            let body = inbound_fast(a.chain_id(), b.chain_id(), &fake, std::slice::from_ref(&t), &t, &shares);
            let tx = system(&b, body);
            let built = b.produce(std::slice::from_ref(&tx)).unwrap();
            proptest::prop_assert_eq!(built.rejected.is_empty(), fits);
            if o.included {
                produce_ok(&mut a, std::slice::from_ref(&t));
            }
            if fits {
                sent.push((t, o.included));
            }
            check_books(&a, &b, &sent.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>());
        }
        let txs: Vec<Transaction> = sent.iter().map(|(t, _)| t.clone()).collect();
        // A moves past every expiration; B's light client follows it.
        while sent.iter().any(|(t, _)| a.head_time() <= t.expiration) {
            a.produce_empty(1).unwrap();
        }
        a.produce_empty(3).unwrap();
        sync_headers(&mut b, &a);
        for (t, _) in &sent {
            apply_system(&mut b, Body::SlashFast { peer: a.chain_id(), tx: t.hash() });
            check_books(&a, &b, &txs);
        }
        // Every slash made the correspondent account whole.
        proptest::prop_assert_eq!(corr(&b, a.chain_id()), corr_start);
        // The proofs of those A included: shares back, the account pays them.
        for (t, included) in &sent {
            if *included {
                deliver_batch(&mut b, &a, std::slice::from_ref(t));
                check_books(&a, &b, &txs);
            }
        }
        let mut expected = start;
        let mut paid_by_corr = 0u128;
        for (t, included) in &sent {
            let r = fast::record(&b.state, a.chain_id(), &t.hash()).unwrap().unwrap();
            let want = if *included { FastState::Returned } else { FastState::Slashed };
            proptest::prop_assert_eq!(r.state, want);
            expected += r.total - r.fee_paid;
            if *included {
                paid_by_corr += r.total;
            }
        }
        proptest::prop_assert_eq!(account(&b, &recipient).balance, expected);
        proptest::prop_assert_eq!(corr(&b, a.chain_id()), corr_start - paid_by_corr as i128);
        proptest::prop_assert_eq!(book(&b, &a).outstanding, 0);
    }
}
