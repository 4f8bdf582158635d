"""Secrets by reference (issue 24's contract) against moto's SSM and Secrets Manager, in process:
resolved with the tenant's session, another tenant's path refused before any call, kept for the
TTL (a rotation is seen after it) in a bounded LRU, and no value in any log line or error."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

import answer
import idempotency_store
import tenant_secrets
from conftest import FakeContext, TenantGuard, envelope
from guard import EnvironmentGuard

DB_PASSWORD = "pw-acme-Vh3q9"
GLOBEX_PASSWORD = "pw-globex-Zt81x"
API_TOKEN = "tok-acme-KQ55r"
API = {"token": API_TOKEN, "port": 5432, "nested": {"a": [1, 2]}}


@pytest.fixture
def stored(aws):
    """The tenants' parameters and secrets, put there by the platform (the execution role here)."""
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/tenants/acme/db-password", Value=DB_PASSWORD, Type="SecureString")
    ssm.put_parameter(Name="/tenants/acme/plain", Value="not-secret", Type="String")
    ssm.put_parameter(Name="/tenants/globex/db-password", Value=GLOBEX_PASSWORD, Type="SecureString")
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="acme/api", SecretString=json.dumps(API),
                                Tags=[{"Key": "tenant_id", "Value": "acme"}])["ARN"]
    secrets.create_secret(Name="acme/raw", SecretString=DB_PASSWORD + "-raw")
    secrets.create_secret(Name="acme/bin", SecretBinary=b"\x00\x01")
    return {"ssm": ssm, "secrets": secrets, "api_arn": arn}


def calls_of(session) -> list[str]:
    """The AWS calls the clients built from ``session`` from now on make."""
    made: list[str] = []
    session.events.register("before-call", lambda event_name, **_: made.append(event_name))
    return made


def resolving(*references, catch=False):
    """A handler resolving ``references``: their values, or (``catch``) the errors' messages."""
    def handler(record, context):
        out = []
        for reference in references:
            try:
                out.append(context.secret(reference))
            except tenant_secrets.SecretError as error:
                if not catch:
                    raise
                out.append(f"{type(error).__name__}: {error}")
        return {"values": out}
    return handler


def test_the_tenants_own_references_resolve_with_its_session(stored):
    guard = TenantGuard()
    seen = {}

    def handler(record, context):
        made = seen["calls"] = calls_of(context.session)
        values = resolving("ssm:/tenants/acme/db-password", "ssm:/tenants/acme/plain",
                           "secretsmanager:acme/api:token", "secretsmanager:acme/api:port",
                           "secretsmanager:acme/api:nested", "secretsmanager:acme/raw",
                           f"secretsmanager:{stored['api_arn']}:token", f"secretsmanager:{stored['api_arn']}")(
                               record, context)["values"]
        seen["secret"] = context.secret("ssm:/tenants/acme/db-password")
        return {"values": values, "made": list(made)}

    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)["result"]
    assert out["values"] == [DB_PASSWORD, "not-secret", API_TOKEN, "5432", '{"a":[1,2]}', DB_PASSWORD + "-raw",
                             API_TOKEN, json.dumps(API)]
    # Two json-keys of one secret are one call; the ARN is another id, so another entry.
    assert out["made"] == ["before-call.ssm.GetParameter", "before-call.ssm.GetParameter",
                           "before-call.secrets-manager.GetSecretValue", "before-call.secrets-manager.GetSecretValue",
                           "before-call.secrets-manager.GetSecretValue"]
    secret = seen["secret"]
    assert isinstance(secret, str) and secret == DB_PASSWORD and f"{secret}" == DB_PASSWORD
    assert repr(secret) == "Secret('<redacted>')" and DB_PASSWORD not in repr([secret])


