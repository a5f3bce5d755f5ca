//! The mempool: transactions waiting for a block, deduplicated by hash, ordered by fee
//! while keeping each sender's nonces in sequence, bounded in size, and pruned of
//! expired and included transactions.

use distpos_chain::{Address, Transaction};
use distpos_proofs::Hash32;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap},
    sync::{Arc, RwLock},
};

/// A pending transaction.
#[derive(Clone, Debug)]
struct Entry {
    tx: Transaction,
    sender: Address,
    seq: u64,
}

/// Why a transaction was not admitted (beyond ledger validity).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// Full, and the transaction does not pay more than the cheapest one held.
    #[error("mempool is full ({0} transactions) and the fee is not above the cheapest held")]
    Full(usize),
    /// Another transaction of the sender with the same nonce is pending and pays at
    /// least as much.
    #[error("a transaction with nonce {nonce} is already pending for this sender ({pending}); pay a higher fee to replace it")]
    NonceTaken {
        /// The nonce.
        nonce: u64,
        /// The pending transaction's hash.
        pending: Hash32,
    },
}

/// What a transaction takes from its sender's balance: its fee and any amount it
/// moves out (a transfer with its fast fee, a stake, a collateral deposit, a bond).
pub fn debit_of(tx: &Transaction) -> u128 {
    use distpos_chain::Body;
    let moved = match &tx.body {
        Body::Transfer {
            amount, fast_fee, ..
        } => amount.saturating_add(*fast_fee),
        Body::Stake { amount }
        | Body::DepositCollateral { amount, .. }
        | Body::BondUnderwriter { amount, .. } => *amount,
        _ => 0,
    };
    tx.fee.saturating_add(moved)
}

/// Pending transactions.
#[derive(Debug)]
pub struct Mempool {
    max_txs: usize,
    by_hash: HashMap<Hash32, Entry>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Hash32>>,
    /// What each sender's pending transactions take from its balance, in total.
    debits: HashMap<Address, u128>,
    /// By fee, then newest first: the first is the one a full mempool evicts.
    by_fee: BTreeSet<(u128, Reverse<u64>, Hash32)>,
    /// By expiration: what `prune_expired` drops, without a scan.
    by_expiry: BTreeSet<(u64, Hash32)>,
    next_seq: u64,
    index: MempoolIndex,
}

/// What readers may ask of the mempool without the node: which transactions wait,
/// and how many per sender. Kept by the mempool on every insert and removal; each
/// look-up holds its lock for one hash-map operation.
#[derive(Clone, Debug, Default)]
pub struct MempoolIndex(Arc<RwLock<IndexInner>>);

#[derive(Debug, Default)]
struct IndexInner {
    hashes: std::collections::HashSet<Hash32>,
    per_sender: HashMap<Address, usize>,
}

impl MempoolIndex {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, IndexInner> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, IndexInner> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// True if the transaction is pending.
    pub fn contains(&self, hash: &Hash32) -> bool {
        self.read().hashes.contains(hash)
    }

    /// Pending transactions of `sender`.
    pub fn pending_of(&self, sender: &Address) -> usize {
        self.read().per_sender.get(sender).copied().unwrap_or(0)
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.read().hashes.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn added(&self, hash: Hash32, sender: Address) {
        let mut w = self.write();
        w.hashes.insert(hash);
        *w.per_sender.entry(sender).or_default() += 1;
    }

    fn removed(&self, hash: &Hash32, sender: &Address) {
        let mut w = self.write();
        w.hashes.remove(hash);
        if let Some(n) = w.per_sender.get_mut(sender) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                w.per_sender.remove(sender);
            }
        }
    }
}

impl Mempool {
    /// An empty mempool holding at most `max_txs`.
    pub fn new(max_txs: usize) -> Self {
        Self {
            max_txs,
            by_hash: HashMap::new(),
            by_sender: BTreeMap::new(),
            debits: HashMap::new(),
            by_fee: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
            next_seq: 0,
            index: MempoolIndex::default(),
        }
    }

