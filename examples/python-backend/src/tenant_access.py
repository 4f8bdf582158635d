"""Tenant-scoped credentials (issue 24's contract, the same as the Rust guard's): what the tenant's
handler, the idempotency store and the secret resolver reach AWS with, instead of the execution
role that every tenant of the function shares.

- ``BACKEND_TENANT_ROLE_ARN`` names the tenant access role. Once the environment is pinned to its
  tenant, :class:`TenantAccess` calls STS ``AssumeRole`` with that role, ``RoleSessionName``
  ``tenant-<tenant>-<environment>`` made safe for STS (:func:`session_name`; ``<environment>``: 8
  random hex digits drawn once per environment), the session tag ``tenant_id=<tenant>``, made
  transitive, and ``DurationSeconds`` ``BACKEND_TENANT_SESSION_SECONDS`` (900 by default,
  900..3600: the execution role's credentials are a role session themselves, and STS caps a
  session assumed with them, role chaining, at one hour). The role's permissions are all scoped by
  ``${aws:PrincipalTag/tenant_id}``.
- The credentials are kept in the environment (it serves one tenant for life) and obtained again,
  before the handler runs and within the invocation's deadline, when less than 5 minutes or half
  their lifetime (the shorter) remain. :meth:`TenantAccess.session` hands out one ``boto3.Session``
  per environment whose only credentials are those (a credential resolver of its own, nothing of
  the execution role's chain); a refresh replaces them in place, so a client built from it before
  signs with the new ones.
- No credentials (STS unreachable, AccessDenied, throttled, out of time): :class:`CredentialsUnavailable`,
  which the guard answers ``Tenant.CredentialsUnavailable`` (transient) without running anything;
  never a fallback to the execution role. Asked for another tenant than the one it serves, it
  raises :class:`WrongTenant` without calling anything (the guard has failed the environment
  closed before that could happen).
- Unset ``BACKEND_TENANT_ROLE_ARN``: tenant-scoped access is off (the handler's session is the
  execution role's, and secrets by reference are refused: ``tenant_secrets.NoAccess``), with a
  warning at start.
- STS's answer carries the secret key: botocore's debug log of response bodies is dropped while
  the guard calls STS or resolves a secret (:func:`response_bodies_unlogged`), and its other debug
  lines show ``<redacted>`` for the tenant credentials' secret key and session token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError

ROLE_VARIABLE = "BACKEND_TENANT_ROLE_ARN"
SESSION_SECONDS_VARIABLE = "BACKEND_TENANT_SESSION_SECONDS"
DEFAULT_SESSION_SECONDS = 900
#: ``BACKEND_TENANT_SESSION_SECONDS``'s range. The most is what STS allows a role session obtained
#: with role credentials (the execution role's): role chaining caps a session at one hour, whatever
#: ``DurationSeconds`` asks, so a longer one could only fail every ``AssumeRole``.
MIN_SESSION_SECONDS, MAX_SESSION_SECONDS = 900, 3_600
#: The session tag every permission of the access role is scoped by (``aws:PrincipalTag/tenant_id``).
TAG_KEY = "tenant_id"
#: Obtained again when less than this (or half the credentials' lifetime, the shorter) remains.
REFRESH_MARGIN_S = 300
#: What an invocation keeps of its remaining time for the record itself after obtaining credentials.
DEADLINE_RESERVE_MS = 500
#: One STS call's connect and read timeout, at most, and how many calls one refresh makes at most.
STS_TIMEOUT_S = 3.0
STS_ATTEMPTS = 2
#: Without a known deadline (no Lambda context), what one refresh may take.
NO_DEADLINE_BUDGET_S = 2 * STS_ATTEMPTS * STS_TIMEOUT_S
_RETRIED_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "InternalFailure",
                            "ServiceUnavailable", "IDPCommunicationError"})
_UNSAFE_SESSION_CHARACTERS = re.compile(r"[^A-Za-z0-9_+=,.@-]")
#: The longest ``RoleSessionName`` STS accepts.
SESSION_NAME_MAX = 64


def now() -> float:
    """The wall clock credentials expire by (a function, so tests can move it)."""
    return time.time()


class CredentialsUnavailable(Exception):
    """The tenant's credentials could not be obtained: why, never a credential."""


class WrongTenant(Exception):
    """Asked for the credentials of another tenant than the one this environment serves."""


