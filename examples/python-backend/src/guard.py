"""The tenant guard (PRODUCT.md §6), the Python twin of ``shared::function::EnvironmentGuard``:
same rules, same error types, same answers, so the router reads both backends the same way.

- The tenant comes from the invocation context (``context.tenant_id``: awslambdaric reads the
  Runtime API's ``Lambda-Runtime-Aws-Tenant-Id``), never from the payload; none: ``Tenant.Missing``.
- The first tenant pins the execution environment for life. Any other makes it fail closed: that
  invocation and every later one are answered ``Tenant.EnvironmentFailedClosed`` (a fault of the
  environment, transient for the router); the caller ends the process shortly after answering
  (``app.py``).
- An envelope, a batch, or any record of a batch naming another tenant: the whole invocation is
  refused before anything runs (``Tenant.Mismatch``), logged as a security event. So is one that is
  not a valid envelope or batch of version 1, or has a record with an empty ``id`` or
  ``idempotencyKey`` (``Envelope.Invalid``).
- Delivery is at least once; each record's effect happens once within the idempotency window
  (Powertools' idempotency utility, ``idempotency_store``; the TTL, from completion): a duplicate
  answers the stored result with ``duplicate: true`` and the handler does not run. A handler error
  or exception of any kind releases the record's claim, so a redelivery runs it again. It can also
  run again after a crash between its effect and the completion write (once the claim's
  ``in_progress_expiration`` has passed), or when a redelivery arrives after the TTL.
- A batch runs its records in order, one at a time; after a failure ``ordering`` decides what is
  ``skipped`` (``lanes``: the same ``orderingKey``; ``stream``: everything after). Its answer is
  compact: per record ``{id, status, error?, duplicate?}`` (``answer.batch_record_result``). With
  ``answer: per-record`` the invocation succeeds and says what became of each record; without it
  a failed record makes it ``Handler.PartialFailure``.
- Tenant-scoped access (``tenant_access``; on with ``BACKEND_TENANT_ROLE_ARN``): once the invocation
  is admitted (its tenant pinned, its envelopes checked), the tenant's own credentials are made
  fresh for it; without them nothing runs and the invocation (every record of a batch) fails
  ``Tenant.CredentialsUnavailable`` (transient), never with the execution role's. The handler's
  context carries the session (``context.session``) and the idempotency store is bound to it, so
  even the store is reached as the tenant. A tenant id with a ``/`` is refused (``Tenant.Invalid``):
  the access role's prefix grants ``tenants/${aws:PrincipalTag/tenant_id}/*`` would give tenant
  ``acme`` tenant ``acme/x``'s objects and parameters.
- Secrets by reference (``tenant_secrets``): ``context.secret(reference)`` resolves ``ssm:`` and
  ``secretsmanager:`` references with the tenant's session, cached per environment. Without
  tenant-scoped access it raises ``tenant_secrets.NoAccess``, whatever the reference (never a
  resolution with the execution role's); uncaught, that is the handler's ``Handler.Error``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyInvalidStatusError,
    IdempotencyPersistenceLayerError,
)

import answer
import tenant_access
import tenant_secrets
from envelope import NotAnEnvelope, read_delivery, tenant_id_problem

IN_PROGRESS = "the record is being processed by another execution environment; retry later"


class TenantContext:
    """What a tenant handler learns about its invocation: ``tenant_id``, ``request_id``, ``session``
    (a ``boto3.Session``: with tenant-scoped access on, the environment's one session with only the
    tenant's credentials, fresh for this invocation and refreshed in place, so clients built from it
    may be kept; off, the execution role's) and ``secret(reference)`` (``tenant_secrets``; off,
    refused)."""

    __slots__ = ("tenant_id", "request_id", "_session", "_secrets")

    def __init__(self, tenant_id: str, request_id: str, session: Callable[[], Any], secrets: Any | None):
        self.tenant_id, self.request_id, self._session, self._secrets = tenant_id, request_id, session, secrets

    @property
    def session(self) -> Any:
        return self._session()

    def secret(self, reference: str) -> str:
        """The value ``reference`` names (a :class:`tenant_secrets.Secret`), read with the tenant's
        session; raises :class:`tenant_secrets.SecretError`, and :class:`tenant_secrets.NoAccess`
        without tenant-scoped access (``secrets`` None)."""
        if self._secrets is None:
            raise tenant_secrets.NoAccess()
        return self._secrets.resolve(reference, self.tenant_id, self.session)

    def __repr__(self) -> str:
        return f"TenantContext(tenant_id={self.tenant_id!r}, request_id={self.request_id!r})"


class _RecordFailed(Exception):
    """One record of an admitted invocation was not processed: its error type and message."""

    def __init__(self, error: type, message: str):
        super().__init__(message)
        self.error = error


class _Abandoned(Exception):
    """The handler raised a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt``, …): carried as an ``Exception`` through Powertools, which releases the
    claim only for those, then raised again as it was."""

    def __init__(self, original: BaseException):
        super().__init__(repr(original))
        self.original = original


class _Stored(NamedTuple):
    """Powertools' response hook's answer: what the store held for a record processed before."""

    value: Any


class EnvironmentGuard:
    """Per-environment state: the pinned tenant, the fail-closed flag, the idempotency store, the
    tenant's credentials (``access``: off unless given) and resolved secrets."""

    def __init__(self, function: str, store: Any, ttl_seconds: int, log: Any,
                 access: tenant_access.TenantAccess | None = None,
                 secrets: tenant_secrets.SecretResolver | None = None):
        self.function, self.store, self.log = function, store, log
        self.access = access or tenant_access.TenantAccess(None, log=log)
        self.secrets = secrets or tenant_secrets.SecretResolver(log=log)
        self.config = IdempotencyConfig(expires_after_seconds=ttl_seconds, response_hook=self._duplicate)
        self.pinned: str | None = None
        self.failed_closed = False
        self._run_once: Callable | None = None
        self._store_session: Any = None

    def admit(self, context_tenant: str | None) -> str:
        if self.failed_closed:
            raise answer.TenantEnvironmentFailedClosed(_FAILED_CLOSED)
        if context_tenant is None:
            raise answer.TenantMissing(
                "the invocation has no tenant id: the function must run in tenant isolation mode"
            )
        problem = tenant_id_problem(context_tenant)
        if problem is None and self.access.enabled and "/" in context_tenant:
            problem = (f"tenant id has a '/', refused with tenant-scoped access ({tenant_access.ROLE_VARIABLE}): "
                       f"the access role's prefix grants would let another tenant's path cover it")
        if problem:
            raise answer.TenantInvalid(f"the invocation's tenant id is invalid: {problem}")
        if self.pinned is None:
            self.pinned = context_tenant
        elif self.pinned != context_tenant:
            self.failed_closed = True
            self.log.error(
                "security: execution environment offered a second tenant; failing closed",
                extra={"security_event": "environment-tenant-mismatch", "tenant_id": self.pinned,
                       "offered_tenant_id": context_tenant},
            )
            raise answer.TenantEnvironmentFailedClosed(_FAILED_CLOSED)
        return context_tenant

    def invoke(self, event: Any, context: Any, handler: Callable[[dict, TenantContext], Any]) -> Any:
        """Runs one invocation: ``handler(envelope, TenantContext)`` once per record. Returns the
        result (the async destination's or the request-response caller's); raises a
        :class:`answer.GuardError` subclass, whose class name is the ``errorType``."""
        tenant = self.admit(getattr(context, "tenant_id", None))
        try:
            kind, delivery = read_delivery(event)
        except NotAnEnvelope as error:
            raise answer.EnvelopeInvalid(f"the payload is not a valid envelope: {error}") from None
        self.config.register_lambda_context(context)
        if kind == "one":
            self._check_tenant(tenant, delivery["tenantId"], delivery["id"], delivery["correlationId"])
            tenant_context = self._tenant_context(tenant, context)
            try:
                return self._process(delivery, tenant_context, handler)
            except _RecordFailed as failed:
                prefix = "tenant handler failed: " if failed.error is answer.HandlerError else ""
                raise failed.error(f"{prefix}{failed}") from None
        self._check_tenant(tenant, delivery["tenantId"], "-", "-")
        for record in delivery["records"]:
            self._check_tenant(tenant, record["tenantId"], record["id"], record["correlationId"])
        tenant_context = self._tenant_context(tenant, context)
        results, failures, stopped_lanes, first_failed = [], [], {}, None
        processed = duplicates = skipped = 0
        for record in delivery["records"]:
            key = record.get("orderingKey")
            earlier = first_failed if delivery.get("ordering") == "stream" else None
            if delivery.get("ordering") == "lanes" and key is not None:
                earlier = stopped_lanes.get(key)
            if earlier is not None:
                why = f"not run: record {earlier} it is ordered after failed"
                results.append(answer.batch_record_result(record["id"], "skipped", why))
                skipped += 1
                continue
            try:
                result = self._process(record, tenant_context, handler)
            except _RecordFailed as failed:
                results.append(answer.batch_record_result(record["id"], "failed", str(failed)))
                failures.append(f"{record['id']}: {failed}")
                first_failed = record["id"] if first_failed is None else first_failed
                if key is not None:
                    stopped_lanes.setdefault(key, record["id"])
                continue
            # Compact: the handler's result stays out of a batch answer, which must fit Lambda's
            # response limit whatever the handler returns.
            duplicate = "duplicate" in result
            duplicates += duplicate
            processed += not duplicate
            results.append(answer.batch_record_result(record["id"], "processed", duplicate=duplicate))
        if failures and delivery.get("answer") != "per-record":
            raise answer.HandlerPartialFailure(
                f"tenant handler failed for {len(failures)} records of the batch ({skipped} not run "
                f"after them): {'; '.join(failures)}",
                processed=processed, duplicates=duplicates, failed=len(failures), skipped=skipped,
            )
        return {"tenantId": tenant, "records": results, "processed": processed,
                "duplicates": duplicates, "failed": len(failures), "skipped": skipped}

    def _tenant_context(self, tenant: str, context: Any) -> TenantContext:
        """The handler's context, the tenant's credentials fresh for the invocation (with
        tenant-scoped access) and the store bound to them; raises
        :class:`answer.TenantCredentialsUnavailable`, and nothing runs."""
        request_id = getattr(context, "aws_request_id", "")
        if not self.access.enabled:
            # No tenant session, no secrets: the execution role reaches every tenant's.
            return TenantContext(tenant, request_id, lambda: self.access.base, None)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        try:
            session = self.access.session(tenant, remaining() if callable(remaining) else None)
        except tenant_access.CredentialsUnavailable as error:
            raise answer.TenantCredentialsUnavailable(
                f"the tenant's credentials are unavailable: {error}; not processed, retry later") from None
        except tenant_access.WrongTenant:  # cannot happen past `admit`; if it did, serve nobody
            self.failed_closed = True
            self.log.error("security: tenant credentials asked for another tenant; failing closed",
                           extra={"security_event": "credentials-tenant-mismatch", "tenant_id": self.access.tenant,
                                  "offered_tenant_id": tenant})
            raise answer.TenantEnvironmentFailedClosed(_FAILED_CLOSED) from None
        if session is not self._store_session:
            bind = getattr(self.store, "use_session", None)
            if bind is not None:
                bind(session)
            self._store_session = session
        return TenantContext(tenant, request_id, lambda: session, self.secrets)

    def _check_tenant(self, tenant: str, named: str, record_id: str, correlation_id: str) -> None:
        if named == tenant:
            return
        self.log.error(
            "security: envelope for another tenant refused",
            extra={"security_event": "envelope-tenant-mismatch", "tenant_id": tenant,
                   "envelope_tenant_id": named, "record_id": record_id, "correlation_id": correlation_id},
        )
        raise answer.TenantMismatch("the envelope's tenant does not match the invocation's tenant")

    def _process(self, envelope: dict, context: TenantContext, handler: Callable) -> dict:
        """Runs ``handler`` for one admitted envelope once (claimed in the store first)."""
        if self._run_once is None:  # the tenant is pinned by now: one prefix for life
            self._run_once = idempotent_function(
                data_keyword_argument="envelope", persistence_store=self.store, config=self.config,
                key_prefix=f"{self.function}#{context.tenant_id}",
            )(self._run)
        where = {"tenant_id": context.tenant_id, "record_id": envelope["id"],
                 "correlation_id": envelope["correlationId"]}
        try:
            output = self._run_once(envelope=envelope, context=context, handler=handler)
        except _Abandoned as abandoned:  # the claim is released: re-raise what the handler raised
            raise abandoned.original from None
        except (IdempotencyAlreadyInProgressError, IdempotencyInvalidStatusError, IdempotencyPersistenceLayerError,
                IdempotencyInconsistentStateError) as error:
            cause = error.__cause__ or error
            if isinstance(error, IdempotencyAlreadyInProgressError) or isinstance(cause, IdempotencyInvalidStatusError):
                # Like the Rust store, an item in any state but COMPLETED holds the record off.
                self.log.warning("record in progress in another environment; not processed", extra=where)
                raise _RecordFailed(answer.IdempotencyInProgress, IN_PROGRESS) from None
            self.log.warning("idempotency store unavailable; record not processed",
                             extra={**where, "error": repr(cause)})
            message = f"the idempotency store is unavailable: {cause}; not processed, retry later"
            raise _RecordFailed(answer.IdempotencyStoreUnavailable, message) from None
        if isinstance(output, _Stored):
            self.log.info("duplicate record recognised; not processed again", extra=where)
            return _duplicate_answer(output.value, envelope, context.tenant_id)
        return output

    def _run(self, *, envelope: dict, context: TenantContext, handler: Callable) -> dict:
        where = {"tenant_id": context.tenant_id, "record_id": envelope["id"],
                 "correlation_id": envelope["correlationId"]}
        # Every way out but a result the store can keep releases the claim (Powertools deletes it
        # when this raises an Exception), so a redelivery runs the record again, never `duplicate`.
        try:
            result = handler(envelope, context)
        except Exception as error:  # noqa: BLE001 - any handler error fails the record
            self.log.warning("tenant handler failed", extra={**where, "error": str(error)})
            raise _RecordFailed(answer.HandlerError, str(error)) from error
        except BaseException as error:
            self.log.warning("tenant handler raised; claim released", extra={**where, "error": repr(error)})
            raise _Abandoned(error) from error
        output = {**_summary(envelope, context.tenant_id), "status": "processed", "result": result}
        try:
            # What the store writes: a result it cannot write would leave the claim held.
            json.dumps(output, cls=Encoder)
        except (TypeError, ValueError) as error:
            message = f"the handler's result is not JSON: {error}"
            self.log.warning("tenant handler failed", extra={**where, "error": message})
            raise _RecordFailed(answer.HandlerError, message) from error
        self.log.info("record processed", extra=where)
        return output

    @staticmethod
    def _duplicate(response: Any, record: Any) -> _Stored:
        """Powertools' response hook: a stored result returned instead of running the handler."""
        return _Stored(response)


_FAILED_CLOSED = "this execution environment was offered a second tenant and fails closed"


def _duplicate_answer(stored: Any, envelope: dict, tenant: str) -> dict:
    """The answer to a record processed before: the first run's stored result with
    ``duplicate: true``; always with ``status: processed``, and with ``result: null`` when the
    stored data cannot be read back (missing, not JSON, not a result object)."""
    if isinstance(stored, dict):
        return {**_summary(envelope, tenant), "result": None, **stored, "status": "processed", "duplicate": True}
    return {**_summary(envelope, tenant), "status": "processed", "result": None, "duplicate": True}


def _summary(envelope: dict, tenant: str) -> dict:
    return {"tenantId": tenant, "id": envelope["id"], "idempotencyKey": envelope["idempotencyKey"],
            "correlationId": envelope["correlationId"], "source": envelope["source"]}
