//! Tenant operations settings: the tenant registry (`ROUTER_TENANT_REGISTRY_TABLE`, its cache's
//! TTL and size, what a suspended tenant's records become) and each tenant's share of the
//! in-flight Invokes (`ROUTER_MAX_IN_FLIGHT_PER_TENANT`).

use std::time::Duration;

use super::error::ConfigError;
use super::values::{Lookup, positive, positive_or};

/// What happens to a suspended tenant's records (`ROUTER_SUSPENDED_TENANTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suspended {
    /// Rejected (`tenant-suspended`) and quarantined: the source deletes or checkpoints them.
    Reject,
    /// Failed (`tenant-suspended`) and reported: the source keeps them (redelivery, retries)
    /// until the tenant is reinstated or its own retention ends.
    Hold,
}

/// The tenant registry: a DynamoDB table keyed by `tenantId` (S) with `status` (S: `active` |
/// `suspended`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `ROUTER_TENANT_REGISTRY_TABLE`: its name or ARN.
    pub table: String,
    /// `ROUTER_TENANT_REGISTRY_TTL_SECONDS` (default 60): how long a tenant's standing is
    /// believed; a suspension takes effect within it.
    pub ttl: Duration,
    /// `ROUTER_TENANT_REGISTRY_CACHE_SIZE` (default 10,000): most tenants remembered.
    pub cache_size: usize,
    /// `ROUTER_SUSPENDED_TENANTS` (default `reject`).
    pub suspended: Suspended,
}

/// Default of `ROUTER_TENANT_REGISTRY_TTL_SECONDS`.
pub const DEFAULT_REGISTRY_TTL_SECONDS: u64 = 60;
/// Default of `ROUTER_TENANT_REGISTRY_CACHE_SIZE`.
pub const DEFAULT_REGISTRY_CACHE_SIZE: usize = 10_000;

/// Reads the registry settings; `None` without `ROUTER_TENANT_REGISTRY_TABLE` (the other
/// registry variables are then refused, so a typo in the table's name is not silently "no
/// registry").
pub fn registry(get: &impl Lookup) -> Result<Option<RegistrySettings>, ConfigError> {
    let Some(table) = get("ROUTER_TENANT_REGISTRY_TABLE") else {
        for variable in [
            "ROUTER_TENANT_REGISTRY_TTL_SECONDS",
            "ROUTER_TENANT_REGISTRY_CACHE_SIZE",
            "ROUTER_SUSPENDED_TENANTS",
        ] {
            if get(variable).is_some() {
                return Err(ConfigError {
                    variable,
                    problem: "is set, but ROUTER_TENANT_REGISTRY_TABLE is not".into(),
                });
            }
        }
        return Ok(None);
    };
    let table = table.trim().to_owned();
    let suspended = match get("ROUTER_SUSPENDED_TENANTS").as_deref().map(str::trim) {
        None | Some("reject") => Suspended::Reject,
        Some("hold") => Suspended::Hold,
        Some(other) => {
            return Err(ConfigError {
                variable: "ROUTER_SUSPENDED_TENANTS",
                problem: format!("expected \"reject\" or \"hold\", got {other:?}"),
            });
        }
    };
    Ok(Some(RegistrySettings {
        table,
        ttl: Duration::from_secs(positive_or(
            get,
            "ROUTER_TENANT_REGISTRY_TTL_SECONDS",
            DEFAULT_REGISTRY_TTL_SECONDS,
        )?),
        cache_size: positive_or(
            get,
            "ROUTER_TENANT_REGISTRY_CACHE_SIZE",
            DEFAULT_REGISTRY_CACHE_SIZE,
        )?,
        suspended,
    }))
}

/// `ROUTER_MAX_IN_FLIGHT_PER_TENANT`: at most `max_in_flight`; by default a quarter of it, at
/// least 1.
pub fn max_in_flight_per_tenant(
    get: &impl Lookup,
    max_in_flight: usize,
) -> Result<usize, ConfigError> {
    let Some(text) = get("ROUTER_MAX_IN_FLIGHT_PER_TENANT") else {
        return Ok((max_in_flight / 4).max(1));
    };
    let cap: usize = positive("ROUTER_MAX_IN_FLIGHT_PER_TENANT", &text)?;
    if cap > max_in_flight {
        return Err(ConfigError {
            variable: "ROUTER_MAX_IN_FLIGHT_PER_TENANT",
            problem: format!("{cap} is above ROUTER_MAX_IN_FLIGHT ({max_in_flight})"),
        });
    }
    Ok(cap)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_registry_is_off_without_its_table_and_its_other_variables_need_it() {
        assert_eq!(registry(&lookup(&[])).unwrap(), None);
        let err = registry(&lookup(&[("ROUTER_SUSPENDED_TENANTS", "hold")])).unwrap_err();
        assert_eq!(err.variable, "ROUTER_SUSPENDED_TENANTS");
        assert!(
            err.problem.contains("ROUTER_TENANT_REGISTRY_TABLE"),
            "{err}"
        );
    }

    #[test]
    fn registry_defaults_and_values() {
        let settings = registry(&lookup(&[("ROUTER_TENANT_REGISTRY_TABLE", "tenants")]))
            .unwrap()
            .unwrap();
        assert_eq!(settings.table, "tenants");
        assert_eq!(settings.ttl, Duration::from_secs(60));
        assert_eq!(settings.cache_size, 10_000);
        assert_eq!(settings.suspended, Suspended::Reject);
        let settings = registry(&lookup(&[
            ("ROUTER_TENANT_REGISTRY_TABLE", "tenants"),
            ("ROUTER_TENANT_REGISTRY_TTL_SECONDS", "5"),
            ("ROUTER_TENANT_REGISTRY_CACHE_SIZE", "100"),
            ("ROUTER_SUSPENDED_TENANTS", "hold"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(settings.ttl, Duration::from_secs(5));
        assert_eq!(settings.cache_size, 100);
        assert_eq!(settings.suspended, Suspended::Hold);
        for (variable, value) in [
            ("ROUTER_SUSPENDED_TENANTS", "drop"),
            ("ROUTER_TENANT_REGISTRY_TTL_SECONDS", "0"),
            ("ROUTER_TENANT_REGISTRY_CACHE_SIZE", "many"),
        ] {
            let err = registry(&lookup(&[
                ("ROUTER_TENANT_REGISTRY_TABLE", "tenants"),
                (variable, value),
            ]))
            .unwrap_err();
            assert_eq!(err.variable, variable);
        }
    }

    #[test]
    fn per_tenant_share_defaults_to_a_quarter_and_never_exceeds_the_total() {
        assert_eq!(max_in_flight_per_tenant(&lookup(&[]), 64).unwrap(), 16);
        assert_eq!(max_in_flight_per_tenant(&lookup(&[]), 3).unwrap(), 1);
        let set = lookup(&[("ROUTER_MAX_IN_FLIGHT_PER_TENANT", "8")]);
        assert_eq!(max_in_flight_per_tenant(&set, 64).unwrap(), 8);
        let err = max_in_flight_per_tenant(&set, 4).unwrap_err();
        assert_eq!(err.variable, "ROUTER_MAX_IN_FLIGHT_PER_TENANT");
        assert!(err.problem.contains("ROUTER_MAX_IN_FLIGHT (4)"), "{err}");
        let zero = lookup(&[("ROUTER_MAX_IN_FLIGHT_PER_TENANT", "0")]);
        assert!(max_in_flight_per_tenant(&zero, 4).is_err());
    }
}
