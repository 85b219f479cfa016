"""A payout's send id at the provider (Efí's idEnvio): derived from the payout alone, so every retry reuses it."""

from __future__ import annotations

import re
import uuid

SEND_ID_RE = re.compile(r"[a-zA-Z0-9]{1,35}")
_HEX32_RE = re.compile(r"[0-9a-f]{32}")


def send_id_for(payout_id: str) -> str:
    """The payout id's 32 hex digits: unique as the payout, and the provider's idempotency key for it."""
    # The provider answers a reused idEnvio with 409 instead of paying again, so the id must never
    # depend on the attempt, the clock or the worker: only on which payout this is.
    return uuid.UUID(payout_id).hex


def payout_id_for(send_id: str) -> str | None:
    """The payout a send id names (a callback's idEnvio), or None when it is not one of ours."""
    if not isinstance(send_id, str) or not _HEX32_RE.fullmatch(send_id):
        return None
    return str(uuid.UUID(hex=send_id))


def is_send_id(value: object) -> bool:
    """True when value fits the provider's idEnvio pattern ^[a-zA-Z0-9]{1,35}$."""
    return isinstance(value, str) and SEND_ID_RE.fullmatch(value) is not None
