"""The idempotency store on a DynamoDB API (moto, in process): Powertools' table layout with the
Rust guard's record ids and claim rules, shared by environments, and readable both ways with the
Rust store."""

from __future__ import annotations

import json
import logging
import time

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

import answer
import idempotency_store
from conftest import FakeContext, batch, envelope
from guard import EnvironmentGuard

TABLE = "idempotency"


@pytest.fixture
def dynamodb(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        # The table the CDK app creates (and scripts/main-job.sh on moto's server).
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        yield client


def environment(ttl: int = 3600) -> EnvironmentGuard:
    """A new execution environment of function `backend` on the shared table."""
    store = idempotency_store.store_from_env({"BACKEND_IDEMPOTENCY_TABLE": TABLE}, logging.getLogger("t"))
    return EnvironmentGuard("backend", store, ttl, logging.getLogger("t"))


def item(client, id: str) -> dict | None:
    return client.get_item(TableName=TABLE, Key={"id": {"S": id}}, ConsistentRead=True).get("Item")


def echo(record, context):
    return {"n": record["payload"]["x"]}


def test_a_processed_record_is_stored_in_the_rust_stores_layout(dynamodb):
    guard = environment(ttl=900)
    assert isinstance(guard.store, idempotency_store.DynamoDbStore)
    context = FakeContext("acme", remaining_ms=20_000)
    before = time.time()
    out = guard.invoke(envelope("acme", "m1"), context, echo)
    stored = item(dynamodb, "backend#acme#arn:q#m1")
    assert set(stored) == {"id", "expiration", "status", "data", "in_progress_expiration"}
    assert stored["status"] == {"S": "COMPLETED"}
    assert json.loads(stored["data"]["S"]) == out
    assert before + 900 - 2 <= int(stored["expiration"]["N"]) <= time.time() + 900 + 1
    # The claim was held until the invocation's deadline (epoch milliseconds).
    assert abs(int(stored["in_progress_expiration"]["N"]) - context.deadline_ms) < 2_000


def test_a_duplicate_reaching_another_environment_is_recognised(dynamodb):
    runs = []

    def handler(record, context):
        runs.append(record["id"])
        return {}

    first = environment().invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    second = environment().invoke(batch("acme", [envelope("acme", "m1"), envelope("acme", "m2")]),
                                  FakeContext("acme"), handler)
    third = environment().invoke(envelope("acme", "m1", correlationId="c-again"), FakeContext("acme"), handler)
    assert runs == ["m1", "m2"]
    assert second["records"] == [{"id": "m1", "status": "processed", "duplicate": True},
                                 {"id": "m2", "status": "processed"}]
    assert (second["processed"], second["duplicates"]) == (1, 1)
    assert third == {**first, "duplicate": True}, "the first run's stored result"


def test_an_item_the_rust_store_wrote_is_read_as_a_duplicate(dynamodb):
    # What `DynamoDbStore::claim` then `complete` leave in the table (shared/src/idempotency.rs).
    now = int(time.time())
    rust_result = {"tenantId": "acme", "id": "m1", "idempotencyKey": "arn:q#m1", "correlationId": "c-m1",
                   "source": "sqs", "status": "processed", "result": {"from": "rust"}}
    dynamodb.put_item(TableName=TABLE, Item={
        "id": {"S": "backend#acme#arn:q#m1"}, "expiration": {"N": str(now + 3600)}, "status": {"S": "COMPLETED"},
        "in_progress_expiration": {"N": str(now * 1000 + 5_000)}, "data": {"S": json.dumps(rust_result)}})
    ran = []
    out = environment().invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: ran.append(r))
    assert ran == []
    assert out == {**rust_result, "duplicate": True}


