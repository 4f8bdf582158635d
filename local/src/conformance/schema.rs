//! The contract's JSON Schemas (`schemas/v1`) inside the kit, and the judgement of one answer
//! against the `$defs` entry of `answer.schema.json` its shape must fit. The files are read when
//! the kit is built (`include_str!`), not copied: a change to them is what the next build checks.

use jsonschema::{Registry, Validator};
use serde_json::{Value, json};

/// The `$id` every schema of version 1 starts with.
const BASE: &str = "https://schemas.tenant-router.example/v1/";

/// Every schema file, as `(file name, text)`: the answer's refers to the envelope's, and the
/// others come along so that any reference between them resolves.
const FILES: [(&str, &str); 4] = [
    (
        "envelope.schema.json",
        include_str!("../../../schemas/v1/envelope.schema.json"),
    ),
    (
        "envelope-batch.schema.json",
        include_str!("../../../schemas/v1/envelope-batch.schema.json"),
    ),
    (
        "delivery.schema.json",
        include_str!("../../../schemas/v1/delivery.schema.json"),
    ),
    (
        "answer.schema.json",
        include_str!("../../../schemas/v1/answer.schema.json"),
    ),
];

/// Which of the guard's answers applies: told by what was sent and whether the invocation
/// failed, never by the body (as the router tells them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// A success for one envelope: `$defs/recordResult`.
    Record,
    /// A success for an envelope batch: `$defs/guardBatchResult`.
    Batch,
    /// A function error: `$defs/guardError`.
    Error,
}

impl Shape {
    /// The `$defs` entry of `answer.schema.json` this shape must fit.
    pub(super) fn definition(self) -> &'static str {
        match self {
            Shape::Record => "recordResult",
            Shape::Batch => "guardBatchResult",
            Shape::Error => "guardError",
        }
    }
}

/// A validator per [`Shape`].
pub(super) struct Schemas {
    record: Validator,
    batch: Validator,
    error: Validator,
}

impl Schemas {
    /// Builds the validators; an error names the schema that does not build (a `$defs` entry
    /// renamed, a reference that does not resolve).
    pub(super) fn new() -> anyhow::Result<Schemas> {
        let build =
            |shape: Shape| validator(&format!("answer.schema.json#/$defs/{}", shape.definition()));
        Ok(Schemas {
            record: build(Shape::Record)?,
            batch: build(Shape::Batch)?,
            error: build(Shape::Error)?,
        })
    }

    /// Where `answer` departs from `shape`'s schema: empty when it fits.
    pub(super) fn problems(&self, shape: Shape, answer: &Value) -> Vec<String> {
        let validator = match shape {
            Shape::Record => &self.record,
            Shape::Batch => &self.batch,
            Shape::Error => &self.error,
        };
        validator
            .iter_errors(answer)
            .map(|e| format!("{e} at {:?}", e.instance_path().to_string()))
            .collect()
    }
}

/// A validator of `reference` (`envelope.schema.json`, `answer.schema.json#/$defs/…`), with
/// every schema file registered under its `$id`.
pub(super) fn validator(reference: &str) -> anyhow::Result<Validator> {
    let mut schemas = Vec::new();
    for (name, text) in FILES {
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("schemas/v1/{name} is not JSON: {e}"))?;
        schemas.push((format!("{BASE}{name}"), schema));
    }
    let registry = Registry::new()
        .extend(schemas)
        .and_then(|r| r.prepare())
        .map_err(|e| anyhow::anyhow!("schemas/v1 do not resolve: {e}"))?;
    jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&json!({"$ref": format!("{BASE}{reference}")}))
        .map_err(|e| anyhow::anyhow!("schemas/v1/{reference}: {e}"))
}
