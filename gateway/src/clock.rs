//! The wall clock, read in one place. `chain/` and `proofs/` never read it: every rule
//! takes the time as a parameter, and the daemon passes this.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where the daemon reads the time: the system clock, or one a test sets and moves.
/// Cheap to clone; clones of a manual clock share its time.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<std::sync::Arc<std::sync::atomic::AtomicU64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `start_ms` until moved.
    pub fn manual(start_ms: u64) -> Self {
        Self(Some(std::sync::Arc::new(start_ms.into())))
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            None => now_ms(),
            Some(t) => t.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward by `ms` (the system clock moves by itself: no-op).
    pub fn advance(&self, ms: u64) {
        if let Some(t) = &self.0 {
            t.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
