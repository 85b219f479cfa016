"""Lost lock conflicts in PostgreSQL (deadlock, serialization failure, lock timeout): retried in place."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2

from ..conflicts import after_conflict

# 40P01 deadlock_detected, 40001 serialization_failure, 55P03 lock_not_available: the server
# rolled the statement back and the same work, run again, normally goes through.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
F = TypeVar("F", bound=Callable[..., Any])


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, psycopg2.Error) and getattr(exc, "pgcode", None) in RETRYABLE_SQLSTATES


def retry_conflicts(fn: F) -> F:
    """Run a repository method again when it lost a lock conflict; it must be one whole transaction."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except psycopg2.Error as exc:
                if not is_retryable(exc):
                    raise
                after_conflict(exc, attempt, fn.__name__)
                attempt += 1

    return run  # type: ignore[return-value]
