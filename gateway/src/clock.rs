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
