//! The fork database (DESIGN §4.3): blocks above the last irreversible block, on every
//! branch we have seen, each with the consensus state its header chain implies.
//!
//! Pure bookkeeping: it verifies headers (with the same [`ConsensusState`] rules the
//! light client uses), picks the best tip by the fork-choice rule, and tells the node
//! which blocks to undo and apply to move its head there. It never executes
//! transactions; the node does, and removes a block that fails to apply with
//! [`ForkDb::remove_subtree`].

use crate::block::Block;
use distpos_proofs::{
    consensus::{ChainRules, ConsensusState, ForkTip, HeaderError},
    Hash32, SignedHeader,
};
use std::collections::{BTreeMap, BTreeSet};

/// A block in the fork database.
#[derive(Clone, Debug)]
pub struct ForkEntry {
    /// The block.
    pub block: Block,
    /// The consensus state after it.
    pub consensus: ConsensusState,
}

/// Why a block was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkError {
    /// Its parent is neither the root nor in the database (we may need to sync).
    #[error("unknown parent {0}")]
    UnknownParent(Hash32),
    /// It is at or below the last irreversible block: never reorganise past LIB.
    #[error("block at height {height} is not above the irreversible height {lib}")]
    BelowLib {
        /// Its height.
        height: u64,
        /// Our LIB.
        lib: u64,
    },
    /// Its header does not extend its parent.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// The path from the current head to a new best tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reorg {
    /// Blocks to undo, head first.
    pub revert: Vec<Hash32>,
    /// Blocks to apply, oldest first.
    pub apply: Vec<Hash32>,
}

/// Blocks above LIB on every known branch.
#[derive(Clone, Debug)]
pub struct ForkDb {
    root_id: Hash32,
    root_height: u64,
    root_consensus: ConsensusState,
    entries: BTreeMap<Hash32, ForkEntry>,
}

impl ForkDb {
    /// A fork database rooted at an irreversible block.
    pub fn new(root_id: Hash32, root_height: u64, root_consensus: ConsensusState) -> Self {
        Self {
            root_id,
            root_height,
            root_consensus,
            entries: BTreeMap::new(),
        }
    }

    /// The root (last irreversible block we pruned to).
    pub fn root(&self) -> (Hash32, u64) {
        (self.root_id, self.root_height)
    }

    /// True if `id` is the root or in the database.
    pub fn contains(&self, id: &Hash32) -> bool {
        id == &self.root_id || self.entries.contains_key(id)
    }

