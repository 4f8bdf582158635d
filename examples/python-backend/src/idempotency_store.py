"""The idempotency store: Powertools for AWS Lambda (Python)'s idempotency utility, with the record
ids and the claim rules of the Rust guard (``shared/src/idempotency.rs``) so that both backends can
share one table.

Powertools keys an item ``<key_prefix>#<md5 of the selected payload>``. The Rust store keys it
``<function>#<tenant>#<idempotencyKey>``, the key as it is, tenant-scoped so that one tenant's key
can never return another tenant's result. :class:`TenantScopedIds` makes Powertools write exactly
that (the prefix ``<function>#<tenant>``, then the envelope's ``idempotencyKey`` unhashed). The
table layout is Powertools' own, and the Rust store's: partition key ``id`` (S), ``expiration``
(N, epoch s, the TTL attribute), ``status`` (``INPROGRESS`` | ``COMPLETED``), ``data`` (the
result as JSON text), ``in_progress_expiration`` (N, epoch ms: until when the claim holds).

:class:`TenantScopedIds` also overrides the three calls Powertools' ``IdempotencyHandler`` makes
on the store (``save_inprogress``, ``save_success``, ``delete_record``) with the Rust store's
rules, where Powertools alone would differ:

- a claim holds until ``max(deadline, now + 1 ms)`` and its ``expiration`` is never before that
  (``max(now + TTL, in_progress_expiration rounded up to the second)``): an ``INPROGRESS`` item
  never expires while its claim holds, so a TTL shorter than the run cannot let a second
  environment claim a record still running;
- the claim's conditional put is Powertools' (no item, an expired one, or an ``INPROGRESS`` one
  past its ``in_progress_expiration``); a failed condition that carries no item falls back to a
  consistent read, and if that finds nothing either (the item went away in between), the claim is
  tried once more, then the store counts as unavailable;
- completing (``COMPLETED``, ``data``, ``expiration`` = now + TTL) and releasing (delete, after a
  handler error of any kind) are conditional on still holding the claim (``status`` ``INPROGRESS``
  and the ``in_progress_expiration`` this claim wrote, which no later claim can write): an
  environment that outlived its claim never overwrites or deletes the item of the one that took
  the record over;
- a result that cannot be stored after the handler ran (the claim lost, or the store failing) is
  logged and answered as processed (the effect happened; an error would have it redelivered and
  run again once the claim expires), and a claim that cannot be released is logged, the handler's
  error answered;
- a stored ``data`` that is not JSON is read as no result (the guard answers the duplicate with
  ``result: null``) instead of failing the invocation.

With tenant-scoped access (``tenant_access``) the DynamoDB store has no client of the execution
role's at all: it starts unbound (:class:`NoTenantSession` on any call) and the guard binds it to
the tenant's session (``use_session``) before its first claim, so the table is reached as the tenant
(the access role's ``dynamodb:LeadingKeys`` condition holds: every id starts ``<function>#<tenant>#``).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.shared import user_agent
from aws_lambda_powertools.shared.functions import strtobool
from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from botocore.exceptions import ClientError

TABLE_VARIABLE = "BACKEND_IDEMPOTENCY_TABLE"
TTL_VARIABLE = "BACKEND_IDEMPOTENCY_TTL_SECONDS"
DISABLED_VARIABLE = "POWERTOOLS_IDEMPOTENCY_DISABLED"
DEFAULT_TTL_SECONDS = 3_600
#: The shortest TTL accepted: Lambda's longest function timeout. The guard cannot learn the
#: function's timeout at start, and a TTL shorter than a run is what let a second environment
#: claim a record still running (the claim's own `expiration` rule now covers that as well).
MIN_TTL_SECONDS = 900
IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
#: How many times a claim is tried when its condition fails but no item stands in its way.
CLAIM_ATTEMPTS = 2


def record_id(function: str, tenant: str, idempotency_key: str) -> str:
    """The store's ``id`` of a record, as ``shared::idempotency::record_id`` writes it."""
    return f"{function}#{tenant}#{idempotency_key}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ClaimLost(Exception):
    """A complete or release whose condition failed: the claim expired and another environment
    took the record over."""


class ClaimUnsettled(Exception):
    """The claim's condition failed twice, but no item stood in its way."""


