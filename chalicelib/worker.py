"""The settle function's record handling: Powertools batch processing around the per-payout lock."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from . import wiring
from .observability import logger
from .services.recovery import StillInFlight, handle_dead_letter
from .services.settlement import RetryLater, backoff_seconds, settle_payout


class MalformedMessage(Exception):
    """A message that names no payout; it fails until it reaches the DLQ, where an operator sees it."""


def _locked_settle() -> tuple[Any, IdempotencyConfig]:
    """settle_payout under the DynamoDB lock, built once per container (the table comes from settings)."""
    return wiring.once("locked_settle", _build_locked_settle)  # type: ignore[no-any-return]


def _build_locked_settle() -> tuple[Any, IdempotencyConfig]:
    s = wiring.settings()
    config = IdempotencyConfig(
        event_key_jmespath="payout_id",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=s.idempotency_ttl_seconds,
    )
    persistence = DynamoDBPersistenceLayer(table_name=s.idempotency_table, boto3_client=wiring.dynamodb_client())

    # Powertools writes the lock with a conditional put (absent, expired, or an in-progress
    # record whose lease ran out), deletes it if we raise, and keeps the result if we return.
    @idempotent_function(data_keyword_argument="message", persistence_store=persistence, config=config)
    def settle(message: dict[str, str]) -> dict[str, object]:
        return settle_payout(wiring.repository(), wiring.provider(), message["payout_id"]).to_json()

    return settle, config


def _payout_id(record: SQSRecord) -> str:
    try:
        body = json.loads(record.body)
        payout_id = body["payout_id"]
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedMessage(f"message {record.message_id} names no payout") from exc
    if not isinstance(payout_id, str):
        raise MalformedMessage(f"message {record.message_id} names no payout")
    return payout_id


def _delay(record: SQSRecord, seconds: int, dead_letter: bool = False) -> None:
    # On its last allowed receive a message waits for nothing: let it reach the DLQ now.
    if not dead_letter and int(record.attributes.approximate_receive_count) >= wiring.settings().max_receive_count:
        seconds = 0
    try:
        (wiring.dead_letters() if dead_letter else wiring.queue()).delay(record.receipt_handle, seconds)
    except Exception:  # noqa: BLE001 - the redelivery still happens, just after the queue's own visibility timeout
        logger.warning("could not change message visibility", extra={"message_id": record.message_id})


def _handle_record(record: SQSRecord) -> dict[str, object]:
    payout_id = _payout_id(record)
    settle, _ = _locked_settle()
    s = wiring.settings()
    try:
        result: dict[str, object] = settle(message={"payout_id": payout_id})
        return result
    except RetryLater as exc:
        _delay(record, backoff_seconds(exc.attempt, s.retry_base_seconds, s.retry_max_seconds))
        raise
    except IdempotencyAlreadyInProgressError:
        # Another worker holds this payout right now; look again soon rather than after the full timeout.
        logger.info("payout locked by another worker", extra={"payout_id": payout_id})
        _delay(record, s.in_progress_retry_seconds)
        raise


def _handle_dead_letter(record: SQSRecord) -> str:
    payout_id = _payout_id(record)
    s = wiring.settings()
    try:
        return handle_dead_letter(wiring.repository(), wiring.provider(), payout_id, s.settle_lease_seconds)
    except StillInFlight:
        _delay(record, s.settle_lease_seconds, dead_letter=True)
        raise


def _process(event: dict[str, Any], context: Any, record_handler: Any) -> dict[str, Any]:
    # A processor per event: it keeps per-batch state. Every failure is returned as
    # batchItemFailures, even when all fail, so the visibility delays set above stand.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def handle_settle_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _, config = _locked_settle()
    if context is not None:
        config.register_lambda_context(context)
    return _process(event, context, _handle_record)


def handle_dead_letter_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dead letters: decide each payout's end (Completed if paid after all, else Failed RETRIES_EXHAUSTED)."""
    return _process(event, context, _handle_dead_letter)
