//! Governance by the active producers and correspondent collateral (DESIGN §3.1, §5):
//! proposal thresholds (⌊2n/3⌋+1), approvals, expiry, parameter changes, and deposits
//! and withdrawals of peer collateral.
// Helpers outside `#[test]` functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{interchain::*, *};
use distpos_chain::{
    address::QualifiedAddress,
    ledger::{self, keys, Proposal},
    params::ParamsError,
    testkit::{address_of, peer_pair, registration_of, TestChain, USER_BALANCE},
    tx::{GovAction, Outcome, PeerRegistration},
    Body, ChainParams, Transaction, TxError,
};
use distpos_proofs::{
    consensus::HeaderError,
    light_client::{Refusal, Rejection},
    ChainId, ProducerSchedule, SecretKey,
};

fn proposal(c: &TestChain, id: u64) -> Option<Proposal> {
    ledger::read(&c.state, &keys::proposal(id)).unwrap()
}

/// Proposes registering [`PEER`] by producer 0, then approves by producers 1, 2, …;
/// returns after how many approvals (the proposer's included) the peer existed.
fn approvals_needed(n_producers: usize) -> usize {
    let mut c = TestChain::new(CHAIN, n_producers, 1, TestChain::dev_params());
    let owner = address_of(&c.users[0]);
    let action = GovAction::RegisterPeer(registration(PEER, owner));
    let p = c.producers.clone();
    let tx = c.tx(
        &p[0],
        1,
        Body::Propose {
            action: Box::new(action.clone()),
        },
    );
    produce_ok(&mut c, &[tx]);
    for (i, key) in p.iter().enumerate().skip(1) {
        if peer(&c, PEER).is_some() {
            assert!(proposal(&c, 0).is_none(), "executed proposals are removed");
            return i;
        }
        let open = proposal(&c, 0).expect("open proposal");
        assert_eq!(open.action, action);
        assert_eq!(open.approvals.len(), i);
        let tx = c.tx(key, 1, Body::Approve { proposal: 0 });
        produce_ok(&mut c, &[tx]);
    }
    assert!(peer(&c, PEER).is_some());
    assert!(proposal(&c, 0).is_none());
    n_producers
}

#[test]
fn governance_executes_at_two_thirds_plus_one_of_active_producers() {
    assert_eq!(approvals_needed(1), 1);
    assert_eq!(approvals_needed(3), 3);
    assert_eq!(approvals_needed(4), 3);
}

#[test]
fn approving_an_executed_proposal_is_unknown() {
    let mut c = TestChain::new(CHAIN, 4, 1, TestChain::dev_params());
    let owner = address_of(&c.users[0]);
    let p = c.producers.clone();
    let txs = vec![
        c.tx(
            &p[0],
            1,
            Body::Propose {
                action: Box::new(GovAction::RegisterPeer(registration(PEER, owner))),
            },
        ),
        c.tx(&p[1], 1, Body::Approve { proposal: 0 }),
    ];
    produce_ok(&mut c, &txs);
    assert!(peer(&c, PEER).is_none(), "2 of 4 is not enough");
    let tx = c.tx(&p[2], 1, Body::Approve { proposal: 0 });
    produce_ok(&mut c, &[tx]);
    assert!(peer(&c, PEER).is_some());
    let late = c.tx(&p[3], 1, Body::Approve { proposal: 0 });
    assert_eq!(validate(&c, &late), Err(TxError::UnknownProposal(0)));
}

#[test]
fn only_active_producers_propose_and_approve() {
    let mut c = TestChain::new(CHAIN, 3, 1, TestChain::dev_params());
    let u0 = c.users[0].clone();
    let action = GovAction::SuspendPeer { chain: PEER };
    let tx = c.tx(
        &u0,
        1,
        Body::Propose {
            action: Box::new(action),
        },
    );
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::NotActiveProducer(address_of(&u0)))
    );
    c.resync_nonces();
    let p0 = c.producers[0].clone();
    let tx = c.tx(
        &p0,
        1,
        Body::Propose {
            action: Box::new(GovAction::RegisterPeer(registration(PEER, address_of(&u0)))),
        },
    );
    produce_ok(&mut c, &[tx]);
    let tx = c.tx(&u0, 1, Body::Approve { proposal: 0 });
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::NotActiveProducer(address_of(&u0)))
    );
}

