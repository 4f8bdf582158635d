//! [`PerSource`]: a setting with a default and optional per-source overrides, and its syntax
//! (`<value>;<source>=<value>…`), shared by every per-source variable.

use shared::Source;

/// A setting that may differ per event source: a default plus optional per-source overrides.
///
/// Syntax: entries separated by `;`; an entry is `<value>` (the default) or `<source>=<value>`
/// with source `sqs`, `kinesis`, `dynamodb` or `eventbridge`. Example:
/// `payload:/tenantId;dynamodb=key:pk:TENANT#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerSource<T> {
    default: T,
    overrides: Vec<(Source, T)>,
}

impl<T> PerSource<T> {
    /// The same value for every source.
    pub fn all(value: T) -> Self {
        Self {
            default: value,
            overrides: Vec::new(),
        }
    }

    /// The value in force for `source`.
    pub fn get(&self, source: Source) -> &T {
        self.overrides
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, v)| v)
            .unwrap_or(&self.default)
    }

    /// Every value that some source may use.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.default).chain(self.overrides.iter().map(|(_, v)| v))
    }

    pub(super) fn parse(
        text: &str,
        default: T,
        parse: impl Fn(&str, Option<Source>) -> Result<T, String>,
    ) -> Result<Self, String> {
        let mut result = Self::all(default);
        let mut default_seen = false;
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let scoped = [
                Source::Sqs,
                Source::Kinesis,
                Source::Dynamodb,
                Source::Eventbridge,
            ]
            .into_iter()
            .find_map(|source| {
                entry
                    .strip_prefix(source.as_str())
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|value| (source, value))
            });
            match scoped {
                Some((source, value)) => {
                    if result.overrides.iter().any(|(s, _)| *s == source) {
                        return Err(format!("{} is given twice", source.as_str()));
                    }
                    let value = parse(value, Some(source))
                        .map_err(|e| format!("{}: {e}", source.as_str()))?;
                    result.overrides.push((source, value));
                }
                None => {
                    if default_seen {
                        return Err("more than one default entry".into());
                    }
                    default_seen = true;
                    result.default = parse(entry, None)?;
                }
            }
        }
        Ok(result)
    }
}