class TenantScopedIds:
    """Mixin for a Powertools persistence layer configured with ``key_prefix=<function>#<tenant>``
    (Powertools keeps the prefix in ``function_name``) and given the envelope as its data: the Rust
    store's ids and claim rules (see the module's docs). The layer's ``_put_record``,
    ``_get_record``, ``_update_record`` and ``_delete_record`` do the store's I/O; the last two are
    conditional on ``data_record.in_progress_expiry_timestamp`` (the claim's hold) and raise
    :class:`ClaimLost` when it no longer holds."""

    shared = True
    #: Where the logged failures go (the function's logger, set by :func:`store_from_env`).
    log: Any = logging.getLogger(__name__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The claims this environment holds: record id -> the in_progress_expiration it wrote.
        self._holds: dict[str, int] = {}

    def _get_hashed_idempotency_key(self, data: dict[str, Any]) -> str:
        return f"{self.function_name}#{data['idempotencyKey']}"

    def use_session(self, session: Any) -> None:
        """Reaches the store with ``session`` (the tenant's) from now on; nothing to reach here."""

    def save_inprogress(self, data: dict[str, Any], remaining_time_in_millis: int | None = None) -> None:
        if remaining_time_in_millis is None:
            # Without a deadline the claim would hold for no time at all: refuse to run instead.
            raise ClaimUnsettled("the invocation's deadline is unknown (no Lambda context registered)")
        key = self._get_hashed_idempotency_key(data)
        now = now_ms()
        hold = max(now + remaining_time_in_millis, now + 1)
        expiry = max(now // 1000 + self.expires_after_seconds, -(-hold // 1000))
        claim = DataRecord(idempotency_key=key, status=IN_PROGRESS, expiry_timestamp=expiry,
                           in_progress_expiry_timestamp=hold)
        for _ in range(CLAIM_ATTEMPTS):
            try:
                self._put_record(claim)
            except IdempotencyItemAlreadyExistsError as exists:
                old = exists.old_data_record
                if old is None:  # the failed condition carried no item: read it
                    try:
                        old = self._get_record(key)
                    except IdempotencyItemNotFoundError:
                        old = None
                if old is not None and _stands(old, now):
                    raise IdempotencyItemAlreadyExistsError(old_data_record=_readable(old)) from None
                continue  # gone, or expired since the condition failed: claim again
            self._holds[key] = hold
            return
        raise ClaimUnsettled(f"record {key}: the claim's condition failed twice, but no item stands in its way")

    def save_success(self, data: dict[str, Any], result: dict) -> None:
        key = self._get_hashed_idempotency_key(data)
        done = DataRecord(idempotency_key=key, status=COMPLETED, expiry_timestamp=self._get_expiry_timestamp(),
                          in_progress_expiry_timestamp=self._holds.pop(key, None),
                          response_data=json.dumps(result, cls=Encoder, sort_keys=True))
        try:
            if done.in_progress_expiry_timestamp is None:
                raise ClaimLost("no claim of this environment")
            self._update_record(done)
        except ClaimLost:  # the effect happened: see the module docs
            self.log.error(
                "idempotency store: the claim expired and another environment took the record over; "
                "result not stored (the record may run again there)",
                extra={"record_id": data.get("id")},
            )
        except Exception as error:  # noqa: BLE001 - the effect happened; see the module docs
            self.log.error(
                "idempotency store: result not stored; a redelivery after the claim expires would "
                "run the record again",
                extra={"record_id": data.get("id"), "error": repr(error)},
            )

    def delete_record(self, data: dict[str, Any], exception: BaseException) -> None:
        key = self._get_hashed_idempotency_key(data)
        hold = self._holds.pop(key, None)
        if hold is None:
            return
        try:
            self._delete_record(DataRecord(idempotency_key=key, status=IN_PROGRESS, in_progress_expiry_timestamp=hold))
        except ClaimLost:
            pass  # another environment's item now: it stays
        except Exception as error:  # noqa: BLE001 - the handler's error is the answer
            self.log.warning(
                "idempotency store: claim not released; a retry waits for it to expire",
                extra={"record_id": data.get("id"), "error": repr(error)},
            )


def _stands(record: DataRecord, now: int) -> bool:
    """Whether an existing item still keeps a claim made at ``now`` (epoch ms) off: not expired,
    and not ``INPROGRESS`` past its ``in_progress_expiration``. An item in any other state holds the
    record off, as in the Rust store."""
    if record.expiry_timestamp is not None and int(record.expiry_timestamp) < now // 1000:
        return False
    if record._status == IN_PROGRESS and record.in_progress_expiry_timestamp is not None:
        return int(record.in_progress_expiry_timestamp) >= now
    return True


def _readable(record: DataRecord) -> DataRecord:
    """``record`` with a ``data`` that is not JSON dropped: Powertools would raise while reading it
    back, failing the whole invocation; the guard answers such a duplicate with ``result: null``."""
    try:
        json.loads(record.response_data or "null")
    except (TypeError, ValueError):
        record.response_data = ""
    return record


class MemoryStore(TenantScopedIds, BasePersistenceLayer):
    """The items of one execution environment, the most recent :attr:`CAPACITY` (the Rust
    ``MemoryStore``): a duplicate that reaches another environment runs again. Completed items
    also expire after the TTL, as in DynamoDB."""

    CAPACITY = 10_000
    shared = False

    def __init__(self) -> None:
        super().__init__()
        self._items: collections.OrderedDict[str, DataRecord] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            if idempotency_key not in self._items:
                raise IdempotencyItemNotFoundError
            return self._items[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        # Powertools' DynamoDB condition: no item, an expired one, or an INPROGRESS one whose
        # environment ran out of time.
        now = now_ms()
        with self._lock:
            old = self._items.get(data_record.idempotency_key)
            claimable = (
                old is None
                or (old.expiry_timestamp is not None and old.expiry_timestamp < now // 1000)
                or (
                    old._status == IN_PROGRESS
                    and old.in_progress_expiry_timestamp is not None
                    and old.in_progress_expiry_timestamp < now
                )
            )
            if not claimable:
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            self._items[data_record.idempotency_key] = data_record
            self._items.move_to_end(data_record.idempotency_key)
            while len(self._items) > self.CAPACITY:
                self._items.popitem(last=False)

    def _held(self, data_record: DataRecord) -> DataRecord:
        old = self._items.get(data_record.idempotency_key)
        if (old is None or old._status != IN_PROGRESS
                or old.in_progress_expiry_timestamp != data_record.in_progress_expiry_timestamp):
            raise ClaimLost(data_record.idempotency_key)
        return old

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._held(data_record)
            self._items[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._held(data_record)
            del self._items[data_record.idempotency_key]


class NoTenantSession(RuntimeError):
    """The tenant-scoped store was asked to call DynamoDB before the guard bound it to the tenant's
    session."""


class _Unbound:
    """The client of a tenant-scoped store before it is bound: any use raises
    :class:`NoTenantSession` (an ``AttributeError`` for Powertools' optional user-agent hook)."""

    def __getattr__(self, name: str) -> Any:
        raise _NoTenantSessionAttribute("the idempotency store is not bound to the tenant's session yet")


class _NoTenantSessionAttribute(NoTenantSession, AttributeError):
    pass


class DynamoDbStore(TenantScopedIds, DynamoDBPersistenceLayer):
    """Items in a DynamoDB table, in Powertools' (and the Rust store's) layout. The claim is
    Powertools' conditional put; completing and releasing are its update and delete, made
    conditional on the claim still being held. ``tenant_scoped``: no client until
    :meth:`use_session` gives it the tenant's."""

    #: Condition of completing or releasing: the item is still this claim's.
    STILL_HELD = "#status = :inprogress AND #in_progress_expiry = :held"

    def __init__(self, *args: Any, tenant_scoped: bool = False, **kwargs: Any) -> None:
        if tenant_scoped:
            kwargs.update(boto3_client=_Unbound(), boto3_session=None)
        super().__init__(*args, **kwargs)

    def use_session(self, session: Any) -> None:
        """Builds the store's client from ``session`` (Powertools' layer takes a client or a
        session only at construction: this is what its constructor does with one)."""
        self.client = session.client("dynamodb")
        user_agent.register_feature_to_client(client=self.client, feature="idempotency")

    def _held_condition(self, data_record: DataRecord) -> dict:
        return {
            "ConditionExpression": self.STILL_HELD,
            "ExpressionAttributeNames": {"#status": self.status_attr,
                                         "#in_progress_expiry": self.in_progress_expiry_attr},
            "ExpressionAttributeValues": {":inprogress": {"S": IN_PROGRESS},
                                          ":held": {"N": str(data_record.in_progress_expiry_timestamp)}},
        }

    def _update_record(self, data_record: DataRecord) -> None:
        held = self._held_condition(data_record)
        held["ExpressionAttributeNames"].update({"#response_data": self.data_attr, "#expiry": self.expiry_attr})
        held["ExpressionAttributeValues"].update({
            ":response_data": {"S": data_record.response_data},
            ":expiry": {"N": str(data_record.expiry_timestamp)},
            ":completed": {"S": data_record.status},
        })
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._get_key(data_record.idempotency_key),
                UpdateExpression="SET #response_data = :response_data, #expiry = :expiry, #status = :completed",
                **held,
            )
        except ClientError as error:
            _raise_claim_lost(error)
            raise

    def _delete_record(self, data_record: DataRecord) -> None:
        try:
            self.client.delete_item(TableName=self.table_name, Key=self._get_key(data_record.idempotency_key),
                                    **self._held_condition(data_record))
        except ClientError as error:
            _raise_claim_lost(error)
            raise


def _raise_claim_lost(error: ClientError) -> None:
    if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
        raise ClaimLost(str(error)) from error


def ttl_from_env(environ: Mapping[str, str]) -> int:
    """``BACKEND_IDEMPOTENCY_TTL_SECONDS`` (default 3600); anything but a whole number of at least
    :data:`MIN_TTL_SECONDS` is an error naming the variable."""
    text = environ.get(TTL_VARIABLE)
    if text is None:
        return DEFAULT_TTL_SECONDS
    if not re.fullmatch(r"\s*[0-9]+\s*", text) or int(text) <= 0:
        raise ValueError(f"{TTL_VARIABLE}: expected a positive whole number, got {text!r}")
    if int(text) < MIN_TTL_SECONDS:
        raise ValueError(
            f"{TTL_VARIABLE}: {int(text)} seconds is shorter than Lambda's longest timeout "
            f"({MIN_TTL_SECONDS} s), the least a record must be remembered (the guard cannot learn the "
            f"function's timeout at start)"
        )
    return int(text)


def store_from_env(environ: Mapping[str, str] = os.environ, log: Any = None,
                   tenant_scoped: bool = False) -> BasePersistenceLayer:
    """The store the environment's variables ask for: a DynamoDB table shared by every
    environment (``BACKEND_IDEMPOTENCY_TABLE``, reached through boto3's own configuration,
    ``AWS_ENDPOINT_URL_DYNAMODB`` included), else (the variable unset) the environment's memory,
    with a warning. Fails closed, never open: the variable set but blank, and Powertools'
    ``POWERTOOLS_IDEMPOTENCY_DISABLED`` true (which would run every record without the store) while
    a table is configured, are errors naming the variable; so is a value of the latter that
    Powertools cannot read (it would fail every invocation). ``tenant_scoped`` (tenant-scoped
    access on): the table's store has no client until the guard binds it to the tenant's session."""
    log = log or logging.getLogger(__name__)
    disabled_text = environ.get(DISABLED_VARIABLE)
    try:
        disabled = strtobool(disabled_text) if disabled_text is not None else False
    except ValueError:
        raise ValueError(f"{DISABLED_VARIABLE}: expected true or false, got {disabled_text!r}") from None
    table = environ.get(TABLE_VARIABLE)
    if table is not None and not table.strip():
        raise ValueError(f"{TABLE_VARIABLE} is set but blank: name the table, or unset it for the memory store")
    if table is not None and disabled:
        raise ValueError(
            f"{DISABLED_VARIABLE}={disabled_text} would turn off the idempotency table {TABLE_VARIABLE}="
            f"{table.strip()!r}: every record would run again on redelivery; unset it"
        )
    if table is None:
        log.warning(
            "%s is not set: duplicates are recognised within one execution environment only, and "
            "a redelivery that reaches another environment of the tenant runs again",
            TABLE_VARIABLE,
        )
        if disabled:
            log.warning("%s is true: every record runs again on redelivery (a development switch)", DISABLED_VARIABLE)
        store: BasePersistenceLayer = MemoryStore()
    else:
        store = DynamoDbStore(table_name=table.strip(), tenant_scoped=tenant_scoped)
    store.log = log
    return store