#[test]
fn approve_twice_and_unknown_ids_are_refused() {
    let mut c = TestChain::new(CHAIN, 3, 1, TestChain::dev_params());
    let (p0, p1) = (c.producers[0].clone(), c.producers[1].clone());
    let owner = address_of(&c.users[0]);
    let txs = vec![
        c.tx(
            &p0,
            1,
            Body::Propose {
                action: Box::new(GovAction::RegisterPeer(registration(PEER, owner))),
            },
        ),
        c.tx(&p1, 1, Body::Approve { proposal: 0 }),
    ];
    produce_ok(&mut c, &txs);
    for (key, who) in [(&p0, address_of(&p0)), (&p1, address_of(&p1))] {
        let again = c.unsigned(2, 1, Body::Approve { proposal: 0 }).sign(key);
        assert_eq!(validate(&c, &again), Err(TxError::AlreadyApproved(who, 0)));
    }
    let unknown = c.unsigned(2, 1, Body::Approve { proposal: 99 }).sign(&p0);
    assert_eq!(validate(&c, &unknown), Err(TxError::UnknownProposal(99)));
    assert_eq!(proposal(&c, 0).unwrap().approvals.len(), 2);
}

#[test]
fn approval_after_the_proposal_lifetime_is_refused() {
    let mut c = TestChain::new(CHAIN, 3, 1, params(|p| p.proposal_lifetime_blocks = 3));
    let (p0, p1) = (c.producers[0].clone(), c.producers[1].clone());
    let owner = address_of(&c.users[0]);
    let tx = c.tx(
        &p0,
        1,
        Body::Propose {
            action: Box::new(GovAction::RegisterPeer(registration(PEER, owner))),
        },
    );
    produce_ok(&mut c, &[tx]); // height 1: open through height 1 + 3 = 4
    assert_eq!(proposal(&c, 0).unwrap().expires_at, 4);
    c.produce_empty(2).unwrap();
    let approve = c.unsigned(1, 1, Body::Approve { proposal: 0 }).sign(&p1);
    validate(&c, &approve).unwrap(); // would be in block 4: still open
    c.produce_empty(1).unwrap();
    assert_eq!(validate(&c, &approve), Err(TxError::ProposalExpired(0)));
    assert_eq!(
        produce_rejected(&mut c, &approve),
        TxError::ProposalExpired(0)
    );
}

#[test]
fn timing_parameters_cannot_be_changed() {
    let c = TestChain::new(CHAIN, 1, 0, TestChain::dev_params());
    let p0 = c.producers[0].clone();
    let propose = |p: ChainParams| {
        c.unsigned(
            1,
            1,
            Body::Propose {
                action: Box::new(GovAction::SetParams(p)),
            },
        )
        .sign(&p0)
    };
    let cases = [
        (
            params(|p| p.block_interval_ms = 200),
            ParamsError::Fixed("block_interval_ms"),
        ),
        (params(|p| p.dev = false), ParamsError::Fixed("dev")),
        (
            params(|p| p.max_producers = 0),
            ParamsError::MaxProducers(0),
        ),
    ];
    for (p, want) in cases {
        assert_eq!(validate(&c, &propose(p)), Err(TxError::Params(want)));
    }
}

#[test]
fn a_min_fee_change_takes_effect_for_later_transactions() {
    let mut c = TestChain::new(CHAIN, 1, 2, TestChain::dev_params());
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    let new = params(|p| p.min_fee = 5);
    govern(&mut c, GovAction::SetParams(new.clone()));
    assert_eq!(ledger::params(&c.state).unwrap(), new);
    let cheap = c.tx(&u0, 1, transfer(address_of(&u1), 10));
    assert_eq!(
        validate(&c, &cheap),
        Err(TxError::FeeTooLow { min: 5, got: 1 })
    );
    assert_eq!(
        produce_rejected(&mut c, &cheap),
        TxError::FeeTooLow { min: 5, got: 1 }
    );
    c.resync_nonces();
    let ok = c.tx(&u0, 5, transfer(address_of(&u1), 10));
    produce_ok(&mut c, &[ok]);
    assert_eq!(balance(&c, &u0), USER_BALANCE - 15);
}