    /// The readers' view of this mempool (shares its updates).
    pub fn index(&self) -> MempoolIndex {
        self.index.clone()
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// True if the transaction is pending.
    pub fn contains(&self, hash: &Hash32) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Pending transactions of `sender`.
    pub fn pending_of(&self, sender: &Address) -> usize {
        self.by_sender.get(sender).map_or(0, |m| m.len())
    }

    /// The nonce after `sender`'s last pending transaction, or after `account_nonce`
    /// if none is pending (or the pending ones are all used already).
    pub fn next_nonce_of(&self, sender: &Address, account_nonce: u64) -> u64 {
        let last = self
            .by_sender
            .get(sender)
            .and_then(|q| q.keys().next_back().copied())
            .unwrap_or(0);
        last.max(account_nonce) + 1
    }

    /// What `sender`'s pending transactions take from its balance (fees and the
    /// amounts they move out), leaving out the one with nonce `except` (which a
    /// newcomer with that nonce would replace).
    pub fn pending_debit(&self, sender: &Address, except: u64) -> u128 {
        let total = self.debits.get(sender).copied().unwrap_or(0);
        let replaced = self
            .by_sender
            .get(sender)
            .and_then(|q| q.get(&except))
            .and_then(|h| self.by_hash.get(h))
            .map_or(0, |e| debit_of(&e.tx));
        total.saturating_sub(replaced)
    }

    /// Adds a validated transaction. Returns `false` if it was already pending.
    pub fn insert(
        &mut self,
        tx: Transaction,
        hash: Hash32,
        sender: Address,
    ) -> Result<bool, MempoolError> {
        if self.by_hash.contains_key(&hash) {
            return Ok(false);
        }
        // Same sender, same nonce: only one can ever apply. The newcomer replaces
        // the pending one only if it pays more.
        if let Some(pending) = self.by_sender.get(&sender).and_then(|q| q.get(&tx.nonce)) {
            let pending = *pending;
            match self.by_hash.get(&pending) {
                Some(e) if e.tx.fee >= tx.fee => {
                    return Err(MempoolError::NonceTaken {
                        nonce: tx.nonce,
                        pending,
                    })
                }
                _ => self.remove(&pending),
            }
        }
        if self.by_hash.len() >= self.max_txs {
            // Evict the cheapest (the newest of those) if the newcomer pays more;
            // otherwise refuse. One look-up in the fee index, not a scan.
            let cheapest = self.by_fee.first().map(|(fee, _, h)| (*h, *fee));
            match cheapest {
                Some((h, fee)) if fee < tx.fee => self.remove(&h),
                _ => return Err(MempoolError::Full(self.max_txs)),
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(tx.nonce, hash);
        let debit = self.debits.entry(sender).or_default();
        *debit = debit.saturating_add(debit_of(&tx));
        self.by_fee.insert((tx.fee, Reverse(seq), hash));
        self.by_expiry.insert((tx.expiration, hash));
        self.by_hash.insert(hash, Entry { tx, sender, seq });
        self.index.added(hash, sender);
        Ok(true)
    }

    /// Removes a transaction.
    pub fn remove(&mut self, hash: &Hash32) {
        if let Some(e) = self.by_hash.remove(hash) {
            self.index.removed(hash, &e.sender);
            self.by_fee.remove(&(e.tx.fee, Reverse(e.seq), *hash));
            self.by_expiry.remove(&(e.tx.expiration, *hash));
            if let Some(d) = self.debits.get_mut(&e.sender) {
                *d = d.saturating_sub(debit_of(&e.tx));
                if *d == 0 {
                    self.debits.remove(&e.sender);
                }
            }
            if let Some(m) = self.by_sender.get_mut(&e.sender) {
                // One entry per (sender, nonce): removal is a lookup, not a scan
                // (a sender with tens of thousands pending must not cost n² per block).
                if m.get(&e.tx.nonce) == Some(hash) {
                    m.remove(&e.tx.nonce);
                }
                if m.is_empty() {
                    self.by_sender.remove(&e.sender);
                }
            }
        }
    }

    /// The sender of `tx` (whose hash is `hash`) if exactly these bytes, signature
    /// included, were verified and admitted here.
    pub fn verified_sender(&self, tx: &Transaction, hash: &Hash32) -> Option<Address> {
        self.by_hash
            .get(hash)
            .filter(|e| e.tx == *tx)
            .map(|e| e.sender)
    }

    /// The sender and nonce of a pending transaction.
    pub fn sender_of(&self, hash: &Hash32) -> Option<(Address, u64)> {
        self.by_hash.get(hash).map(|e| (e.sender, e.tx.nonce))
    }

    /// Drops `sender`'s transactions with a nonce at or below `nonce` (already used).
    pub fn remove_stale(&mut self, sender: &Address, nonce: u64) {
        let stale: Vec<Hash32> = self
            .by_sender
            .get(sender)
            .map(|q| q.range(..=nonce).map(|(_, h)| *h).collect())
            .unwrap_or_default();
        for h in stale {
            self.remove(&h);
        }
    }

    /// Drops `sender`'s transactions from `nonce` on (they can never apply once an
    /// earlier one is gone).
    pub fn remove_from(&mut self, sender: &Address, nonce: u64) {
        let later: Vec<Hash32> = self
            .by_sender
            .get(sender)
            .map(|q| q.range(nonce..).map(|(_, h)| *h).collect())
            .unwrap_or_default();
        for h in later {
            self.remove(&h);
        }
    }

    /// Drops transactions that expired at `now_ms`.
    pub fn prune_expired(&mut self, now_ms: u64) -> usize {
        let expired: Vec<Hash32> = self
            .by_expiry
            .range(..=(now_ms, Hash32([0xff; 32])))
            .map(|(_, h)| *h)
            .collect();
        for h in &expired {
            self.remove(h);
        }
        expired.len()
    }

    /// Like [`Self::candidates`], with each transaction's verified hash and sender.
    pub fn candidates_checked(&self, max: usize) -> Vec<(Transaction, distpos_chain::TxCheck)> {
        self.candidates(max)
            .into_iter()
            .filter_map(|tx| {
                let hash = tx.hash();
                let sender = self.by_hash.get(&hash)?.sender;
                Some((tx, distpos_chain::TxCheck { hash, sender }))
            })
            .collect()
    }

    /// Up to `max` transactions for a block: highest fee first, but each sender's in
    /// nonce order (a sender's next transaction competes only once the previous one
    /// is taken).
    pub fn candidates(&self, max: usize) -> Vec<Transaction> {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Head {
            fee: u128,
            older: std::cmp::Reverse<u64>,
            sender: Address,
            nonce: u64,
        }
        let mut heap = BinaryHeap::new();
        let head_of = |sender: &Address, after: Option<u64>| -> Option<Head> {
            let queue = self.by_sender.get(sender)?;
            let (nonce, hash) = match after {
                None => queue.iter().next()?,
                Some(n) => queue.range(n + 1..).next()?,
            };
            let e = self.by_hash.get(hash)?;
            Some(Head {
                fee: e.tx.fee,
                older: std::cmp::Reverse(e.seq),
                sender: *sender,
                nonce: *nonce,
            })
        };
        for sender in self.by_sender.keys() {
            if let Some(h) = head_of(sender, None) {
                heap.push(h);
            }
        }
        let mut out = Vec::new();
        while let Some(h) = heap.pop() {
            if out.len() >= max {
                break;
            }
            if let Some(hash) = self.by_sender.get(&h.sender).and_then(|q| q.get(&h.nonce)) {
                if let Some(e) = self.by_hash.get(hash) {
                    out.push(e.tx.clone());
                }
            }
            if let Some(next) = head_of(&h.sender, Some(h.nonce)) {
                heap.push(next);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distpos_chain::{address::QualifiedAddress, Body, UnsignedTx};
    use distpos_proofs::{ChainId, SecretKey};

    fn tx(key: &SecretKey, nonce: u64, fee: u128) -> (Transaction, Hash32, Address) {
        let t = tx_with_memo(key, nonce, fee, b"");
        let h = t.hash();
        let a = Address::from_public_key(&key.public_key()).unwrap();
        (t, h, a)
    }

    fn tx_with_memo(key: &SecretKey, nonce: u64, fee: u128, memo: &[u8]) -> Transaction {
        UnsignedTx {
            chain_id: ChainId(1),
            nonce,
            fee,
            ref_block_num: 0,
            ref_block_prefix: 0,
            expiration: 1_000 + nonce,
            body: Body::Transfer {
                to: QualifiedAddress::local(Address::ZERO),
                amount: 1,
                memo: memo.to_vec(),
                deliver_by: 0,
                fast_fee: 0,
                via: None,
            },
        }
        .sign(key)
    }

    #[test]
    fn a_debit_counts_the_fast_fee_and_bonds() {
        let key = SecretKey::from_seed(b"d");
        let body = |b: Body| {
            UnsignedTx {
                chain_id: ChainId(1),
                nonce: 1,
                fee: 3,
                ref_block_num: 0,
                ref_block_prefix: 0,
                expiration: 1_000,
                body: b,
            }
            .sign(&key)
        };
        let fast = body(Body::Transfer {
            to: QualifiedAddress::new(ChainId(2), Address::ZERO),
            amount: 100,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 7,
            via: None,
        });
        assert_eq!(debit_of(&fast), 110);
        let bond = body(Body::BondUnderwriter {
            peer: ChainId(2),
            signing_key: key.public_key(),
            amount: 50,
        });
        assert_eq!(debit_of(&bond), 53);
    }

    #[test]
    fn fee_order_respects_nonces() {
        let (a, b) = (SecretKey::from_seed(b"a"), SecretKey::from_seed(b"b"));
        let mut m = Mempool::new(10);
        for (t, h, s) in [tx(&a, 2, 100), tx(&a, 1, 1), tx(&b, 1, 50)] {
            assert!(m.insert(t, h, s).unwrap());
        }
        let order: Vec<(u128, u64)> = m.candidates(10).iter().map(|t| (t.fee, t.nonce)).collect();
        // a's nonce 2 pays most but must wait for a's nonce 1.
        assert_eq!(order, vec![(50, 1), (1, 1), (100, 2)]);
        assert_eq!(m.candidates(2).len(), 2);
    }

    #[test]
    fn stale_and_orphaned_nonces_are_dropped() {
        let k = SecretKey::from_seed(b"s");
        let mut m = Mempool::new(10);
        let mut hashes = Vec::new();
        for n in 1..=5 {
            let (t, h, s) = tx(&k, n, 1);
            m.insert(t, h, s).unwrap();
            hashes.push((h, s));
        }
        let sender = hashes[0].1;
        // Nonces 1 and 2 were used by a block: gone.
        m.remove_stale(&sender, 2);
        assert_eq!(m.pending_of(&sender), 3);
        assert!(!m.contains(&hashes[1].0) && m.contains(&hashes[2].0));
        // Nonce 4 can never apply: it and everything after it go, 3 stays.
        m.remove_from(&sender, 4);
        assert_eq!(m.pending_of(&sender), 1);
        assert!(m.contains(&hashes[2].0));
        assert_eq!(m.sender_of(&hashes[2].0), Some((sender, 3)));
        assert_eq!(m.candidates_checked(10)[0].1.sender, sender);
    }

    /// Every index holds exactly the pending transactions.
    fn assert_indexed(m: &Mempool) {
        assert_eq!(m.by_fee.len(), m.by_hash.len());
        assert_eq!(m.by_expiry.len(), m.by_hash.len());
        for (h, e) in &m.by_hash {
            assert!(m.by_fee.contains(&(e.tx.fee, Reverse(e.seq), *h)));
            assert!(m.by_expiry.contains(&(e.tx.expiration, *h)));
        }
    }

    /// A full mempool evicts through its fee index (no scan) and the indices follow
    /// every insert, replacement, eviction, removal and expiry.
    #[test]
    fn eviction_picks_the_cheapest_newest_and_indices_follow_every_change() {
        let keys: Vec<SecretKey> = (0..4u8).map(|i| SecretKey::from_seed(&[b'e', i])).collect();
        let mut m = Mempool::new(8);
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for round in 0..200u64 {
            let k = &keys[(next() % 4) as usize];
            let (t, h, s) = tx(k, next() % 6, u128::from(next() % 10));
            let cheapest = m.by_hash.values().map(|e| e.tx.fee).min();
            let full = m.len() == 8;
            let fee = t.fee;
            match m.insert(t, h, s) {
                Ok(_) => {
                    if full && m.len() == 8 && !m.contains(&h) {
                        panic!("admitted but not held");
                    }
                }
                Err(MempoolError::Full(_)) => {
                    assert!(
                        full && cheapest.is_some_and(|c| c >= fee),
                        "refused only when no cheaper one is held"
                    );
                }
                Err(MempoolError::NonceTaken { .. }) => {}
            }
            assert!(m.len() <= 8);
            if round % 17 == 0 {
                m.prune_expired(1_000 + next() % 6);
            }
            if round % 23 == 0 {
                if let Some(h) = m.by_hash.keys().next().copied() {
                    m.remove(&h);
                }
            }
            assert_indexed(&m);
        }
    }

    #[test]
    fn dedupe_bound_eviction_and_expiry() {
        let k = SecretKey::from_seed(b"k");
        let mut m = Mempool::new(2);
        let (t1, h1, s) = tx(&k, 1, 5);
        assert!(m.insert(t1.clone(), h1, s).unwrap());
        assert!(!m.insert(t1, h1, s).unwrap(), "duplicate");
        let (t2, h2, _) = tx(&k, 2, 7);
        m.insert(t2, h2, s).unwrap();
        let (t3, h3, _) = tx(&k, 3, 1);
        assert_eq!(m.insert(t3, h3, s), Err(MempoolError::Full(2)));
        let (t4, h4, _) = tx(&k, 4, 9);
        assert!(m.insert(t4, h4, s).unwrap());
        assert!(!m.contains(&h1), "cheapest evicted");
        assert_eq!(m.pending_of(&s), 2);
        assert_eq!(m.prune_expired(1_002), 1);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn same_nonce_replaces_only_for_a_higher_fee() {
        let k = SecretKey::from_seed(b"k");
        let mut m = Mempool::new(10);
        let (t1, h1, s) = tx(&k, 1, 5);
        m.insert(t1, h1, s).unwrap();
        // Same nonce, another body (memo), same fee: refused; the first stays.
        let mut u = tx_with_memo(&k, 1, 5, b"again");
        let hu = u.hash();
        assert_eq!(
            m.insert(u.clone(), hu, s),
            Err(MempoolError::NonceTaken {
                nonce: 1,
                pending: h1
            })
        );
        assert!(m.contains(&h1) && !m.contains(&hu));
        // Higher fee: replaces, and the old one is gone from every index.
        u = tx_with_memo(&k, 1, 6, b"again");
        let hu = u.hash();
        assert!(m.insert(u, hu, s).unwrap());
        assert!(!m.contains(&h1) && m.contains(&hu));
        assert_eq!(m.len(), 1);
        assert_eq!(m.pending_of(&s), 1);
        assert_eq!(m.candidates(10).len(), 1);
        m.remove(&hu);
        assert!(m.is_empty());
        assert_eq!(m.pending_of(&s), 0);
    }

    #[test]
    fn next_nonce_follows_the_last_pending_one() {
        let k = SecretKey::from_seed(b"k");
        let mut m = Mempool::new(10_000);
        let (_, _, s) = tx(&k, 1, 1);
        assert_eq!(m.next_nonce_of(&s, 4), 5, "nothing pending");
        for n in [5, 6, 8] {
            let (t, h, _) = tx(&k, n, 1);
            m.insert(t, h, s).unwrap();
        }
        assert_eq!(m.next_nonce_of(&s, 4), 9, "after the last, gap or not");
        assert_eq!(m.next_nonce_of(&s, 12), 13, "pending ones already used");
        // Removing many of one sender's transactions leaves the others intact.
        for n in 0..2_000u64 {
            let (t, h, _) = tx(&k, 100 + n, 1);
            m.insert(t, h, s).unwrap_or_else(|_| panic!("{n}"));
            if n % 2 == 0 {
                m.remove(&h);
            }
        }
        assert_eq!(m.pending_of(&s), 3 + 1_000);
    }
}
