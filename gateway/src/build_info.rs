//! What this daemon was built from: its version and git revision (set by the
//! crate's build script; `unknown` when it was built without git), for
//! `distpos_build_info` and anything that prints a version.

/// The crate's version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision built (12 hex digits), or `unknown`.
pub const GIT_REVISION: &str = env!("DISTPOS_GIT_REVISION");
