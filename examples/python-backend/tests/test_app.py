"""The handler as the runtime calls it: Powertools' JSON logs and EMF document, the fail-closed
exit, and the function error awslambdaric builds from a guard error."""

from __future__ import annotations

import json
import sys

import pytest
from awslambdaric import bootstrap as ric
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

import answer
import app
import idempotency_store
from conftest import FakeContext, TenantGuard, batch, envelope, keyed
from guard import EnvironmentGuard

METRICS = ("Invocations", "Records", "PayloadBytes", "EnvironmentsCreated", "RecordsProcessed", "RecordsDuplicate",
           "InvocationsRefused", "HandlerErrors", "RecordsSkipped", "ProcessingTime")


@pytest.fixture(autouse=True)
def fresh_environment(monkeypatch):
    """Each test is a new execution environment: a new guard and store, no exit for real."""
    monkeypatch.setattr(app, "guard", EnvironmentGuard("backend", idempotency_store.MemoryStore(), 3600, app.logger))
    monkeypatch.setattr(app, "_environment", {"first_invocation": True, "exit_scheduled": False})
    monkeypatch.setattr(app.todo, "_CONFIG", None)
    exits = []
    monkeypatch.setattr(app.os, "_exit", lambda status: exits.append(status))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    return exits


class CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time (pytest swaps it between test phases)."""

    def write(self, text):
        return sys.stdout.write(text)

    def flush(self):
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def logs_to_captured_stdout(monkeypatch):
    """Powertools' handler keeps the stdout it found at import; make it follow capsys."""
    monkeypatch.setattr(app.logger.registered_handler, "stream", CurrentStdout())


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def emf(capsys) -> list[dict]:
    return [line for line in lines(capsys) if "_aws" in line]


