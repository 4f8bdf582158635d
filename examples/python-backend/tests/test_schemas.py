"""The JSON Schemas of ``schemas/v1``: well formed, their example files valid, what the Rust
reader refuses refused, and the guard's own answers and errors valid against the answer schema."""

from __future__ import annotations

import json

import pytest

import answer
import envelope as reader
from conftest import SCHEMAS, FakeContext, batch, envelope, keyed

EXAMPLES = sorted((SCHEMAS / "examples").glob("*.json"))
#: Which `$defs` entry of answer.schema.json each kind of answer example is.
ANSWER_KINDS = {"record": "/$defs/recordResult", "batch": "/$defs/guardBatchResult", "error": "/$defs/guardError"}


def test_every_schema_is_a_valid_draft_2020_12_schema_named_by_its_id(schemas):
    from jsonschema import Draft202012Validator

    assert sorted(schemas.by_name) == ["answer", "delivery", "envelope", "envelope-batch"]
    for name, document in schemas.by_name.items():
        Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"].endswith(f"/v1/{name}.schema.json")
        assert document.get("title") and document.get("description")
    for name in ("envelope", "envelope-batch"):
        assert schemas.by_name[name]["properties"]["version"]["const"] == 1
        # Unknown members are allowed, since the Rust reader ignores them.
        assert "additionalProperties" not in schemas.by_name[name]


def test_there_are_examples_of_every_shape():
    kinds = {path.name.split("--")[0] for path in EXAMPLES}
    assert kinds == {"envelope", "envelope-batch", "answer"}
    answers = {path.name.split("--")[1].split("-")[0] for path in EXAMPLES if path.name.startswith("answer--")}
    assert answers == set(ANSWER_KINDS)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_each_example_is_valid(path, schemas):
    instance = json.loads(path.read_text())
    name, case = path.name.removesuffix(".json").split("--")
    schemas.validator(name).validate(instance)
    if name == "answer":
        schemas.validator("answer", ANSWER_KINDS[case.split("-")[0]]).validate(instance)
    else:
        schemas.validator("delivery").validate(instance)
        # What the schema accepts, the guard's reader accepts.
        assert reader.read_delivery(instance)[0] == ("batch" if name == "envelope-batch" else "one")


def without(value: dict, member: str) -> dict:
    return {k: v for k, v in value.items() if k != member}


#: Payloads the Rust reader (and so the guard) refuses: each must be refused by the schema too.
REFUSED = [
    ("not an object", []),
    ("no version", without(envelope(), "version")),
    ("version as text", envelope(version="1")),
    ("version not a whole number", envelope(version=1.5)),
    ("negative version", envelope(version=-1)),
    ("boolean version", envelope(version=True)),
    ("version 2", envelope(version=2)),
    ("version 0", envelope(version=0)),
    ("empty id", envelope(id="")),
    ("empty idempotencyKey", envelope(idempotencyKey="")),
    *[(f"no {m}", without(envelope(), m)) for m in
      ("tenantId", "source", "eventSourceArn", "id", "idempotencyKey", "arrivedAt", "correlationId", "payload")],
    ("unknown source", envelope(source="s3")),
    ("numeric id", envelope(id=7)),
    ("tenant with #", envelope(tenantId="acme#1")),
    ("tenant with a trailing space", envelope(tenantId="acme ")),
    ("tenant with a leading space", envelope(tenantId=" acme")),
    ("empty tenant", envelope(tenantId="")),
    ("257-character tenant", envelope(tenantId="a" * 257)),
    ("non-ASCII tenant", envelope(tenantId="acmé")),
    ("numeric ordering key", envelope(orderingKey=5)),
    ("null attributes", envelope(attributes=None)),
    ("attributes as a list", envelope(attributes=[])),
    ("records not an array", {"version": 1, "tenantId": "acme", "records": {}}),
    ("batch without version", {"tenantId": "acme", "records": []}),
    ("batch without tenant", {"version": 1, "records": []}),
    ("unknown ordering", batch("acme", [], ordering="fifo")),
    ("unknown answer", batch("acme", [], answer="all")),
    ("a bad record in a batch", batch("acme", [envelope(), without(envelope(), "payload")])),
    ("a bad tenant in a batch's record", batch("acme", [envelope(tenantId="a\nb")])),
    ("batch of version 2", batch("acme", [envelope()]) | {"version": 2}),
    ("a record of version 2 in a batch", batch("acme", [envelope(), envelope(version=2)])),
    ("a record with an empty id in a batch", batch("acme", [envelope(), envelope(id="")])),
    ("a record with an empty key in a batch", batch("acme", [envelope(idempotencyKey="")])),
]


