"""The fan-out function: each wake-up message names outbox records whose payouts it enqueues."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import wiring
from .domain.errors import Unavailable
from .observability import logger, per_message
from .services.fanout import NotSent, StillLeased, fan_out

# A fan-out that SQS or the database refused comes back this much later (then, after the queue's receive limit,
# its wake-up is dead-lettered and the sweeper still wakes the record once it is due).
RETRY_SECONDS = 10


def _outbox_ids(record: SQSRecord) -> list[int] | None:
    try:
        ids = json.loads(record.body)["outbox_ids"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(ids, list) or not ids or not all(type(i) is int and i > 0 for i in ids):
        return None
    return ids


def handle_fanout_event(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    owner = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    # The lease ends when this invocation must have ended: a dead fan-out's record frees up then.
    lease = context.get_remaining_time_in_millis() / 1000 + 1 if context is not None else 60.0

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        ids = _outbox_ids(record)
        if ids is None:
            # Nothing to retry: the records themselves are in the database, where the sweeper finds them.
            logger.error("wake-up names no outbox record; dropped", extra={"message_id": record.message_id})
            return {"outcome": "malformed"}
        try:
            return fan_out(wiring.outbox(), wiring.queue(), wiring.fanout_queue(), ids, owner, lease)
        except StillLeased as exc:
            _delay(record, math.ceil(exc.seconds) + 1)
            raise
        except (NotSent, Unavailable):
            # SQS refused messages, or the database is down: soon again, not after the visibility timeout.
            _delay(record, RETRY_SECONDS)
            raise

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=per_message(record_handler), processor=processor, context=context
    )


def _delay(record: SQSRecord, seconds: int) -> None:
    try:
        wiring.fanout_queue().delay(record.receipt_handle, seconds)
    except Exception:  # noqa: BLE001 - it comes back after the queue's visibility timeout instead
        logger.warning("could not change message visibility", extra={"message_id": record.message_id})
