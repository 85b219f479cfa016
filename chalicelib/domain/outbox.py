"""Outbox records as the fan-out sees them: the kind it handles, a record leased to it, or why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENQUEUE_PAYOUTS = "enqueue_payouts"


@dataclass(frozen=True, slots=True)
class Claimed:
    outbox_id: int
    kind: str
    payload: dict[str, Any]
    progress: int


@dataclass(frozen=True, slots=True)
class NotClaimed:
    reason: str  # "done", "leased" or "missing"
    lease_left_seconds: float = 0.0
