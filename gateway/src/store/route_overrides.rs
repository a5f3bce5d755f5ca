//! The operator's route overrides (`PUT /v1/routes/{chain}`), kept in the tree
//! [`ROUTE_OVERRIDES_TREE`] of the node's sled database so that a restart does not
//! drop them silently. Keyed by chain id (lowercase hex, as in the URL), each value is
//! the endpoint list in the canonical encoding. A new tree: folders of the same
//! [`super::STORE_FORMAT`] without it open as they did, with no override.
//!
//! An override belongs to this node: nothing here or in the routing table tells the
//! chain's other nodes about it.
//!
//! A change is checked first (by the routing table), then written and flushed here,
//! and only then applied to the table: a failed write leaves the table as it was.
//! One lock orders whole changes, so the store and the table change in the same order.

use super::{ChainStore, MemoryStore, SledStore, StoreError};
use distpos_proofs::{codec, ChainId};
use distpos_routing::{CheckedOverride, RouteTable, StaticEndpoint};
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, MutexGuard},
};

/// The sled tree of the route overrides.
pub const ROUTE_OVERRIDES_TREE: &str = "route_overrides";

/// Most route overrides one node stores. Replacing an existing one is always allowed;
/// a new one beyond this is refused ([`OverrideError::Full`]).
pub const MAX_ROUTE_OVERRIDES: usize = 1_024;

/// Why an override was not set.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// The node already stores [`MAX_ROUTE_OVERRIDES`] overrides, none for this chain.
    #[error(
        "this node already stores {limit} route overrides, the most it keeps; remove one \
         (DELETE /v1/routes/{{chain}}) before adding another (replacing one is allowed)"
    )]
    Full {
        /// [`MAX_ROUTE_OVERRIDES`].
        limit: usize,
    },
    /// Writing or flushing failed: nothing changed in the table.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stored route overrides of one node.
pub struct RouteOverrides {
    kv: Arc<dyn ChainStore>,
    /// The chains with a stored override (also those skipped at start because they no
    /// longer validate: they count against the bound until removed). Its lock orders
    /// whole changes: store, then table.
    stored: Mutex<BTreeSet<ChainId>>,
}

fn key(chain: ChainId) -> Vec<u8> {
    chain.to_string().into_bytes()
}

impl RouteOverrides {
    /// Opens the tree in the node's sled database and puts every stored override that
    /// still validates into `table` (call it before serving). One that does not (say,
    /// the chain is now our own, or the record does not decode) is logged at WARN and
    /// skipped, and stays stored until the operator removes it.
    pub fn open(db: &sled::Db, table: &RouteTable) -> Result<Self, StoreError> {
        let kv = Arc::new(SledStore {
            db: db.clone(),
            tree: db.open_tree(ROUTE_OVERRIDES_TREE)?,
        });
        Self::restore(kv, table)
    }

    /// Overrides kept in memory only (tests).
    pub fn in_memory() -> Self {
        Self {
            kv: Arc::new(MemoryStore::default()),
            stored: Mutex::default(),
        }
    }

