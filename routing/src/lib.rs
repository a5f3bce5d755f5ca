//! # distpos-routing
//!
//! Will hold the routing table from chain id to endpoints of other chains (DESIGN §7):
//! static routes from the node's config, DNS discovery via SRV/TXT records with
//! hickory-resolver, endpoint selection (RFC 2782 order), health with backoff, and hop
//! and loop safety. Not built yet: see the issue "Routing table, DNS discovery and the
//! persistent outbound relay".
//!
//! It may do network I/O (DNS); it must never hold ledger rules, which live in
//! `distpos-chain`.