#[test]
fn peer_registrations_are_checked() {
    let mut c = TestChain::new(CHAIN, 1, 1, TestChain::dev_params());
    let owner = address_of(&c.users[0]);
    let p0 = c.producers[0].clone();
    let refused = |c: &TestChain, reg| {
        let tx = c
            .unsigned(
                2,
                1,
                Body::Propose {
                    action: Box::new(GovAction::RegisterPeer(reg)),
                },
            )
            .sign(&p0);
        matches!(validate(c, &tx), Err(TxError::Governance(_)))
    };
    register_peer(&mut c, owner);
    assert!(refused(&c, registration(PEER, owner)), "registered twice");
    assert!(
        refused(&c, registration(ChainId(CHAIN), owner)),
        "ourselves"
    );
    assert!(refused(&c, registration(ChainId::LOCAL, owner)), "chain 0");
    let mut empty = registration(ChainId(0xcafe), owner);
    empty.anchor.consensus.active.producers.clear();
    assert!(refused(&c, empty), "empty schedule");
    let tx = c
        .unsigned(
            2,
            1,
            Body::Propose {
                action: Box::new(GovAction::SuspendPeer {
                    chain: ChainId(0xcafe),
                }),
            },
        )
        .sign(&p0);
    assert_eq!(
        validate(&c, &tx),
        Err(TxError::UnknownPeer(ChainId(0xcafe)))
    );
}

#[test]
fn collateral_deposits_and_owner_only_withdrawals() {
    let mut c = TestChain::new(CHAIN, 1, 2, TestChain::dev_params());
    let (u0, u1) = (c.users[0].clone(), c.users[1].clone());
    register_peer(&mut c, address_of(&u1));
    let unknown = c.tx(
        &u0,
        1,
        Body::DepositCollateral {
            peer: ChainId(0xcafe),
            amount: 1,
        },
    );
    assert_eq!(
        validate(&c, &unknown),
        Err(TxError::UnknownPeer(ChainId(0xcafe)))
    );
    c.resync_nonces();

    // Anyone may deposit.
    let txs = vec![
        c.tx(
            &u0,
            1,
            Body::DepositCollateral {
                peer: PEER,
                amount: 3_000,
            },
        ),
        c.tx(
            &u1,
            1,
            Body::DepositCollateral {
                peer: PEER,
                amount: 500,
            },
        ),
    ];
    produce_ok(&mut c, &txs);
    let p = peer(&c, PEER).unwrap();
    assert_eq!((p.corr, p.deposited), (3_500, 3_500));
    assert_eq!(balance(&c, &u0), USER_BALANCE - 3_001);
    assert_supply(&c);

    // Only the owner withdraws, and only up to corr.
    let not_owner = c.tx(
        &u0,
        1,
        Body::WithdrawCollateral {
            peer: PEER,
            amount: 1,
        },
    );
    assert_eq!(validate(&c, &not_owner), Err(TxError::NotPeerOwner(PEER)));
    let too_much = c.tx(
        &u1,
        1,
        Body::WithdrawCollateral {
            peer: PEER,
            amount: 3_501,
        },
    );
    assert_eq!(
        validate(&c, &too_much),
        Err(TxError::InsufficientCollateral {
            peer: PEER,
            available: 3_500
        })
    );
    c.resync_nonces();
    let part = c.tx(
        &u1,
        1,
        Body::WithdrawCollateral {
            peer: PEER,
            amount: 1_000,
        },
    );
    produce_ok(&mut c, &[part]);
    assert_eq!(peer(&c, PEER).unwrap().corr, 2_500);
    assert_supply(&c);
    let rest = c.tx(
        &u1,
        1,
        Body::WithdrawCollateral {
            peer: PEER,
            amount: 2_500,
        },
    );
    produce_ok(&mut c, &[rest]);
    let p = peer(&c, PEER).unwrap();
    assert_eq!(
        (p.corr, p.deposited),
        (0, 3_500),
        "deposited is a running total"
    );
    assert_eq!(balance(&c, &u1), USER_BALANCE - 500 + 3_500 - 3);
    let empty = c.tx(
        &u1,
        1,
        Body::WithdrawCollateral {
            peer: PEER,
            amount: 1,
        },
    );
    assert_eq!(
        validate(&c, &empty),
        Err(TxError::InsufficientCollateral {
            peer: PEER,
            available: 0
        })
    );
    assert_supply(&c);

    // Governance can hand the account to a new owner.
    govern(
        &mut c,
        GovAction::UpdatePeer {
            chain: PEER,
            owner: address_of(&u0),
            credit_limit: 0,
            low_watermark: 0,
        },
    );
    c.resync_nonces();
    let txs = vec![
        c.tx(
            &u1,
            1,
            Body::DepositCollateral {
                peer: PEER,
                amount: 40,
            },
        ),
        c.tx(
            &u0,
            1,
            Body::WithdrawCollateral {
                peer: PEER,
                amount: 40,
            },
        ),
    ];
    produce_ok(&mut c, &txs);
    assert_eq!(peer(&c, PEER).unwrap().corr, 0);
    assert_supply(&c);
}

