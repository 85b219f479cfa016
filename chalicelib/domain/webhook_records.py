"""What the webhook store holds and hands back: endpoints, events to relay, claimed deliveries, outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str
    url: str
    events: tuple[str, ...]
    description: str
    enabled: bool
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str
    previous_secret: str | None

    def signing_secrets(self) -> list[str]:
        """The current secret, then the previous one while its overlap lasts."""
        return [self.secret] + ([self.previous_secret] if self.previous_secret else [])

    def to_json(self) -> dict[str, object]:
        """As the API shows it: never a secret."""
        return {
            "id": self.endpoint_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "enabled": self.enabled,
            "failing": self.failing_since is not None,
            "failing_since": self.failing_since.isoformat() if self.failing_since else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event the relay has not handed on yet, with what it needs to render its data."""

    event_id: str
    type: str
    batch_id: str
    snapshot: dict[str, Any] | None
    data: dict[str, Any] | None
    pix_key: str | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    delivery_id: int
    attempts: int  # including the one just claimed
    event_id: str
    event_type: str
    event_created_at: datetime
    data: dict[str, Any]
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
