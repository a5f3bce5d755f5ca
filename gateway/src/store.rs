//! Persistent storage in sled (DESIGN §9): blocks, the canonical index, undo records,
//! each block's consensus state, receipts, transaction locations, a mirror of the
//! ledger state, the head, and the producer's signing watermark.
//!
//! Everything lives in one tree under short prefixes, so that committing or reverting
//! a block is one atomic `apply_batch`, followed by a flush before the caller
//! acknowledges or signs anything that depends on it. A `kill -9` at any moment leaves
//! either the whole block or none of it.

use distpos_chain::{block::Undo, AppliedBlock, Block, ChangeSet, Receipt, State};
use distpos_proofs::{codec, consensus::ConsensusState, Hash32};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path};

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
}

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

/// The sled database of one node.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
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
        Ok(Self { db, tree })
    }

    fn get<T: DeserializeOwned + Serialize>(&self, k: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree.get(k)? {
            None => Ok(None),
            Some(v) => codec::decode_canonical(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    key: hex::encode(k),
                    message: e.to_string(),
                }),
        }
    }

    /// The underlying database (for other trees, e.g. the relay queue).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
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
        for item in self.tree.scan_prefix(STATE) {
            let (k, v) = item?;
            kv.insert(k[STATE.len()..].to_vec(), v.to_vec());
        }
        Ok(Some((State::from_parts(kv, head.id, head.digest), head)))
    }

    /// Writes the genesis state of a new store.
    pub fn init(&self, state: &State, identity: &Hash32) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in state.iter() {
            batch.insert(key(STATE, k), v.as_slice());
        }
        batch.insert(
            HEAD,
            enc(&Head {
                id: state.head_id,
                height: 0,
                digest: state.digest,
            }),
        );
        batch.insert(IDENTITY, enc(identity));
        self.tree.apply_batch(batch)?;
        self.flush()
    }

    fn state_writes(batch: &mut sled::Batch, changes: &ChangeSet) {
        for (k, v) in &changes.writes {
            match v {
                Some(v) => batch.insert(key(STATE, k), v.as_slice()),
                None => batch.remove(key(STATE, k)),
            }
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
        let mut batch = sled::Batch::default();
        batch.insert(key(BLOCK, &id.0), enc(block));
        batch.insert(key(CONSENSUS, &id.0), enc(&applied.consensus));
        batch.insert(key(HEIGHT, &applied.height.to_be_bytes()), enc(&id));
        batch.insert(key(UNDO, &id.0), enc(undo));
        batch.insert(key(RECEIPTS, &id.0), enc(&applied.receipts));
        for (i, hash) in tx_hashes.iter().enumerate() {
            let loc = TxLocation {
                height: applied.height,
                block_id: id,
                index: i as u32,
            };
            batch.insert(key(TX, &hash.0), enc(&loc));
        }
        Self::state_writes(&mut batch, &applied.changes);
        batch.insert(
            HEAD,
            enc(&Head {
                id,
                height: applied.height,
                digest: applied.state_digest,
            }),
        );
        for p in prune_undo {
            batch.remove(key(UNDO, &p.0));
        }
        self.tree.apply_batch(batch)?;
        self.flush()
    }

    /// Reverts the head block, atomically, and flushes. The block itself stays stored.
    pub fn revert_block(
        &self,
        block: &Block,
        undo: &Undo,
        parent_height: u64,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.remove(key(HEIGHT, &block.height().to_be_bytes()));
        for tx in &block.txs {
            batch.remove(key(TX, &tx.hash().0));
        }
        Self::state_writes(&mut batch, &undo.changes);
        batch.insert(
            HEAD,
            enc(&Head {
                id: undo.head_id,
                height: parent_height,
                digest: undo.digest,
            }),
        );
        self.tree.apply_batch(batch)?;
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
        self.tree.insert(WATERMARK, enc(&slot))?;
        self.flush()
    }
}
