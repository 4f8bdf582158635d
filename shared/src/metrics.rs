//! CloudWatch Embedded Metric Format (EMF): metric documents written as log lines, which
//! CloudWatch Logs turns into metrics
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! [`Document`] builds one document; [`validate`] checks a document against the specification's
//! rules (used by the tests on every document the router and backend emit). Tenant ids belong in
//! properties, never in dimensions: every dimension value combination is a billed metric.

use serde_json::{Map, Value, json};

/// Most dimensions in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// Most metrics in one directive.
pub const MAX_METRICS: usize = 100;
/// Most values of one metric.
pub const MAX_VALUES: usize = 100;

/// One EMF document under construction.
#[derive(Debug, Clone)]
pub struct Document {
    namespace: String,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, &'static str)>,
    members: Map<String, Value>,
    /// Metrics with several values, kept whole until [`Document::build_all`] spreads them.
    series: Vec<(String, &'static str, Vec<f64>)>,
}

impl Document {
    /// A document in `namespace` with one dimension set made of `dimensions` (name, value).
    pub fn new(namespace: &str, dimensions: &[(&str, &str)]) -> Self {
        let mut members = Map::new();
        for (name, value) in dimensions {
            members.insert((*name).into(), Value::String((*value).into()));
        }
        Self {
            namespace: namespace.to_owned(),
            dimensions: dimensions
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            metrics: Vec::new(),
            members,
            series: Vec::new(),
        }
    }

    /// Adds a metric with one value. `unit` is a CloudWatch unit (`Count`, `Milliseconds`, …).
    pub fn metric(mut self, name: &str, unit: &'static str, value: f64) -> Self {
        self.metrics.push((name.to_owned(), unit));
        self.members.insert(name.to_owned(), json!(value));
        self
    }

    /// Adds a metric with several values, every one kept: past [`MAX_VALUES`] (the most one
    /// document may carry), [`Document::build_all`] spreads them over further documents, so
    /// CloudWatch's SampleCount, Sum, Minimum, Maximum and percentiles stay exact. Nothing is
    /// added for no values.
    pub fn values(mut self, name: &str, unit: &'static str, values: &[f64]) -> Self {
        if !values.is_empty() {
            self.series.push((name.to_owned(), unit, values.to_vec()));
        }
        self
    }

    /// Adds a property (metadata: searchable in the logs, not a metric).
    pub fn property(mut self, name: &str, value: Value) -> Self {
        self.members.insert(name.to_owned(), value);
        self
    }

    /// The document, stamped with `timestamp_ms`, for a document whose metrics hold at most
    /// [`MAX_VALUES`] values each (one document); [`Document::build_all`] otherwise.
    pub fn build(self, timestamp_ms: i64) -> Value {
        let mut documents = self.build_all(timestamp_ms);
        debug_assert_eq!(documents.len(), 1, "use build_all for long series");
        documents.swap_remove(0)
    }

    /// The documents, stamped with `timestamp_ms`: the first carries every metric, property and
    /// up to [`MAX_VALUES`] values of each series; each further one carries the dimensions and
    /// the next values of the series not yet exhausted, so every value is counted exactly once.
    pub fn build_all(self, timestamp_ms: i64) -> Vec<Value> {
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let directive = |metrics: Vec<Value>| {
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": metrics,
                }]
            })
        };
        let rounds = self
            .series
            .iter()
            .map(|(_, _, values)| values.len().div_ceil(MAX_VALUES))
            .max()
            .unwrap_or(1);
        let mut documents = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut members = if round == 0 {
                self.members.clone()
            } else {
                self.dimensions
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect()
            };
            let mut metrics: Vec<Value> = if round == 0 {
                self.metrics
                    .iter()
                    .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
                    .collect()
            } else {
                Vec::new()
            };
            for (name, unit, values) in &self.series {
                let Some(chunk) = values.chunks(MAX_VALUES).nth(round) else {
                    continue;
                };
                metrics.push(json!({"Name": name, "Unit": unit}));
                members.insert(name.clone(), json!(chunk));
            }
            members.insert("_aws".into(), directive(metrics));
            documents.push(Value::Object(members));
        }
        documents
    }
}

