//! The operator's actions on the relay queue (`POST /v1/relay/queue/{id}/{action}`,
//! `all` for every item): retry, hold, release and delete. Each is decided on the
//! item alone (`QueueAction::apply`) and then stored, under the queue's write lock,
//! so that a relay attempt under way cannot undo it when it saves its outcome.
//!
//! Deleting moves no money: it only stops this node from relaying the item. Its
//! transfers stay where the ledger has them (an outbound transfer in flight until a
//! proven receipt settles or refunds it), the chain's other nodes keep their copies,
//! and only an item no attempt can be using may go (held first, or done, or expired).

use super::{ItemState, OutboundQueue, Payload, QueueItem, BY_TRANSFER};
use crate::store::StoreError;
use distpos_proofs::codec;
use serde::Serialize;

impl OutboundQueue {
    /// An operator's action on one item ([`Operated::NotFound`] for an unknown id).
    pub fn operate(
        &self,
        id: &str,
        action: QueueAction,
        now_ms: u64,
    ) -> Result<Operated, StoreError> {
        let _w = self.writing();
        let Some(it) = self.get(id)? else {
            return Ok(Operated::NotFound);
        };
        let outcome = action.apply(it, now_ms);
        match &outcome {
            Operated::Changed(it) => self.apply_operator(std::slice::from_ref(it), &[])?,
            Operated::Deleted(it) => self.apply_operator(&[], std::slice::from_ref(it))?,
            Operated::Unchanged(_) | Operated::Refused { .. } | Operated::NotFound => {}
        }
        Ok(outcome)
    }

    /// An operator's action on every item: each one the action applies to is changed
    /// (or deleted), the others are left as they are and counted; one atomic batch.
    pub fn operate_all(&self, action: QueueAction, now_ms: u64) -> Result<OperatedAll, StoreError> {
        let _w = self.writing();
        let mut out = OperatedAll {
            action,
            ..Default::default()
        };
        let (mut changed, mut deleted) = (Vec::new(), Vec::new());
        for it in self.list()? {
            match action.apply(it, now_ms) {
                Operated::Changed(it) => changed.push(it),
                Operated::Deleted(it) => deleted.push(it),
                Operated::Unchanged(_) => out.unchanged += 1,
                Operated::Refused { .. } => out.refused += 1,
                Operated::NotFound => {}
            }
        }
        self.apply_operator(&changed, &deleted)?;
        out.changed = changed.len() + deleted.len();
        Ok(out)
    }

    /// Writes operator-changed items and removes deleted ones (with their look-up
    /// entries), in one atomic batch, flushed. Called with the write lock held.
    fn apply_operator(
        &self,
        changed: &[QueueItem],
        deleted: &[QueueItem],
    ) -> Result<(), StoreError> {
        if changed.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for item in changed {
            batch.insert(Self::key(&item.id), codec::encode(item));
        }
        for item in deleted {
            if matches!(item.payload, Payload::DeliveryBatch(_)) {
                for t in item.transfers() {
                    let mut x = BY_TRANSFER.to_vec();
                    x.extend_from_slice(&t.0);
                    // Only the entry that points at this item.
                    if self.tree.get(&x)?.as_deref() == Some(item.id.as_bytes()) {
                        batch.remove(x);
                    }
                }
            }
            batch.remove(Self::key(&item.id));
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        for item in changed {
            self.reschedule(item);
        }
        if !deleted.is_empty() {
            let mut s = self.schedule();
            for item in deleted {
                s.remove(&item.id);
            }
            drop(s);
            self.changed.notify_one();
        }
        Ok(())
    }
}

/// What an operator can do to a relay item (`POST /v1/relay/queue/{id}/{action}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueAction {
    /// Send it now (an expired item gets a new lifetime); releases a hold.
    #[default]
    Retry,
    /// Stop sending it until released.
    Hold,
    /// Let a held item be sent again.
    Release,
    /// Remove it from this node's queue: only a held, done or expired item (see
    /// [`QueueAction::deletable`]).
    Delete,
}

