//! Governance by the active producers and correspondent collateral (DESIGN §3.1, §5):
//! proposal thresholds (⌊2n/3⌋+1), approvals, expiry, parameter changes, and deposits
//! and withdrawals of peer collateral.
// Helpers outside `#[test]` functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use distpos_chain::{
    ledger::{self, keys, Proposal},
    params::ParamsError,
    testkit::{address_of, TestChain, USER_BALANCE},
    tx::GovAction,
    Body, ChainParams, TxError,
};
use distpos_proofs::ChainId;

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
            action: action.clone(),
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
                action: GovAction::RegisterPeer(registration(PEER, owner)),
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
    let tx = c.tx(&u0, 1, Body::Propose { action });
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
            action: GovAction::RegisterPeer(registration(PEER, address_of(&u0))),
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
                action: GovAction::RegisterPeer(registration(PEER, owner)),
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
            action: GovAction::RegisterPeer(registration(PEER, owner)),
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
                action: GovAction::SetParams(p),
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
                    action: GovAction::RegisterPeer(reg),
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
    empty.schedule.producers.clear();
    assert!(refused(&c, empty), "empty schedule");
    let tx = c
        .unsigned(
            2,
            1,
            Body::Propose {
                action: GovAction::SuspendPeer {
                    chain: ChainId(0xcafe),
                },
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