/// The receipt of a proposal says its id and whether it executed; so does an approval's.
#[test]
fn proposal_receipts_carry_the_id() {
    let mut c = TestChain::new(CHAIN, 3, 1, TestChain::dev_params());
    let owner = address_of(&c.users[0]);
    let p = c.producers.clone();
    let tx = c.tx(
        &p[0],
        1,
        Body::Propose {
            action: Box::new(GovAction::RegisterPeer(registration(PEER, owner))),
        },
    );
    let r = produce_ok(&mut c, &[tx]).applied.receipts.remove(0);
    assert_eq!(
        r.outcome,
        Outcome::Proposal {
            id: 0,
            executed: false
        }
    );
    let tx = c.tx(&p[1], 1, Body::Approve { proposal: 0 });
    let r = produce_ok(&mut c, &[tx]).applied.receipts.remove(0);
    assert_eq!(
        r.outcome,
        Outcome::Proposal {
            id: 0,
            executed: false
        }
    );
    let tx = c.tx(&p[2], 1, Body::Approve { proposal: 0 });
    let r = produce_ok(&mut c, &[tx]).applied.receipts.remove(0);
    assert_eq!(
        r.outcome,
        Outcome::Proposal {
            id: 0,
            executed: true
        }
    );
}

const A: u32 = 0xa1;
const B: u32 = 0xb2;

/// Two chains that know nothing of each other, `b` some blocks ahead.
fn strangers() -> (TestChain, TestChain) {
    let mut a = TestChain::new(A, 1, USERS, TestChain::dev_params());
    let mut b = TestChain::new(B, 1, USERS, TestChain::dev_params());
    b.produce_empty(6).unwrap();
    keep_up(&mut a, b.height());
    (a, b)
}

/// How `on` registers `peer` from the checkpoint at `height` of `peer`.
fn registration_at(on: &TestChain, peer: &TestChain, height: u64) -> PeerRegistration {
    PeerRegistration {
        anchor: peer.checkpoint(height),
        ..registration_of(peer, address_of(&on.users[DEPOSITOR]))
    }
}

/// User `SENDER` of `src` sends `amount` to user 0 of `dst`; the block is made
/// irreversible on `src`.
fn send(src: &mut TestChain, dst: &TestChain, amount: u128) -> Transaction {
    let sender = key(src, SENDER);
    let to = QualifiedAddress {
        chain: dst.chain_id(),
        address: address_of(&dst.users[0]),
    };
    let tx = src.tx(&sender, FEE, transfer_to(to, amount));
    produce_ok(src, std::slice::from_ref(&tx));
    let h = src.height();
    finalize(src, h);
    tx
}

