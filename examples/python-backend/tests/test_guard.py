"""The guard's rules, case by case as ``shared/src/function.rs`` tests them, with a fake context."""

from __future__ import annotations

import logging
import time

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

import answer
import idempotency_store
from conftest import FakeContext, batch, envelope, keyed, statuses
from guard import EnvironmentGuard


def echo(record, context):
    return {"seenTenant": context.tenant_id, "payload": record["payload"]}


def error_type(excinfo) -> str:
    """The ``errorType`` awslambdaric reports for the raised exception: its class name."""
    return type(excinfo.value).__name__


def test_processes_its_own_tenant(guard):
    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    assert out["status"] == "processed"
    assert out["tenantId"] == "acme"
    assert out["result"]["seenTenant"] == "acme"
    assert {k: out[k] for k in ("id", "idempotencyKey", "correlationId", "source")} == {
        "id": "m1", "idempotencyKey": "arn:q#m1", "correlationId": "c-m1", "source": "sqs"}
    assert "duplicate" not in out
    assert guard.pinned == "acme"


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [(None, "Tenant.Missing"), ("a#b", "Tenant.Invalid"), ("", "Tenant.Invalid"), ("acme ", "Tenant.Invalid"),
     ("a" * 257, "Tenant.Invalid")],
)
def test_refuses_without_a_tenant_and_with_an_invalid_one(guard, tenant, expected):
    with pytest.raises(answer.Refusal) as excinfo:
        guard.invoke(envelope("acme", "m"), FakeContext(tenant), echo)
    assert error_type(excinfo) == expected
    assert guard.pinned is None


def test_refuses_an_envelope_for_another_tenant_without_running_the_handler(guard, caplog):
    ran = []
    with caplog.at_level(logging.ERROR), pytest.raises(answer.TenantMismatch) as excinfo:
        guard.invoke(envelope("Acme", "m"), FakeContext("acme"), lambda r, c: ran.append(r))
    assert error_type(excinfo) == "Tenant.Mismatch"
    assert str(excinfo.value) == "the envelope's tenant does not match the invocation's tenant"
    assert ran == []
    (event,) = [r for r in caplog.records if getattr(r, "security_event", None)]
    assert event.security_event == "envelope-tenant-mismatch"
    assert (event.tenant_id, event.envelope_tenant_id, event.record_id) == ("acme", "Acme", "m")


def test_a_second_tenant_makes_the_environment_fail_closed(guard, caplog):
    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    with caplog.at_level(logging.ERROR), pytest.raises(answer.TenantEnvironmentFailedClosed) as excinfo:
        guard.invoke(envelope("globex", "m2"), FakeContext("globex"), echo)
    assert error_type(excinfo) == "Tenant.EnvironmentFailedClosed"
    assert any(getattr(r, "security_event", None) == "environment-tenant-mismatch" for r in caplog.records)
    # From now on it serves nobody, not even its first tenant.
    with pytest.raises(answer.TenantEnvironmentFailedClosed) as excinfo:
        guard.invoke(envelope("acme", "m3"), FakeContext("acme"), echo)
    assert error_type(excinfo) == "Tenant.EnvironmentFailedClosed"
    assert guard.failed_closed


def test_a_failed_closed_environment_is_not_a_refusal_of_the_record(guard):
    # The environment's fault: the router reports the record for redelivery (another, healthy
    # environment then runs it) instead of quarantining it.
    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    with pytest.raises(answer.GuardError) as excinfo:
        guard.invoke(envelope("globex", "m2"), FakeContext("globex"), echo)
    assert not isinstance(excinfo.value, answer.Refusal)
    assert not answer.is_guard_refusal(error_type(excinfo))
    assert answer.GUARD_REFUSALS == {"Tenant.Missing", "Tenant.Invalid", "Tenant.Mismatch", "Envelope.Invalid"}