def session_name(tenant: str, environment: str) -> str:
    """``tenant-<tenant>-<environment>`` as STS accepts a ``RoleSessionName`` (the Rust guard's
    ``session_name``): the tenant's characters outside ``[\\w+=,.@-]`` become ``-``, and at most 64
    characters, the tenant part cut, never the environment's (which tells environments apart)."""
    room = max(0, SESSION_NAME_MAX - len("tenant-") - 1 - len(environment))
    return f"tenant-{_UNSAFE_SESSION_CHARACTERS.sub('-', tenant)[:room]}-{environment}"


def role_from_env(environ: Mapping[str, str]) -> str | None:
    """``BACKEND_TENANT_ROLE_ARN``: None when unset; set but blank is an error naming it (any other
    value is STS's to accept: one it refuses fails every record ``Tenant.CredentialsUnavailable``)."""
    text = environ.get(ROLE_VARIABLE)
    if text is None:
        return None
    if not text.strip():
        raise ValueError(f"{ROLE_VARIABLE} is set but blank: name the tenant access role, or unset it "
                         f"(every tenant then shares the execution role's access)")
    return text.strip()


def session_seconds_from_env(environ: Mapping[str, str]) -> int:
    """``BACKEND_TENANT_SESSION_SECONDS`` (default 900): a whole number in 900..3600 (STS caps a
    role-chained session at one hour), else an error naming it."""
    text = environ.get(SESSION_SECONDS_VARIABLE)
    if text is None:
        return DEFAULT_SESSION_SECONDS
    if not re.fullmatch(r"\s*[0-9]+\s*", text) or not MIN_SESSION_SECONDS <= int(text) <= MAX_SESSION_SECONDS:
        raise ValueError(f"{SESSION_SECONDS_VARIABLE}: expected a whole number of seconds from "
                         f"{MIN_SESSION_SECONDS} to {MAX_SESSION_SECONDS}, got {text!r}")
    return int(text)


class _Quiet(threading.local):
    on = False


_quiet = _Quiet()
#: The tenant credentials' secret key and session token, which botocore's debug lines must not show.
_sensitive: set[str] = set()