impl QueueAction {
    /// Every action, as spelled in the path.
    pub const ALL: [QueueAction; 4] = [Self::Retry, Self::Hold, Self::Release, Self::Delete];

    /// The action named `s` (`retry`, `hold`, `release`, `delete`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Its name in the path.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Delete => "delete",
        }
    }

    /// Whether an operator may delete `it`, and why not. A held item is one the relay
    /// no longer picks up (an attempt already under way saves without bringing it
    /// back); a done or expired one is not sent any more. A queued or delivered item
    /// that is not held may be on its way right now: hold it first.
    pub fn deletable(it: &QueueItem) -> Result<(), &'static str> {
        if it.held || matches!(it.state, ItemState::Done | ItemState::Expired) {
            Ok(())
        } else {
            Err(
                "the relay is still sending it (it is neither held, done nor expired): \
                 hold it first, then delete it",
            )
        }
    }

    /// What the action does to `it` (nothing is stored here).
    fn apply(self, mut it: QueueItem, now_ms: u64) -> Operated {
        match self {
            Self::Retry if it.state == ItemState::Done => return Operated::Unchanged(it),
            Self::Retry => {
                it.next_attempt_ms = now_ms;
                it.held = false;
                if it.state == ItemState::Expired {
                    it.state = ItemState::Queued;
                    it.created_ms = now_ms;
                }
            }
            Self::Hold if it.held || it.state == ItemState::Done => return Operated::Unchanged(it),
            Self::Hold => it.held = true,
            Self::Release if !it.held => return Operated::Unchanged(it),
            Self::Release => it.held = false,
            Self::Delete => {
                return match Self::deletable(&it) {
                    Ok(()) => Operated::Deleted(it),
                    Err(why) => Operated::Refused { item: it, why },
                }
            }
        }
        Operated::Changed(it)
    }
}

/// What an operator's action did to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operated {
    /// Changed: the item as it now is.
    Changed(QueueItem),
    /// Nothing to do (holding a done or held item, releasing one not held, retrying
    /// a done one): the item as it is.
    Unchanged(QueueItem),
    /// Deleted: the item as it was.
    Deleted(QueueItem),
    /// Refused (a delete of an item the relay may be sending): the item and why.
    Refused {
        /// The item, unchanged.
        item: QueueItem,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// No such item.
    NotFound,
}