def test_duplicates_are_recognised_and_not_processed_again(guard):
    runs = []

    def handler(record, context):
        runs.append(record["id"])
        return {"n": 1}

    first = guard.invoke(envelope("acme", "m1"), FakeContext("acme", "r1"), handler)
    second = guard.invoke(envelope("acme", "m1"), FakeContext("acme", "r2"), handler)
    assert runs == ["m1"]
    assert "duplicate" not in first
    assert second["duplicate"] is True
    assert second["result"] == first["result"]
    assert {k: v for k, v in second.items() if k != "duplicate"} == first


def test_a_handler_error_is_a_function_error_and_its_retry_runs(guard):
    def boom(record, context):
        raise RuntimeError("boom")

    with pytest.raises(answer.HandlerError) as excinfo:
        guard.invoke(envelope("acme", "m"), FakeContext("acme"), boom)
    assert error_type(excinfo) == "Handler.Error"
    assert str(excinfo.value) == "tenant handler failed: boom"
    # The claim was released: a retry runs the handler.
    assert guard.invoke(envelope("acme", "m"), FakeContext("acme"), echo)["status"] == "processed"


def test_an_invalid_envelope_is_refused_naming_the_record(guard):
    cases = [
        (envelope(version=2), "envelope is of version 2; this guard reads version 1"),
        (batch("acme", []) | {"version": 3}, "envelope batch is of version 3; this guard reads version 1"),
        (batch("acme", [envelope(), envelope(id="")]), "record 1 has an empty id"),
        (batch("acme", [envelope(idempotencyKey="")]), "record 0 (id 'm1') has an empty idempotencyKey"),
    ]
    for payload, why in cases:
        with pytest.raises(answer.EnvelopeInvalid) as excinfo:
            guard.invoke(payload, FakeContext("acme"), echo)
        assert str(excinfo.value) == f"the payload is not a valid envelope: {why}"


@pytest.mark.parametrize(
    "payload",
    [
        [], "text", None, {}, envelope(version=True), envelope(version=-1), envelope(version=1.5),
        envelope(version=2**32), envelope(source="s3"), envelope(id=5), envelope(tenantId="a#b"),
        envelope(orderingKey=3), envelope(attributes=None), envelope(attributes=[]),
        {k: v for k, v in envelope().items() if k != "payload"},
        {k: v for k, v in envelope().items() if k != "correlationId"},
        batch("acme", [envelope(), {"version": 1}]), batch("acme", [envelope(tenantId="a#b")]),
        {"version": 1, "tenantId": "acme", "records": {}}, batch("acme", [], ordering="fifo"),
        batch("acme", [], answer="all"), {"tenantId": "acme", "records": []},
        # Another version, an empty id or key: alone, or as one record of a batch (refused whole).
        envelope(version=2), envelope(version=0), envelope(version=7), envelope(id=""),
        envelope(idempotencyKey=""), envelope(id="", idempotencyKey="arn:q#"),
        batch("acme", []) | {"version": 2}, batch("acme", [envelope(), envelope("acme", "m2", version=2)]),
        batch("acme", [envelope(), envelope("acme", "")]), batch("acme", [envelope(), envelope(idempotencyKey="")]),
    ],
)
def test_anything_but_an_envelope_or_batch_is_refused(guard, payload):
    ran = []
    with pytest.raises(answer.Refusal) as excinfo:
        guard.invoke(payload, FakeContext("acme"), lambda r, c: ran.append(r))
    assert error_type(excinfo) == "Envelope.Invalid"
    assert str(excinfo.value).startswith("the payload is not a valid envelope: ")
    assert ran == []


def test_what_the_rust_reader_accepts_is_accepted(guard):
    # Unknown members, null optional members, any payload.
    for payload in [envelope(extra={"a": 1}), envelope(orderingKey=None), envelope(payload=None),
                    envelope(id=" ", idempotencyKey="k")]:
        assert guard.invoke(payload, FakeContext("acme"), echo)["status"] == "processed"
    out = guard.invoke(batch("acme", [], ordering=None) | {"answer": None, "more": 1}, FakeContext("acme"), echo)
    assert out == {"tenantId": "acme", "records": [], "processed": 0, "duplicates": 0, "failed": 0, "skipped": 0}


