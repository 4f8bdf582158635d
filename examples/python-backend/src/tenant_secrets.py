"""Secrets by reference (issue 24's contract, the same as the Rust guard's): a tenant's configuration
names a secret instead of holding its value, and the handler asks the guard's context to resolve
it (``context.secret(reference)``), with the tenant's credentials (``tenant_access``).

- ``ssm:/tenants/<tenant>/<name>``: SSM ``GetParameter`` with decryption. A reference outside
  ``/tenants/<this environment's tenant>/`` (or with an empty or ``..`` segment below it) is refused
  before any call (:class:`SecretRefused`, logged as a security event with the path it named).
- ``secretsmanager:<secret-id>[:<json-key>]``: ``GetSecretValue``'s ``SecretString``; with a
  json-key, that member of the JSON object it holds (a string as it is, any other JSON value as
  its compact JSON text). The id may be an ARN (its own six colons belong to it). Which secrets a
  tenant reaches is the access role's to say (``secretsmanager:ResourceTag/tenant_id``).
- What was read is kept per environment (one tenant's) in an LRU of :data:`CAPACITY` entries for
  ``BACKEND_SECRETS_TTL_SECONDS`` (default 300, at least 1), so a rotation is seen within the TTL
  without a redeploy; two json-keys of one secret share one entry and one call.
- Without tenant-scoped access (``BACKEND_TENANT_ROLE_ARN`` unset) every reference is refused,
  whatever it names and before any call (:class:`NoAccess`): it is never resolved with the
  execution role, which reaches every tenant's secrets.
- A reference that is not one, a refusal, a failed call, a missing member: :class:`SecretError`,
  which the handler may catch; uncaught, the guard answers it ``Handler.Error`` (transient).
- Values never reach a log line, an error or a repr: errors name the reference and AWS's error
  code, never what was read; the value is a :class:`Secret`, a ``str`` whose ``repr`` is redacted;
  botocore's debug lines of response bodies are dropped while resolving
  (``tenant_access.response_bodies_unlogged``).
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tenant_access import response_bodies_unlogged

TTL_VARIABLE = "BACKEND_SECRETS_TTL_SECONDS"
DEFAULT_TTL_SECONDS = 300
#: How many resolved secrets an environment keeps (the least recently used goes first).
CAPACITY = 256
SSM_PREFIX, SECRETS_MANAGER_PREFIX = "ssm:", "secretsmanager:"
NO_ACCESS = "secrets by reference need BACKEND_TENANT_ROLE_ARN (tenant-scoped access)"
_NOT_A_REFERENCE = (f"not a secret reference: expected {SSM_PREFIX}/tenants/<tenant>/<name> or "
                    f"{SECRETS_MANAGER_PREFIX}<secret-id>[:<json-key>]")


def clock() -> float:
    """The clock entries age by (a function, so tests can move it)."""
    return time.monotonic()


class SecretError(Exception):
    """A secret reference that could not be resolved: why, never a value."""


class SecretRefused(SecretError):
    """A reference this environment's tenant may not use (refused before any call)."""


class NoAccess(SecretError):
    """Secrets by reference asked for while tenant-scoped access is off: refused, whatever the
    reference, before any call (the Rust guard's ``SecretError::NoAccess``)."""

    def __init__(self) -> None:
        super().__init__(NO_ACCESS)


