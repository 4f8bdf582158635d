"""What a tenant-isolated function answers: the Python twin of ``shared/src/answer.rs``.

The router reads a function error's ``errorType`` to tell a refusal of the tenant guard
(permanent: quarantined as ``backend-refused``) from any other error (transient: redelivered), so
these strings are the contract (``schemas/v1/answer.schema.json``). The guard raises
``Tenant.EnvironmentFailedClosed`` too, but it is no refusal: it is a fault of the environment
(the platform replaces it), and the same record passes in a healthy one. Nor is
``Tenant.CredentialsUnavailable`` (the tenant's credentials could not be obtained: nothing ran, a
redelivery may pass).

A batch answer is compact (``batch_record_result``): per record ``id``, ``status``, ``error``
(at most :data:`MAX_ERROR_CHARS` characters) and ``duplicate``, never the handler's result, so
that a synchronous batch's answer fits Lambda's 6 MB response limit (the router sizes its chunks
by that bound, ``shared::answer::record_answer_bound``).

awslambdaric (and the managed Python runtime, which is built on it) reports an exception raised
by the handler as ``{"errorType": type(exc).__name__, "errorMessage": str(exc), ...}``. A class's
``__name__`` may hold a dot, so each error type is a class named exactly like it: raising
``TenantMismatch(...)`` gives ``errorType`` ``Tenant.Mismatch``.
"""

from __future__ import annotations

TENANT_MISSING = "Tenant.Missing"
TENANT_INVALID = "Tenant.Invalid"
TENANT_ENVIRONMENT_FAILED_CLOSED = "Tenant.EnvironmentFailedClosed"
TENANT_MISMATCH = "Tenant.Mismatch"
TENANT_CREDENTIALS_UNAVAILABLE = "Tenant.CredentialsUnavailable"
ENVELOPE_INVALID = "Envelope.Invalid"
HANDLER_ERROR = "Handler.Error"
IDEMPOTENCY_IN_PROGRESS = "Idempotency.InProgress"
IDEMPOTENCY_STORE_UNAVAILABLE = "Idempotency.StoreUnavailable"
HANDLER_PARTIAL_FAILURE = "Handler.PartialFailure"

GUARD_REFUSALS = frozenset({TENANT_MISSING, TENANT_INVALID, TENANT_MISMATCH, ENVELOPE_INVALID})

#: Longest ``error`` of a record in a batch answer, in characters (``shared::answer::MAX_ERROR_CHARS``).
MAX_ERROR_CHARS = 256


def is_guard_refusal(error_type: str) -> bool:
    """Whether a function error's ``errorType`` is a refusal of the tenant guard (permanent: the
    record can never pass). A failed-closed environment is not one: the record passes elsewhere."""
    return error_type in GUARD_REFUSALS


def cut_error(message: str) -> str:
    """``message`` as a batch answer's ``error``: at most :data:`MAX_ERROR_CHARS` characters (a
    longer one is cut to one character less and ``…``), as ``shared::answer::cut_error``."""
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return message[: MAX_ERROR_CHARS - 1] + "…"


def batch_record_result(record_id: str, status: str, error: str | None = None, duplicate: bool = False) -> dict:
    """One record's result in a batch answer: exactly ``{id, status, error?, duplicate?}``."""
    result: dict = {"id": record_id, "status": status}
    if error is not None:
        result["error"] = cut_error(error)
    if duplicate:
        result["duplicate"] = True
    return result


class GuardError(Exception):
    """An invocation that produced no result. ``type(error).__name__`` is its ``errorType``."""

    error_type = ""


class Refusal(GuardError):
    """The guard refused the invocation before running anything: it can never pass."""


def _error_type(name: str, base: type, doc: str) -> type:
    cls = type(name, (base,), {"__doc__": doc, "__module__": __name__, "error_type": name})
    cls.__qualname__ = name
    return cls


TenantMissing = _error_type(TENANT_MISSING, Refusal, "The invocation carried no tenant id.")
TenantInvalid = _error_type(TENANT_INVALID, Refusal, "The context's tenant id is not a valid tenant id.")
TenantEnvironmentFailedClosed = _error_type(
    TENANT_ENVIRONMENT_FAILED_CLOSED,
    GuardError,
    "This environment served another tenant: it refuses everything. A fault of the environment, not "
    "of the record (transient: the record passes in another environment), so not a :class:`Refusal`.",
)
TenantMismatch = _error_type(TENANT_MISMATCH, Refusal, "The envelope names another tenant than the invocation.")
TenantCredentialsUnavailable = _error_type(
    TENANT_CREDENTIALS_UNAVAILABLE,
    GuardError,
    "The tenant's credentials (``BACKEND_TENANT_ROLE_ARN``) could not be obtained: nothing ran, and "
    "nothing runs with the execution role's instead. Transient (redelivered), so not a :class:`Refusal`.",
)
EnvelopeInvalid = _error_type(
    ENVELOPE_INVALID, Refusal, "The payload is not a valid envelope or envelope batch (of version 1)."
)
HandlerError = _error_type(HANDLER_ERROR, GuardError, "The tenant handler failed for one envelope.")
IdempotencyInProgress = _error_type(
    IDEMPOTENCY_IN_PROGRESS, GuardError, "Another execution environment is processing the record (retry later)."
)
IdempotencyStoreUnavailable = _error_type(
    IDEMPOTENCY_STORE_UNAVAILABLE, GuardError, "The idempotency store could not answer; nothing was processed."
)


class _PartialFailure(GuardError):
    def __init__(self, message: str, *, processed: int, duplicates: int, failed: int, skipped: int):
        super().__init__(message)
        self.processed, self.duplicates, self.failed, self.skipped = processed, duplicates, failed, skipped


HandlerPartialFailure = _error_type(
    HANDLER_PARTIAL_FAILURE,
    _PartialFailure,
    "Some records of an envelope batch sent without `answer` failed (the others are remembered).",
)