    /// [`RouteOverrides::open`] over any [`ChainStore`] holding only overrides.
    pub fn restore(kv: Arc<dyn ChainStore>, table: &RouteTable) -> Result<Self, StoreError> {
        let mut stored = BTreeSet::new();
        let mut applied = 0usize;
        for (k, v) in kv.scan_prefix(&[])? {
            let Some(chain) = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| ChainId::parse(s).ok())
            else {
                tracing::warn!(
                    key = %hex::encode(&k),
                    "stored route override under a key that is not a chain id: skipped"
                );
                continue;
            };
            stored.insert(chain);
            let endpoints = match codec::decode_canonical::<Vec<StaticEndpoint>>(&v) {
                Ok(endpoints) => endpoints,
                Err(e) => {
                    tracing::warn!(
                        %chain, error = %e,
                        "stored route override does not decode: skipped (DELETE /v1/routes/{chain} removes it)"
                    );
                    continue;
                }
            };
            match table.check_override(chain, endpoints) {
                Ok(checked) => {
                    table.apply_override(checked);
                    applied += 1;
                }
                Err(e) => tracing::warn!(
                    %chain, error = %e,
                    "stored route override no longer valid: skipped (DELETE /v1/routes/{chain} removes it)"
                ),
            }
        }
        if !stored.is_empty() {
            tracing::info!(
                restored = applied,
                skipped = stored.len() - applied,
                "route overrides of this node restored from its store"
            );
        }
        Ok(Self {
            kv,
            stored: Mutex::new(stored),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<ChainId>> {
        // Each change inserts or removes one chain: a panic elsewhere cannot leave the
        // set half-updated.
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `checked` (replacing the chain's earlier override), flushes, then puts
    /// it in `table`. On any error the table is unchanged.
    pub fn set(&self, table: &RouteTable, checked: CheckedOverride) -> Result<(), OverrideError> {
        let chain = checked.chain();
        let mut stored = self.lock();
        if !stored.contains(&chain) && stored.len() >= MAX_ROUTE_OVERRIDES {
            return Err(OverrideError::Full {
                limit: MAX_ROUTE_OVERRIDES,
            });
        }
        self.write(chain, Some(codec::encode(checked.endpoints())))?;
        stored.insert(chain);
        table.apply_override(checked);
        Ok(())
    }

    /// Removes the chain's stored override (flushed), then the one in `table`. True
    /// if there was one in either. On an error the table is unchanged.
    pub fn clear(&self, table: &RouteTable, chain: ChainId) -> Result<bool, StoreError> {
        let mut stored = self.lock();
        let was_stored = self.write(chain, None)?;
        stored.remove(&chain);
        let was_in_table = table.clear_override(chain);
        Ok(was_stored || was_in_table)
    }

    /// The stored override of `chain`, as written.
    pub fn get(&self, chain: ChainId) -> Result<Option<Vec<StaticEndpoint>>, StoreError> {
        let k = key(chain);
        match self.kv.get(&k)? {
            None => Ok(None),
            Some(v) => codec::decode_canonical(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    key: hex::encode(&k),
                    message: e.to_string(),
                }),
        }
    }

    /// How many overrides are stored (also those skipped at start).
    pub fn stored(&self) -> usize {
        self.lock().len()
    }

    /// Sets (`Some`) or removes (`None`) the chain's record and flushes; whether a
    /// record was there before. When the flush fails the earlier record is put back
    /// (as far as the store still takes writes), so that what is stored matches the
    /// table, which the caller leaves unchanged.
    fn write(&self, chain: ChainId, value: Option<Vec<u8>>) -> Result<bool, StoreError> {
        let k = key(chain);
        let before = self.kv.get(&k)?;
        if before.is_none() && value.is_none() {
            return Ok(false);
        }
        self.kv.apply(vec![(k.clone(), value)])?;
        if let Err(e) = self.kv.flush() {
            let was_there = before.is_some();
            if let Err(undo) = self.kv.apply(vec![(k, before)]) {
                tracing::error!(%chain, error = %undo, "route override: cannot undo a write that was not flushed");
            }
            tracing::error!(%chain, error = %e, was_there, "route override: flushing the store failed");
            return Err(e);
        }
        Ok(before.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, Pairs, Store};
    use distpos_routing::RoutingConfig;
    use std::sync::atomic::{AtomicBool, Ordering};

    const US: ChainId = ChainId(0xe2e4);
    const BEEF: ChainId = ChainId(0xbeef);
    const CAFE: ChainId = ChainId(0xcafe);

    fn ep(url: &str, priority: u16) -> StaticEndpoint {
        StaticEndpoint {
            url: url.into(),
            priority,
            weight: 1,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(US, &RoutingConfig::default()).unwrap()
    }

    fn checked(table: &RouteTable, chain: ChainId, urls: &[&str]) -> CheckedOverride {
        let endpoints = urls.iter().map(|u| ep(u, 10)).collect();
        table.check_override(chain, endpoints).unwrap()
    }

    /// The override endpoints the table lists for `chain`, with their origin.
    fn listed(table: &RouteTable, chain: ChainId) -> Vec<(String, &'static str)> {
        table
            .snapshot_chain(chain, 0)
            .map(|v| v.endpoints.into_iter().map(|e| (e.url, e.origin)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn overrides_are_read_back_after_the_store_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let t = table();
            let o = RouteOverrides::open(store.db().unwrap(), &t).unwrap();
            assert_eq!(o.stored(), 0);
            o.set(&t, checked(&t, BEEF, &["http://old:1"])).unwrap();
            let two = vec![ep("http://b1:1", 1), ep("http://b2:1", 20)];
            o.set(&t, t.check_override(BEEF, two).unwrap()).unwrap();
            o.set(&t, checked(&t, CAFE, &["http://c:1"])).unwrap();
            assert!(o.clear(&t, CAFE).unwrap());
            assert!(!o.clear(&t, CAFE).unwrap(), "already gone");
            // Dropped without another flush: set and clear flushed before returning.
        }
        let store = Store::open(dir.path()).unwrap();
        let t = table();
        let o = RouteOverrides::open(store.db().unwrap(), &t).unwrap();
        assert_eq!(o.stored(), 1);
        assert_eq!(
            o.get(BEEF).unwrap(),
            Some(vec![ep("http://b1:1", 1), ep("http://b2:1", 20)])
        );
        assert_eq!(o.get(CAFE).unwrap(), None);
        assert_eq!(
            listed(&t, BEEF),
            [
                ("http://b1:1".to_string(), "override"),
                ("http://b2:1".to_string(), "override")
            ]
        );
        assert!(
            t.snapshot_chain(CAFE, 0).is_none(),
            "the cleared one came back"
        );
        // The chain store itself is untouched by the new tree.
        assert_eq!(store.watermark().unwrap(), 0);
    }

    #[test]
    fn stored_overrides_that_no_longer_validate_are_skipped_not_fatal() {
        let kv: Arc<dyn ChainStore> = Arc::new(MemoryStore::default());
        let good = codec::encode(&vec![ep("http://c:1", 10)]);
        kv.apply(vec![
            // Our own chain now (say the node was moved to another genesis).
            (key(US), Some(good.clone())),
            // Does not decode.
            (key(BEEF), Some(b"\xff\xff".to_vec())),
            // Not a chain id.
            (b"not-hex".to_vec(), Some(good.clone())),
            // Decodes but no longer validates.
            (
                key(ChainId(0xd0)),
                Some(codec::encode(&vec![ep("ftp://x", 1)])),
            ),
            (key(CAFE), Some(good)),
        ])
        .unwrap();
        let t = table();
        let o = RouteOverrides::restore(kv, &t).unwrap();
        assert_eq!(t.override_count(), 1);
        assert_eq!(listed(&t, CAFE), [("http://c:1".to_string(), "override")]);
        // Skipped ones stay stored (and counted) until the operator removes them.
        assert_eq!(o.stored(), 4);
        assert!(o.clear(&t, US).unwrap());
        assert!(o.clear(&t, BEEF).unwrap());
        assert_eq!(o.stored(), 2);
    }

    /// A store whose flushes fail while `broken` is set.
    #[derive(Default)]
    struct FlakyDisk {
        inner: MemoryStore,
        broken: AtomicBool,
    }

    impl ChainStore for FlakyDisk {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key)
        }
        fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
            self.inner.scan_prefix(prefix)
        }
        fn apply(&self, batch: Batch) -> Result<(), StoreError> {
            self.inner.apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                    "disk full",
                ))));
            }
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_changes_neither_the_table_nor_what_is_stored() {
        let disk = Arc::new(FlakyDisk::default());
        let t = table();
        let o = RouteOverrides::restore(disk.clone(), &t).unwrap();
        o.set(&t, checked(&t, BEEF, &["http://b:1"])).unwrap();
        disk.broken.store(true, Ordering::SeqCst);

        let e = o.set(&t, checked(&t, BEEF, &["http://new:1"])).unwrap_err();
        assert!(matches!(e, OverrideError::Store(_)), "{e}");
        let e = o.set(&t, checked(&t, CAFE, &["http://c:1"])).unwrap_err();
        assert!(matches!(e, OverrideError::Store(_)), "{e}");
        assert!(o.clear(&t, BEEF).is_err());

        assert_eq!(listed(&t, BEEF), [("http://b:1".to_string(), "override")]);
        assert!(t.snapshot_chain(CAFE, 0).is_none());
        assert_eq!(o.get(BEEF).unwrap(), Some(vec![ep("http://b:1", 10)]));
        assert_eq!(o.get(CAFE).unwrap(), None);
        assert_eq!(o.stored(), 1);

        disk.broken.store(false, Ordering::SeqCst);
        assert!(o.clear(&t, BEEF).unwrap());
        assert!(t.snapshot_chain(BEEF, 0).is_none());
    }