class Secret(str):
    """A resolved secret: the value as a ``str``, its ``repr`` redacted (tracebacks, ``%r``, debug
    dumps of the context)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('<redacted>')"


def ttl_from_env(environ: Mapping[str, str]) -> int:
    """``BACKEND_SECRETS_TTL_SECONDS`` (default 300): a whole number of at least 1, else an error
    naming it."""
    text = environ.get(TTL_VARIABLE)
    if text is None:
        return DEFAULT_TTL_SECONDS
    if not re.fullmatch(r"\s*[0-9]+\s*", text) or int(text) < 1:
        raise ValueError(f"{TTL_VARIABLE}: expected a whole number of seconds, at least 1, got {text!r}")
    return int(text)


def parse(reference: Any, tenant: str) -> tuple[str, str, str | None]:
    """``(service, name, json_key)`` of a reference ``tenant`` may use (``service``: ``ssm`` or
    ``secretsmanager``); raises :class:`SecretRefused` for an ``ssm:`` path outside
    ``/tenants/<tenant>/`` and :class:`SecretError` for anything that is no reference (without
    repeating it: it might be a value put where a reference belongs)."""
    if not isinstance(reference, str):
        raise SecretError(_NOT_A_REFERENCE)
    if reference.startswith(SSM_PREFIX):
        name, own = reference[len(SSM_PREFIX):], f"/tenants/{tenant}/"
        below = name[len(own):] if name.startswith(own) else ""
        if not below or any(part in ("", "..") for part in below.split("/")):
            raise SecretRefused(f"secret reference refused: an {SSM_PREFIX} reference must name a parameter "
                                f"under {own} (this environment's tenant); nothing was read")
        return "ssm", name, None
    if reference.startswith(SECRETS_MANAGER_PREFIX):
        rest = reference[len(SECRETS_MANAGER_PREFIX):]
        if rest.startswith("arn:"):
            parts = rest.split(":")
            secret_id = ":".join(parts[:7]) if len(parts) >= 7 else ""
            key = ":".join(parts[7:]) if len(parts) > 7 else None
        else:
            secret_id, colon, key = rest.partition(":")
            key = key if colon else None
        if not secret_id or key == "":
            raise SecretError(f"not a secret reference: expected {SECRETS_MANAGER_PREFIX}<secret-id>[:<json-key>]")
        return "secretsmanager", secret_id, key
    raise SecretError(_NOT_A_REFERENCE)


class SecretResolver:
    """The environment's resolved secrets (see the module's docs): ``resolve(reference, tenant,
    session)`` with the tenant's ``boto3.Session``."""

    def __init__(self, ttl_seconds: int = DEFAULT_TTL_SECONDS, log: Any = None):
        self.ttl_seconds = ttl_seconds
        self.log = log or logging.getLogger(__name__)
        self._cache: collections.OrderedDict[tuple, tuple[str, float]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    def resolve(self, reference: str, tenant: str, session: Any) -> Secret:
        try:
            service, name, key = parse(reference, tenant)
        except SecretRefused:
            self.log.error(
                "security: secret reference to another tenant's path refused",
                extra={"security_event": "secret-reference-refused", "tenant_id": tenant,
                       "reference": reference},
            )
            raise
        where = f"{service}:{name}"
        raw = self._cached((tenant, service, name))
        if raw is None:
            raw = self._read(service, name, session, where)
            self._keep((tenant, service, name), raw)
        if key is None:
            return Secret(raw)
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise SecretError(f"secret {where} is not a JSON object: it has no member {key!r}")
        if key not in document:
            raise SecretError(f"secret {where} has no member {key!r}")
        member = document[key]
        return Secret(member if isinstance(member, str) else json.dumps(member, separators=(",", ":")))

    def _cached(self, entry: tuple) -> str | None:
        with self._lock:
            kept = self._cache.get(entry)
            if kept is None or clock() - kept[1] >= self.ttl_seconds:
                return None
            self._cache.move_to_end(entry)
            return kept[0]

    def _keep(self, entry: tuple, value: str) -> None:
        with self._lock:
            self._cache[entry] = (value, clock())
            self._cache.move_to_end(entry)
            while len(self._cache) > CAPACITY:
                self._cache.popitem(last=False)

    def _client(self, session: Any, service: str) -> Any:
        if session is not self._session:  # another session: no client of the last one's
            self._session, self._clients = session, {}
        if service not in self._clients:
            self._clients[service] = session.client(service)
        return self._clients[service]

    def _read(self, service: str, name: str, session: Any, where: str) -> str:
        operation = "GetParameter" if service == "ssm" else "GetSecretValue"
        try:
            with response_bodies_unlogged():
                client = self._client(session, service)
                if service == "ssm":
                    return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
                answer = client.get_secret_value(SecretId=name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise SecretError(f"secret {where} not resolved: {operation} failed ({code})") from None
        except BotoCoreError as error:
            raise SecretError(f"secret {where} not resolved: {operation} failed ({type(error).__name__})") from None
        if "SecretString" not in answer:
            raise SecretError(f"secret {where} not resolved: it is binary (only secret strings are resolved)")
        return answer["SecretString"]