def test_a_batch_runs_the_handler_once_per_record_in_order(guard):
    seen = []

    def handler(record, context):
        seen.append(record["id"])
        return {"ok": True}

    out = guard.invoke(batch("acme", [envelope("acme", i) for i in ("m3", "m1", "m2")]), FakeContext("acme"), handler)
    assert seen == ["m3", "m1", "m2"]
    assert (out["tenantId"], out["processed"], out["duplicates"], out["failed"], out["skipped"]) == ("acme", 3, 0, 0, 0)
    assert out["records"] == [{"id": "m3", "status": "processed"}, {"id": "m1", "status": "processed"},
                              {"id": "m2", "status": "processed"}]


def test_a_batch_answer_is_compact_whatever_the_handler_returns(guard):
    # Lambda's 6 MB response limit: the handler's result stays out of a batch answer, and an error
    # is cut to 256 characters, so the answer's size is bounded by the ids the router sent.
    def handler(record, context):
        if record["id"].startswith("fail"):
            raise RuntimeError(record["payload"])
        return {"blob": "x" * 1_000_000}

    guard.invoke(envelope("acme", "seen"), FakeContext("acme"), handler)
    records = [envelope("acme", "seen"), envelope("acme", "new"), envelope("acme", "fail-long", payload="é" * 300),
               envelope("acme", "fail-256", payload="e" * 256), keyed("k1", "g"), keyed("fail-k", "g"),
               keyed("k2", "g")]
    out = guard.invoke(batch("acme", records, "lanes", "per-record"), FakeContext("acme"), handler)
    assert out["records"] == [
        {"id": "seen", "status": "processed", "duplicate": True},
        {"id": "new", "status": "processed"},
        {"id": "fail-long", "status": "failed", "error": "é" * 255 + "…"},
        {"id": "fail-256", "status": "failed", "error": "e" * 256},
        {"id": "k1", "status": "processed"},
        {"id": "fail-k", "status": "failed", "error": "{'x': 1}"},
        {"id": "k2", "status": "skipped", "error": "not run: record fail-k it is ordered after failed"},
    ]
    assert len(out["records"][2]["error"]) == answer.MAX_ERROR_CHARS == 256
    assert (out["processed"], out["duplicates"], out["failed"], out["skipped"]) == (2, 1, 3, 1)
    # The answer to one envelope is still the full record result, the handler's result included.
    assert guard.invoke(envelope("acme", "alone"), FakeContext("acme"), handler)["result"] == {"blob": "x" * 1_000_000}


def test_errors_are_cut_as_the_rust_guard_cuts_them():
    assert answer.cut_error("boom") == "boom"
    assert answer.cut_error("é" * 256) == "é" * 256
    cut = answer.cut_error("é" * 257)
    assert (len(cut), cut[-1], cut[:-1]) == (256, "…", "é" * 255)
    assert answer.batch_record_result("m", "failed", "x" * 1000)["error"] == "x" * 255 + "…"
    assert answer.batch_record_result("m", "processed", duplicate=True) == {"id": "m", "status": "processed",
                                                                            "duplicate": True}


def test_a_batch_with_one_record_of_another_tenant_is_refused_whole(guard, caplog):
    ran = []
    handler = lambda r, c: ran.append(r)  # noqa: E731
    for payload in (batch("acme", [envelope("acme", "m1"), envelope("globex", "m2")]),
                    batch("globex", [envelope("acme", "m1")])):
        with caplog.at_level(logging.ERROR), pytest.raises(answer.TenantMismatch):
            guard.invoke(payload, FakeContext("acme"), handler)
    assert ran == []
    assert [r.envelope_tenant_id for r in caplog.records if getattr(r, "security_event", None)] == ["globex", "globex"]


