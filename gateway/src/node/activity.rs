//! A node's minute at INFO: how many blocks it produced and applied in the last
//! minute, where its head and LIB are and what participation it sees. One line a
//! minute replaces a line per block (which is at DEBUG), so an operator sees a node
//! is alive and keeping up without the log scrolling at the block rate.
//!
//! Counted as blocks are committed: no task of its own. A node that applies no block
//! for a minute says nothing here (the producer says why it waits, at WARN).

use tracing::info;

/// Blocks counted since the window opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityWindow {
    /// When the window opened (the first block counted), if it has.
    opened_ms: Option<u64>,
    /// Blocks this node produced.
    produced: u64,
    /// Blocks applied on our chain (produced here or imported).
    applied: u64,
}

/// What a closed window counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivitySummary {
    /// Blocks this node produced.
    pub produced: u64,
    /// Blocks applied on our chain (produced here or imported).
    pub applied: u64,
    /// How long the window was open.
    pub window_ms: u64,
}

impl ActivityWindow {
    /// How long a window stays open.
    pub const LENGTH_MS: u64 = 60_000;

    /// Counts one block applied on our chain at `now_ms` (`produced` by this node).
    /// When the window has been open [`Self::LENGTH_MS`] or more, closes it, block
    /// included, and returns what it counted; the next block opens the next one.
    pub fn record(&mut self, produced: bool, now_ms: u64) -> Option<ActivitySummary> {
        let opened = *self.opened_ms.get_or_insert(now_ms);
        self.applied = self.applied.saturating_add(1);
        if produced {
            self.produced = self.produced.saturating_add(1);
        }
        let window_ms = now_ms.saturating_sub(opened);
        if window_ms < Self::LENGTH_MS {
            return None;
        }
        let summary = ActivitySummary {
            produced: self.produced,
            applied: self.applied,
            window_ms,
        };
        *self = Self::default();
        Some(summary)
    }
}

/// Logs a closed window at INFO with the chain's position.
pub fn log_activity(
    chain: distpos_proofs::ChainId,
    s: &ActivitySummary,
    head: u64,
    lib: u64,
    participation_percent: u32,
) {
    // The figures are the message (one line an operator reads); the chain is a
    // field, as on the transfer lines.
    let secs = s.window_ms / 1_000;
    info!(chain = %chain,
          "produced {} blocks in the last {secs} s (applied {}), head {head}, LIB {lib}, \
           participation {participation_percent}%",
          s.produced, s.applied);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_closes_after_a_minute_with_what_it_counted() {
        let mut w = ActivityWindow::default();
        let t0 = 1_700_000_000_000;
        assert_eq!(w.record(true, t0), None);
        assert_eq!(w.record(false, t0 + 500), None);
        assert_eq!(w.record(true, t0 + 59_999), None);
        assert_eq!(
            w.record(false, t0 + 60_000),
            Some(ActivitySummary {
                produced: 2,
                applied: 4,
                window_ms: 60_000,
            })
        );
        // The next block opens the next window; nothing is counted twice.
        assert_eq!(w.record(true, t0 + 61_000), None);
        assert_eq!(
            w.record(true, t0 + 125_000),
            Some(ActivitySummary {
                produced: 2,
                applied: 2,
                window_ms: 64_000,
            })
        );
    }

    #[test]
    fn a_clock_going_back_does_not_close_a_window() {
        let mut w = ActivityWindow::default();
        assert_eq!(w.record(true, 100_000), None);
        assert_eq!(w.record(true, 10), None);
        assert!(w.record(true, 160_000).is_some());
    }
}