def test_one_emf_document_per_invocation_with_the_tenant_as_a_property(capsys):
    app.handler(envelope("acme", "m1"), FakeContext("acme"))
    app.handler(envelope("acme", "m1"), FakeContext("acme", "r2"))
    first, second = emf(capsys)
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TenantBackend"
    assert directive["Dimensions"] == [["Service"]]
    assert [m["Name"] for m in directive["Metrics"]] == list(METRICS)
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]}["ProcessingTime"] == "Milliseconds"
    assert first["Service"] == "backend"
    assert (first["tenant_id"], first["function_request_id"], first["correlation_id"]) == ("acme", "r1", "c-m1")
    assert (first["memory_mb"], first["architecture"] in ("x86_64", "arm64")) == (128, True)
    values = {name: first[name] for name in METRICS}
    assert values["Invocations"] == [1.0] and values["Records"] == [1.0] and values["EnvironmentsCreated"] == [1.0]
    assert values["RecordsProcessed"] == [1.0] and values["RecordsDuplicate"] == [0.0]
    assert values["PayloadBytes"] == [float(len(json.dumps(envelope("acme", "m1"), separators=(",", ":"))))]
    assert (second["EnvironmentsCreated"], second["RecordsProcessed"], second["RecordsDuplicate"]) == (
        [0.0], [0.0], [1.0])
    for document in (first, second):
        assert "tenant_id" not in sum(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"], [])


def test_batches_and_refusals_are_counted_in_records(monkeypatch, capsys):
    def handler(record, context):
        if record["id"] == "a2":
            raise RuntimeError("boom")
        return {}

    records = [keyed("a1", "g"), keyed("a2", "g"), keyed("a3", "g"), keyed("b1", "h")]
    app.guard.invoke(batch("acme", records[:1]), FakeContext("acme"), handler)  # a1 done before: a duplicate
    monkeypatch.setattr(app.todo, "handle", handler)
    out = app.handler(batch("acme", records, "lanes", "per-record"), FakeContext("acme"))
    with pytest.raises(answer.TenantMismatch):
        app.handler(batch("acme", [envelope("globex", "x")]), FakeContext("acme"))
    with pytest.raises(answer.HandlerPartialFailure):
        app.handler(batch("acme", [envelope("acme", "a2")]), FakeContext("acme"))
    assert (out["processed"], out["duplicates"], out["failed"], out["skipped"]) == (1, 1, 1, 1)
    ok, refused, partial = emf(capsys)
    assert [ok[m][0] for m in ("Records", "RecordsProcessed", "RecordsDuplicate", "HandlerErrors", "RecordsSkipped",
                               "InvocationsRefused")] == [4, 1, 1, 1, 1, 0]
    assert ok["correlation_id"] is None
    assert (refused["InvocationsRefused"], refused["RecordsProcessed"], refused["Records"]) == ([1.0], [0.0], [1.0])
    assert (partial["HandlerErrors"], partial["InvocationsRefused"]) == ([1.0], [0.0])


def test_the_namespace_is_configurable(monkeypatch, capsys):
    monkeypatch.setattr(app.metrics, "namespace", "Elsewhere")
    app.handler(envelope("acme", "m1"), FakeContext("acme"))
    assert emf(capsys)[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Elsewhere"


def test_logs_are_json_lines_with_the_tenant(capsys):
    app.handler(envelope("acme", "m1"), FakeContext("acme"))
    (processed,) = [line for line in lines(capsys) if line.get("message") == "record processed"]
    assert processed["level"] == "INFO"
    assert (processed["tenant_id"], processed["record_id"], processed["correlation_id"]) == ("acme", "m1", "c-m1")
    assert (processed["service"], processed["function_request_id"]) == ("backend", "r1")
    assert processed["cold_start"] in (True, False)
    assert processed["timestamp"].endswith("Z")


def test_a_failed_closed_environment_exits_shortly_after_answering(fresh_environment, capsys):
    exits = fresh_environment
    app.handler(envelope("acme", "m1"), FakeContext("acme"))
    with pytest.raises(answer.TenantEnvironmentFailedClosed):
        app.handler(envelope("globex", "m1"), FakeContext("globex"))
    with pytest.raises(answer.TenantEnvironmentFailedClosed):
        app.handler(envelope("acme", "m2"), FakeContext("acme"))
    app._environment["exit_timer"].join(timeout=10)
    assert exits == [app.FAILED_CLOSED_EXIT_STATUS], "once, however many refusals follow"
    output = lines(capsys)
    # Not a refusal of the record, but the guard refused the invocation: counted as the Rust guard does.
    refused = [(d["InvocationsRefused"], d["HandlerErrors"]) for d in output if "_aws" in d]
    assert refused == [([0.0], [0.0]), ([1.0], [0.0]), ([1.0], [0.0])]
    security = [line for line in output if line.get("security_event")]
    assert security[0]["security_event"] == "environment-tenant-mismatch"
    assert (security[0]["tenant_id"], security[0]["offered_tenant_id"]) == ("acme", "globex")


class RecordingRuntimeClient:
    """The part of awslambdaric's runtime client that ``handle_event_request`` uses."""

    marshaller = LambdaMarshaller()

    def __init__(self):
        self.results, self.errors = [], []

    def post_invocation_result(self, invoke_id, result, content_type="application/json", invocation_id=None):
        self.results.append(json.loads(result))

    def post_invocation_error(self, invoke_id, error, xray_fault, invocation_id=None):
        self.errors.append(json.loads(error))


def run_through_awslambdaric(event, tenant: str | None):
    """One invocation the way awslambdaric's loop runs it (``bootstrap.handle_event_request``)."""
    client = RecordingRuntimeClient()
    ric.handle_event_request(
        client, app.handler, "req-1", json.dumps(event).encode(), "application/json", None, None,
        "arn:aws:lambda:us-east-1:123456789012:function:backend", 4_102_444_800_000, tenant,
        ric.StandardLogSink(),
    )
    return client


@pytest.mark.parametrize(
    ("event", "tenant", "expected"),
    [
        (envelope("acme"), None, "Tenant.Missing"),
        (envelope("acme"), "a#b", "Tenant.Invalid"),
        (envelope("globex"), "acme", "Tenant.Mismatch"),
        ({"not": "an envelope"}, "acme", "Envelope.Invalid"),
        (envelope("acme", version=2), "acme", "Envelope.Invalid"),
        (batch("acme", [envelope("acme", idempotencyKey="")]), "acme", "Envelope.Invalid"),
        (envelope("acme", payload=[1]), "acme", "Handler.Error"),
        (batch("acme", [envelope("acme", payload=5)]), "acme", "Handler.PartialFailure"),
    ],
)
def test_awslambdaric_reports_the_guards_error_types(event, tenant, expected, schemas):
    client = run_through_awslambdaric(event, tenant)
    (error,) = client.errors
    assert error["errorType"] == expected
    assert answer.is_guard_refusal(expected) == expected.startswith(("Tenant.", "Envelope."))
    assert not schemas.validator("answer", "/$defs/guardError").is_valid({**error, "errorType": "Other"})
    schemas.validator("answer", "/$defs/guardError").validate(error)
    schemas.validator("answer").validate(error)


def test_awslambdaric_hands_the_tenant_to_the_handler_and_returns_the_answer(schemas):
    client = run_through_awslambdaric(envelope("acme", payload={"item": {"title": "Ship it"}}), "acme")
    (result,) = client.results
    assert result["tenantId"] == "acme" and result["result"]["item"]["tenantId"] == "acme"
    schemas.validator("answer", "/$defs/recordResult").validate(result)


def test_awslambdaric_reports_unavailable_credentials_as_transient_and_nothing_runs(monkeypatch, capsys):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app, "guard", TenantGuard(log=app.logger))
    ran = []
    monkeypatch.setattr(app.todo, "handle", lambda record, context: ran.append(record["id"]))
    client = run_through_awslambdaric(batch("acme", [envelope("acme", "m1"), envelope("acme", "m2")]), "acme")
    (error,) = client.errors
    assert error["errorType"] == "Tenant.CredentialsUnavailable" and not answer.is_guard_refusal(error["errorType"])
    assert ran == []
    (document,) = emf(capsys)
    # Counted as the Rust guard counts an unavailable store: one handler error, nothing refused.
    assert [document[m][0] for m in ("Records", "RecordsProcessed", "HandlerErrors", "InvocationsRefused")] == [
        2, 0, 1, 0]
