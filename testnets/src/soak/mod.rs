//! Soaks (`distpos bench chaos | crash-restart | outage`): real `distpos` processes on
//! loopback, owned by a [`crate::fleet::Fleet`], with faults injected from a seeded
//! random source, and the promise checked from the outside: every transfer ends
//! delivered or refunded, none lost or doubled, the nodes of a chain agree, supply
//! holds, and a stopped chain comes back. Each soak returns one JSON object with its
//! figures next to their limits; nothing is asserted here (the test suite reads it).

pub mod chaos;
pub mod crash;
pub mod harness;

pub use chaos::{chaos, ChaosOptions};
pub use crash::{crash_restart, outage};