def test_duplicates_are_recognised_within_and_across_batches(guard):
    runs = []

    def handler(record, context):
        runs.append(record["id"])
        return {"n": 1}

    out = guard.invoke(batch("acme", [envelope("acme", "m1"), envelope("acme", "m1")]), FakeContext("acme"), handler)
    assert (out["processed"], out["duplicates"]) == (1, 1)
    assert out["records"][1] == {"id": "m1", "status": "processed", "duplicate": True}
    # A record once delivered alone is a duplicate in a later batch, and the other way round.
    guard.invoke(envelope("acme", "m2"), FakeContext("acme"), handler)
    out = guard.invoke(batch("acme", [envelope("acme", "m2"), envelope("acme", "m3")]), FakeContext("acme"), handler)
    assert (out["processed"], out["duplicates"]) == (1, 1)
    assert guard.invoke(envelope("acme", "m3"), FakeContext("acme"), handler)["duplicate"] is True
    assert runs == ["m1", "m2", "m3"]


def failing(*ids):
    ran = []

    def handler(record, context):
        ran.append(record["id"])
        if record["id"] in ids:
            raise RuntimeError("boom")
        return {}

    return handler, ran


LANES = [keyed("a1", "g-a"), keyed("a2", "g-a"), keyed("b1", "g-b"), keyed("a3", "g-a"), keyed("b2", "g-b")]


def test_a_failed_record_stops_its_lane_in_the_batch(guard):
    handler, ran = failing("a2")
    out = guard.invoke(batch("acme", LANES, "lanes", "per-record"), FakeContext("acme"), handler)
    assert ran == ["a1", "a2", "b1", "b2"]
    assert statuses(out) == [("a1", "processed"), ("a2", "failed"), ("b1", "processed"), ("a3", "skipped"),
                             ("b2", "processed")]
    assert (out["processed"], out["failed"], out["skipped"]) == (3, 1, 1)
    assert out["records"][1] == {"id": "a2", "status": "failed", "error": "boom"}
    assert out["records"][3] == {"id": "a3", "status": "skipped",
                                 "error": "not run: record a2 it is ordered after failed"}


def test_without_a_per_record_answer_a_failure_is_a_partial_failure(guard):
    handler, _ = failing("a2")
    with pytest.raises(answer.HandlerPartialFailure) as excinfo:
        guard.invoke(batch("acme", LANES, "lanes"), FakeContext("acme"), handler)
    assert error_type(excinfo) == "Handler.PartialFailure"
    assert not answer.is_guard_refusal(error_type(excinfo))
    error = excinfo.value
    assert (error.processed, error.duplicates, error.failed, error.skipped) == (3, 0, 1, 1)
    assert str(error) == "tenant handler failed for 1 records of the batch (1 not run after them): a2: boom"


def test_records_without_an_ordering_key_are_never_skipped_in_lanes(guard):
    handler, ran = failing("u1")
    records = [envelope("acme", "u1"), envelope("acme", "u2"), keyed("k1", "g")]
    out = guard.invoke(batch("acme", records, "lanes", "per-record"), FakeContext("acme"), handler)
    assert statuses(out) == [("u1", "failed"), ("u2", "processed"), ("k1", "processed")]


def test_a_failed_record_stops_a_stream_batch(guard):
    handler, ran = failing("2")
    records = [keyed("1", "k1"), keyed("2", "k1"), keyed("3", "k2"), envelope("acme", "4")]
    out = guard.invoke(batch("acme", records, "stream", "per-record"), FakeContext("acme"), handler)
    assert [s for _, s in statuses(out)] == ["processed", "failed", "skipped", "skipped"]
    assert ran == ["1", "2"]


def test_an_unordered_batch_goes_on_after_a_failure(guard):
    handler, ran = failing("m1")
    out = guard.invoke(batch("acme", [keyed("m1", "k"), keyed("m2", "k")], answer="per-record"), FakeContext("acme"),
                       handler)
    assert statuses(out) == [("m1", "failed"), ("m2", "processed")]