/// A peer registered at a checkpoint (not its genesis) is followed from there: a
/// transfer from it is delivered, proven against headers above the checkpoint.
#[test]
fn a_peer_registered_at_a_checkpoint_delivers() {
    let (mut a, mut b) = strangers();
    let at = b.lib();
    assert!(at > 0);
    let (reg_b, reg_a) = (
        registration_at(&a, &b, at),
        registration_at(&b, &a, a.lib()),
    );
    govern(&mut a, GovAction::RegisterPeer(reg_b));
    govern(&mut b, GovAction::RegisterPeer(reg_a));
    let lc = light_client(&a, b.chain_id());
    assert_eq!((lc.lib(), lc.head()), (at, at));
    // The checkpoint's own block is kept as irreversible.
    assert!(ledger::peer_header(&a.state, b.chain_id(), at)
        .unwrap()
        .is_some());
    deposit(&mut a, b.chain_id(), 1_000);
    let tx = send(&mut b, &a, 300);
    let (_, receipt, _) = deliver_batch(&mut a, &b, &[tx]);
    assert!(matches!(receipt.outcome, Outcome::InboundBatch { .. }));
    assert_eq!(corr(&a, b.chain_id()), 700);
    assert_supplies(&a, &b);
}

/// A checkpoint whose schedule is not the peer's (as when the schedule a peer's status
/// shows now is registered at its genesis) leaves the light client unable to advance,
/// with the reason; governance resets it to a good, newer checkpoint, and transfers
/// are delivered again. A reset to an older checkpoint is refused.
#[test]
fn a_light_client_that_cannot_advance_is_reset_by_governance() {
    let (mut a, mut b) = strangers();
    let mut bad = registration_at(&a, &b, 0);
    bad.anchor.consensus.active = ProducerSchedule {
        version: 0,
        producers: vec![SecretKey::from_seed(b"not b's producer").public_key()],
    };
    govern(&mut a, GovAction::RegisterPeer(bad));
    let reg_a = registration_at(&b, &a, 0);
    govern(&mut b, GovAction::RegisterPeer(reg_a));
    deposit(&mut a, b.chain_id(), 1_000);
    let tx = send(&mut b, &a, 300);
    let body = inbound_of(&mut a, &b, std::slice::from_ref(&tx));
    match refused_system(&mut a, body) {
        TxError::PeerHeaders(r) => assert!(
            matches!(
                *r,
                Refusal::Rejected(Rejection::Header {
                    error: HeaderError::NotScheduled { .. },
                    ..
                })
            ),
            "{r}"
        ),
        other => panic!("expected the header run refused, got {other}"),
    }
    assert_eq!(light_client(&a, b.chain_id()).head(), 0);

    // A reset must move forward, and to a usable checkpoint.
    let p0 = a.producers[0].clone();
    let propose = |a: &TestChain, action| {
        let nonce = ledger::account(&a.state, &address_of(&p0)).unwrap().nonce + 1;
        let tx = a
            .unsigned(
                nonce,
                1,
                Body::Propose {
                    action: Box::new(action),
                },
            )
            .sign(&p0);
        validate(a, &tx)
    };
    let mut broken = b.checkpoint(b.lib());
    broken.consensus.height += 1;
    assert!(matches!(
        propose(
            &a,
            GovAction::ResetPeerClient {
                chain: b.chain_id(),
                anchor: broken
            }
        ),
        Err(TxError::Governance(m)) if m.contains("anchor invalid")
    ));
    assert!(matches!(
        propose(
            &a,
            GovAction::ResetPeerClient {
                chain: b.chain_id(),
                anchor: b.checkpoint(0)
            }
        ),
        Err(TxError::Governance(m)) if m.contains("above the light client")
    ));
    // The transfer's block must be above the new checkpoint to be proven: reset to
    // the block before it.
    let (height, _) = b.locate(&tx.hash()).unwrap();
    govern(
        &mut a,
        GovAction::ResetPeerClient {
            chain: b.chain_id(),
            anchor: b.checkpoint(height - 1),
        },
    );
    assert_eq!(light_client(&a, b.chain_id()).lib(), height - 1);
    let (_, receipt, _) = deliver_batch(&mut a, &b, &[tx]);
    assert!(matches!(receipt.outcome, Outcome::InboundBatch { .. }));
    assert_eq!(corr(&a, b.chain_id()), 700);
    assert_supplies(&a, &b);
}

