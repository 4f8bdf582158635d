"""The Python example backend: the to-do enrichment (``todo``) behind the tenant guard
(``guard``), on Powertools for AWS Lambda (Python): JSON logs with ``tenant_id``, one EMF metrics
document per invocation, the idempotency utility. Handler: ``app.handler`` (the managed
``python3.12`` runtime, or ``examples/python-backend/bootstrap`` on any Runtime API).

Environment: ``BACKEND_IDEMPOTENCY_TABLE`` (unset: the environment's memory, with a warning),
``BACKEND_IDEMPOTENCY_TTL_SECONDS`` (3600, at least 900), ``BACKEND_METRICS_NAMESPACE``
(``TenantBackend``), ``BACKEND_TENANT_CONFIG_DIR`` (the tenants' rules; unset: defaults),
``BACKEND_TENANT_ROLE_ARN`` (the tenant access role; unset: every tenant shares the execution
role's access, with a warning), ``BACKEND_TENANT_SESSION_SECONDS`` (900, 900..3600),
``BACKEND_SECRETS_TTL_SECONDS`` (300, at least 1). A bad setting fails closed, never open: it is a
``ValueError`` naming the variable, raised while the module loads, which the runtime reports as the
environment's init error (a blank table name, a TTL below 900, ``POWERTOOLS_IDEMPOTENCY_DISABLED``
true while a table is configured: ``idempotency_store``; a blank role ARN, a session
length out of range: ``tenant_access``; a secrets TTL below 1: ``tenant_secrets``).
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

import answer
import idempotency_store
import tenant_access
import tenant_secrets
import todo
from guard import EnvironmentGuard

FUNCTION = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "backend")
NAMESPACE = os.environ.get("BACKEND_METRICS_NAMESPACE", "TenantBackend")
#: Exit status of an environment that failed closed (the Rust guard's), and how long after
#: answering it ends, so the platform replaces it instead of failing every later event.
FAILED_CLOSED_EXIT_STATUS = 70
FAILED_CLOSED_EXIT_DELAY_S = 0.2

logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", FUNCTION), utc=True, datefmt="%Y-%m-%dT%H:%M:%S.%FZ"
)
# `service=""`: no Powertools `service` dimension; the dimension set is exactly ["Service"], as the
# Rust guard writes it. The tenant is never a dimension (each value would be a billed metric).
metrics = Metrics(namespace=NAMESPACE, service="")
metrics.set_default_dimensions(Service=FUNCTION)

access = tenant_access.from_env(os.environ, logger)
guard = EnvironmentGuard(
    FUNCTION,
    idempotency_store.store_from_env(os.environ, logger, tenant_scoped=access.enabled),
    idempotency_store.ttl_from_env(os.environ),
    logger,
    access=access,
    secrets=tenant_secrets.SecretResolver(tenant_secrets.ttl_from_env(os.environ), logger),
)
_environment = {"first_invocation": True, "exit_scheduled": False}


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> Any:
    """One invocation: the guard's answer, and its EMF document on stdout."""
    started = time.perf_counter()
    tenant = getattr(context, "tenant_id", None)
    logger.append_keys(tenant_id=tenant)
    if isinstance(event, dict) and isinstance(event.get("correlationId"), str):
        logger.set_correlation_id(event["correlationId"])
    outcome: Any = None
    try:
        outcome = guard.invoke(event, context, todo.handle)
        return outcome
    except Exception as error:
        outcome = error
        if isinstance(error, answer.TenantEnvironmentFailedClosed):
            exit_soon()
        raise
    finally:
        write_metrics(event, context, outcome, (time.perf_counter() - started) * 1000)


def exit_soon() -> None:
    """Ends this process shortly after the runtime has reported the current answer."""
    if not _environment["exit_scheduled"]:
        _environment["exit_scheduled"] = True
        timer = threading.Timer(FAILED_CLOSED_EXIT_DELAY_S, os._exit, (FAILED_CLOSED_EXIT_STATUS,))
        timer.daemon = True
        timer.start()
        _environment["exit_timer"] = timer


def outcome_counts(outcome: Any) -> tuple[int, int, int, int, int]:
    """(processed, duplicates, refused, handler errors, skipped), counted in records, as
    ``shared::function::invocation_metrics`` counts them."""
    if isinstance(outcome, dict) and "records" in outcome:
        return (outcome["processed"], outcome["duplicates"], 0, outcome["failed"], outcome["skipped"])
    if isinstance(outcome, dict) and "duplicate" in outcome:
        return (0, 1, 0, 0, 0)
    # A failed-closed environment is no refusal of the record, but the guard refused the
    # invocation all the same (the Rust guard counts it so too).
    if isinstance(outcome, (answer.Refusal, answer.TenantEnvironmentFailedClosed)):
        return (0, 0, 1, 0, 0)
    if isinstance(outcome, answer.HandlerPartialFailure):
        return (outcome.processed, outcome.duplicates, 0, outcome.failed, outcome.skipped)
    if isinstance(outcome, BaseException):
        return (0, 0, 0, 1, 0)
    return (1, 0, 0, 0, 0)


def write_metrics(event: Any, context: Any, outcome: Any, took_ms: float) -> None:
    """The invocation's EMF document (namespace ``BACKEND_METRICS_NAMESPACE``, dimension
    ``Service``): what happened and what it cost, with the tenant as a property."""
    processed, duplicates, refused, failed, skipped = outcome_counts(outcome)
    first, _environment["first_invocation"] = _environment["first_invocation"], False
    for name, unit, value in (
        ("Invocations", MetricUnit.Count, 1),
        ("Records", MetricUnit.Count, record_count(event)),
        ("PayloadBytes", MetricUnit.Bytes, payload_bytes(event)),
        ("EnvironmentsCreated", MetricUnit.Count, 1 if first else 0),
        ("RecordsProcessed", MetricUnit.Count, processed),
        ("RecordsDuplicate", MetricUnit.Count, duplicates),
        ("InvocationsRefused", MetricUnit.Count, refused),
        ("HandlerErrors", MetricUnit.Count, failed),
        ("RecordsSkipped", MetricUnit.Count, skipped),
        ("ProcessingTime", MetricUnit.Milliseconds, took_ms),
    ):
        metrics.add_metric(name=name, unit=unit, value=value)
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    for key, value in (
        ("tenant_id", getattr(context, "tenant_id", None)),
        ("function_request_id", getattr(context, "aws_request_id", None)),
        ("correlation_id", outcome.get("correlationId") if isinstance(outcome, dict) else None),
        ("memory_mb", int(memory) if memory.isdigit() else None),
        ("architecture", architecture()),
    ):
        metrics.add_metadata(key=key, value=value)
    metrics.flush_metrics()


def record_count(event: Any) -> int:
    """Records the invocation carried: a batch's, else one."""
    if isinstance(event, dict) and isinstance(event.get("records"), list):
        return len(event["records"])
    return 1


def payload_bytes(event: Any) -> int:
    """The payload's size as compact JSON. The runtime hands the handler the parsed event, not
    its bytes, so this measures it again: the router's envelopes are compact JSON too, and the
    figure differs from the bytes sent only where the record's own text did (escapes, spaces or
    number forms inside the payload)."""
    try:
        return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return 0


def architecture() -> str:
    """``x86_64`` or ``arm64``, Lambda's names for what the function runs on."""
    machine = platform.machine().lower()
    return {"aarch64": "arm64", "arm64": "arm64", "amd64": "x86_64", "x86_64": "x86_64"}.get(machine, machine)