def test_a_failed_record_fails_the_batch_and_its_retry_runs_only_that_record(guard):
    fail = {"m2"}
    runs = []

    def handler(record, context):
        runs.append(record["id"])
        if record["id"] in fail:
            raise RuntimeError("downstream unavailable")
        return {}

    payload = batch("acme", [envelope("acme", i) for i in ("m1", "m2", "m3")])
    with pytest.raises(answer.HandlerPartialFailure) as excinfo:
        guard.invoke(payload, FakeContext("acme"), handler)
    assert str(excinfo.value) == (
        "tenant handler failed for 1 records of the batch (0 not run after them): m2: downstream unavailable")
    fail.clear()
    out = guard.invoke(payload, FakeContext("acme"), handler)
    assert (out["processed"], out["duplicates"]) == (1, 2)
    assert runs == ["m1", "m2", "m3", "m2"]


def claim_elsewhere(store, key: str, in_progress_until_ms: int) -> None:
    """Another environment's claim, written the way Powertools (and the Rust store) write it."""
    store._put_record(DataRecord(idempotency_key=key, status="INPROGRESS",
                                 expiry_timestamp=int(time.time()) + 3600,
                                 in_progress_expiry_timestamp=in_progress_until_ms))


def test_a_record_in_progress_elsewhere_fails_transiently(guard):
    claim_elsewhere(guard.store, "backend#acme#arn:q#m1", int(time.time() * 1000) + 60_000)
    handler, ran = failing()
    with pytest.raises(answer.IdempotencyInProgress) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    assert error_type(excinfo) == "Idempotency.InProgress"
    assert not answer.is_guard_refusal(error_type(excinfo))
    assert str(excinfo.value) == "the record is being processed by another execution environment; retry later"
    out = guard.invoke(batch("acme", [envelope("acme", "m1"), envelope("acme", "m2")], answer="per-record"),
                       FakeContext("acme"), handler)
    assert out["records"][0] == {"id": "m1", "status": "failed", "error": str(excinfo.value)}
    assert ran == ["m2"]


def test_a_claim_past_its_deadline_is_taken_over(guard):
    claim_elsewhere(guard.store, "backend#acme#arn:q#m1", int(time.time() * 1000) - 1)
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)["status"] == "processed"


class UnreachableStore(idempotency_store.MemoryStore):
    def _put_record(self, data_record):
        raise ConnectionError("connection refused")


def test_an_unreachable_store_fails_the_record_and_nothing_runs():
    guard = EnvironmentGuard("backend", UnreachableStore(), 3600, logging.getLogger("t"))
    handler, ran = failing()
    with pytest.raises(answer.IdempotencyStoreUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    assert error_type(excinfo) == "Idempotency.StoreUnavailable"
    assert str(excinfo.value) == (
        "the idempotency store is unavailable: connection refused; not processed, retry later")
    assert ran == []


class ForgetfulStore(idempotency_store.MemoryStore):
    def _update_record(self, data_record):
        raise ConnectionError("write failed")

    def _delete_record(self, data_record):
        raise ConnectionError("delete failed")


def test_a_result_that_cannot_be_stored_is_still_processed_and_a_lost_release_keeps_the_handler_error(caplog):
    guard = EnvironmentGuard("backend", ForgetfulStore(), 3600, logging.getLogger("t"))
    guard.store.log = logging.getLogger("t")
    with caplog.at_level(logging.WARNING):
        assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)["status"] == "processed"
        handler, _ = failing("m2")
        with pytest.raises(answer.HandlerError):
            guard.invoke(envelope("acme", "m2"), FakeContext("acme"), handler)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("idempotency store: result not stored") for m in messages)
    assert any(m.startswith("idempotency store: claim not released") for m in messages)


def test_store_ids_are_the_rust_guards_and_tenant_scoped(guard):
    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    assert list(guard.store._items) == ["backend#acme#arn:q#m1"]
    assert idempotency_store.record_id("backend", "acme", "arn:q#m1") == "backend#acme#arn:q#m1"
    # The same key for another tenant (another environment, same store) is another record.
    other = EnvironmentGuard("backend", guard.store, 3600, logging.getLogger("t"))
    assert "duplicate" not in other.invoke(envelope("globex", "m1"), FakeContext("globex"), echo)
    assert sorted(guard.store._items) == ["backend#acme#arn:q#m1", "backend#globex#arn:q#m1"]


