"""The webhook functions: the relay (scheduled, polls for most of a minute) and the delivery consumer."""

from __future__ import annotations

import json
from typing import Any

from . import wiring
from .domain.webhooks import parse_schedule
from .observability import logger
from .services.webhooks import deliver, run_relay


def handle_relay(context: Any) -> dict[str, int]:
    s = wiring.settings()
    run_seconds = s.webhook_relay_run_seconds
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        # Leave the last seconds of the invocation for the pass under way.
        run_seconds = min(run_seconds, max(0.0, context.get_remaining_time_in_millis() / 1000 - 15))
    return run_relay(
        wiring.webhook_store(),
        wiring.webhook_queue(),
        batch_size=s.webhook_relay_batch,
        requeue_seconds=s.webhook_requeue_seconds,
        run_seconds=run_seconds,
        poll_seconds=s.webhook_relay_poll_seconds,
    )


def _delivery_id(body: str) -> int | None:
    try:
        value = json.loads(body)["delivery_id"]
    except (ValueError, TypeError, KeyError):
        return None
    return value if type(value) is int and value > 0 else None


def handle_delivery_event(event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Each record names one delivery; a failed POST is recorded and retried by the schedule, not by SQS.
    Only a record whose bookkeeping failed (the database is down) goes back to the queue."""
    s = wiring.settings()
    ids: dict[int, str] = {}
    for record in event.get("Records", []):
        delivery_id = _delivery_id(record.get("body", ""))
        if delivery_id is None:
            logger.error("delivery message names no delivery; dropped", extra={"message_id": record.get("messageId")})
            continue
        ids[delivery_id] = record["messageId"]
    if not ids:
        return {"batchItemFailures": []}
    try:
        deliver(
            wiring.webhook_store(),
            wiring.webhook_sender(),
            list(ids),
            schedule=parse_schedule(s.webhook_retry_schedule),
            jitter=s.webhook_retry_jitter,
            timeout_seconds=s.webhook_timeout_seconds,
        )
    except Exception:  # noqa: BLE001 - every message comes back; a claimed delivery's lease runs out first
        logger.exception("webhook deliveries not recorded")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in ids.values()]}
    return {"batchItemFailures": []}
