//! # distpos-adapters
//!
//! Will hold the `PeerChain` trait (submit to a peer's mempool, fetch headers, fetch
//! proofs, deliver receipts) and its HTTP implementation for distpos peers, treating
//! every response as untrusted input (DESIGN §1, §6). Not built yet: see the issue
//! "Routing table, DNS discovery and the persistent outbound relay".
