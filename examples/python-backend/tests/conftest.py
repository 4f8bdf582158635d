"""Shared helpers: the sources on sys.path, a fake Lambda context, envelope and batch builders, a
guard with a fresh in-memory store, the JSON Schemas of ``schemas/v1`` in one registry, and an AWS
account on moto (in process) with a guard whose tenant-scoped access is on."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
REPOSITORY = HERE.parents[2]
SCHEMAS = REPOSITORY / "schemas" / "v1"
BOOTSTRAP = HERE.parent / "bootstrap"

sys.path.insert(0, str(SRC))
os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "backend")

import idempotency_store  # noqa: E402
import tenant_access  # noqa: E402
from guard import EnvironmentGuard  # noqa: E402

#: The tenant access role (moto's STS does not need it to exist, nor evaluates its policies).
ROLE = "arn:aws:iam::123456789012:role/tenant-access"
#: The environment id the tenant guards of the tests draw.
ENVIRONMENT = "0123abcd"


class FakeContext:
    """What awslambdaric's LambdaContext offers the handler (and Powertools reads)."""

    def __init__(self, tenant_id: str | None = "acme", request_id: str = "r1", remaining_ms: int = 30_000):
        self.tenant_id = tenant_id
        self.aws_request_id = request_id
        self.function_name = "backend"
        self.memory_limit_in_mb = "128"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:backend"
        self.deadline_ms = int(time.time() * 1000) + remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def envelope(tenant: str = "acme", id: str = "m1", **members) -> dict:
    """An envelope of ``tenant`` as the router writes it (SQS standard queue)."""
    value = {
        "version": 1, "tenantId": tenant, "source": "sqs", "eventSourceArn": "arn:q", "id": id,
        "idempotencyKey": f"arn:q#{id}", "arrivedAt": "2026-01-01T00:00:00.000Z",
        "correlationId": f"c-{id}", "payload": {"x": 1},
    }
    value.update(members)
    return value


def keyed(id: str, key: str, tenant: str = "acme", **members) -> dict:
    """An envelope with ordering key ``key`` (a FIFO group, a partition key)."""
    return envelope(tenant, id, orderingKey=key, **members)


def batch(tenant: str, records: list[dict], ordering: str | None = None, answer: str | None = None) -> dict:
    value = {"version": 1, "tenantId": tenant, "records": records}
    if ordering:
        value["ordering"] = ordering
    if answer:
        value["answer"] = answer
    return value


def statuses(out: dict) -> list[tuple[str, str]]:
    return [(r["id"], r["status"]) for r in out["records"]]


@pytest.fixture
def guard() -> EnvironmentGuard:
    return EnvironmentGuard("backend", idempotency_store.MemoryStore(), 3600, logging.getLogger("guard-test"))


@pytest.fixture(scope="session")
def schemas():
    """``schemas.validator(name, pointer="")``: a draft 2020-12 validator (formats asserted) for
    ``schemas/v1/<name>.schema.json``, or for one of its ``$defs`` with ``pointer``."""
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    documents = {p.name.removesuffix(".schema.json"): json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents.values()
    )

    class Schemas:
        by_name = documents

        @staticmethod
        def validator(name: str, pointer: str = ""):
            ref = documents[name]["$id"] + (f"#{pointer}" if pointer else "")
            return Draft202012Validator({"$ref": ref}, registry=registry, format_checker=FormatChecker())

    return Schemas


@pytest.fixture
def aws(monkeypatch):
    """An AWS account on moto, in process; the environment's own credentials (the execution
    role's) are those moto puts in the environment."""
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS",
                 "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


class TenantGuard(EnvironmentGuard):
    """A guard whose tenant-scoped access is on, with the parameters of every ``AssumeRole`` its
    environment made (``assumed``) and the environment's own session (``base``)."""

    def __init__(self, store=None, session_seconds: int = 900, log=None, **kwargs):
        import boto3

        log = log or logging.getLogger("tenant-guard-test")
        self.assumed: list[dict] = []
        self.base = boto3.Session()
        self.base.events.register("provide-client-params.sts.AssumeRole",
                                  lambda params, **_: self.assumed.append(dict(params)))
        access = tenant_access.TenantAccess(ROLE, session_seconds, base=self.base, log=log, environment=ENVIRONMENT)
        super().__init__("backend", store or idempotency_store.MemoryStore(), 3600, log, access=access, **kwargs)
