//! Persistent storage (DESIGN §9): blocks, the canonical index, undo records, each
//! block's consensus state, receipts, transaction locations, a mirror of the ledger
//! state, the head, and the producer's signing watermark.
//!
//! Everything lives in one ordered key-value map under short prefixes, so that
//! committing or reverting a block is one atomic batch, followed by a flush before the
//! caller acknowledges or signs anything that depends on it. A `kill -9` at any moment
//! leaves either the whole block or none of it. The map is a [`ChainStore`]: a sled
//! tree for a node ([`Store::open`]), a map in memory for tests ([`Store::in_memory`]).
//!
//! Other trees of the same sled database hold what is not the chain: the relay queue
//! (`crate::queue`) and the operator's route overrides ([`route_overrides`]).

pub mod route_overrides;

pub use route_overrides::{OverrideError, RouteOverrides, MAX_ROUTE_OVERRIDES};

use distpos_chain::{block::Undo, AppliedBlock, Block, ChangeSet, Receipt, State};
use distpos_proofs::{codec, consensus::ConsensusState, Hash32};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

const BLOCK: &[u8] = b"b/";
const CONSENSUS: &[u8] = b"c/";
const HEIGHT: &[u8] = b"h/";
const UNDO: &[u8] = b"u/";
const RECEIPTS: &[u8] = b"r/";
const TX: &[u8] = b"t/";
const STATE: &[u8] = b"s/";
const HEAD: &[u8] = b"m/head";
const WATERMARK: &[u8] = b"m/watermark";
const IDENTITY: &[u8] = b"m/identity";

/// Storage errors. Never a client's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A record did not decode.
    #[error("storage record {key} is corrupt: {message}")]
    Corrupt {
        /// Key, hex.
        key: String,
        /// Decode error.
        message: String,
    },
    /// The data folder belongs to another chain.
    #[error("data folder holds chain {found}, but the genesis file is chain {expected}")]
    WrongChain {
        /// Identity in the data folder.
        found: Hash32,
        /// Identity of the genesis file.
        expected: Hash32,
    },
    /// The data folder was written by a build with another on-disk format.
    #[error("data folder format is {found:?}, this build reads {expected:?}: {hint}")]
    Format {
        /// The format recorded in the folder (`"none"` before formats were recorded).
        found: String,
        /// The format of this build.
        expected: &'static str,
        /// What the operator can do.
        hint: &'static str,
    },
}

/// The on-disk format this build writes and reads. Version 2 holds transactions hashed
/// under `DISTPOS/TX/v2` and the interchain v2 relay queue; a folder of the first
/// protocol (no format recorded) cannot be read, since none of its blocks verify.
/// Version 3 registers peers at a trust anchor (a checkpoint, not a bare schedule),
/// which changes how peer records and their governance actions are encoded. Version 4
/// hashed transactions under `DISTPOS/TX/v3` (transfers carry a fast fee, DESIGN §11).
/// Version 5 hashes them under `DISTPOS/TX/v4` (transfers carry a first hop, and
/// chains forward, DESIGN §12). Version 6 keeps, per peer, its bounces by reason and
/// the evidence of equivocation among its producers (DESIGN §13), which changes how
/// peer records are encoded.
pub const STORE_FORMAT: &str = "distpos-store/6";

/// Where a transaction was included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Block id.
    pub block_id: Hash32,
    /// Position in the block.
    pub index: u32,
}

/// The head as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Head block id (identity hash at genesis).
    pub id: Hash32,
    /// Head height.
    pub height: u64,
    /// State digest after the head.
    pub digest: Hash32,
}

/// Writes applied together: each key set to a value, or removed (`None`).
pub type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;
/// Key-value pairs read, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a [`Store`] keeps its records: one ordered key-value map whose batches apply
/// atomically (a reader sees all of a batch or none of it).
pub trait ChainStore: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError>;
    /// Applies `batch` atomically.
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;
    /// Makes everything applied so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

