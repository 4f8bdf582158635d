//! The invocation type (`ROUTER_INVOCATION_TYPE`): `event` (async) or `request-response` (sync),
//! per source with the usual per-source syntax, plus the key `sqs-fifo` for FIFO queues, which
//! overrides `sqs` for them (a FIFO queue is where order at the backend matters most, while a
//! standard queue on the same router may stay async).

use shared::Source;

use super::error::ConfigError;
use super::per_source::PerSource;
use super::values::Lookup;

/// How the backend is invoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationType {
    /// `InvocationType=Event`: Lambda queues the event and answers 202. Order holds only while
    /// the router dispatches: Lambda's async queue may reorder and run records concurrently.
    Event,
    /// `InvocationType=RequestResponse`: the Invoke answers when the backend is done, and its
    /// answer decides each record's outcome; order holds at the backend.
    RequestResponse,
}

impl InvocationType {
    /// Largest Invoke payload of this type (1 MB async, 6 MB sync).
    pub fn payload_limit(self) -> usize {
        match self {
            InvocationType::Event => shared::ASYNC_PAYLOAD_LIMIT,
            InvocationType::RequestResponse => shared::SYNC_PAYLOAD_LIMIT,
        }
    }

    /// `event` or `request-response`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationType::Event => "event",
            InvocationType::RequestResponse => "request-response",
        }
    }

    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "event" => Ok(InvocationType::Event),
            "request-response" => Ok(InvocationType::RequestResponse),
            other => Err(format!(
                "expected \"event\" or \"request-response\", got {other:?}"
            )),
        }
    }
}

/// The invocation type of every source, and of FIFO queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationTypes {
    per_source: PerSource<InvocationType>,
    fifo: Option<InvocationType>,
}

impl InvocationTypes {
    /// The type of a batch from `source`; `fifo` for an SQS FIFO queue.
    pub fn for_batch(&self, source: Source, fifo: bool) -> InvocationType {
        match (source, fifo, self.fifo) {
            (Source::Sqs, true, Some(fifo)) => fifo,
            _ => *self.per_source.get(source),
        }
    }

    /// Every type some batch may use.
    pub fn values(&self) -> impl Iterator<Item = InvocationType> + '_ {
        self.per_source.values().copied().chain(self.fifo)
    }
}

/// Reads `ROUTER_INVOCATION_TYPE` (default `event` for every source).
pub fn read(get: &impl Lookup) -> Result<InvocationTypes, ConfigError> {
    let problem = |problem: String| ConfigError {
        variable: "ROUTER_INVOCATION_TYPE",
        problem,
    };
    let Some(text) = get("ROUTER_INVOCATION_TYPE") else {
        return Ok(InvocationTypes {
            per_source: PerSource::all(InvocationType::Event),
            fifo: None,
        });
    };
    let mut fifo = None;
    let mut rest = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.strip_prefix("sqs-fifo=") {
            Some(value) => {
                if fifo.is_some() {
                    return Err(problem("sqs-fifo is given twice".into()));
                }
                fifo = Some(
                    InvocationType::parse(value).map_err(|e| problem(format!("sqs-fifo: {e}")))?,
                );
            }
            None => rest.push(entry),
        }
    }
    let per_source = PerSource::parse(&rest.join(";"), InvocationType::Event, |value, _| {
        InvocationType::parse(value)
    })
    .map_err(problem)?;
    Ok(InvocationTypes { per_source, fifo })
}
