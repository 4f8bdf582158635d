//! Lambda's list prices, kept in one table: `shared/pricing.json` (with the date and the pricing
//! page they come from), read here for Rust and by the CDK library for its Logs Insights query.
//! [`Prices::cost`] prices one function's usage: requests, GB-seconds at its memory and
//! architecture, and tenant-isolated execution environments created.

use serde::Deserialize;

/// The table's text, compiled in.
pub const PRICING_JSON: &str = include_str!("../pricing.json");

/// Per-architecture prices.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct PerArchitecture {
    /// x86_64.
    pub x86_64: f64,
    /// arm64 (Graviton).
    pub arm64: f64,
}

impl PerArchitecture {
    /// The price for `architecture` (`x86_64`, or `arm64` / `aarch64`); `None` for another.
    pub fn get(&self, architecture: &str) -> Option<f64> {
        match architecture {
            "x86_64" => Some(self.x86_64),
            "arm64" | "aarch64" => Some(self.arm64),
            _ => None,
        }
    }
}

/// The price table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// The day the prices were read.
    pub as_of: String,
    /// The page they were read from.
    pub source: String,
    /// The region they apply to.
    pub region: String,
    /// Currency.
    pub currency: String,
    /// Per million requests.
    pub requests_per_million: f64,
    /// Per GB-second of duration.
    pub gb_second: PerArchitecture,
    /// Per tenant-isolated execution environment created, per GB of configured memory.
    pub tenant_environment_per_gb: PerArchitecture,
}

/// What one function's usage costs, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Requests.
    pub requests: f64,
    /// Duration (GB-seconds).
    pub compute: f64,
    /// Tenant environments created.
    pub environments: f64,
}

impl Cost {
    /// The three parts together.
    pub fn total(&self) -> f64 {
        self.requests + self.compute + self.environments
    }
}

impl Prices {
    /// The table in `shared/pricing.json`.
    pub fn list() -> Self {
        serde_json::from_str(PRICING_JSON).expect("shared/pricing.json is a valid price table")
    }

    /// The cost of `requests`, `gb_seconds` and `environments` created, for a function of
    /// `memory_mb` on `architecture`; `None` for an architecture the table has no price for.
    pub fn cost(
        &self,
        requests: u64,
        gb_seconds: f64,
        environments: u64,
        memory_mb: u32,
        architecture: &str,
    ) -> Option<Cost> {
        Some(Cost {
            requests: requests as f64 * self.requests_per_million / 1e6,
            compute: gb_seconds * self.gb_second.get(architecture)?,
            environments: environments as f64
                * (f64::from(memory_mb) / 1024.0)
                * self.tenant_environment_per_gb.get(architecture)?,
        })
    }
}

/// The architecture Lambda would call this machine's: `x86_64` or `arm64` (Rust's `aarch64`).
pub fn this_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    }
}

/// GB-seconds of `duration_ms` at `memory_mb`.
pub fn gb_seconds(duration_ms: f64, memory_mb: u32) -> f64 {
    duration_ms / 1000.0 * f64::from(memory_mb) / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_and_prices_the_pricing_pages_example() {
        let prices = Prices::list();
        assert_eq!(prices.source, "https://aws.amazon.com/lambda/pricing/");
        // The page's tenant-isolation example: 10M invokes of 2 s at 1,024 MB on x86, 200K
        // environments created: $2 + $333.34 + $33.40.
        let cost = prices
            .cost(
                10_000_000,
                gb_seconds(10_000_000.0 * 2000.0, 1024),
                200_000,
                1024,
                "x86_64",
            )
            .unwrap();
        assert!((cost.requests - 2.0).abs() < 1e-9, "{cost:?}");
        assert!((cost.compute - 333.334).abs() < 1e-3, "{cost:?}");
        assert!((cost.environments - 33.4).abs() < 1e-9, "{cost:?}");
        assert!(prices.cost(1, 1.0, 1, 128, "mips").is_none());
    }
}