@pytest.mark.parametrize("reference", [
    "ssm:/tenants/globex/db-password", "ssm:/tenants/acme-evil/x", "ssm:/tenants/acme", "ssm:/tenants/acme/",
    "ssm:/tenants/Acme/db-password", "ssm:tenants/acme/db-password", "ssm:/other/acme/db-password",
    "ssm:arn:aws:ssm:us-east-1:123456789012:parameter/tenants/globex/db-password",
    "ssm:/tenants/acme/../globex/db-password", "ssm:/tenants/acme//db-password", "ssm:/tenants/acme/db-password/",
])
def test_another_tenants_path_is_refused_before_any_call(stored, reference, caplog):
    guard = TenantGuard()
    seen = {}

    def handler(record, context):
        seen["calls"] = calls_of(context.session)
        with pytest.raises(tenant_secrets.SecretRefused) as excinfo:
            context.secret(reference)
        seen["error"] = str(excinfo.value)
        seen["after_refusal"] = list(seen["calls"])
        context.secret("ssm:/tenants/acme/db-password")  # and a call is seen when one is made
        return {}

    with caplog.at_level(logging.ERROR):
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    assert seen["after_refusal"] == []
    assert seen["calls"] == ["before-call.ssm.GetParameter"]
    assert seen["error"] == ("secret reference refused: an ssm: reference must name a parameter under "
                             "/tenants/acme/ (this environment's tenant); nothing was read")
    (event,) = [r for r in caplog.records if getattr(r, "security_event", None)]
    assert (event.security_event, event.tenant_id, event.reference) == ("secret-reference-refused", "acme", reference)


def test_a_refused_reference_uncaught_is_a_handler_error(stored):
    guard = TenantGuard()
    with pytest.raises(answer.HandlerError) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), resolving("ssm:/tenants/globex/db-password"))
    assert str(excinfo.value).startswith("tenant handler failed: secret reference refused: ")
    assert not answer.is_guard_refusal(type(excinfo.value).__name__), "transient: redelivered"


def test_a_rotation_is_seen_after_the_ttl(stored, monkeypatch):
    guard = TenantGuard(secrets=tenant_secrets.SecretResolver(ttl_seconds=60))
    start = tenant_secrets.clock()
    handler = resolving("ssm:/tenants/acme/db-password", "secretsmanager:acme/api:token")

    def at(seconds, id):
        monkeypatch.setattr(tenant_secrets, "clock", lambda: start + seconds)
        return guard.invoke(envelope("acme", id), FakeContext("acme"), handler)["result"]["values"]

    assert at(0, "m1") == [DB_PASSWORD, API_TOKEN]
    stored["ssm"].put_parameter(Name="/tenants/acme/db-password", Value="pw-rotated", Type="SecureString",
                                Overwrite=True)
    stored["secrets"].put_secret_value(SecretId="acme/api", SecretString=json.dumps({**API, "token": "tok-rotated"}))
    assert at(59, "m2") == [DB_PASSWORD, API_TOKEN], "kept within the TTL"
    assert at(60, "m3") == ["pw-rotated", "tok-rotated"], "read again once it has passed"


def test_the_cache_is_a_bounded_lru(stored, monkeypatch):
    assert tenant_secrets.CAPACITY == 256
    monkeypatch.setattr(tenant_secrets, "CAPACITY", 2)
    guard = TenantGuard()
    a, b, c = "ssm:/tenants/acme/db-password", "ssm:/tenants/acme/plain", "secretsmanager:acme/raw"

    def handler(record, context):
        made = calls_of(context.session)
        for reference in (a, b, a, c, a, b):  # c pushes b out (a was used since); b is read again
            context.secret(reference)
        return {"made": made}

    made = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)["result"]["made"]
    assert made == ["before-call.ssm.GetParameter", "before-call.ssm.GetParameter",
                    "before-call.secrets-manager.GetSecretValue", "before-call.ssm.GetParameter"]
    assert len(guard.secrets._cache) == 2