    #[test]
    fn the_number_of_stored_overrides_is_bounded() {
        let t = table();
        let o = RouteOverrides::in_memory();
        for i in 0..MAX_ROUTE_OVERRIDES as u32 {
            o.set(&t, checked(&t, ChainId(0x1000 + i), &["http://x:1"]))
                .unwrap();
        }
        let beyond = ChainId(0x1000 + MAX_ROUTE_OVERRIDES as u32);
        let e = o.set(&t, checked(&t, beyond, &["http://x:1"])).unwrap_err();
        assert!(matches!(e, OverrideError::Full { limit } if limit == MAX_ROUTE_OVERRIDES));
        assert!(e.to_string().contains("1024 route overrides"), "{e}");
        assert!(t.snapshot_chain(beyond, 0).is_none());
        // Replacing one is allowed; removing one makes room.
        o.set(&t, checked(&t, ChainId(0x1000), &["http://y:1"]))
            .unwrap();
        assert!(o.clear(&t, ChainId(0x1001)).unwrap());
        o.set(&t, checked(&t, beyond, &["http://x:1"])).unwrap();
        assert_eq!(o.stored(), MAX_ROUTE_OVERRIDES);
        assert_eq!(t.override_count(), MAX_ROUTE_OVERRIDES);
    }
}
