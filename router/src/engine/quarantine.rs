//! Rejected records: written to the quarantine queue with their reason and the original record
//! (then they count as handled), or reported for redelivery when no queue is configured or the
//! write fails. Nothing rejected is ever dropped.

use serde::Serialize;
use serde_json::value::RawValue;
use shared::Source;

use super::context::RouteContext;
use crate::backend::Backend;
use crate::outcome::{Outcome, Rejection};
use crate::record::RecordMeta;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuarantineMessage<'a> {
    reason: &'a str,
    detail: &'a str,
    source: Source,
    record_id: &'a str,
    tenant_id: Option<&'a str>,
    record: &'a RawValue,
}

/// Quarantines a rejected record; without a queue, or if writing fails, it is reported instead.
pub async fn reject<B: Backend>(
    meta: &RecordMeta<'_>,
    rejection: Rejection,
    context: &RouteContext<'_, B>,
) -> Outcome {
    let Rejection { reason, detail } = rejection;
    if !context.backend.has_quarantine() {
        return Outcome::Rejected {
            reason,
            detail,
            quarantined: false,
        };
    }
    let body = serde_json::to_string(&QuarantineMessage {
        reason,
        detail: &detail,
        source: context.source,
        record_id: &meta.id,
        tenant_id: meta.claimed_tenant.get().map(String::as_str),
        record: meta.raw,
    })
    .expect("the quarantine message always serialises");
    let sent = tokio::time::timeout(
        context.info.deadline.remaining(),
        context.backend.quarantine(body, reason),
    )
    .await
    .unwrap_or_else(|_| Err("no answer before the invocation deadline".into()));
    match sent {
        Ok(()) => Outcome::Rejected {
            reason,
            detail,
            quarantined: true,
        },
        Err(error) => Outcome::Rejected {
            reason,
            detail: format!("{detail}; quarantine failed: {error}"),
            quarantined: false,
        },
    }
}
