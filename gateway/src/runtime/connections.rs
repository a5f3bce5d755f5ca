//! The open HTTP connections, under a cap. A connection is idle while no request of
//! its own is in progress (just accepted, between kept-alive requests, or still
//! sending its headers); at the cap, a new connection closes the one idle the longest,
//! and is itself refused only when every connection is busy. A flood of connections
//! that send nothing thus pushes out its own oldest members, not the node's peers and
//! clients, and never takes more file descriptors than the cap.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};
use tokio::sync::Notify;

/// The table of open connections.
#[derive(Debug)]
pub(super) struct Connections {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// Grows on every change to idle, so the smallest is the longest idle.
    next_seq: u64,
    open: HashMap<u64, Entry>,
    /// Idle connections, by when they became idle.
    idle: BTreeMap<u64, u64>,
}

#[derive(Debug)]
struct Entry {
    requests: usize,
    idle_since: Option<u64>,
    close: Arc<Notify>,
}

/// What [`Connections::admit`] did to make room.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// Under the cap.
    Room,
    /// At the cap: the longest-idle connection was told to close.
    Evicted,
}

impl Connections {
    /// A table for at most `max` connections.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for a new connection (idle until its first request): `None` when
    /// the table is full of busy connections.
    pub(super) fn admit(self: &Arc<Self>) -> Option<(Slot, Admission)> {
        let mut t = self.table();
        let mut admission = Admission::Room;
        if t.open.len() >= self.max {
            let (_, victim) = t.idle.pop_first()?;
            if let Some(entry) = t.open.remove(&victim) {
                entry.close.notify_one();
            }
            admission = Admission::Evicted;
        }
        let id = t.next_id;
        t.next_id += 1;
        let seq = t.next_seq;
        t.next_seq += 1;
        let close = Arc::new(Notify::new());
        t.open.insert(
            id,
            Entry {
                requests: 0,
                idle_since: Some(seq),
                close: close.clone(),
            },
        );
        t.idle.insert(seq, id);
        Some((
            Slot {
                table: self.clone(),
                id,
                close,
            },
            admission,
        ))
    }

    /// Connections open now.
    pub(super) fn open(&self) -> usize {
        self.table().open.len()
    }
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Slot {
    table: Arc<Connections>,
    id: u64,
    close: Arc<Notify>,
}

impl Slot {
    /// Marks a request of this connection in progress until the guard is dropped.
    pub(super) fn busy(&self) -> Busy {
        let mut t = self.table.table();
        if let Some(entry) = t.open.get_mut(&self.id) {
            entry.requests += 1;
            if let Some(seq) = entry.idle_since.take() {
                t.idle.remove(&seq);
            }
        }
        Busy {
            table: self.table.clone(),
            id: self.id,
        }
    }

    /// Completes when the table closes this connection to make room for another.
    pub(super) async fn evicted(&self) {
        self.close.notified().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.table();
        if let Some(entry) = t.open.remove(&self.id) {
            if let Some(seq) = entry.idle_since {
                t.idle.remove(&seq);
            }
        }
    }
}

/// A request in progress (see [`Slot::busy`]).
#[derive(Debug)]
pub(super) struct Busy {
    table: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut t = self.table.table();
        let seq = t.next_seq;
        let Some(entry) = t.open.get_mut(&self.id) else {
            return;
        };
        entry.requests = entry.requests.saturating_sub(1);
        if entry.requests == 0 && entry.idle_since.is_none() {
            entry.idle_since = Some(seq);
            t.next_seq += 1;
            t.idle.insert(seq, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_makes_room() {
        let conns = Connections::new(3);
        let (a, _) = conns.admit().unwrap();
        let (b, _) = conns.admit().unwrap();
        let (c, _) = conns.admit().unwrap();
        let busy_a = a.busy();
        let busy_c = c.busy();
        // a and c are busy: b, idle since it was accepted, is the one to go.
        let (d, how) = conns.admit().unwrap();
        assert_eq!(how, Admission::Evicted);
        tokio::time::timeout(std::time::Duration::from_secs(1), b.evicted())
            .await
            .expect("b is told to close");
        assert_eq!(conns.open(), 3);
        // c finishes its request: it becomes idle after d, which goes first.
        drop(busy_c);
        let _busy_d = d.busy();
        let (e, _) = conns.admit().unwrap();
        let _busy_e = e.busy();
        tokio::time::timeout(std::time::Duration::from_secs(1), c.evicted())
            .await
            .expect("c, the only idle one, is told to close");
        // Everything busy: a new connection is refused.
        assert!(conns.admit().is_none());
        drop(busy_a);
        assert!(conns.admit().is_some(), "a is idle again and makes room");
        drop(b);
        drop(c);
        assert!(conns.open() <= 3);
    }

    #[test]
    fn a_closed_connection_frees_its_place() {
        let conns = Connections::new(2);
        let (a, _) = conns.admit().unwrap();
        let (_b, _) = conns.admit().unwrap();
        let busy = a.busy();
        drop(a);
        drop(busy);
        assert_eq!(conns.open(), 1);
        assert_eq!(conns.admit().unwrap().1, Admission::Room);
    }
}