    /// A block in the database.
    pub fn get(&self, id: &Hash32) -> Option<&ForkEntry> {
        self.entries.get(id)
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when only the root is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn consensus_of(&self, id: &Hash32) -> Option<&ConsensusState> {
        if id == &self.root_id {
            Some(&self.root_consensus)
        } else {
            self.entries.get(id).map(|e| &e.consensus)
        }
    }

    /// Verifies `block`'s header against its parent and adds it. Returns `false` if it
    /// was already known.
    pub fn insert(
        &mut self,
        block: Block,
        rules: &ChainRules,
        now_ms: u64,
    ) -> Result<bool, ForkError> {
        let id = block.id();
        if self.contains(&id) {
            return Ok(false);
        }
        let h = &block.header.header;
        if h.height <= self.root_height {
            return Err(ForkError::BelowLib {
                height: h.height,
                lib: self.root_height,
            });
        }
        let parent = self
            .consensus_of(&h.prev_id)
            .ok_or(ForkError::UnknownParent(h.prev_id))?;
        parent.check_header(&h.prev_id, &block.header, rules, now_ms)?;
        let consensus = parent.advance(h, &rules.clock);
        self.entries.insert(id, ForkEntry { block, consensus });
        Ok(true)
    }

    /// The fork-choice summary of a block (root included).
    pub fn tip(&self, id: &Hash32) -> Option<ForkTip> {
        let c = self.consensus_of(id)?;
        Some(ForkTip {
            lib: c.lib,
            height: c.height,
            id: *id,
        })
    }

    /// The best tip: the higher LIB, then the greater height, then the lower id.
    pub fn best(&self) -> ForkTip {
        let root = ForkTip {
            lib: self.root_consensus.lib,
            height: self.root_height,
            id: self.root_id,
        };
        self.entries
            .keys()
            .filter_map(|id| self.tip(id))
            .fold(
                root,
                |best, t| if t.prefer(&best).is_gt() { t } else { best },
            )
    }

    /// Where to start fetching another node's canonical chain so that its tip `remote`
    /// can be considered, or `None` when there is nothing to fetch: we hold that block
    /// already, or fork choice prefers our head `local` anyway. Sync follows fork
    /// choice, not height: a branch with a higher LIB is fetched however short it is.
    ///
    /// A taller preferred tip most likely extends our head, so fetching starts just
    /// above it; a preferred tip that is not taller is on another branch, and fetching
    /// starts just above our root (see [`ForkDb::sync_rewind`]), which every honest
    /// branch shares.
    pub fn sync_from(&self, local: &ForkTip, remote: &ForkTip) -> Option<u64> {
        if self.contains(&remote.id) || remote.prefer(local).is_le() {
            return None;
        }
        Some(if remote.height > local.height {
            local.height + 1
        } else {
            self.sync_rewind()
        })
    }

    /// Where to fetch from when blocks fetched above our head did not link to it
    /// (an unknown parent): just above the root, the last block every branch we may
    /// still switch to shares.
    pub fn sync_rewind(&self) -> u64 {
        self.root_height + 1
    }

    /// Ancestors of `id` up to (excluding) the root, newest first; `None` if the chain
    /// does not reach the root.
    fn ancestry(&self, id: &Hash32) -> Option<Vec<Hash32>> {
        let mut out = Vec::new();
        let mut cur = *id;
        while cur != self.root_id {
            let e = self.entries.get(&cur)?;
            out.push(cur);
            cur = e.block.header.header.prev_id;
        }
        Some(out)
    }

    /// How to move the head from `from` to `to`: undo down to their common ancestor,
    /// then apply up to `to`.
    pub fn reorg(&self, from: &Hash32, to: &Hash32) -> Option<Reorg> {
        let a = self.ancestry(from)?;
        let b = self.ancestry(to)?;
        let in_b: BTreeSet<&Hash32> = b.iter().collect();
        let revert: Vec<Hash32> = a
            .iter()
            .take_while(|id| !in_b.contains(id))
            .copied()
            .collect();
        let ancestor = a.get(revert.len()).copied().unwrap_or(self.root_id);
        let mut apply: Vec<Hash32> = b
            .iter()
            .take_while(|id| **id != ancestor)
            .copied()
            .collect();
        apply.reverse();
        Some(Reorg { revert, apply })
    }

    /// Removes a block and everything built on it (a block that failed to apply).
    pub fn remove_subtree(&mut self, id: &Hash32) {
        let mut doomed = vec![*id];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i];
            doomed.extend(
                self.entries
                    .iter()
                    .filter(|(_, e)| e.block.header.header.prev_id == parent)
                    .map(|(k, _)| *k),
            );
            i += 1;
        }
        for d in doomed {
            self.entries.remove(&d);
        }
    }

    /// Makes `new_root` (a block in the database) the root and drops everything that
    /// does not descend from it.
    pub fn advance_root(&mut self, new_root: &Hash32) {
        let Some(entry) = self.entries.get(new_root).cloned() else {
            return;
        };
        let keep: BTreeSet<Hash32> = self
            .entries
            .keys()
            .filter(|id| {
                self.ancestry(id)
                    .is_some_and(|chain| chain.contains(new_root) && *id != new_root)
            })
            .copied()
            .collect();
        self.entries.retain(|id, _| keep.contains(id));
        self.root_id = *new_root;
        self.root_height = entry.block.height();
        self.root_consensus = entry.consensus;
    }

    /// Another block in the database signed by the same producer for the same slot
    /// (double signing), if any.
    pub fn equivocation(&self, header: &SignedHeader) -> Option<SignedHeader> {
        let id = header.id();
        self.entries
            .values()
            .map(|e| &e.block.header)
            .find(|h| {
                h.header.producer == header.header.producer
                    && h.header.timestamp_ms == header.header.timestamp_ms
                    && h.id() != id
            })
            .cloned()
    }
}

#[cfg(test)]
mod tests;