/// A peer is removed only when nothing binds the chains: not while a transfer to it
/// is in flight, nor while its correspondent account holds collateral. Removed, its
/// record and header summaries are gone, and what it delivered stays consumed: the
/// same batch is refused after it is registered again.
#[test]
fn a_peer_is_removed_only_when_nothing_is_in_flight_or_held() {
    let (mut a, mut b) = peer_pair(A, B, 1, USERS, TestChain::dev_params());
    let remove = GovAction::RemovePeer {
        chain: b.chain_id(),
    };
    let refusal = |a: &TestChain| {
        let p0 = a.producers[0].clone();
        let nonce = ledger::account(&a.state, &address_of(&p0)).unwrap().nonce;
        let tx = a
            .unsigned(
                nonce + 1,
                1,
                Body::Propose {
                    action: Box::new(remove.clone()),
                },
            )
            .sign(&p0);
        match validate(a, &tx) {
            Err(TxError::Governance(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    // b delivers into a against collateral: a consumed transfer.
    deposit(&mut a, b.chain_id(), 500);
    let inbound = send(&mut b, &a, 500);
    let (batch, _, delivered_at) = deliver_batch(&mut a, &b, std::slice::from_ref(&inbound));
    assert_eq!(corr(&a, b.chain_id()), 0);
    // a sends to b (covered by collateral on b): in flight until b's receipt is
    // settled.
    deposit(&mut b, a.chain_id(), 40);
    let out = send(&mut a, &b, 40);
    let m = refusal(&a);
    assert!(m.contains("in flight"), "{m}");
    let (_, _, at) = deliver_batch(&mut b, &a, &[out]);
    finalize(&mut b, at);
    settle_back(&mut a, &b, at);
    // Acknowledged: b now holds a claim of 40 on a.
    let m = refusal(&a);
    assert!(m.contains("holds 40"), "{m}");
    // The peer's owner on a (peer_pair: a's first producer) withdraws it.
    let owner = a.producers[0].clone();
    let tx = a.tx(
        &owner,
        1,
        Body::WithdrawCollateral {
            peer: b.chain_id(),
            amount: 40,
        },
    );
    produce_ok(&mut a, &[tx]);
    govern(&mut a, remove.clone());
    assert!(peer(&a, b.chain_id()).is_none());
    let first = ledger::keys::peer_header(b.chain_id(), 0);
    let last = ledger::keys::peer_header(b.chain_id(), u64::MAX);
    assert!(a
        .state
        .scan_prefix(&first[..first.len() - 8])
        .next()
        .is_none());
    assert!(
        ledger::read::<distpos_proofs::light_client::Finalized>(&a.state, &last)
            .unwrap()
            .is_none()
    );
    assert!(ledger::consumed(&a.state, b.chain_id(), &inbound.hash()));
    assert_supply(&a);

    // Registered again from its genesis: the old batch is not delivered twice.
    let again = registration_of(&b, address_of(&a.users[DEPOSITOR]));
    govern(&mut a, GovAction::RegisterPeer(again));
    let _ = delivered_at;
    let Body::InboundBatch { transfers, .. } = &batch.body else {
        panic!("a batch");
    };
    assert_eq!(transfers.as_slice(), std::slice::from_ref(&inbound));
    let body = inbound_of(&mut a, &b, std::slice::from_ref(&inbound));
    assert!(matches!(
        refused_system(&mut a, body),
        TxError::AlreadyConsumed(..)
    ));
}
