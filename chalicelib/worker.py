"""The settle and dead-letter functions: per-payout locks, settlement, and which messages come back.

Why a message comes back, and when:
- the provider did not pay (transient error, unknown outcome): after a backoff on the payout's own
  count of failed provider attempts; that count, not SQS, decides when it fails (settlement.py);
- another worker holds its lock, or its batch is still committing: a few seconds later;
- our own infrastructure failed (PostgreSQL, the lock table, a deadlock that outlived its retries):
  after a capped backoff on how often it came back, for as long as the fault lasts, counted as
  InfrastructureRetries for an alarm. Nothing of the provider budget is spent.
A message that has used half the queue's receives (maxReceiveCount, far above the provider budget)
is renewed instead: sent again as a new message and the old one deleted, so a fault of hours never
walks it into the dead-letter queue. Receives are a poor clock (a crash or a held lock spends one
too); renewing needs the queue to take a send, and if it does not, the dead-letter consumer still
sends the payout back rather than fail it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import wiring
from .domain.uuids import is_uuid
from .observability import correlated, count, logger, metric_fields, per_message
from .services.recovery import StillInFlight, handle_dead_letter
from .services.settlement import RetryLater, Settled, UnknownPayout, backoff_seconds, settle_payouts


class MalformedMessage(Exception):
    """A message that names no payout; it fails until it reaches the DLQ, where an operator sees it."""


def _payout_id(record: SQSRecord) -> str:
    try:
        body = json.loads(record.body)
        payout_id = body["payout_id"]
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedMessage(f"message {record.message_id} names no payout") from exc
    # Checked here, not by the database: one bad id must not fail the statement for a whole batch.
    if not isinstance(payout_id, str) or not is_uuid(payout_id):
        raise MalformedMessage(f"message {record.message_id} names no payout")
    return payout_id


def _comebacks(record: SQSRecord) -> int:
    """How often this payout's message came back: this message's receives plus those of the
    messages it renewed (carried in its body)."""
    try:
        carried = json.loads(record.body).get("retries", 0)
    except (ValueError, AttributeError):
        carried = 0
    carried = carried if isinstance(carried, int) and carried > 0 else 0
    return int(record.attributes.approximate_receive_count) + carried


def _renew(record: SQSRecord, payout_id: str, seconds: int) -> bool:
    """Past half its receives, send the message again as a new one; True once the new one is sent."""
    if int(record.attributes.approximate_receive_count) < wiring.settings().max_receive_count // 2:
        return False
    try:
        wiring.queue().renew(payout_id, _comebacks(record), seconds)
    except Exception:  # noqa: BLE001 - then it comes back as it is, one receive closer to the DLQ
        logger.warning("could not renew message", extra={"message_id": record.message_id, "payout_id": payout_id})
        return False
    count("MessagesRenewed")
    logger.info("message renewed", extra={"payout_id": payout_id, "comebacks": _comebacks(record)})
    return True


def _to_dead_letters(record: SQSRecord) -> bool:
    # A message that names no payout: no receive will ever settle it, so it goes where an operator looks.
    try:
        wiring.dead_letters().send(record.body)
    except Exception:  # noqa: BLE001 - then it fails until the queue's redrive moves it there
        return False
    return True


def _delay(record: SQSRecord, seconds: int, dead_letter: bool = False) -> None:
    # On its last allowed receive a message waits for nothing: let it reach the DLQ now.
    if not dead_letter and int(record.attributes.approximate_receive_count) >= wiring.settings().max_receive_count:
        seconds = 0
    try:
        (wiring.dead_letters() if dead_letter else wiring.queue()).delay(record.receipt_handle, seconds)
    except Exception:  # noqa: BLE001 - the redelivery still happens, just after the queue's own visibility timeout
        logger.warning("could not change message visibility", extra={"message_id": record.message_id})


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
    failures: list[str] = []
    messages: dict[str, list[SQSRecord]] = defaultdict(list)
    for record in (SQSRecord(r) for r in records):
        try:
            messages[_payout_id(record)].append(record)
        except MalformedMessage:
            logger.error("message names no payout", extra={"message_id": record.message_id})
            if not _to_dead_letters(record):
                failures.append(record.message_id)

    def send_back(payout_id: str, seconds: int) -> None:
        for record in messages[payout_id]:
            if not _renew(record, payout_id, seconds):
                _delay(record, seconds)
                failures.append(record.message_id)

    def retry_infrastructure(payout_ids: list[str], error: BaseException) -> None:
        logger.warning(
            "infrastructure fault; messages come back", extra={"payouts": len(payout_ids), "error": repr(error)}
        )
        count("InfrastructureRetries", len(payout_ids))
        for payout_id in payout_ids:
            comebacks = max(_comebacks(r) for r in messages[payout_id])
            send_back(payout_id, backoff_seconds(comebacks, s.retry_base_seconds, s.infra_retry_max_seconds))

    owner = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    # The lease ends when this invocation must have ended: a dead worker's payouts free up then.
    lease = context.get_remaining_time_in_millis() / 1000 + 1 if context is not None else s.settle_lease_seconds
    try:
        started = time.perf_counter()
        acquired, held = wiring.locks().acquire(list(messages), owner, lease)
        locked = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - fail closed: no provider call without the lock
        logger.exception("lock table unavailable; nothing settled")
        retry_infrastructure(list(messages), exc)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
    # A lock is left to expire after success, so a duplicate delivery can find it held: if the
    # payout is final there is nothing to wait for.
    final = _final(held)
    for payout_id in held:
        if payout_id not in final:
            logger.info("payout locked by another worker", extra={"payout_id": payout_id})
            send_back(payout_id, s.in_progress_retry_seconds)

    try:
        outcomes = (
            settle_payouts(
                wiring.repository(),
                wiring.transitions(),
                wiring.provider(),
                acquired,
                s.max_provider_attempts,
                provider_name=s.pix_provider,
                concurrency=s.provider_concurrency,
            )
            if acquired
            else {}
        )
    except Exception as exc:  # noqa: BLE001 - e.g. the database is down: every message comes back
        outcomes = dict.fromkeys(acquired, exc)
    done = time.perf_counter()
    settled: dict[str, list[str]] = defaultdict(list)
    batch_ids: set[str] = set()
    infrastructure: dict[str, BaseException] = {}
    for payout_id in acquired:
        outcome = outcomes[payout_id]
        if isinstance(outcome, Settled):
            settled[outcome.outcome].append(payout_id)
            if outcome.batch_id:
                batch_ids.add(outcome.batch_id)
            continue
        if isinstance(outcome, UnknownPayout):
            # Messages leave only after their batch commits (the fan-out reads them from the database).
            logger.error("message for a payout that does not exist", extra={"payout_id": payout_id})
            continue
        _release(payout_id, owner)
        if isinstance(outcome, RetryLater):
            wait = backoff_seconds(outcome.failures, s.retry_base_seconds, s.retry_max_seconds)
            # Retry-After is the provider's own word on when to come back: never earlier.
            send_back(payout_id, max(wait, math.ceil(outcome.retry_after or 0)))
        else:
            infrastructure[payout_id] = outcome
    if infrastructure:
        retry_infrastructure(list(infrastructure), next(iter(infrastructure.values())))
    timings = {"lock_ms": round((locked - started) * 1000, 1), "settle_ms": round((done - locked) * 1000, 1)}
    logger.info(
        "batch settled",
        extra={
            **settled,
            "batch_ids": sorted(batch_ids),
            "held": held,
            "failed_messages": len(failures),
            "message_ids": [str(r.get("messageId")) for r in records] if len(records) > 1 else None,
            **timings,
            **metric_fields(),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


def _final(payout_ids: list[str]) -> set[str]:
    if not payout_ids:
        return set()
    try:
        # Awaiting the provider's confirmation counts too: the webhook or the poller ends it, not a message.
        return wiring.repository().settled_ids(payout_ids)
    except Exception:  # noqa: BLE001 - then they wait like any locked payout
        return set()


def _release(payout_id: str, owner: str) -> None:
    try:
        wiring.locks().release(payout_id, owner)
    except Exception:  # noqa: BLE001 - the lease runs out by itself
        logger.warning("could not release payout lock", extra={"payout_id": payout_id})


def _handle_dead_letter(record: SQSRecord) -> str:
    try:
        payout_id = _payout_id(record)
    except MalformedMessage:
        # The end of the line for a message that names no payout: there is nothing to settle or fail.
        logger.error(
            "dead letter names no payout; dropped", extra={"message_id": record.message_id, "body": record.body[:200]}
        )
        return "malformed"
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
        _delay(record, s.settle_lease_seconds, dead_letter=True)
        raise
    except Exception:
        # The database or the queue is down: this dead letter waits, like any message, and decides later.
        count("InfrastructureRetries")
        backoff = backoff_seconds(_comebacks(record), s.retry_base_seconds, s.infra_retry_max_seconds)
        _delay(record, backoff, dead_letter=True)
        raise


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