def test_the_memory_store_keeps_the_most_recent_records(monkeypatch, guard):
    monkeypatch.setattr(idempotency_store.MemoryStore, "CAPACITY", 2)
    for id in ("m1", "m2", "m3"):
        guard.invoke(envelope("acme", id), FakeContext("acme"), echo)
    assert list(guard.store._items) == ["backend#acme#arn:q#m2", "backend#acme#arn:q#m3"]


def test_the_ttl_variable_is_checked():
    assert idempotency_store.ttl_from_env({}) == 3600
    assert idempotency_store.ttl_from_env({"BACKEND_IDEMPOTENCY_TTL_SECONDS": "900"}) == 900
    assert idempotency_store.ttl_from_env({"BACKEND_IDEMPOTENCY_TTL_SECONDS": " 86400 "}) == 86_400
    for bad in ("0", "-5", "1.5", "soon", ""):
        with pytest.raises(ValueError, match="BACKEND_IDEMPOTENCY_TTL_SECONDS: expected a positive whole number"):
            idempotency_store.ttl_from_env({"BACKEND_IDEMPOTENCY_TTL_SECONDS": bad})
    # Below Lambda's longest timeout: the guard cannot learn the function's own at start.
    for short in ("60", "899"):
        with pytest.raises(ValueError, match=r"BACKEND_IDEMPOTENCY_TTL_SECONDS: \d+ seconds is shorter than "
                                             r"Lambda's longest timeout \(900 s\)"):
            idempotency_store.ttl_from_env({"BACKEND_IDEMPOTENCY_TTL_SECONDS": short})
    assert isinstance(idempotency_store.store_from_env({}), idempotency_store.MemoryStore)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"BACKEND_IDEMPOTENCY_TABLE": ""}, "BACKEND_IDEMPOTENCY_TABLE is set but blank"),
        ({"BACKEND_IDEMPOTENCY_TABLE": "  "}, "BACKEND_IDEMPOTENCY_TABLE is set but blank"),
        ({"BACKEND_IDEMPOTENCY_TABLE": "idempotency", "POWERTOOLS_IDEMPOTENCY_DISABLED": "true"},
         "POWERTOOLS_IDEMPOTENCY_DISABLED=true would turn off the idempotency table"),
        ({"BACKEND_IDEMPOTENCY_TABLE": "idempotency", "POWERTOOLS_IDEMPOTENCY_DISABLED": "1"},
         "POWERTOOLS_IDEMPOTENCY_DISABLED=1 would turn off"),
        ({"POWERTOOLS_IDEMPOTENCY_DISABLED": "maybe"}, "POWERTOOLS_IDEMPOTENCY_DISABLED: expected true or false"),
    ],
)
def test_a_setting_that_would_fail_open_is_an_error_naming_it(environ, variable):
    with pytest.raises(ValueError) as excinfo:
        idempotency_store.store_from_env(environ, logging.getLogger("t"))
    assert str(excinfo.value).startswith(variable)


