"""The webhook functions: the relay (scheduled, polls for most of a minute) and the delivery consumer."""

from __future__ import annotations

import json
import time
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
        group_size=s.webhook_message_deliveries,
    )


def _delivery_ids(body: str) -> list[int] | None:
    try:
        ids = json.loads(body)["delivery_ids"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(ids, list) or not ids or not all(type(i) is int and i > 0 for i in ids):
        return None
    return ids


def handle_delivery_event(event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Each record names a group of one endpoint's deliveries; a failed POST is recorded and retried by the
    schedule, not by SQS. Only records whose bookkeeping failed (the database is down) go back to the queue."""
    s = wiring.settings()
    ids: dict[int, str] = {}
    for record in event.get("Records", []):
        group = _delivery_ids(record.get("body", ""))
        if group is None:
            logger.error("delivery message names no delivery; dropped", extra={"message_id": record.get("messageId")})
            continue
        ids.update(dict.fromkeys(group, record["messageId"]))
    if not ids:
        return {"batchItemFailures": []}
    deadline = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        # No POST starts unless it can time out before the function does, with time left to record it.
        left = context.get_remaining_time_in_millis() / 1000 - s.webhook_timeout_seconds - 1
        deadline = time.monotonic() + max(0.0, left)
    try:
        deliver(
            wiring.webhook_store(),
            wiring.webhook_sender(),
            list(ids),
            schedule=parse_schedule(s.webhook_retry_schedule),
            jitter=s.webhook_retry_jitter,
            timeout_seconds=s.webhook_timeout_seconds,
            endpoint_concurrency=s.webhook_endpoint_concurrency,
            deadline=deadline,
        )
    except Exception:  # noqa: BLE001 - every message comes back; a claimed delivery's lease runs out first
        logger.exception("webhook deliveries not recorded")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(set(ids.values()))]}
    return {"batchItemFailures": []}