/// A sled tree (and its database, flushed as a whole).
struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl ChainStore for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.tree.apply_batch(b)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// A map in memory: what tests of the node use instead of a disk.
#[derive(Default)]
struct MemoryStore(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ChainStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        Ok(self
            .map()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self.map();
        for (k, v) in batch {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The store of one node; cheap to clone (the clones share it).
#[derive(Clone)]
pub struct Store {
    kv: Arc<dyn ChainStore>,
    /// The sled database, for other trees (the relay queue); `None` in memory.
    db: Option<sled::Db>,
}

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(rest);
    k
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    codec::encode(v)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open()?;
        let tree = db.open_tree("chain")?;
        let meta = db.open_tree("meta")?;
        match meta.get("format")? {
            Some(f) if f.as_ref() == STORE_FORMAT.as_bytes() => {}
            None if tree.is_empty() => {
                meta.insert("format", STORE_FORMAT.as_bytes())?;
                meta.flush()?;
            }
            found => {
                return Err(StoreError::Format {
                    found: found
                        .map_or("none".into(), |f| String::from_utf8_lossy(&f).into_owned()),
                    expected: STORE_FORMAT,
                    hint: "move the folder aside and start from an empty one: the node \
                           syncs its chain again from its peers",
                })
            }
        }
        Ok(Self {
            kv: Arc::new(SledStore {
                db: db.clone(),
                tree,
            }),
            db: Some(db),
        })
    }

    /// An empty store in memory (tests).
    pub fn in_memory() -> Self {
        Self {
            kv: Arc::new(MemoryStore::default()),
            db: None,
        }
    }

    /// A store over any [`ChainStore`].
    pub fn with(kv: Arc<dyn ChainStore>) -> Self {
        Self { kv, db: None }
    }

    fn get<T: DeserializeOwned + Serialize>(&self, k: &[u8]) -> Result<Option<T>, StoreError> {
        match self.kv.get(k)? {
            None => Ok(None),
            Some(v) => codec::decode_canonical(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    key: hex::encode(k),
                    message: e.to_string(),
                }),
        }
    }

    /// The underlying sled database (for other trees, e.g. the relay queue); `None`
    /// for a store that is not on disk.
    pub fn db(&self) -> Option<&sled::Db> {
        self.db.as_ref()
    }

    /// Flushes to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush()
    }

    /// Loads the state and head, or `None` for an empty store. Checks the store
    /// belongs to the chain with `identity`.
    pub fn load(&self, identity: &Hash32) -> Result<Option<(State, Head)>, StoreError> {
        let Some(found) = self.get::<Hash32>(IDENTITY)? else {
            return Ok(None);
        };
        if &found != identity {
            return Err(StoreError::WrongChain {
                found,
                expected: *identity,
            });
        }
        let Some(head) = self.get::<Head>(HEAD)? else {
            return Ok(None);
        };
        let mut kv = BTreeMap::new();
        for (k, v) in self.kv.scan_prefix(STATE)? {
            kv.insert(k[STATE.len()..].to_vec(), v);
        }
        Ok(Some((State::from_parts(kv, head.id, head.digest), head)))
    }

    /// Writes the genesis state of a new store.
    pub fn init(&self, state: &State, identity: &Hash32) -> Result<(), StoreError> {
        let mut batch: Batch = state
            .iter()
            .map(|(k, v)| (key(STATE, k), Some(v.clone())))
            .collect();
        batch.push((
            HEAD.to_vec(),
            Some(enc(&Head {
                id: state.head_id,
                height: 0,
                digest: state.digest,
            })),
        ));
        batch.push((IDENTITY.to_vec(), Some(enc(identity))));
        self.kv.apply(batch)?;
        self.flush()
    }

    fn state_writes(batch: &mut Batch, changes: &ChangeSet) {
        for (k, v) in &changes.writes {
            batch.push((key(STATE, k), v.clone()));
        }
    }

    /// Commits a block on top of the head, atomically, and flushes. `tx_hashes` are
    /// the hashes of its transactions, in order; `prune_undo` the blocks that became
    /// irreversible, whose undo records go (they are never reorganised again).
    pub fn commit_block(
        &self,
        block: &Block,
        tx_hashes: &[Hash32],
        applied: &AppliedBlock,
        undo: &Undo,
        prune_undo: &[Hash32],
    ) -> Result<(), StoreError> {
        let id = applied.id;
        let mut batch: Batch = vec![
            (key(BLOCK, &id.0), Some(enc(block))),
            (key(CONSENSUS, &id.0), Some(enc(&applied.consensus))),
            (key(HEIGHT, &applied.height.to_be_bytes()), Some(enc(&id))),
            (key(UNDO, &id.0), Some(enc(undo))),
            (key(RECEIPTS, &id.0), Some(enc(&applied.receipts))),
        ];
        for (i, hash) in tx_hashes.iter().enumerate() {
            let loc = TxLocation {
                height: applied.height,
                block_id: id,
                index: i as u32,
            };
            batch.push((key(TX, &hash.0), Some(enc(&loc))));
        }
        Self::state_writes(&mut batch, &applied.changes);
        batch.push((
            HEAD.to_vec(),
            Some(enc(&Head {
                id,
                height: applied.height,
                digest: applied.state_digest,
            })),
        ));
        for p in prune_undo {
            batch.push((key(UNDO, &p.0), None));
        }
        self.kv.apply(batch)?;
        self.flush()
    }

    /// Reverts the head block, atomically, and flushes. The block itself stays stored.
    pub fn revert_block(
        &self,
        block: &Block,
        undo: &Undo,
        parent_height: u64,
    ) -> Result<(), StoreError> {
        let mut batch: Batch = vec![(key(HEIGHT, &block.height().to_be_bytes()), None)];
        for tx in &block.txs {
            batch.push((key(TX, &tx.hash().0), None));
        }
        Self::state_writes(&mut batch, &undo.changes);
        batch.push((
            HEAD.to_vec(),
            Some(enc(&Head {
                id: undo.head_id,
                height: parent_height,
                digest: undo.digest,
            })),
        ));
        self.kv.apply(batch)?;
        self.flush()
    }

    /// The undo record of a canonical block above LIB.
    pub fn undo(&self, id: &Hash32) -> Result<Option<Undo>, StoreError> {
        self.get(&key(UNDO, &id.0))
    }

    /// A stored block by id.
    pub fn block(&self, id: &Hash32) -> Result<Option<Block>, StoreError> {
        self.get(&key(BLOCK, &id.0))
    }

    /// The consensus state after a stored block.
    pub fn consensus(&self, id: &Hash32) -> Result<Option<ConsensusState>, StoreError> {
        self.get(&key(CONSENSUS, &id.0))
    }

    /// The canonical block id at `height`.
    pub fn id_at(&self, height: u64) -> Result<Option<Hash32>, StoreError> {
        self.get(&key(HEIGHT, &height.to_be_bytes()))
    }

    /// The canonical block at `height`.
    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        match self.id_at(height)? {
            Some(id) => self.block(&id),
            None => Ok(None),
        }
    }

    /// Receipts of a stored block.
    pub fn receipts(&self, id: &Hash32) -> Result<Option<Vec<Receipt>>, StoreError> {
        self.get(&key(RECEIPTS, &id.0))
    }

    /// Where a transaction was included on the canonical chain.
    pub fn tx_location(&self, hash: &Hash32) -> Result<Option<TxLocation>, StoreError> {
        self.get(&key(TX, &hash.0))
    }

    /// The last slot this node signed a block for.
    pub fn watermark(&self) -> Result<u64, StoreError> {
        Ok(self.get::<u64>(WATERMARK)?.unwrap_or(0))
    }

    /// Records (and flushes) that this node is about to sign for `slot`. Must complete
    /// before the signature is made: after a crash the node never signs that slot
    /// again.
    pub fn set_watermark(&self, slot: u64) -> Result<(), StoreError> {
        self.kv
            .apply(vec![(WATERMARK.to_vec(), Some(enc(&slot)))])?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_another_format_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        // A new folder is stamped with this build's format and opens again.
        drop(Store::open(&dir.path().join("new")).unwrap());
        drop(Store::open(&dir.path().join("new")).unwrap());
        // A folder with a chain but no format: written by the first protocol.
        let old = dir.path().join("old");
        {
            let db = sled::open(&old).unwrap();
            db.open_tree("chain").unwrap().insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        let e = Store::open(&old).err().expect("refused");
        assert!(
            matches!(&e, StoreError::Format { found, .. } if found == "none"),
            "{e}"
        );
        assert!(e.to_string().contains(STORE_FORMAT), "{e}");
        // Refusing it wrote nothing: it is refused the same way again.
        assert!(matches!(Store::open(&old), Err(StoreError::Format { .. })));
    }
}
