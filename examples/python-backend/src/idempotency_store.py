"""The idempotency store: Powertools for AWS Lambda (Python)'s idempotency utility, with the record
ids of the Rust guard (``shared/src/idempotency.rs``) so that both backends can share one table.

Powertools keys an item ``<key_prefix>#<md5 of the selected payload>``. The Rust store keys it
``<function>#<tenant>#<idempotencyKey>``, the key as it is, tenant-scoped so that one tenant's key
can never return another tenant's result. :class:`TenantScopedIds` makes Powertools write exactly
that (the prefix ``<function>#<tenant>``, then the envelope's ``idempotencyKey`` unhashed); the
rest is Powertools' own, and the same as the Rust store: the table layout (partition key ``id``
(S), ``expiration`` (N, epoch s, the TTL attribute), ``status`` (``INPROGRESS`` | ``COMPLETED``),
``data`` (the result as JSON text), ``in_progress_expiration`` (N, epoch ms: the invocation's
deadline)), the conditional put, the update to ``COMPLETED`` and the delete after a handler error.

Two points where Powertools alone would differ from the Rust guard, aligned here: a result that
cannot be stored after the handler ran is logged and answered as processed (the effect happened;
an error would have it redelivered and run again once the claim expires), and a claim that cannot
be released after a handler error is logged, the handler's error answered.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

TABLE_VARIABLE = "BACKEND_IDEMPOTENCY_TABLE"
TTL_VARIABLE = "BACKEND_IDEMPOTENCY_TTL_SECONDS"
DEFAULT_TTL_SECONDS = 3_600
IN_PROGRESS = "INPROGRESS"


def record_id(function: str, tenant: str, idempotency_key: str) -> str:
    """The store's ``id`` of a record, as ``shared::idempotency::record_id`` writes it."""
    return f"{function}#{tenant}#{idempotency_key}"


class TenantScopedIds:
    """Mixin for a Powertools persistence layer configured with ``key_prefix=<function>#<tenant>``
    (Powertools keeps the prefix in ``function_name``) and given the envelope as its data."""

    shared = True
    #: Where the two logged failures go (the function's logger, set by :func:`store_from_env`).
    log: Any = logging.getLogger(__name__)

    def _get_hashed_idempotency_key(self, data: dict[str, Any]) -> str:
        return f"{self.function_name}#{data['idempotencyKey']}"

    def save_success(self, data: dict[str, Any], result: dict) -> None:
        try:
            super().save_success(data, result)
        except Exception as error:  # noqa: BLE001 - the effect happened; see the module docs
            self.log.error(
                "idempotency store: result not stored; a redelivery after the claim expires would "
                "run the record again",
                extra={"record_id": data.get("id"), "error": repr(error)},
            )

    def delete_record(self, data: dict[str, Any], exception: Exception) -> None:
        try:
            super().delete_record(data, exception)
        except Exception as error:  # noqa: BLE001 - the handler's error is the answer
            self.log.warning(
                "idempotency store: claim not released; a retry waits for it to expire",
                extra={"record_id": data.get("id"), "error": repr(error)},
            )


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
        now = dt.datetime.now().timestamp()
        with self._lock:
            old = self._items.get(data_record.idempotency_key)
            claimable = (
                old is None
                or (old.expiry_timestamp is not None and old.expiry_timestamp < int(now))
                or (
                    old._status == IN_PROGRESS
                    and old.in_progress_expiry_timestamp is not None
                    and old.in_progress_expiry_timestamp < int(now * 1000)
                )
            )
            if not claimable:
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            self._items[data_record.idempotency_key] = data_record
            self._items.move_to_end(data_record.idempotency_key)
            while len(self._items) > self.CAPACITY:
                self._items.popitem(last=False)

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            old = self._items.get(data_record.idempotency_key)
            if old is not None:
                data_record.in_progress_expiry_timestamp = old.in_progress_expiry_timestamp
                self._items[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._items.pop(data_record.idempotency_key, None)


def ttl_from_env(environ: Mapping[str, str]) -> int:
    """``BACKEND_IDEMPOTENCY_TTL_SECONDS`` (default 3600); anything but a positive whole number
    is an error naming the variable."""
    text = environ.get(TTL_VARIABLE)
    if text is None:
        return DEFAULT_TTL_SECONDS
    if re.fullmatch(r"\s*[0-9]+\s*", text) and int(text) > 0:
        return int(text)
    raise ValueError(f"{TTL_VARIABLE}: expected a positive whole number, got {text!r}")


class DynamoDbStore(TenantScopedIds, DynamoDBPersistenceLayer):
    """Items in a DynamoDB table, in Powertools' (and the Rust store's) layout."""


def store_from_env(environ: Mapping[str, str] = os.environ, log: Any = None) -> BasePersistenceLayer:
    """The store the environment's variables ask for: a DynamoDB table shared by every
    environment (``BACKEND_IDEMPOTENCY_TABLE``, reached through boto3's own configuration,
    ``AWS_ENDPOINT_URL_DYNAMODB`` included), else the environment's memory, with a warning."""
    log = log or logging.getLogger(__name__)
    table = (environ.get(TABLE_VARIABLE) or "").strip()
    if not table:
        log.warning(
            "%s is not set: duplicates are recognised within one execution environment only, and "
            "a redelivery that reaches another environment of the tenant runs again",
            TABLE_VARIABLE,
        )
        store: BasePersistenceLayer = MemoryStore()
    else:
        store = DynamoDbStore(table_name=table)
    store.log = log
    return store