@pytest.mark.parametrize(("case", "payload"), REFUSED, ids=[c for c, _ in REFUSED])
def test_what_the_reader_refuses_the_schema_refuses(case, payload, schemas):
    assert not schemas.validator("delivery").is_valid(payload)
    with pytest.raises(reader.NotAnEnvelope):
        reader.read_delivery(payload)


ACCEPTED = [
    ("unknown members", envelope(more={"x": 1})),
    ("null ordering key", envelope(orderingKey=None)),
    ("empty attributes", envelope(attributes={})),
    ("null payload", envelope(payload=None)),
    ("every allowed tenant character", envelope(tenantId="azAZ09._:/=+-@ x")),
    ("256-character tenant", envelope(tenantId="a" * 256)),
    ("records null: an envelope", envelope(records=None)),
    ("empty batch", batch("acme", [])),
    ("null ordering and answer", batch("acme", [keyed("1", "k")]) | {"ordering": None, "answer": None}),
]


@pytest.mark.parametrize(("case", "payload"), ACCEPTED, ids=[c for c, _ in ACCEPTED])
def test_what_the_reader_accepts_the_schema_accepts(case, payload, schemas):
    schemas.validator("delivery").validate(payload)
    reader.read_delivery(payload)


def test_arrived_at_is_a_date_time_when_formats_are_asserted(schemas):
    assert not schemas.validator("envelope").is_valid(envelope(arrivedAt="yesterday"))


def record_answers(guard):
    """Every answer shape the guard gives, from real runs."""
    def handler(record, context):
        if record["id"].startswith("fail"):
            raise RuntimeError("boom")
        return {"echo": record["payload"]}

    context = FakeContext("acme")
    yield "recordResult", guard.invoke(envelope("acme", "m1"), context, handler)
    yield "recordResult", guard.invoke(envelope("acme", "m1"), context, handler)  # a duplicate
    records = [keyed("a1", "g"), keyed("fail-a2", "g"), keyed("a3", "g"), keyed("m1", "h"), envelope("acme", "u")]
    yield "guardBatchResult", guard.invoke(batch("acme", records, "lanes", "per-record"), context, handler)
    yield "guardBatchResult", guard.invoke(batch("acme", records[-1:]), context, handler)


def test_the_guards_answers_are_valid(guard, schemas):
    answers = list(record_answers(guard))
    assert answers[1][1]["duplicate"] is True
    assert answers[2][1]["records"] == [
        {"id": "a1", "status": "processed"}, {"id": "fail-a2", "status": "failed", "error": "boom"},
        {"id": "a3", "status": "skipped", "error": "not run: record fail-a2 it is ordered after failed"},
        {"id": "m1", "status": "processed", "duplicate": True}, {"id": "u", "status": "processed"}]
    for pointer, value in answers:
        schemas.validator("answer", f"/$defs/{pointer}").validate(value)
        schemas.validator("answer").validate(value)
    # The router's reading (`batchResult`) is weaker than what the guard writes.
    minimal = {"records": [{"id": "m1", "status": "processed"}, {"id": "m2", "status": "failed"}]}
    schemas.validator("answer", "/$defs/batchResult").validate(minimal)
    assert not schemas.validator("answer", "/$defs/guardBatchResult").is_valid(minimal)


def guard_batch(*records: dict) -> dict:
    return {"tenantId": "acme", "records": list(records), "processed": 0, "duplicates": 0, "failed": 0, "skipped": 0}


