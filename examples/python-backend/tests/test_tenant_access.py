"""Tenant-scoped access (issue 24's contract) against moto's STS and DynamoDB, in process: the
credentials the handler and the idempotency store get are the tenant access role's session, never
the execution role's; they are kept, refreshed before expiry, never another tenant's; without them
nothing runs. moto evaluates no IAM condition: what the role's policies allow is tested in CDK."""

from __future__ import annotations

import logging
import types

import boto3
import pytest

import answer
import idempotency_store
import tenant_access
from conftest import ENVIRONMENT, ROLE, FakeContext, TenantGuard, batch, envelope
from guard import EnvironmentGuard

EXECUTION_ROLE_ARN = "arn:aws:sts::123456789012:user/moto"  # what moto says for the environment's keys


def execution_key() -> str:
    """The access key of the environment's own credentials (the execution role's)."""
    return boto3.Session().get_credentials().access_key


def who(record, context):
    """A handler that asks STS who it is, with the session the guard gave it."""
    identity = context.session.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "accessKey": context.session.get_credentials().access_key}


def error_type(excinfo) -> str:
    return type(excinfo.value).__name__


def test_the_handler_works_as_the_tenants_role_session_never_the_execution_role(aws):
    guard = TenantGuard()
    out = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), who)
    assert out["result"]["arn"] == f"arn:aws:sts::123456789012:assumed-role/tenant-access/tenant-acme-{ENVIRONMENT}"
    assert out["result"]["accessKey"] != execution_key()
    assert boto3.client("sts").get_caller_identity()["Arn"] == EXECUTION_ROLE_ARN, "the environment's own"
    assert guard.assumed == [{
        "RoleArn": ROLE, "RoleSessionName": f"tenant-acme-{ENVIRONMENT}", "DurationSeconds": 900,
        "Tags": [{"Key": "tenant_id", "Value": "acme"}], "TransitiveTagKeys": ["tenant_id"],
    }]


def test_the_session_has_no_credentials_but_the_tenants(aws, monkeypatch):
    guard = TenantGuard()
    seen = {}

    def handler(record, context):
        seen["session"] = context.session
        return {}

    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    session = seen["session"]
    # The execution role's keys are in the environment; the session's credential chain never reads them.
    assert session.get_credentials().access_key != execution_key()
    assert session.get_credentials().method == "tenant-access-role"
    assert session.region_name == "us-east-1"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "changed")
    assert session.client("sts").get_caller_identity()["Arn"].startswith(
        "arn:aws:sts::123456789012:assumed-role/tenant-access/")


def test_the_credentials_are_kept_for_the_environment(aws):
    guard = TenantGuard()
    sessions = []
    handler = lambda record, context: sessions.append(context.session) or {}  # noqa: E731
    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    guard.invoke(batch("acme", [envelope("acme", "m2"), envelope("acme", "m3")]), FakeContext("acme", "r2"), handler)
    assert len(guard.assumed) == 1
    assert sessions[0] is sessions[1] is sessions[2]


def test_a_second_tenant_never_gets_the_first_ones_session(aws):
    guard = TenantGuard()
    first = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), who)["result"]
    ran = []
    with pytest.raises(answer.TenantEnvironmentFailedClosed):
        guard.invoke(envelope("globex", "m2"), FakeContext("globex"), lambda r, c: ran.append(c.session))
    # The environment failed closed before anything could be handed out, and it stays closed.
    with pytest.raises(answer.TenantEnvironmentFailedClosed):
        guard.invoke(envelope("acme", "m3"), FakeContext("acme"), lambda r, c: ran.append(c.session))
    assert ran == []
    assert [call["Tags"] for call in guard.assumed] == [[{"Key": "tenant_id", "Value": "acme"}]]
    # Below the guard, the credentials refuse another tenant too, without calling STS.
    with pytest.raises(tenant_access.WrongTenant):
        guard.access.session("globex", 30_000)
    assert len(guard.assumed) == 1
    # globex's own environment gets a session of its own.
    other = TenantGuard()
    second = other.invoke(envelope("globex", "m2"), FakeContext("globex"), who)["result"]
    assert second["arn"].endswith(f"/tenant-globex-{ENVIRONMENT}")
    assert second["accessKey"] != first["accessKey"]


