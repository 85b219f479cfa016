"""Lost write conflicts (deadlock, lock timeout): pause and run again a few times, then answer Busy."""

from __future__ import annotations

import random
import time

from .domain.errors import Busy

# Each run is a few milliseconds; the pauses (jittered, doubling from 20 ms) keep two losers from
# meeting again. Past this many runs the conflict is not passing: the caller is told to come back.
IN_PLACE_RUNS = 5
_PAUSE_SECONDS = 0.02


def after_conflict(exc: BaseException, run: int, operation: str) -> None:
    """Pause before run number `run + 1` of `operation`, or raise Busy when the runs are spent."""
    # Imported here, not at the top: the adapters import this module, and the service's logger must
    # not be created before Chalice configures its app logger of the same name (see wiring.py).
    from .observability import count, logger

    count("DatabaseConflicts")
    sqlstate = getattr(exc, "pgcode", None)
    if run + 1 >= IN_PLACE_RUNS:
        logger.warning("database conflict persisted", extra={"operation": operation, "sqlstate": sqlstate})
        raise Busy("the database is busy with conflicting writes; retry shortly") from exc
    logger.info("database conflict, retrying in place", extra={"operation": operation, "sqlstate": sqlstate})
    time.sleep(random.uniform(0.5, 1.0) * _PAUSE_SECONDS * 2**run)