COMPACT = [
    ("processed", {"id": "m1", "status": "processed"}),
    ("duplicate", {"id": "m1", "status": "processed", "duplicate": True}),
    ("failed", {"id": "m1", "status": "failed", "error": "boom"}),
    ("skipped", {"id": "m1", "status": "skipped", "error": "not run"}),
    ("a 256-character error", {"id": "m1", "status": "failed", "error": "😀" * 256}),
]
NOT_COMPACT = [
    ("a full record result", {"tenantId": "acme", "id": "m1", "idempotencyKey": "arn:q#m1", "correlationId": "c-m1",
                              "source": "sqs", "status": "processed", "result": {"big": "x"}}),
    ("the handler's result", {"id": "m1", "status": "processed", "result": None}),
    ("a 257-character error", {"id": "m1", "status": "failed", "error": "x" * 257}),
    ("failed without an error", {"id": "m1", "status": "failed"}),
    ("skipped with a null error", {"id": "m1", "status": "skipped", "error": None}),
    ("processed with an error", {"id": "m1", "status": "processed", "error": "boom"}),
    ("a failed duplicate", {"id": "m1", "status": "failed", "error": "boom", "duplicate": True}),
    ("duplicate false", {"id": "m1", "status": "processed", "duplicate": False}),
    ("no status", {"id": "m1", "duplicate": True}),
]


@pytest.mark.parametrize(("case", "result"), COMPACT, ids=[c for c, _ in COMPACT])
def test_a_batch_answer_holds_compact_results(case, result, schemas):
    schemas.validator("answer", "/$defs/guardBatchRecordResult").validate(result)
    schemas.validator("answer", "/$defs/guardBatchResult").validate(guard_batch(result))
    # What the router reads, too.
    schemas.validator("answer", "/$defs/batchResult").validate(guard_batch(result))


@pytest.mark.parametrize(("case", "result"), NOT_COMPACT, ids=[c for c, _ in NOT_COMPACT])
def test_a_batch_answer_holds_nothing_else(case, result, schemas):
    assert not schemas.validator("answer", "/$defs/guardBatchRecordResult").is_valid(result)
    assert not schemas.validator("answer", "/$defs/guardBatchResult").is_valid(guard_batch(result))


def test_the_error_types_are_those_of_the_schema_and_of_the_rust_guard(schemas):
    every = [answer.TenantMissing, answer.TenantInvalid, answer.TenantEnvironmentFailedClosed, answer.TenantMismatch,
             answer.EnvelopeInvalid, answer.HandlerError, answer.IdempotencyInProgress,
             answer.IdempotencyStoreUnavailable, answer.HandlerPartialFailure]
    names = [cls.__name__ for cls in every]
    assert names == ["Tenant.Missing", "Tenant.Invalid", "Tenant.EnvironmentFailedClosed", "Tenant.Mismatch",
                     "Envelope.Invalid", "Handler.Error", "Idempotency.InProgress", "Idempotency.StoreUnavailable",
                     "Handler.PartialFailure"]
    refusals = set(schemas.by_name["answer"]["$defs"]["guardRefusalType"]["enum"])
    assert refusals == answer.GUARD_REFUSALS == {c.__name__ for c in every if issubclass(c, answer.Refusal)}
    assert refusals == {"Tenant.Missing", "Tenant.Invalid", "Tenant.Mismatch", "Envelope.Invalid"}
    # Raised by the guard, but transient: the environment's fault, not the record's.
    refusal = schemas.validator("answer", "/$defs/guardRefusalType")
    assert not refusal.is_valid("Tenant.EnvironmentFailedClosed")
    schemas.validator("answer", "/$defs/guardErrorType").validate("Tenant.EnvironmentFailedClosed")
    guard_error = schemas.validator("answer", "/$defs/guardError")
    for name in names:
        guard_error.validate({"errorType": name, "errorMessage": "m"})
    assert not guard_error.is_valid({"errorType": "Sandbox.Timedout", "errorMessage": "m"})
    schemas.validator("answer", "/$defs/functionError").validate({"errorType": "Sandbox.Timedout", "errorMessage": ""})


def test_unavailable_credentials_are_a_transient_guard_error_of_the_schema(schemas):
    assert answer.TenantCredentialsUnavailable.__name__ == "Tenant.CredentialsUnavailable"
    assert not issubclass(answer.TenantCredentialsUnavailable, answer.Refusal)
    assert not schemas.validator("answer", "/$defs/guardRefusalType").is_valid("Tenant.CredentialsUnavailable")
    schemas.validator("answer", "/$defs/guardError").validate(
        {"errorType": "Tenant.CredentialsUnavailable", "errorMessage": "m"})