def test_a_guard_bug_asking_for_another_tenants_credentials_fails_the_environment_closed(aws, caplog):
    guard = TenantGuard()
    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), who)
    guard.pinned = None  # as if `admit` had let another tenant through
    ran = []
    with caplog.at_level(logging.ERROR), pytest.raises(answer.TenantEnvironmentFailedClosed):
        guard.invoke(envelope("globex", "m2"), FakeContext("globex"), lambda r, c: ran.append(r))
    assert ran == [] and guard.failed_closed and len(guard.assumed) == 1
    assert any(getattr(r, "security_event", None) == "credentials-tenant-mismatch" for r in caplog.records)


def test_the_credentials_are_refreshed_before_they_expire(aws, monkeypatch):
    guard = TenantGuard()
    clients, keys = [], []

    def handler(record, context):
        keys.append(context.session.get_credentials().access_key)
        if not clients:
            clients.append(context.session.client("sts"))  # a client kept for the environment
        return {}

    start = tenant_access.now()
    guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    # 900-second credentials: kept while more than 5 minutes remain …
    monkeypatch.setattr(tenant_access, "now", lambda: start + 599)
    guard.invoke(envelope("acme", "m2"), FakeContext("acme"), handler)
    assert len(guard.assumed) == 1 and keys[1] == keys[0]
    # … obtained again, before the handler runs, once less do.
    monkeypatch.setattr(tenant_access, "now", lambda: start + 601)
    guard.invoke(envelope("acme", "m3"), FakeContext("acme"), handler)
    assert len(guard.assumed) == 2 and keys[2] != keys[0]
    # The client built before the refresh signs with the new credentials.
    signed = []
    clients[0].meta.events.register("before-send.sts",
                                    lambda request, **_: signed.append(request.headers["Authorization"]))
    clients[0].get_caller_identity()
    assert f"Credential={keys[2]}/" in str(signed[0])


def test_short_lived_credentials_are_refreshed_at_half_their_lifetime(monkeypatch):
    access = tenant_access.TenantAccess(ROLE)
    monkeypatch.setattr(tenant_access, "now", lambda: 1_000.0)
    access.obtained_at, access.expires_at = 1_000.0 - 150, 1_000.0 + 250  # 400 s, 250 left: half is 200
    assert access._fresh()
    access.obtained_at, access.expires_at = 1_000.0 - 201, 1_000.0 + 199
    assert not access._fresh()
    access.obtained_at, access.expires_at = 1_000.0 - 3000, 1_000.0 + 301  # long-lived: 5 minutes
    assert access._fresh()


def test_sts_unreachable_fails_the_record_transiently_and_nothing_runs(aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    guard = TenantGuard()
    ran = []
    handler = lambda r, c: ran.append(r["id"]) or {}  # noqa: E731
    with pytest.raises(answer.TenantCredentialsUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), handler)
    assert error_type(excinfo) == "Tenant.CredentialsUnavailable"
    assert not isinstance(excinfo.value, answer.Refusal) and not answer.is_guard_refusal(error_type(excinfo))
    assert str(excinfo.value).startswith(f"the tenant's credentials are unavailable: AssumeRole of {ROLE} failed: ")
    assert str(excinfo.value).endswith("; not processed, retry later")
    # A batch: every record fails with it, as a function error; not even a claim was made.
    with pytest.raises(answer.TenantCredentialsUnavailable):
        guard.invoke(batch("acme", [envelope("acme", "m2"), envelope("acme", "m3")], answer="per-record"),
                     FakeContext("acme"), handler)
    assert ran == [] and list(guard.store._items) == []
    assert len(guard.assumed) == 2 * tenant_access.STS_ATTEMPTS, "tried again within the deadline"
    # STS back: the redelivery runs, as the tenant.
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS")
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), who)["result"]["arn"].endswith(
        f"/tenant-acme-{ENVIRONMENT}")


