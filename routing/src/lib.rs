//! # distpos-routing
//!
//! The routing table from a chain id to the gateway endpoints of other chains (DESIGN
//! §7), the way mail servers route mail: operator overrides, then static routes from the
//! node config, then DNS discovery (`SRV _distpos._tcp.<chain-hex>.<zone>`, like MX, with
//! a `TXT v=distpos1 id=…` record tying the route to a chain identity), cached with the
//! records' TTL. Endpoints come out in RFC 2782 order with unhealthy ones (in backoff)
//! last, and forwarding to our own chain or beyond the hop limit is refused.
//!
//! It may do network I/O (DNS lookups), but it must never hold ledger rules (those live
//! in `distpos-chain`), never deliver anything itself (the relay does), and never read
//! the clock: callers pass `now_ms`. Start reading at [`RouteTable`] (`table.rs`); the
//! config is in `config.rs`, DNS in `dns.rs`, ordering in `order.rs`, the operator's
//! overrides (checked, then applied; per node, kept durable by the caller) in
//! `table/overrides.rs`.

mod config;
mod dns;
mod error;
mod health;
mod order;
mod table;
mod view;

pub use config::{DnsConfig, RouteSource, RoutingConfig, StaticEndpoint};
pub use error::RoutingError;
pub use table::{CheckedOverride, RouteTable, MAX_OVERRIDE_ENDPOINTS, MAX_OVERRIDE_URL_BYTES};
pub use view::{DnsStats, Endpoint, EndpointView, RouteView};
