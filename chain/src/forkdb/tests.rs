use super::*;
use crate::{execute::chain_rules, ledger, testkit::TestChain};

fn rules(c: &TestChain) -> ChainRules {
    chain_rules(&c.state).unwrap()
}

/// A fork database rooted at `c`'s current head (genesis for a fresh chain).
fn db_at_genesis(c: &TestChain) -> ForkDb {
    assert_eq!(c.height(), 0, "root the database at genesis");
    ForkDb::new(c.state.head_id, 0, ledger::consensus(&c.state).unwrap())
}

/// A 3-producer chain and two branches from block 1: `a` fills slots 2,3; `b` skips
/// slot 2 and fills 3,4,5 (longer).
fn forked() -> (TestChain, TestChain, TestChain) {
    let mut base = TestChain::new(0xf0, 3, 1, TestChain::dev_params());
    base.produce(&[]).unwrap();
    let mut a = base.clone();
    a.produce_in_slot(2, &[]).unwrap();
    a.produce_in_slot(3, &[]).unwrap();
    let mut b = base.clone();
    for slot in 3..=5 {
        b.produce_in_slot(slot, &[]).unwrap();
    }
    (base, a, b)
}

#[test]
fn linear_chain_and_best_tip() {
    let mut c = TestChain::new(0xf0, 3, 1, TestChain::dev_params());
    let mut db = db_at_genesis(&c);
    let r = rules(&c);
    c.produce_empty(4).unwrap();
    for b in &c.blocks {
        assert_eq!(db.insert(b.clone(), &r, u64::MAX / 2), Ok(true));
    }
    assert_eq!(
        db.insert(c.blocks[0].clone(), &r, u64::MAX / 2),
        Ok(false),
        "known block"
    );
    let best = db.best();
    assert_eq!(best.id, c.state.head_id);
    assert_eq!(best.height, 4);
    assert_eq!(
        best.lib, 2,
        "blocks 1 and 2 were built on by all three producers"
    );
    let (root, _) = db.root();
    let path = db.reorg(&root, &best.id).unwrap();
    assert!(path.revert.is_empty());
    assert_eq!(
        path.apply,
        c.blocks.iter().map(|b| b.id()).collect::<Vec<_>>()
    );
}

#[test]
fn fork_choice_and_reorg_path() {
    let (base, a, b) = forked();
    let r = rules(&base);
    let mut db = db_at_genesis(&TestChain::from_genesis(
        base.genesis.clone(),
        vec![],
        vec![],
    ));
    for blk in a.blocks.iter().chain(b.blocks.iter().skip(1)) {
        db.insert(blk.clone(), &r, u64::MAX / 2).unwrap();
    }
    // b is longer; both have LIB ≥ … computed the same way.
    let best = db.best();
    assert_eq!(best.id, b.state.head_id);
    let path = db.reorg(&a.state.head_id, &b.state.head_id).unwrap();
    assert_eq!(path.revert, vec![a.blocks[2].id(), a.blocks[1].id()]);
    assert_eq!(
        path.apply,
        b.blocks[1..].iter().map(|x| x.id()).collect::<Vec<_>>()
    );

    // A block that fails to apply takes its descendants with it; the best tip falls
    // back to the other branch.
    db.remove_subtree(&b.blocks[1].id());
    assert!(!db.contains(&b.blocks[3].id()));
    assert_eq!(db.best().id, a.state.head_id);
}

#[test]
fn rejects_unknown_parent_bad_header_and_below_root() {
    let (base, a, _) = forked();
    let r = rules(&base);
    let mut db = db_at_genesis(&TestChain::from_genesis(
        base.genesis.clone(),
        vec![],
        vec![],
    ));
    assert_eq!(
        db.insert(a.blocks[2].clone(), &r, u64::MAX / 2),
        Err(ForkError::UnknownParent(a.blocks[1].id()))
    );
    db.insert(a.blocks[0].clone(), &r, u64::MAX / 2).unwrap();
    let mut forged = a.blocks[1].clone();
    forged.header.signature.0[5] ^= 1;
    assert!(matches!(
        db.insert(forged, &r, u64::MAX / 2),
        Err(ForkError::Header(_))
    ));
    db.insert(a.blocks[1].clone(), &r, u64::MAX / 2).unwrap();
    db.advance_root(&a.blocks[1].id());
    assert!(matches!(
        db.insert(a.blocks[0].clone(), &r, u64::MAX / 2),
        Err(ForkError::BelowLib { height: 1, lib: 2 })
    ));
}

#[test]
fn advancing_the_root_prunes_other_branches() {
    let (base, a, b) = forked();
    let r = rules(&base);
    let mut db = db_at_genesis(&TestChain::from_genesis(
        base.genesis.clone(),
        vec![],
        vec![],
    ));
    for blk in a.blocks.iter().chain(b.blocks.iter().skip(1)) {
        db.insert(blk.clone(), &r, u64::MAX / 2).unwrap();
    }
    db.advance_root(&b.blocks[1].id());
    assert_eq!(db.root(), (b.blocks[1].id(), 2));
    assert!(
        !db.contains(&a.blocks[2].id()),
        "a's branch does not descend from the new root"
    );
    assert!(db.contains(&b.blocks[3].id()));
    assert_eq!(db.len(), 2);
}

#[test]
fn detects_double_signing() {
    let (base, _, _) = forked();
    let r = rules(&base);
    let mut twin_chain = TestChain::from_genesis(
        base.genesis.clone(),
        base.producers.clone(),
        base.users.clone(),
    );
    let mut db = db_at_genesis(&twin_chain);
    db.insert(base.blocks[0].clone(), &r, u64::MAX / 2).unwrap();
    // Same producer, same slot, different content.
    let to = crate::address::QualifiedAddress::local(crate::testkit::address_of(&base.users[0]));
    let key = base.users[0].clone();
    let tx = twin_chain.tx(
        &key,
        1,
        crate::tx::Body::Transfer {
            to,
            amount: 1,
            memo: vec![],
            deliver_by: 0,
        },
    );
    twin_chain.produce_in_slot(1, &[tx]).unwrap();
    let twin = &twin_chain.blocks[0];
    assert_ne!(twin.id(), base.blocks[0].id());
    let other = db.equivocation(&twin.header).unwrap();
    assert_eq!(other.id(), base.blocks[0].id());
    assert!(db.equivocation(&base.blocks[0].header).is_none());
}
