//! The ledger's state as an ordered key-value map, and the overlay a block executes on.
//!
//! Why key-value: one representation serves everything the node needs. A block's
//! effect is a [`ChangeSet`] (key → new value or deletion); its hash feeds the
//! `state_digest`; the node writes it to sled in one atomic batch; and the
//! [`ChangeSet`] returned by [`State::apply`] (the old values) undoes it on a reorg.
//! Typed access lives in [`crate::ledger`]; this module knows only bytes.
//!
//! The map is persistent (a B-tree sharing structure between versions): cloning a
//! state costs O(1), so a node can hand the state after its last commit to readers
//! while it goes on applying blocks.

use distpos_proofs::{codec, hash_domain, Hash32};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A state key.
pub type Key = Vec<u8>;
/// A state value (a canonical encoding of a typed record).
pub type Value = Vec<u8>;

/// The state after some block: the key-value map plus the id and digest of that block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    kv: imbl::OrdMap<Key, Value>,
    /// Id of the block this state is after (the identity hash at genesis).
    pub head_id: Hash32,
    /// `state_digest` of that block (zero at genesis).
    pub digest: Hash32,
}

/// Writes to apply to a state: `Some(value)` sets a key, `None` deletes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// The writes, ordered by key.
    pub writes: BTreeMap<Key, Option<Value>>,
}

impl ChangeSet {
    /// Hash of the canonical encoding of the writes.
    pub fn hash(&self) -> Hash32 {
        hash_domain(b"DISTPOS/CHANGES/v1", &[&codec::encode(self)])
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// `sha256(prev digest ‖ hash of the block's changes)` (DESIGN §4.1).
pub fn next_digest(prev: &Hash32, changes: &ChangeSet) -> Hash32 {
    hash_domain(b"DISTPOS/STATE/v1", &[&prev.0, &changes.hash().0])
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a state from stored key-value pairs (e.g. loaded from disk).
    pub fn from_parts(kv: BTreeMap<Key, Value>, head_id: Hash32, digest: Hash32) -> Self {
        Self {
            kv: kv.into_iter().collect(),
            head_id,
            digest,
        }
    }

    /// Reads a key.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.kv.get(key)
    }

    /// All pairs whose key starts with `prefix`, in key order.
    pub fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.kv
            .range::<_, [u8]>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// Every pair, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.kv.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.kv.len()
    }

    /// True when the state holds nothing.
    pub fn is_empty(&self) -> bool {
        self.kv.is_empty()
    }

    /// Applies `changes` and returns the change set that undoes them.
    pub fn apply(&mut self, changes: &ChangeSet) -> ChangeSet {
        let mut undo = ChangeSet::default();
        for (k, v) in &changes.writes {
            let old = match v {
                Some(v) => self.kv.insert(k.clone(), v.clone()),
                None => self.kv.remove(k),
            };
            undo.writes.insert(k.clone(), old);
        }
        undo
    }
}

/// A view of a [`State`] with two layers of pending writes: the block's, and the
/// current transaction's. A transaction that fails is rolled back without touching the
/// block's writes.
#[derive(Debug)]
pub struct Overlay<'a> {
    base: &'a State,
    block: BTreeMap<Key, Option<Value>>,
    tx: BTreeMap<Key, Option<Value>>,
}

impl<'a> Overlay<'a> {
    /// A fresh overlay over `base`.
    pub fn new(base: &'a State) -> Self {
        Self {
            base,
            block: BTreeMap::new(),
            tx: BTreeMap::new(),
        }
    }