def answering(code: str):
    """A ``before-call`` hook: STS answers ``code`` without being called."""
    def hook(**_):
        return types.SimpleNamespace(status_code=400), {"Error": {"Code": code, "Message": "no"},
                                                         "ResponseMetadata": {"HTTPStatusCode": 400}}
    return hook


@pytest.mark.parametrize(("code", "calls"), [("AccessDenied", 1), ("Throttling", 2), ("RegionDisabledException", 1)])
def test_sts_refusing_fails_the_record_transiently(aws, code, calls):
    guard = TenantGuard()
    guard.base.events.register("before-call.sts.AssumeRole", answering(code))
    ran = []
    with pytest.raises(answer.TenantCredentialsUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: ran.append(r))
    assert f"({code})" in str(excinfo.value)
    assert ran == [] and len(guard.assumed) == calls


def test_no_time_left_before_the_deadline_fails_without_calling_sts(aws):
    guard = TenantGuard()
    ran = []
    with pytest.raises(answer.TenantCredentialsUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme", remaining_ms=600), lambda r, c: ran.append(r))
    assert "no time left before the invocation's deadline" in str(excinfo.value)
    assert ran == [] and guard.assumed == []


def test_a_tenant_id_with_a_slash_is_refused_with_tenant_scoped_access(aws):
    guard = TenantGuard()
    with pytest.raises(answer.TenantInvalid) as excinfo:
        guard.invoke(envelope("acme/x", "m1"), FakeContext("acme/x"), who)
    assert error_type(excinfo) == "Tenant.Invalid" and answer.is_guard_refusal(error_type(excinfo))
    assert "tenant id has a '/'" in str(excinfo.value) and "BACKEND_TENANT_ROLE_ARN" in str(excinfo.value)
    assert guard.pinned is None and guard.assumed == []
    # The environment still serves a valid tenant; `:` is no prefix separator and passes.
    assert guard.invoke(envelope("acme:eu", "m1"), FakeContext("acme:eu"), who)["result"]["arn"].endswith(
        f"/tenant-acme-eu-{ENVIRONMENT}")
    # Without tenant-scoped access the same id is Lambda's to accept, as before.
    plain = EnvironmentGuard("backend", idempotency_store.MemoryStore(), 3600, logging.getLogger("t"))
    assert plain.invoke(envelope("acme/x", "m1"), FakeContext("acme/x"), lambda r, c: {})["status"] == "processed"


def test_without_a_role_the_handler_has_the_execution_roles_session(aws):
    guard = EnvironmentGuard("backend", idempotency_store.MemoryStore(), 3600, logging.getLogger("t"))
    assert not guard.access.enabled
    assert guard.invoke(envelope("acme", "m1"), FakeContext("acme"), who)["result"] == {
        "arn": EXECUTION_ROLE_ARN, "accessKey": execution_key()}


TABLE = "idempotency"


def test_the_idempotency_store_is_reached_with_the_tenants_credentials(aws):
    client = boto3.client("dynamodb")
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    store = idempotency_store.store_from_env({"BACKEND_IDEMPOTENCY_TABLE": TABLE}, logging.getLogger("t"),
                                             tenant_scoped=True)
    # Before the guard binds it there is no client at all, the execution role's least of all.
    with pytest.raises(idempotency_store.NoTenantSession):
        store.client.get_item(TableName=TABLE, Key={"id": {"S": "x"}})
    guard = TenantGuard(store)
    keys = []
    first = guard.invoke(envelope("acme", "m1"), FakeContext("acme"),
                         lambda r, c: keys.append(c.session.get_credentials().access_key) or {})
    signed = []
    store.client.meta.events.register("before-send.dynamodb", lambda request, **_: signed.append(
        (request.headers["X-Amz-Target"], request.headers["Authorization"])))
    again = guard.invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: {})
    assert again == {**first, "duplicate": True}
    assert signed and all(f"Credential={keys[0]}/" in str(auth) for _, auth in signed), signed
    assert client.get_item(TableName=TABLE, Key={"id": {"S": "backend#acme#arn:q#m1"}})["Item"]["status"] == {
        "S": "COMPLETED"}


