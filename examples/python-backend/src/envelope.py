"""Reads an Invoke payload as the Rust guard does (``shared::envelope::Delivery::read``): one
envelope, or an envelope batch (an object whose ``records`` is not null). Checks what serde checks
there (member types, the tenant ids (Lambda's pattern), ``source``, ``ordering`` and ``answer``)
and what the guard checks beyond it: the envelope, the batch and every record of it are of version
1, and every record has a non-empty ``id`` and ``idempotencyKey`` (records without one would all
share one idempotency item). Unknown members are ignored. The shapes are
``schemas/v1/*.schema.json``.
"""

from __future__ import annotations

import re
from typing import Any

SOURCES = ("sqs", "kinesis", "dynamodb", "eventbridge")
ORDERINGS = (None, "lanes", "stream")
ANSWERS = (None, "per-record")
#: The one envelope version this guard reads (``shared::ENVELOPE_VERSION``).
ENVELOPE_VERSION = 1
_TEXT_FIELDS = ("eventSourceArn", "id", "idempotencyKey", "arrivedAt", "correlationId")
_TENANT_CHARACTERS = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]*")


class NotAnEnvelope(ValueError):
    """Why a payload is not an envelope or envelope batch."""


def tenant_id_problem(value: Any) -> str | None:
    """Why ``value`` is not a tenant id Lambda accepts (``shared::TenantId::parse``), or None."""
    if not isinstance(value, str):
        return "tenant id is not a string"
    if value == "":
        return "tenant id is empty"
    bad = _TENANT_CHARACTERS.match(value).end()
    if bad < len(value):
        return f"tenant id has a forbidden character {value[bad]!r} at position {bad}"
    if len(value) > 256:
        return f"tenant id is {len(value)} characters long, the limit is 256"
    if value.startswith(" ") or value.endswith(" "):
        return "tenant id starts or ends with a space, which HTTP drops from the X-Amz-Tenant-Id header"
    return None


def _version_and_tenant(value: dict, what: str) -> None:
    version = value.get("version")
    if "version" not in value:
        raise NotAnEnvelope(f"{what}: missing field `version`")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= 0xFFFF_FFFF:
        raise NotAnEnvelope(f"{what}: `version` is not an unsigned 32-bit integer")
    if version != ENVELOPE_VERSION:
        raise NotAnEnvelope(f"{what} is of version {version}; this guard reads version {ENVELOPE_VERSION}")
    if "tenantId" not in value:
        raise NotAnEnvelope(f"{what}: missing field `tenantId`")
    problem = tenant_id_problem(value["tenantId"])
    if problem:
        raise NotAnEnvelope(f"{what}: `tenantId`: {problem}")


def check_envelope(value: Any, what: str = "envelope") -> dict:
    """``value`` if it is an envelope; raises :class:`NotAnEnvelope` otherwise."""
    if not isinstance(value, dict):
        raise NotAnEnvelope(f"{what} is not a JSON object")
    _version_and_tenant(value, what)
    if value.get("source") not in SOURCES:
        raise NotAnEnvelope(f"{what}: `source` is not one of {', '.join(SOURCES)}")
    for name in _TEXT_FIELDS:
        if not isinstance(value.get(name), str):
            raise NotAnEnvelope(f"{what}: `{name}` is missing or not a string")
    if value["id"] == "":
        raise NotAnEnvelope(f"{what} has an empty id")
    if value["idempotencyKey"] == "":
        raise NotAnEnvelope(f"{what} (id {value['id']!r}) has an empty idempotencyKey")
    if not isinstance(value.get("orderingKey"), (str, type(None))):
        raise NotAnEnvelope(f"{what}: `orderingKey` is not a string")
    if not isinstance(value.get("attributes", {}), dict):
        raise NotAnEnvelope(f"{what}: `attributes` is not an object")
    if "payload" not in value:
        raise NotAnEnvelope(f"{what}: missing field `payload`")
    return value


def read_delivery(event: Any) -> tuple[str, dict]:
    """``("one", envelope)`` or ``("batch", batch)``; raises :class:`NotAnEnvelope`."""
    if isinstance(event, dict) and event.get("records") is not None:
        _version_and_tenant(event, "envelope batch")
        if event.get("ordering") not in ORDERINGS:
            raise NotAnEnvelope("envelope batch: `ordering` is not lanes or stream")
        if event.get("answer") not in ANSWERS:
            raise NotAnEnvelope("envelope batch: `answer` is not per-record")
        if not isinstance(event["records"], list):
            raise NotAnEnvelope("envelope batch: `records` is not an array")
        for index, record in enumerate(event["records"]):
            check_envelope(record, f"record {index}")
        return "batch", event
    return "one", check_envelope(event)