    /// Reads a key through both layers.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        if let Some(v) = self.tx.get(key) {
            return v.as_deref();
        }
        if let Some(v) = self.block.get(key) {
            return v.as_deref();
        }
        self.base.get(key).map(|v| v.as_slice())
    }

    /// Writes a key in the transaction layer.
    pub fn put(&mut self, key: Key, value: Value) {
        self.tx.insert(key, Some(value));
    }

    /// Deletes a key in the transaction layer.
    pub fn delete(&mut self, key: Key) {
        self.tx.insert(key, None);
    }

    /// Keeps the current transaction's writes.
    pub fn commit_tx(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        self.block.extend(tx);
    }

    /// Drops the current transaction's writes.
    pub fn rollback_tx(&mut self) {
        self.tx.clear();
    }

    /// Keys in `[from, to)` with their values, merged across the layers, in key order,
    /// at most `limit` of them.
    pub fn range(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<(Key, Value)> {
        use std::ops::Bound::{Excluded, Included};
        let bounds = (Included(from), Excluded(to));
        let mut merged: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for (k, v) in self.base.kv.range::<_, [u8]>(bounds) {
            merged.insert(k.as_slice(), Some(v.as_slice()));
        }
        for layer in [&self.block, &self.tx] {
            for (k, v) in layer.range::<[u8], _>(bounds) {
                merged.insert(k.as_slice(), v.as_deref());
            }
        }
        merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_vec(), v.to_vec())))
            .take(limit)
            .collect()
    }

    /// Finishes the block: all kept writes, minus those that leave a key as it was.
    pub fn into_changes(mut self) -> ChangeSet {
        self.commit_tx();
        let base = self.base;
        let writes = self
            .block
            .into_iter()
            .filter(|(k, v)| base.get(k).map(|b| b.as_slice()) != v.as_deref())
            .collect();
        ChangeSet { writes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pairs: &[(&[u8], &[u8])]) -> State {
        let mut s = State::new();
        let mut cs = ChangeSet::default();
        for (k, v) in pairs {
            cs.writes.insert(k.to_vec(), Some(v.to_vec()));
        }
        s.apply(&cs);
        s
    }

    #[test]
    fn overlay_layers_and_rollback() {
        let base = state(&[(b"a", b"1"), (b"b", b"2")]);
        let mut o = Overlay::new(&base);
        o.put(b"a".to_vec(), b"9".to_vec());
        o.commit_tx();
        o.delete(b"b".to_vec());
        o.put(b"c".to_vec(), b"3".to_vec());
        assert_eq!(o.get(b"b"), None);
        o.rollback_tx();
        assert_eq!(o.get(b"b"), Some(&b"2"[..]));
        assert_eq!(o.get(b"c"), None);
        assert_eq!(o.get(b"a"), Some(&b"9"[..]));
        let changes = o.into_changes();
        assert_eq!(changes.len(), 1);
    }

    #[test]
    fn no_op_writes_are_not_changes() {
        let base = state(&[(b"a", b"1")]);
        let mut o = Overlay::new(&base);
        o.put(b"a".to_vec(), b"1".to_vec());
        o.delete(b"zz".to_vec());
        assert!(o.into_changes().is_empty());
    }

    #[test]
    fn apply_then_undo_restores() {
        let mut s = state(&[(b"a", b"1"), (b"b", b"2")]);
        let before = s.clone();
        let mut cs = ChangeSet::default();
        cs.writes.insert(b"a".to_vec(), None);
        cs.writes.insert(b"c".to_vec(), Some(b"3".to_vec()));
        cs.writes.insert(b"b".to_vec(), Some(b"7".to_vec()));
        let undo = s.apply(&cs);
        assert_ne!(s, before);
        s.apply(&undo);
        assert_eq!(s, before);
    }

    #[test]
    fn range_merges_layers() {
        let base = state(&[(b"x1", b"a"), (b"x2", b"b"), (b"x4", b"d"), (b"y", b"e")]);
        let mut o = Overlay::new(&base);
        o.delete(b"x2".to_vec());
        o.commit_tx();
        o.put(b"x3".to_vec(), b"c".to_vec());
        let keys: Vec<Key> = o
            .range(b"x", b"y", 10)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"x1".to_vec(), b"x3".to_vec(), b"x4".to_vec()]);
        assert_eq!(o.range(b"x", b"y", 2).len(), 2);
    }

    #[test]
    fn digest_depends_on_changes_and_history() {
        let mut a = ChangeSet::default();
        a.writes.insert(b"k".to_vec(), Some(b"v".to_vec()));
        let b = ChangeSet::default();
        assert_ne!(
            next_digest(&Hash32::ZERO, &a),
            next_digest(&Hash32::ZERO, &b)
        );
        assert_ne!(
            next_digest(&Hash32::ZERO, &a),
            next_digest(&Hash32([1; 32]), &a)
        );
    }
}