def test_settings_that_keep_the_store_are_accepted(caplog, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    table = {"BACKEND_IDEMPOTENCY_TABLE": " idempotency ", "POWERTOOLS_IDEMPOTENCY_DISABLED": "false"}
    assert idempotency_store.store_from_env(table).table_name == "idempotency"
    # Without a table, Powertools' development switch stays one, with a warning at start.
    with caplog.at_level(logging.WARNING):
        store = idempotency_store.store_from_env({"POWERTOOLS_IDEMPOTENCY_DISABLED": "true"}, logging.getLogger("t"))
    assert isinstance(store, idempotency_store.MemoryStore)
    assert any("POWERTOOLS_IDEMPOTENCY_DISABLED is true" in r.getMessage() for r in caplog.records)


# The store's claim rules (shared/src/idempotency.rs), on the memory store; the same on DynamoDB in
# test_idempotency_dynamodb.py.

KEY = "backend#acme#arn:q#m1"


def other_environments_claim(store, key: str = KEY) -> None:
    """Another environment took the record over (this one's claim had expired): its claim in the
    item, with a later in_progress_expiration than any this environment wrote."""
    now = int(time.time())
    store._items[key] = DataRecord(idempotency_key=key, status="INPROGRESS", expiry_timestamp=now + 3600,
                                   in_progress_expiry_timestamp=now * 1000 + 3_600_000)


def test_an_in_progress_item_never_expires_before_its_claim(monkeypatch):
    # A TTL far shorter than the run (the start check refuses it, but the rule must not need it).
    store = idempotency_store.MemoryStore()
    guard = EnvironmentGuard("backend", store, 1, logging.getLogger("t"))
    seen = {}

    def handler(record, context):
        item = store._items[KEY]
        seen["item"] = (item._status, item.expiry_timestamp, item.in_progress_expiry_timestamp)
        # Later than the TTL, before the deadline: a second environment still finds it held.
        real = idempotency_store.now_ms()
        monkeypatch.setattr(idempotency_store, "now_ms", lambda: real + 5_000)
        with pytest.raises(answer.IdempotencyInProgress):
            EnvironmentGuard("backend", store, 1, logging.getLogger("t")).invoke(envelope("acme", "m1"),
                                                                                FakeContext("acme"), echo)
        monkeypatch.undo()
        return {}

    context = FakeContext("acme", remaining_ms=30_000)
    assert guard.invoke(envelope("acme", "m1"), context, handler)["status"] == "processed"
    status, expiry, until = seen["item"]
    assert status == "INPROGRESS"
    assert abs(until - context.deadline_ms) < 2_000, "held until the invocation's deadline"
    assert expiry == -(-until // 1000), "expiration: the claim's time, rounded up to the second"


def test_a_claim_past_its_deadline_still_holds_for_a_moment():
    store = idempotency_store.MemoryStore()
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))
    seen = []
    before = idempotency_store.now_ms()
    guard.invoke(envelope("acme", "m1"), FakeContext("acme", remaining_ms=-5_000),
                 lambda r, c: seen.append(store._items[KEY].in_progress_expiry_timestamp))
    assert seen[0] > before, "max(deadline, now + 1 ms): each claim holds a later time than the one it replaced"


def test_completing_a_record_taken_over_by_another_environment_writes_nothing(caplog):
    store = idempotency_store.MemoryStore()
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))
    store.log = logging.getLogger("t")

    def slow(record, context):
        other_environments_claim(store)
        return {"n": 1}

    with caplog.at_level(logging.ERROR):
        out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), slow)
    assert out["status"] == "processed" and "duplicate" not in out, "the effect happened: processed"
    assert store._items[KEY]._status == "INPROGRESS", "the other environment's claim is not overwritten"
    assert any(r.getMessage().startswith("idempotency store: the claim expired and another environment took the "
                                         "record over") and r.levelno == logging.ERROR for r in caplog.records)


def test_releasing_a_record_taken_over_by_another_environment_deletes_nothing():
    store = idempotency_store.MemoryStore()
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))

    def slow_then_fails(record, context):
        other_environments_claim(store)
        raise RuntimeError("boom")

    with pytest.raises(answer.HandlerError):
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), slow_then_fails)
    assert store._items[KEY]._status == "INPROGRESS", "the other environment's claim stays"
    with pytest.raises(answer.IdempotencyInProgress):
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)


class Stop(BaseException):
    """Something that is not an ``Exception``, as a handler might raise."""


@pytest.mark.parametrize(
    "raised", [ValueError("bad"), KeyError("k"), SystemExit(3), KeyboardInterrupt(), Stop()],
    ids=lambda e: type(e).__name__,
)
def test_an_exception_of_any_kind_in_the_handler_releases_the_claim(guard, raised):
    def handler(record, context):
        raise raised

    expected = answer.HandlerError if isinstance(raised, Exception) else type(raised)
    with pytest.raises(expected) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    if not isinstance(raised, Exception):
        assert excinfo.value is raised, "raised again as it was"
    assert KEY not in guard.store._items
    # Redelivered: it runs again, neither in progress nor a duplicate.
    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    assert out["status"] == "processed" and "duplicate" not in out


