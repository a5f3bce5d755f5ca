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

/// An empty fork database at the genesis of `c`'s chain.
fn fresh_db(c: &TestChain) -> ForkDb {
    db_at_genesis(&TestChain::from_genesis(c.genesis.clone(), vec![], vec![]))
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
    let mut db = fresh_db(&base);
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
    let mut db = fresh_db(&base);
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
    let mut db = fresh_db(&base);
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
            fast_fee: 0,
            via: None,
        },
    );
    twin_chain.produce_in_slot(1, &[tx]).unwrap();
    let twin = &twin_chain.blocks[0];
    assert_ne!(twin.id(), base.blocks[0].id());
    let other = db.equivocation(&twin.header).unwrap();
    assert_eq!(other.id(), base.blocks[0].id());
    assert!(db.equivocation(&base.blocks[0].header).is_none());
}

#[test]
fn sync_follows_fork_choice_not_height() {
    let (base, a, b) = forked();
    let r = rules(&base);
    let mut db = fresh_db(&base);
    for blk in &a.blocks {
        db.insert(blk.clone(), &r, u64::MAX / 2).unwrap();
    }
    let local = db.tip(&a.state.head_id).unwrap();
    let lc = |c: &TestChain| ledger::consensus(&c.state).unwrap();
    let remote = |c: &TestChain| ForkTip {
        lib: lc(c).lib,
        height: c.height(),
        id: c.state.head_id,
    };
    // A known tip, or one fork choice does not prefer: nothing to fetch.
    assert_eq!(db.sync_from(&local, &local), None);
    let worse = ForkTip {
        lib: 0,
        height: 1,
        id: Hash32([0xff; 32]),
    };
    assert_eq!(db.sync_from(&local, &worse), None);
    // Taller and preferred: from above our head.
    assert_eq!(db.sync_from(&local, &remote(&b)), Some(local.height + 1));
    // Preferred by its LIB although shorter: from above the root.
    let shorter_higher_lib = ForkTip {
        lib: local.lib + 1,
        height: local.height - 1,
        id: Hash32([0x01; 32]),
    };
    assert_eq!(
        db.sync_from(&local, &shorter_higher_lib),
        Some(db.sync_rewind())
    );
    assert_eq!(db.sync_rewind(), 1);
}

mod convergence {
    //! A deterministic simulation of catch-up sync: nodes that each hold one branch of
    //! a random block tree talk to each other with the rule the node uses
    //! ([`ForkDb::sync_from`], one rewind on an unknown parent) until nothing changes.
    //! Honest nodes that can talk must end on one head, the best of all blocks.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Extend branch `i` (mod the branch count), skipping `skip` slots.
        Extend(usize, u64),
        /// Start a new branch as a copy of branch `i`.
        Fork(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..8, 0u64..3).prop_map(|(i, s)| Op::Extend(i, s)),
            1 => (0usize..8).prop_map(Op::Fork),
        ]
    }

    /// A node: its fork database and the canonical chain of its best tip.
    struct SimNode {
        db: ForkDb,
    }

    impl SimNode {
        fn canonical(&self) -> Vec<Block> {
            let best = self.db.best();
            let mut out = Vec::new();
            let mut cur = best.id;
            while let Some(e) = self.db.get(&cur) {
                out.push(e.block.clone());
                cur = e.block.header.header.prev_id;
            }
            out.reverse();
            out
        }

        /// One catch-up with `peer`, the way the node does it (blocks by height from
        /// the peer's canonical chain). Returns whether anything was added.
        fn catch_up(&mut self, peer: &[Block], remote: ForkTip, r: &ChainRules) -> bool {
            let local = self.db.best();
            let Some(mut next) = self.db.sync_from(&local, &remote) else {
                return false;
            };
            let mut rewound = next == self.db.sync_rewind();
            let mut added = false;
            while next <= remote.height {
                let Some(b) = peer.iter().find(|b| b.height() == next) else {
                    break;
                };
                match self.db.insert(b.clone(), r, u64::MAX / 2) {
                    Ok(new) => {
                        added |= new;
                        next += 1;
                    }
                    Err(ForkError::UnknownParent(_)) if !rewound => {
                        rewound = true;
                        next = self.db.sync_rewind();
                    }
                    Err(e) => panic!("honest block refused: {e}"),
                }
            }
            added
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn honest_nodes_that_talk_converge_on_the_best_head(
            ops in proptest::collection::vec(op(), 1..14),
            order in proptest::collection::vec((0usize..8, 0usize..8), 8..40),
        ) {
            let mut base = TestChain::new(0xf1, 3, 1, TestChain::dev_params());
            base.produce(&[]).unwrap();
            let r = rules(&base);
            let mut branches = vec![base.clone()];
            for op in ops {
                match op {
                    Op::Extend(i, skip) => {
                        let n = branches.len();
                        let c = &mut branches[i % n];
                        let slot = c.next_slot(skip);
                        c.produce_in_slot(slot, &[]).unwrap();
                    }
                    Op::Fork(i) => {
                        let c = branches[i % branches.len()].clone();
                        branches.push(c);
                    }
                }
            }
            let genesis = TestChain::from_genesis(base.genesis.clone(), vec![], vec![]);
            let mut everything = db_at_genesis(&genesis);
            let mut nodes: Vec<SimNode> = branches
                .iter()
                .map(|c| {
                    let mut db = db_at_genesis(&genesis);
                    for b in &c.blocks {
                        db.insert(b.clone(), &r, u64::MAX / 2).unwrap();
                        let _ = everything.insert(b.clone(), &r, u64::MAX / 2);
                    }
                    SimNode { db }
                })
                .collect();
            let n = nodes.len();
            // Gossip in the given order first, then rounds of everyone with everyone
            // until nothing changes (honest nodes that can talk).
            let mut pairs: Vec<(usize, usize)> =
                order.into_iter().map(|(i, j)| (i % n, j % n)).collect();
            for _round in 0..n + 2 {
                pairs.extend((0..n).flat_map(|i| (0..n).map(move |j| (i, j))));
            }
            for (i, j) in pairs {
                if i == j {
                    continue;
                }
                let remote = nodes[j].db.best();
                let chain = nodes[j].canonical();
                nodes[i].catch_up(&chain, remote, &r);
            }
            let want = everything.best();
            for (i, node) in nodes.iter().enumerate() {
                prop_assert_eq!(node.db.best(), want, "node {} did not converge", i);
            }
        }
    }
}