class _BotocoreRedaction(logging.Filter):
    """On botocore's loggers that write requests and answers at debug level: drops the ``Response
    body`` lines while :data:`_quiet` is on, and writes ``<redacted>`` for the tenant credentials'
    secret key and session token (the signer's canonical request and the request's headers carry
    the token). Costs nothing unless debug logging is on: a logger makes no record below its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _quiet.on and str(record.msg).startswith("Response body"):
            return False
        if _sensitive:
            text = record.getMessage()
            redacted = text
            for value in tuple(_sensitive):
                redacted = redacted.replace(value, "<redacted>")
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


for _name in ("botocore.parsers", "botocore.auth", "botocore.endpoint"):
    logging.getLogger(_name).addFilter(_BotocoreRedaction())


@contextlib.contextmanager
def response_bodies_unlogged() -> Iterator[None]:
    """While it lasts, botocore does not log the bodies of the responses it parses (an STS answer
    holds a secret key, a secret's answer its value), whatever the log level."""
    before, _quiet.on = _quiet.on, True
    try:
        yield
    finally:
        _quiet.on = before


class _SwappableCredentials(Credentials):
    """One tenant session's credentials: replaced whole (one reference) on refresh, so every client
    built from the session signs its next request with the new ones."""

    method = "tenant-access-role"

    def __init__(self, frozen: ReadOnlyCredentials):  # noqa: D107 - no Credentials.__init__: read-only
        self._frozen = frozen

    access_key = property(lambda self: self._frozen.access_key)
    secret_key = property(lambda self: self._frozen.secret_key)
    token = property(lambda self: self._frozen.token)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return self._frozen


class _Only(CredentialProvider):
    """A credential chain of one: the tenant session's credentials, nothing of the environment's."""

    METHOD = CANONICAL_NAME = "custom-tenant-access-role"

    def __init__(self, credentials: Credentials):
        super().__init__()
        self.credentials = credentials

    def load(self) -> Credentials:
        return self.credentials


class TenantAccess:
    """The environment's tenant credentials: the one tenant they are for, the ``boto3.Session``
    handed out, and until when its credentials hold. ``role_arn`` None: tenant-scoped access is
    off, and :meth:`session` is the execution role's session."""

    def __init__(self, role_arn: str | None, session_seconds: int = DEFAULT_SESSION_SECONDS,
                 base: boto3.Session | None = None, log: Any = None, environment: str | None = None):
        self.role_arn, self.session_seconds = role_arn, session_seconds
        self.log = log or logging.getLogger(__name__)
        self.environment = environment or secrets.token_hex(4)
        self._base = base
        self.tenant: str | None = None
        self._credentials: _SwappableCredentials | None = None
        self._session: boto3.Session | None = None
        self.expires_at = self.obtained_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.role_arn is not None

    @property
    def base(self) -> boto3.Session:
        """The environment's own session (the execution role's): STS is called with it."""
        if self._base is None:
            self._base = boto3.Session()
        return self._base

    def session(self, tenant: str, remaining_ms: int | None) -> boto3.Session:
        """The session ``tenant``'s handler works with, its credentials fresh for the invocation
        (obtained now when needed, within ``remaining_ms``); raises :class:`CredentialsUnavailable`
        or :class:`WrongTenant`. Off: the execution role's session."""
        if not self.enabled:
            return self.base
        if self.tenant is None:
            self.tenant = tenant  # for life, as the guard pins the environment
        elif tenant != self.tenant:
            raise WrongTenant("this environment's tenant credentials are another tenant's")
        if self._session is None or not self._fresh():
            self._obtain(tenant, remaining_ms)
        return self._session

    def _fresh(self) -> bool:
        left = self.expires_at - now()
        return left > min(REFRESH_MARGIN_S, (self.expires_at - self.obtained_at) / 2)

    def _obtain(self, tenant: str, remaining_ms: int | None) -> None:
        name = session_name(tenant, self.environment)
        started = time.monotonic()
        budget = NO_DEADLINE_BUDGET_S if remaining_ms is None else (remaining_ms - DEADLINE_RESERVE_MS) / 1000
        error: Exception | None = None
        for _ in range(STS_ATTEMPTS):
            left = budget - (time.monotonic() - started)
            if left < 0.2:
                error = error or CredentialsUnavailable("no time left before the invocation's deadline to call STS")
                break
            timeout = min(STS_TIMEOUT_S, left / 2)
            sts = self.base.client("sts", config=Config(connect_timeout=timeout, read_timeout=timeout,
                                                        retries={"total_max_attempts": 1}))
            try:
                with response_bodies_unlogged():
                    answer = sts.assume_role(
                        RoleArn=self.role_arn, RoleSessionName=name, DurationSeconds=self.session_seconds,
                        Tags=[{"Key": TAG_KEY, "Value": tenant}], TransitiveTagKeys=[TAG_KEY],
                    )
            except ClientError as failed:
                error = failed
                if failed.response.get("Error", {}).get("Code") not in _RETRIED_CODES:
                    break
            except BotoCoreError as failed:  # unreachable, timed out, no credentials of its own
                error = failed
            else:
                self._keep(tenant, answer["Credentials"], name)
                return
        self.log.warning("tenant credentials unavailable; nothing runs",
                         extra={"tenant_id": tenant, "role_arn": self.role_arn, "role_session_name": name,
                                "error": str(error)})
        raise CredentialsUnavailable(f"AssumeRole of {self.role_arn} failed: {error}")

    def _keep(self, tenant: str, credentials: dict, name: str) -> None:
        frozen = ReadOnlyCredentials(credentials["AccessKeyId"], credentials["SecretAccessKey"],
                                     credentials["SessionToken"])
        expiration = credentials["Expiration"]
        if isinstance(expiration, dt.datetime):
            expiration = expiration.timestamp()
        self.obtained_at, self.expires_at = now(), float(expiration)
        if self._credentials is not None:
            _sensitive.difference_update((self._credentials.secret_key, self._credentials.token))
        _sensitive.update((frozen.secret_key, frozen.token))
        if self._credentials is None:
            self._credentials = _SwappableCredentials(frozen)
            core = botocore.session.Session()
            core.register_component("credential_provider", CredentialResolver([_Only(self._credentials)]))
            self._session = boto3.Session(botocore_session=core, region_name=self.base.region_name)
        else:
            self._credentials._frozen = frozen
        self.log.info("tenant credentials obtained",
                      extra={"tenant_id": tenant, "role_arn": self.role_arn, "role_session_name": name,
                             "expires_at": dt.datetime.fromtimestamp(self.expires_at, dt.timezone.utc).isoformat()})


def from_env(environ: Mapping[str, str], log: Any = None) -> TenantAccess:
    """The environment's :class:`TenantAccess` from ``BACKEND_TENANT_ROLE_ARN`` and
    ``BACKEND_TENANT_SESSION_SECONDS`` (errors name the variable, a session above 3600 seconds
    included); unset, a warning that every tenant shares the execution role's access."""
    log = log or logging.getLogger(__name__)
    role = role_from_env(environ)
    seconds = session_seconds_from_env(environ)
    if role is None:
        log.warning(
            "%s is not set: every tenant of this function shares the execution role's access (tenant "
            "isolation mode isolates compute only): one tenant's code can reach another's data",
            ROLE_VARIABLE,
        )
    return TenantAccess(role, seconds, log=log)
