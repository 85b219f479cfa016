"""Lost lock conflicts in PostgreSQL (deadlock, serialization failure, lock timeout): retried in place."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2

from ..domain.errors import Busy

# 40P01 deadlock_detected, 40001 serialization_failure, 55P03 lock_not_available: the server
# rolled the statement back and the same work, run again, normally goes through.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
# Each run is a few milliseconds; the pauses (jittered, doubling from 20 ms) keep two losers from
# meeting again. Past this many runs the conflict is not passing: the caller is told to come back.
IN_PLACE_RUNS = 5
_PAUSE_SECONDS = 0.02

F = TypeVar("F", bound=Callable[..., Any])


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, psycopg2.Error) and getattr(exc, "pgcode", None) in RETRYABLE_SQLSTATES


def after_conflict(exc: BaseException, run: int, operation: str) -> None:
    """Pause before run number `run + 1` of `operation`, or raise Busy when the runs are spent."""
    # Imported here, not at the top: postgres.py imports this module, and the service's logger must
    # not be created before Chalice configures its app logger of the same name (see wiring.py).
    from ..observability import count, logger

    count("DatabaseConflicts")
    sqlstate = getattr(exc, "pgcode", None)
    if run + 1 >= IN_PLACE_RUNS:
        logger.warning("database conflict persisted", extra={"operation": operation, "sqlstate": sqlstate})
        raise Busy("the database is busy with conflicting writes; retry shortly") from exc
    logger.info("database conflict, retrying in place", extra={"operation": operation, "sqlstate": sqlstate})
    time.sleep(random.uniform(0.5, 1.0) * _PAUSE_SECONDS * 2**run)


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