/// What an operator's action on every item did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OperatedAll {
    /// The action.
    pub action: QueueAction,
    /// Items changed (or deleted).
    pub changed: usize,
    /// Items it did not apply to (see [`Operated::Unchanged`]).
    pub unchanged: usize,
    /// Items it refused (deleting an item that is not held, done or expired).
    pub refused: usize,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{five_queued, receipt_item};
    use super::*;
    use distpos_proofs::ChainId;

    fn state(q: &OutboundQueue, id: &str) -> Option<(ItemState, bool)> {
        q.get(id).unwrap().map(|i| (i.state, i.held))
    }

    #[test]
    fn only_what_no_attempt_can_be_using_is_deleted() {
        let (_dir, q, items) = five_queued();
        let id = &items[0].id;
        let transfer = items[0].transfers()[0];
        assert_eq!(
            q.operate("v2-delivery-nothing", QueueAction::Delete, 0)
                .unwrap(),
            Operated::NotFound
        );
        // Queued and not held: the relay may be sending it now.
        assert!(matches!(
            q.operate(id, QueueAction::Delete, 0).unwrap(),
            Operated::Refused { .. }
        ));
        assert_eq!(state(&q, id), Some((ItemState::Queued, false)), "kept");
        // Held first, then deleted: gone, with its look-up entry and from the schedule.
        q.operate(id, QueueAction::Hold, 0).unwrap();
        let Operated::Deleted(gone) = q.operate(id, QueueAction::Delete, 0).unwrap() else {
            panic!("a held item is deleted");
        };
        assert_eq!(&gone.id, id);
        assert_eq!(state(&q, id), None);
        assert!(q.for_transfer(&transfer).unwrap().is_none());
        assert_eq!(q.backlog().get(&ChainId(0xb)).map(|b| b.items), Some(4));
        assert!(q.due(0, 10).unwrap().iter().all(|i| &i.id != id));
        // Finished items go without a hold.
        let mut done = q.get(&items[1].id).unwrap().unwrap();
        done.state = ItemState::Done;
        let mut expired = receipt_item();
        expired.state = ItemState::Expired;
        q.enqueue(std::slice::from_ref(&expired), 1).unwrap();
        q.update_many(&[done.clone(), expired.clone()]).unwrap();
        for it in [&done, &expired] {
            assert!(matches!(
                q.operate(&it.id, QueueAction::Delete, 0).unwrap(),
                Operated::Deleted(_)
            ));
        }
        assert_eq!(q.list().unwrap().len(), 3);
    }

    #[test]
    fn an_attempt_saved_after_an_operator_action_does_not_undo_it() {
        let (_dir, q, items) = five_queued();
        // The relay read these two for an attempt...
        let mut a = q.get(&items[0].id).unwrap().unwrap();
        let mut b = q.get(&items[1].id).unwrap().unwrap();
        // ...the operator holds one and deletes the other meanwhile...
        q.operate(&a.id, QueueAction::Hold, 0).unwrap();
        q.operate(&b.id, QueueAction::Hold, 0).unwrap();
        q.operate(&b.id, QueueAction::Delete, 0).unwrap();
        // ...and the attempt saves its outcome.
        a.failed("down".into(), 10);
        b.failed("down".into(), 10);
        q.update_many(&[a.clone(), b.clone()]).unwrap();
        let stored = q.get(&a.id).unwrap().unwrap();
        assert!(stored.held, "the hold stands");
        assert_eq!(stored.attempts, 1, "the outcome is recorded");
        assert!(q.due(u64::MAX, 10).unwrap().iter().all(|i| i.id != a.id));
        assert_eq!(q.get(&b.id).unwrap(), None, "a deleted item stays deleted");
    }

    #[test]
    fn all_applies_to_each_item_it_fits_and_counts_the_rest() {
        let (_dir, q, items) = five_queued();
        let count = |q: &OutboundQueue, action, now| {
            let r = q.operate_all(action, now).unwrap();
            (r.changed, r.unchanged, r.refused)
        };
        assert_eq!(count(&q, QueueAction::Release, 0), (0, 5, 0), "none held");
        assert_eq!(count(&q, QueueAction::Delete, 0), (0, 0, 5), "none held");
        assert_eq!(q.list().unwrap().len(), 5);
        assert_eq!(count(&q, QueueAction::Hold, 0), (5, 0, 0));
        assert!(q.due(u64::MAX, 10).unwrap().is_empty(), "all held");
        assert_eq!(count(&q, QueueAction::Release, 0), (5, 0, 0));
        assert_eq!(q.due(0, 10).unwrap().len(), 5);
        // One done: hold skips it, retry leaves it done.
        let mut done = q.get(&items[0].id).unwrap().unwrap();
        done.state = ItemState::Done;
        q.update_many(&[done.clone()]).unwrap();
        assert_eq!(count(&q, QueueAction::Hold, 0), (4, 1, 0));
        assert_eq!(count(&q, QueueAction::Retry, 50), (4, 1, 0));
        assert_eq!(state(&q, &done.id), Some((ItemState::Done, false)));
        assert_eq!(q.due(50, 10).unwrap().len(), 4, "retry releases");
        // Deleting all takes the done one and what is held, not what is sending.
        q.operate(&items[1].id, QueueAction::Hold, 0).unwrap();
        assert_eq!(count(&q, QueueAction::Delete, 0), (2, 0, 3));
        assert_eq!(q.list().unwrap().len(), 3);
        let sending: Vec<String> = q.list().unwrap().into_iter().map(|i| i.id).collect();
        assert!(!sending.contains(&items[0].id) && !sending.contains(&items[1].id));
    }

    #[test]
    fn actions_are_named_as_in_the_path() {
        for a in QueueAction::ALL {
            assert_eq!(QueueAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(QueueAction::parse("explode"), None);
        assert_eq!(QueueAction::parse("Hold"), None);
    }
}
