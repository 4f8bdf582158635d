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
        }
    }

    /// Adds a metric with one value. `unit` is a CloudWatch unit (`Count`, `Milliseconds`, …).
    pub fn metric(mut self, name: &str, unit: &'static str, value: f64) -> Self {
        self.metrics.push((name.to_owned(), unit));
        self.members.insert(name.to_owned(), json!(value));
        self
    }

    /// Adds a metric with several values (at most [`MAX_VALUES`]: more are reduced to that many
    /// evenly spaced quantiles of the sorted values). Nothing is added for no values.
    pub fn values(mut self, name: &str, unit: &'static str, values: &[f64]) -> Self {
        if values.is_empty() {
            return self;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let kept: Vec<f64> = if sorted.len() <= MAX_VALUES {
            sorted
        } else {
            (0..MAX_VALUES)
                .map(|i| sorted[i * (sorted.len() - 1) / (MAX_VALUES - 1)])
                .collect()
        };
        self.metrics.push((name.to_owned(), unit));
        self.members.insert(name.to_owned(), json!(kept));
        self
    }

    /// Adds a property (metadata: searchable in the logs, not a metric).
    pub fn property(mut self, name: &str, value: Value) -> Self {
        self.members.insert(name.to_owned(), value);
        self
    }

    /// The document, stamped with `timestamp_ms`.
    pub fn build(self, timestamp_ms: i64) -> Value {
        let mut document = self.members;
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": metrics,
                }]
            }),
        );
        Value::Object(document)
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

    #[test]
    fn built_documents_are_valid() {
        let latencies: Vec<f64> = (0..1000).map(f64::from).collect();
        let document = Document::new("TenantRouter", &[("Service", "router"), ("Source", "sqs")])
            .metric("RecordsInvoked", "Count", 3.0)
            .values("InvokeLatency", "Milliseconds", &latencies)
            .property("tenants", json!({"acme": {"invoked": 3}}))
            .build(1_767_225_600_000);
        validate(&document).unwrap();
        assert_eq!(document["InvokeLatency"].as_array().unwrap().len(), 100);
        assert_eq!(document["InvokeLatency"][0], 0.0);
        assert_eq!(document["InvokeLatency"][99], 999.0);
        assert_eq!(document["Source"], "sqs");
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