def test_an_unbound_store_fails_as_unavailable_instead_of_reaching_the_table():
    store = idempotency_store.DynamoDbStore(table_name=TABLE, tenant_scoped=True)
    guard = EnvironmentGuard("backend", store, 3600, logging.getLogger("t"))  # access off: nobody binds it
    with pytest.raises(answer.IdempotencyStoreUnavailable) as excinfo:
        guard.invoke(envelope("acme", "m1"), FakeContext("acme"), lambda r, c: {})
    assert "not bound to the tenant's session" in str(excinfo.value)


def test_the_session_name_is_made_safe_for_sts():
    assert tenant_access.session_name("acme", "0123abcd") == "tenant-acme-0123abcd"
    assert tenant_access.session_name("a b:c/d+e=f,g.h@i_j-k", "ff") == "tenant-a-b-c-d+e=f,g.h@i_j-k-ff"
    # Too long: the tenant part is cut, never the environment's (as the Rust guard's session_name).
    long = tenant_access.session_name("x" * 100, "0123abcd")
    assert len(long) == 64 and long.endswith("-0123abcd")
    assert long == "tenant-" + "x" * (64 - len("tenant-") - len("-0123abcd")) + "-0123abcd"
    assert tenant_access.session_name("é/" * 50, "0123abcd") == "tenant-" + "-" * 48 + "-0123abcd"
    assert len(tenant_access.TenantAccess(ROLE).environment) == 8


def test_the_settings_are_checked_at_start(caplog):
    assert tenant_access.role_from_env({}) is None
    assert tenant_access.role_from_env({"BACKEND_TENANT_ROLE_ARN": f" {ROLE} "}) == ROLE
    for blank in ("", "  "):
        with pytest.raises(ValueError, match="^BACKEND_TENANT_ROLE_ARN is set but blank"):
            tenant_access.from_env({"BACKEND_TENANT_ROLE_ARN": blank})
    assert tenant_access.session_seconds_from_env({}) == 900
    assert tenant_access.session_seconds_from_env({"BACKEND_TENANT_SESSION_SECONDS": " 3600 "}) == 3_600
    # STS caps a role-chained session (assumed with the execution role's credentials) at one hour.
    for bad in ("899", "3601", "7200", "43200", "0", "-900", "15m", ""):
        with pytest.raises(ValueError, match="^BACKEND_TENANT_SESSION_SECONDS: expected a whole number of "
                                             "seconds from 900 to 3600, got "):
            tenant_access.session_seconds_from_env({"BACKEND_TENANT_SESSION_SECONDS": bad})
        with pytest.raises(ValueError, match="^BACKEND_TENANT_SESSION_SECONDS: "):
            tenant_access.from_env({"BACKEND_TENANT_ROLE_ARN": ROLE, "BACKEND_TENANT_SESSION_SECONDS": bad})
    log = logging.getLogger("t")
    with caplog.at_level(logging.WARNING):
        assert not tenant_access.from_env({}, log).enabled
        assert tenant_access.from_env({"BACKEND_TENANT_ROLE_ARN": ROLE}, log).enabled
        assert tenant_access.from_env({"BACKEND_TENANT_ROLE_ARN": ROLE, "BACKEND_TENANT_SESSION_SECONDS": "3600"},
                                      log).session_seconds == 3_600
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("BACKEND_TENANT_ROLE_ARN is not set: every tenant of this function shares the "
                                  "execution role's access")