/// Checks a document against the EMF specification: `_aws.Timestamp` a non-negative integer;
/// `_aws.CloudWatchMetrics` an array of directives, each with a `Namespace` string, `Dimensions`
/// as arrays of at most 30 dimension names and a `Metrics` array of at most 100 `{Name, Unit?}`;
/// every dimension a top-level string member; every metric a top-level number or array of at most
/// 100 numbers; names unique within a directive.
pub fn validate(document: &Value) -> Result<(), String> {
    let object = document.as_object().ok_or("a document is a JSON object")?;
    let aws = object
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("_aws is missing or not an object")?;
    match aws.get("Timestamp") {
        Some(Value::Number(n)) if n.as_u64().is_some() => {}
        _ => return Err("_aws.Timestamp must be a non-negative integer (ms)".into()),
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics must be an array")?;
    for directive in directives {
        match directive.get("Namespace") {
            Some(Value::String(ns)) if !ns.is_empty() && ns.len() <= 1024 => {}
            _ => return Err("Namespace must be a non-empty string".into()),
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions must be an array")?;
        for set in sets {
            let names = set.as_array().ok_or("a dimension set is an array")?;
            if names.len() > MAX_DIMENSIONS {
                return Err(format!("a dimension set has {} dimensions", names.len()));
            }
            for name in names {
                let name = name.as_str().ok_or("a dimension name is a string")?;
                match object.get(name) {
                    Some(Value::String(_)) => {}
                    _ => return Err(format!("dimension {name} is not a top-level string member")),
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics must be an array")?;
        if metrics.len() > MAX_METRICS {
            return Err(format!("{} metrics in one directive", metrics.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has a Name string")?;
            if name.is_empty() || name.len() > 1024 || !seen.insert(name) {
                return Err(format!(
                    "metric name {name:?} is empty, too long or repeated"
                ));
            }
            if let Some(unit) = metric.get("Unit")
                && !unit.is_string()
            {
                return Err(format!("metric {name}: Unit must be a string"));
            }
            match object.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= MAX_VALUES && values.iter().all(Value::is_number) => {}
                _ => {
                    return Err(format!(
                        "metric {name} is not a top-level number or array of at most {MAX_VALUES} numbers"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,050 latencies: eleven valid documents that together hold every value once, so the
    /// SampleCount and Sum CloudWatch computes are exact; the counters are not repeated.
    #[test]
    fn a_long_series_is_spread_over_documents_and_every_value_counts_once() {
        let latencies: Vec<f64> = (0..1050).map(f64::from).collect();
        let documents = Document::new("TenantRouter", &[("Service", "router"), ("Source", "sqs")])
            .metric("RecordsInvoked", "Count", 3.0)
            .values("InvokeLatency", "Milliseconds", &latencies)
            .values("Short", "Count", &[1.0, 2.0])
            .property("tenants", json!({"acme": {"invoked": 3}}))
            .build_all(1_767_225_600_000);
        assert_eq!(documents.len(), 11);
        let (mut count, mut sum) = (0, 0.0);
        for (i, document) in documents.iter().enumerate() {
            validate(document).unwrap();
            assert_eq!(document["Source"], "sqs");
            let values = document["InvokeLatency"].as_array().unwrap();
            count += values.len();
            sum += values.iter().map(|v| v.as_f64().unwrap()).sum::<f64>();
            // Counters, short series and properties are in the first document only.
            assert_eq!(document.get("RecordsInvoked").is_some(), i == 0);
            assert_eq!(document.get("Short").is_some(), i == 0);
            assert_eq!(document.get("tenants").is_some(), i == 0);
        }
        assert_eq!(count, 1050);
        assert_eq!(sum, latencies.iter().sum::<f64>());
        let single = Document::new("N", &[("Service", "s")])
            .values("InvokeLatency", "Milliseconds", &latencies[..100])
            .build_all(1);
        assert_eq!(single.len(), 1);
    }

    #[test]
    fn the_validator_catches_each_rule() {
        let good = Document::new("N", &[("Service", "s")])
            .metric("M", "Count", 1.0)
            .build(1);
        validate(&good).unwrap();
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut d = good.clone();
            edit(&mut d);
            validate(&d)
        };
        assert!(broken(&|d| d["_aws"]["Timestamp"] = json!("now")).is_err());
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")).is_err());
        assert!(
            broken(&|d| {
                d.as_object_mut().unwrap().remove("Service");
            })
            .is_err()
        );
        assert!(broken(&|d| d["M"] = json!("1")).is_err());
        assert!(broken(&|d| d["M"] = json!(vec![1; 101])).is_err());
        assert!(
            broken(&|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
                    json!([(0..31).map(|i| format!("d{i}")).collect::<Vec<_>>()])
            })
            .is_err()
        );
        assert!(
            broken(&|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(
                    (0..101)
                        .map(|i| json!({"Name": format!("m{i}")}))
                        .collect::<Vec<_>>()
                )
            })
            .is_err()
        );
        assert!(broken(&|d| d["Service"] = json!(5)).is_err());
    }
}
