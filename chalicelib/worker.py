"""The settle and dead-letter functions: parse the messages, call the use case, answer which come back.

The settlement policy (locks, backoff, which messages come back and how) is in
services/settle_messages.py; dead letters are decided in services/recovery.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import wiring
from .domain.payout_messages import MalformedMessage, PayoutMessage, decode, encode
from .observability import correlated, count, logger, metric_fields, per_message
from .services.recovery import StillInFlight, handle_dead_letter
from .services.settle_messages import Malformed, Ports, Received, settle_messages
from .services.settlement import backoff_seconds

# Left to the invocation after its last provider call starts: recording the answers and replying.
RECORDING_SECONDS = 1.0


def _message(record: SQSRecord) -> PayoutMessage:
    try:
        return decode(record.body)
    except MalformedMessage as exc:
        raise MalformedMessage(f"message {record.message_id}: {exc}") from exc


def _received(record: SQSRecord) -> Received | Malformed:
    try:
        message = _message(record)
    except MalformedMessage:
        return Malformed(record.message_id, record.body)
    return Received(record.message_id, record.receipt_handle, int(record.attributes.approximate_receive_count), message)


def handle_settle_event(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Settle a batch of payout messages; only the messages to redeliver are returned as failures.

    The batch is handled as a whole (one lock call, one claim and one completion statement for
    all its payouts), so Powertools' per-record BatchProcessor does not fit here. A batch of one
    message logs under its messageId as correlation_id; a larger one names its messages on the
    summary line, and its per-payout lines name payout and batch.
    """
    records = event.get("Records", [])
    if len(records) == 1:
        with correlated(str(records[0].get("messageId"))):
            return _settle(records, context)
    return _settle(records, context)


def _settle(records: list[dict[str, Any]], context: Any) -> PartialItemFailureResponse:
    s = wiring.settings()
    owner = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    # The lease ends when this invocation must have ended: a dead worker's payouts free up then.
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    lease = remaining + 1 if remaining is not None else s.settle_lease_seconds
    deadline = time.monotonic() + remaining - RECORDING_SECONDS if remaining is not None else None
    report = settle_messages(
        [_received(SQSRecord(r)) for r in records],
        Ports(
            locks=wiring.locks(),
            statements=wiring.repository(),
            transitions=wiring.transitions(),
            provider=wiring.provider(),
            queue=wiring.queue(),
            dead_letters=wiring.dead_letters(),
        ),
        wiring.settle_policy(),
        owner=owner,
        lease_seconds=lease,
        deadline=deadline,
    )
    logger.info(
        "batch settled",
        extra={
            **report.settled,
            "batch_ids": sorted(report.batch_ids),
            "held": report.held,
            "failed_messages": len(report.failed_messages),
            "split_messages": report.split,
            "message_ids": [str(r.get("messageId")) for r in records] if len(records) > 1 else None,
            "lock_ms": report.lock_ms,
            "settle_ms": report.settle_ms,
            **metric_fields(),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in report.failed_messages]}


def _delay(record: SQSRecord, seconds: int) -> None:
    try:
        wiring.dead_letters().delay(record.receipt_handle, seconds)
    except Exception:  # noqa: BLE001 - the redelivery still happens, just after the queue's own visibility timeout
        logger.warning("could not change message visibility", extra={"message_id": record.message_id})


def _comebacks(record: SQSRecord, message: PayoutMessage) -> int:
    return message.comebacks(int(record.attributes.approximate_receive_count))


def _handle_dead_letter(record: SQSRecord) -> str:
    try:
        message = _message(record)
    except MalformedMessage:
        # The end of the line for a message that names no payout: there is nothing to settle or fail.
        logger.error(
            "dead letter names no payout; dropped", extra={"message_id": record.message_id, "body": record.body[:200]}
        )
        return "malformed"
    if message.is_group:
        return _split_dead_letter(record, message)
    [payout_id] = message.payout_ids
    s = wiring.settings()
    try:
        return handle_dead_letter(
            wiring.repository(),
            wiring.provider(),
            wiring.queue(),
            payout_id,
            lease_seconds=s.settle_lease_seconds,
            max_provider_attempts=s.max_provider_attempts,
            transitions=wiring.transitions(),
            provider_name=s.pix_provider,
        )
    except StillInFlight:
        _delay(record, s.settle_lease_seconds)
        raise
    except Exception:
        # The database or the queue is down: this dead letter waits, like any message, and decides later.
        count("InfrastructureRetries")
        backoff = backoff_seconds(_comebacks(record, message), s.retry_base_seconds, s.infra_retry_max_seconds)
        _delay(record, backoff)
        raise


def _split_dead_letter(record: SQSRecord, message: PayoutMessage) -> str:
    """A group in the dead-letter queue becomes one dead letter per payout, each decided on its own."""
    retries = _comebacks(record, message)
    try:
        for payout_id in message.payout_ids:
            wiring.dead_letters().send(encode([payout_id], retries))
    except Exception:
        # Those sent so far come again with the group: repeated dead letters, decided like any repeated message.
        count("InfrastructureRetries")
        s = wiring.settings()
        _delay(record, backoff_seconds(retries, s.retry_base_seconds, s.infra_retry_max_seconds))
        raise
    logger.info("dead letter split", extra={"message_id": record.message_id, "payouts": len(message.payout_ids)})
    return "split"


def _process(event: dict[str, Any], context: Any, record_handler: Any) -> PartialItemFailureResponse:
    # A processor per event: it keeps per-batch state. Every failure is returned as
    # batchItemFailures, even when all fail, so the visibility delays set above stand.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=per_message(record_handler), processor=processor, context=context
    )


def handle_dead_letter_event(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Dead letters: Completed if paid after all, Failed if its provider budget is spent, else back to the queue."""
    return _process(event, context, _handle_dead_letter)
