"""The sandbox's crash rules in in-process tests: raise where a Lambda worker would end its process."""

from __future__ import annotations

from typing import NoReturn


class SimulatedCrash(BaseException):
    """BaseException, so no handler in the service catches it, as none survives a process ending."""


def raise_simulated_crash(reason: str) -> NoReturn:
    raise SimulatedCrash(reason)
