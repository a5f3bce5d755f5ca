//! The operator's route overrides: checked first ([`RouteTable::check_override`]), then
//! applied ([`RouteTable::apply_override`]), so that a caller can make a checked
//! override durable in between and change the table only once that worked.
//!
//! An override belongs to the node whose table holds it: nothing here tells the
//! chain's other nodes about it.

use distpos_proofs::ChainId;

use super::{to_endpoints, RouteTable};
use crate::{config::validate_endpoints, RouteSource, RoutingError, StaticEndpoint};

/// Most endpoints one override may list (static routes from the config are not
/// bounded here: the operator wrote them into a file, not through the API).
pub const MAX_OVERRIDE_ENDPOINTS: usize = 32;

/// Longest URL an override may name, in bytes.
pub const MAX_OVERRIDE_URL_BYTES: usize = 512;

/// An override that passed [`RouteTable::check_override`]: what
/// [`RouteTable::apply_override`] takes, so that nothing unchecked reaches the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOverride {
    chain: ChainId,
    endpoints: Vec<StaticEndpoint>,
}

impl CheckedOverride {
    /// The chain the override routes to.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The endpoints, as the operator gave them.
    pub fn endpoints(&self) -> &[StaticEndpoint] {
        &self.endpoints
    }
}

impl RouteTable {
    /// Checks an operator override for `chain` without changing anything: not our own
    /// chain (nor chain 0), between 1 and [`MAX_OVERRIDE_ENDPOINTS`] endpoints, each an
    /// `http://` URL of at most [`MAX_OVERRIDE_URL_BYTES`]. Errors name the field,
    /// e.g. `override.beef[0].url: …`.
    pub fn check_override(
        &self,
        chain: ChainId,
        endpoints: Vec<StaticEndpoint>,
    ) -> Result<CheckedOverride, RoutingError> {
        if chain == self.our_chain || chain.is_local() {
            return Err(RoutingError::OwnChain(chain));
        }
        let field = format!("override.{chain}");
        if endpoints.len() > MAX_OVERRIDE_ENDPOINTS {
            return Err(RoutingError::Config(format!(
                "{field}: has {} endpoints; at most {MAX_OVERRIDE_ENDPOINTS}",
                endpoints.len()
            )));
        }
        if let Some(i) = endpoints
            .iter()
            .position(|e| e.url.len() > MAX_OVERRIDE_URL_BYTES)
        {
            return Err(RoutingError::Config(format!(
                "{field}[{i}].url: longer than {MAX_OVERRIDE_URL_BYTES} bytes"
            )));
        }
        validate_endpoints(&field, &endpoints)?;
        Ok(CheckedOverride { chain, endpoints })
    }

    /// Puts a checked override in the table: its endpoints win over static routes and
    /// DNS until [`RouteTable::clear_override`]. Replaces an earlier one.
    pub fn apply_override(&self, checked: CheckedOverride) {
        let endpoints = to_endpoints(&checked.endpoints, RouteSource::Override);
        tracing::info!(chain = %checked.chain, endpoints = endpoints.len(), "route override set");
        self.lock().overrides.insert(checked.chain, endpoints);
    }

    /// [`RouteTable::check_override`], then [`RouteTable::apply_override`].
    pub fn set_override(
        &self,
        chain: ChainId,
        endpoints: Vec<StaticEndpoint>,
    ) -> Result<(), RoutingError> {
        let checked = self.check_override(chain, endpoints)?;
        self.apply_override(checked);
        Ok(())
    }

    /// Removes the operator's override for `chain`; false if there was none.
    pub fn clear_override(&self, chain: ChainId) -> bool {
        let removed = self.lock().overrides.remove(&chain).is_some();
        if removed {
            tracing::info!(%chain, "route override cleared");
        }
        removed
    }

    /// How many chains have an override in the table.
    pub fn override_count(&self) -> usize {
        self.lock().overrides.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RoutingConfig;

    const US: ChainId = ChainId(0xe2e4);
    const BEEF: ChainId = ChainId(0xbeef);

    fn ep(url: &str) -> StaticEndpoint {
        StaticEndpoint {
            url: url.into(),
            priority: 10,
            weight: 1,
        }
    }

    fn config_err(r: Result<CheckedOverride, RoutingError>) -> String {
        match r {
            Err(RoutingError::Config(msg)) => msg,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_check_changes_nothing_and_an_apply_needs_no_second_check() {
        let table = RouteTable::new(US, &RoutingConfig::default()).unwrap();
        let checked = table.check_override(BEEF, vec![ep("http://b:1")]).unwrap();
        assert_eq!(checked.chain(), BEEF);
        assert_eq!(checked.endpoints(), [ep("http://b:1")]);
        assert!(
            table.snapshot_chain(BEEF, 0).is_none(),
            "checking applied it"
        );
        assert_eq!(table.override_count(), 0);
        table.apply_override(checked);
        let view = table.snapshot_chain(BEEF, 0).unwrap();
        assert_eq!(view.endpoints[0].source, RouteSource::Override);
        assert_eq!(view.endpoints[0].origin, "override");
        assert_eq!(view.endpoints[0].scope, Some("node"));
        assert_eq!(table.override_count(), 1);
    }

    #[test]
    fn overrides_are_bounded_in_endpoints_and_url_length() {
        let table = RouteTable::new(US, &RoutingConfig::default()).unwrap();
        let many = vec![ep("http://b:1"); MAX_OVERRIDE_ENDPOINTS + 1];
        assert_eq!(
            config_err(table.check_override(BEEF, many)),
            format!("override.beef: has 33 endpoints; at most {MAX_OVERRIDE_ENDPOINTS}")
        );
        assert!(table
            .check_override(BEEF, vec![ep("http://b:1"); MAX_OVERRIDE_ENDPOINTS])
            .is_ok());
        let long = format!("http://{}", "a".repeat(MAX_OVERRIDE_URL_BYTES));
        let msg = config_err(table.check_override(BEEF, vec![ep("http://b:1"), ep(&long)]));
        assert!(
            msg.starts_with("override.beef[1].url: longer than"),
            "{msg}"
        );
        assert_eq!(
            table.check_override(ChainId(0), vec![ep("http://b:1")]),
            Err(RoutingError::OwnChain(ChainId(0)))
        );
    }
}