@pytest.mark.parametrize("data", [None, {"S": "not json"}, {"S": "[1]"}, {"N": "5"}])
def test_an_item_whose_data_cannot_be_read_is_still_a_processed_duplicate(dynamodb, data):
    now = int(time.time())
    for id in ("m1", "m2"):
        dynamodb.put_item(TableName=TABLE, Item={
            "id": {"S": f"backend#acme#arn:q#{id}"}, "expiration": {"N": str(now + 3600)},
            "status": {"S": "COMPLETED"}, **({"data": data} if data else {})})
    ran = []
    out = environment().invoke(batch("acme", [envelope("acme", "m1")], answer="per-record"), FakeContext("acme"),
                               lambda r, c: ran.append(r))
    assert out["records"] == [{"id": "m1", "status": "processed", "duplicate": True}]
    out = environment().invoke(envelope("acme", "m2"), FakeContext("acme"), lambda r, c: ran.append(r))
    assert out == {"tenantId": "acme", "id": "m2", "idempotencyKey": "arn:q#m2", "correlationId": "c-m2",
                   "source": "sqs", "status": "processed", "result": None, "duplicate": True}
    assert ran == []


def test_a_claim_held_by_another_environment_fails_until_its_deadline(dynamodb):
    now_ms = int(time.time() * 1000)
    claim = {"id": {"S": "backend#acme#arn:q#m1"}, "expiration": {"N": str(now_ms // 1000 + 3600)},
             "status": {"S": "INPROGRESS"}, "in_progress_expiration": {"N": str(now_ms + 60_000)}}
    dynamodb.put_item(TableName=TABLE, Item=claim)
    with pytest.raises(answer.IdempotencyInProgress):
        environment().invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    # The environment that claimed it died: past its deadline the record runs.
    dynamodb.put_item(TableName=TABLE, Item={**claim, "in_progress_expiration": {"N": str(now_ms - 1)}})
    assert environment().invoke(envelope("acme", "m1"), FakeContext("acme"), echo)["status"] == "processed"


def test_an_item_in_an_unknown_state_holds_the_record_off(dynamodb):
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "backend#acme#arn:q#m1"},
                                             "expiration": {"N": str(int(time.time()) + 3600)},
                                             "status": {"S": "PAUSED"}})
    with pytest.raises(answer.IdempotencyInProgress):
        environment().invoke(envelope("acme", "m1"), FakeContext("acme"), echo)


@pytest.mark.parametrize("raised", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(1)],
                         ids=lambda e: type(e).__name__)
def test_a_handler_exception_of_any_kind_deletes_the_claim(dynamodb, raised):
    def boom(record, context):
        raise raised

    with pytest.raises(answer.HandlerError if isinstance(raised, Exception) else type(raised)):
        environment().invoke(envelope("acme", "m1"), FakeContext("acme"), boom)
    assert item(dynamodb, "backend#acme#arn:q#m1") is None


def test_tenants_never_share_a_record(dynamodb):
    environment().invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    out = environment().invoke(envelope("globex", "m1"), FakeContext("globex"), echo)
    assert "duplicate" not in out
    assert item(dynamodb, "backend#globex#arn:q#m1")["status"] == {"S": "COMPLETED"}


def test_an_unreachable_table_fails_the_record_without_running_it():
    unreachable = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test",
                               config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1))
    store = idempotency_store.DynamoDbStore(table_name=TABLE, boto3_client=unreachable)
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))
    ran = []
    with pytest.raises(answer.IdempotencyStoreUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: ran.append(r))
    assert str(excinfo.value).startswith("the idempotency store is unavailable: ")
    assert str(excinfo.value).endswith("; not processed, retry later")
    assert ran == []


KEY = "backend#acme#arn:q#m1"