def test_failed_resolutions_are_errors_that_name_no_value(stored):
    guard = TenantGuard()
    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), resolving(
        "ssm:/tenants/acme/missing", "secretsmanager:acme/missing", "secretsmanager:acme/raw:token",
        "secretsmanager:acme/api:password", "secretsmanager:acme/bin", "secretsmanager:acme/api:",
        DB_PASSWORD, "secretsmanager:", 42, catch=True))["result"]["values"]
    assert out == [
        "SecretError: secret ssm:/tenants/acme/missing not resolved: GetParameter failed (ParameterNotFound)",
        "SecretError: secret secretsmanager:acme/missing not resolved: GetSecretValue failed "
        "(ResourceNotFoundException)",
        "SecretError: secret secretsmanager:acme/raw is not a JSON object: it has no member 'token'",
        "SecretError: secret secretsmanager:acme/api has no member 'password'",
        "SecretError: secret secretsmanager:acme/bin not resolved: it is binary (only secret strings are resolved)",
        "SecretError: not a secret reference: expected secretsmanager:<secret-id>[:<json-key>]",
        "SecretError: not a secret reference: expected ssm:/tenants/<tenant>/<name> or "
        "secretsmanager:<secret-id>[:<json-key>]",
        "SecretError: not a secret reference: expected secretsmanager:<secret-id>[:<json-key>]",
        "SecretError: not a secret reference: expected ssm:/tenants/<tenant>/<name> or "
        "secretsmanager:<secret-id>[:<json-key>]",
    ]
    # Uncaught, the handler's error: transient, and still without the value.
    with pytest.raises(answer.HandlerError) as excinfo:
        guard.invoke(envelope("acme", "m2"), FakeContext("acme"), resolving("secretsmanager:acme/raw:token"))
    assert DB_PASSWORD not in str(excinfo.value)
    # A failure is not kept: once the parameter exists, it resolves.
    stored["ssm"].put_parameter(Name="/tenants/acme/missing", Value="found", Type="SecureString")
    assert guard.invoke(envelope("acme", "m3"), FakeContext("acme"), resolving("ssm:/tenants/acme/missing"))[
        "result"]["values"] == ["found"]


def test_without_tenant_scoped_access_references_are_refused(stored):
    guard = EnvironmentGuard("backend", idempotency_store.MemoryStore(), 3600, logging.getLogger("t"))
    seen = {}

    def handler(record, context):
        made = calls_of(context.session)
        values = resolving("ssm:/tenants/acme/db-password", "ssm:/tenants/globex/db-password",
                           "secretsmanager:acme/api:token", DB_PASSWORD, catch=True)(record, context)["values"]
        seen["made"] = list(made)
        return {"values": values}

    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)["result"]["values"]
    # Never resolved with the execution role (which reaches every tenant's), whatever the reference.
    assert out == ["NoAccess: secrets by reference need BACKEND_TENANT_ROLE_ARN (tenant-scoped access)"] * 4
    assert seen["made"] == [], "nothing was asked of AWS"
    assert issubclass(tenant_secrets.NoAccess, tenant_secrets.SecretError)
    # Uncaught, the handler's error: transient, as any handler error.
    with pytest.raises(answer.HandlerError) as excinfo:
        guard.invoke(envelope("acme", "m2"), FakeContext("acme"), resolving("ssm:/tenants/acme/db-password"))
    assert str(excinfo.value) == ("tenant handler failed: secrets by reference need BACKEND_TENANT_ROLE_ARN "
                                  "(tenant-scoped access)")
    assert not answer.is_guard_refusal(type(excinfo.value).__name__), "transient: redelivered"


def test_no_secret_value_in_any_log_line(stored, caplog, capsys):
    guard = TenantGuard(log=logging.getLogger("tenant-guard-test"))
    values = [DB_PASSWORD, API_TOKEN, DB_PASSWORD + "-raw", GLOBEX_PASSWORD]
    credentials = {}

    def handler(record, context):
        logging.getLogger("handler").debug("context %r", context)
        values_seen = [context.secret("ssm:/tenants/acme/db-password"), context.secret("secretsmanager:acme/api:token")]
        logging.getLogger("handler").debug("resolved %r", values_seen)
        context.session.client("sts").get_caller_identity()  # botocore logs this answer's body
        frozen = context.session.get_credentials().get_frozen_credentials()
        credentials.update(secret_key=frozen.secret_key, token=frozen.token)
        context.secret("secretsmanager:acme/raw:member")  # fails, uncaught
        return {}

    with caplog.at_level(logging.DEBUG):
        with pytest.raises(answer.HandlerError):
            guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
        with pytest.raises(answer.HandlerError):
            guard.invoke(envelope("acme", "m2"), FakeContext("acme"), resolving("ssm:/tenants/globex/db-password"))
    captured = capsys.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err] + [repr(r.__dict__) for r in caplog.records])
    # Debug logging was on, botocore's included: the bodies of other answers are there.
    assert any(r.name == "botocore.parsers" and str(r.msg).startswith("Response body") for r in caplog.records)
    assert "GetCallerIdentityResponse" in text
    for value in (*values, credentials["secret_key"], credentials["token"]):
        assert value not in text