def test_a_result_the_store_cannot_keep_is_a_handler_error_and_releases_the_claim(guard):
    with pytest.raises(answer.HandlerError) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: {"when": {1, 2}})
    assert str(excinfo.value).startswith("tenant handler failed: the handler's result is not JSON: ")
    assert KEY not in guard.store._items
    assert "duplicate" not in guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)


def completed(store, data: str, key: str = KEY) -> None:
    store._items[key] = DataRecord(idempotency_key=key, status="COMPLETED", expiry_timestamp=int(time.time()) + 3600,
                                   response_data=data)


@pytest.mark.parametrize("data", ["", "not json", "[1, 2]", "5", "null", '"text"', "{}"])
def test_a_duplicate_whose_stored_result_cannot_be_read_still_has_a_status(guard, data):
    completed(guard.store, data)
    completed(guard.store, data, "backend#acme#arn:q#m2")
    ran = []
    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: ran.append(r))
    assert out == {"tenantId": "acme", "id": "m1", "idempotencyKey": "arn:q#m1", "correlationId": "c-m1",
                   "source": "sqs", "status": "processed", "result": None, "duplicate": True}
    out = guard.invoke(batch("acme", [envelope("acme", "m2")], answer="per-record"), FakeContext("acme"),
                       lambda r, c: ran.append(r))
    assert out["records"] == [{"id": "m2", "status": "processed", "duplicate": True}]
    assert ran == []


def test_a_stored_result_without_a_status_is_answered_with_one(guard):
    completed(guard.store, '{"result": {"n": 1}, "from": "elsewhere"}')
    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    assert (out["status"], out["result"], out["duplicate"], out["from"]) == ("processed", {"n": 1}, True, "elsewhere")


class WithoutTheItem(idempotency_store.MemoryStore):
    """A store whose failed condition carries no item (DynamoDB without
    ReturnValuesOnConditionCheckFailure): the guard must read it."""

    def __init__(self, vanishing: int = 0):
        super().__init__()
        self.puts = self.reads = 0
        self.vanishing = vanishing  # how many reads find nothing (the item went away in between)

    def _put_record(self, data_record):
        self.puts += 1
        try:
            super()._put_record(data_record)
        except IdempotencyItemAlreadyExistsError:
            raise IdempotencyItemAlreadyExistsError() from None

    def _get_record(self, idempotency_key):
        self.reads += 1
        if self.vanishing:
            self.vanishing -= 1
            raise IdempotencyItemNotFoundError
        return super()._get_record(idempotency_key)


def test_a_failed_condition_without_the_item_falls_back_to_reading_it():
    store = WithoutTheItem()
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))
    first = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo) == {**first, "duplicate": True}
    assert (store.puts, store.reads) == (2, 1)
    claim_elsewhere(store, "backend#acme#arn:q#m2", int(time.time() * 1000) + 60_000)
    with pytest.raises(answer.IdempotencyInProgress):
        guard.invoke(envelope("acme", "m2"), FakeContext("acme"), echo)


class Flapping(WithoutTheItem):
    """The item in the way goes away between the first failed condition and its read."""

    def _put_record(self, data_record):
        if self.puts == 1:
            self._items.pop(data_record.idempotency_key, None)
        super()._put_record(data_record)


def test_a_failed_condition_with_nothing_to_read_claims_once_more_then_the_store_is_unavailable():
    handler, ran = failing()
    # Once: the second claim takes the record.
    store = Flapping(vanishing=1)
    other_environments_claim(store)
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)["status"] == "processed"
    assert (store.puts, store.reads, ran) == (2, 1, ["m1"])
    # Every time: after the second claim the store counts as unavailable, and nothing runs.
    store = WithoutTheItem(vanishing=99)
    other_environments_claim(store)
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))
    with pytest.raises(answer.IdempotencyStoreUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    assert "the claim's condition failed twice, but no item stands in its way" in str(excinfo.value)
    assert (store.puts, store.reads, ran) == (2, 2, ["m1"])