def test_an_in_progress_item_never_expires_before_its_claim(dynamodb):
    # The claim as the handler sees it, with a TTL far shorter than the run.
    seen = []
    context = FakeContext("acme", remaining_ms=30_000)
    environment(ttl=1).invoke(envelope("acme", "m1"), context, lambda r, c: seen.append(item(dynamodb, KEY)))
    claim = seen[0]
    assert claim["status"] == {"S": "INPROGRESS"}
    until = int(claim["in_progress_expiration"]["N"])
    assert abs(until - context.deadline_ms) < 2_000
    assert int(claim["expiration"]["N"]) == -(-until // 1000)


def another_environment_takes_over(client) -> dict:
    """The item another environment wrote when it claimed the record after this one's claim expired."""
    now_ms = int(time.time() * 1000)
    claim = {"id": {"S": KEY}, "expiration": {"N": str(now_ms // 1000 + 3600)}, "status": {"S": "INPROGRESS"},
             "in_progress_expiration": {"N": str(now_ms + 3_600_000)}}
    client.put_item(TableName=TABLE, Item=claim)
    return claim


def test_complete_and_release_only_touch_the_item_while_the_claim_holds(dynamodb, caplog):
    taken = {}

    def slow(record, context):
        taken["claim"] = another_environment_takes_over(dynamodb)
        return {"n": 1}

    with caplog.at_level(logging.ERROR):
        out = environment().invoke(envelope("acme", "m1"), FakeContext("acme"), slow)
    assert out["status"] == "processed" and "duplicate" not in out
    assert item(dynamodb, KEY) == taken["claim"], "not overwritten"
    assert any("another environment took the record over" in r.getMessage() for r in caplog.records)

    dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": KEY}})

    def slow_then_fails(record, context):
        taken["claim"] = another_environment_takes_over(dynamodb)
        raise RuntimeError("boom")

    with pytest.raises(answer.HandlerError):
        environment().invoke(envelope("acme", "m1"), FakeContext("acme"), slow_then_fails)
    assert item(dynamodb, KEY) == taken["claim"], "not deleted"


def reads(guard) -> list[dict]:
    """The GetItem requests the guard's store makes from now on."""
    made = []
    guard.store.client.meta.events.register("provide-client-params.dynamodb.GetItem",
                                            lambda params, **_: made.append(params))
    return made


def test_powertools_gets_the_item_with_the_failed_condition_and_reads_nothing(dynamodb):
    first = environment().invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    guard = environment()
    made = reads(guard)
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo) == {**first, "duplicate": True}
    assert made == []


def test_a_failed_condition_without_the_item_falls_back_to_a_consistent_read(dynamodb):
    first = environment().invoke(envelope("acme", "m1"), FakeContext("acme"), echo)
    guard = environment()
    # As with a boto3 older than 1.26.164, or an API without ReturnValuesOnConditionCheckFailure.
    guard.store.return_value_on_condition = {}
    made = reads(guard)
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo) == {**first, "duplicate": True}
    assert [(p["Key"], p["ConsistentRead"]) for p in made] == [({"id": {"S": KEY}}, True)]
    another_environment_takes_over(dynamodb)
    with pytest.raises(answer.IdempotencyInProgress):
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), echo)


def stubbed_store() -> tuple[idempotency_store.DynamoDbStore, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    store = idempotency_store.DynamoDbStore(table_name=TABLE, boto3_client=client)
    return store, Stubber(client)


def test_a_failed_condition_with_nothing_to_read_is_claimed_once_more_then_the_store_is_unavailable():
    # An item that stood in the way when the condition was checked, and was gone when read.
    condition_failed = {"service_error_code": "ConditionalCheckFailedException",
                        "service_message": "The conditional request failed"}
    handler = []
    store, stubber = stubbed_store()
    stubber.add_client_error("put_item", **condition_failed)
    stubber.add_response("get_item", {})
    stubber.add_response("put_item", {})
    stubber.add_response("update_item", {})
    with stubber:
        out = EnvironmentGuard("backend", store, 3600, logging.getLogger("t")).invoke(
            envelope("acme", "m1"), FakeContext("acme"), lambda r, c: handler.append(r["id"]) or {})
    stubber.assert_no_pending_responses()
    assert out["status"] == "processed" and handler == ["m1"]

    store, stubber = stubbed_store()
    for _ in range(2):
        stubber.add_client_error("put_item", **condition_failed)
        stubber.add_response("get_item", {})
    with stubber, pytest.raises(answer.IdempotencyStoreUnavailable) as excinfo:
        EnvironmentGuard("backend", store, 3600, logging.getLogger("t")).invoke(
            envelope("acme", "m2"), FakeContext("acme"), lambda r, c: handler.append(r["id"]) or {})
    stubber.assert_no_pending_responses()
    assert "the claim's condition failed twice, but no item stands in its way" in str(excinfo.value)
    assert handler == ["m1"], "nothing ran"
