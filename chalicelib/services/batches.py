"""Use cases of the HTTP API: submit a batch, read a batch, its report, one payout."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..adapters.postgres import PayoutRepository, is_external_id_race
from ..adapters.sqs_queue import PayoutQueue
from ..domain.batch_request import BatchRequest, is_identifier
from ..domain.errors import BadRequest, Conflict, NotFound
from ..domain.idempotency import batch_hash, plan_new_batch, replay_differences, truncate
from ..domain.payout_ids import new_payout_ids
from ..domain.report import Summary, batch_status, build_report
from ..observability import count, logger

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# item_index is a PostgreSQL integer; a cursor names one, so it never needs more digits than this.
_MAX_CURSOR_DIGITS = 10
# ASCII only: uuid.UUID() also takes "+", "_" and non-ASCII digits, which PostgreSQL then refuses.
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A concurrent batch can take one of our external_ids between our read and our COPY;
# the loser re-plans (the item becomes a duplicate or a conflict). Three rounds is plenty.
_RACE_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Submission:
    created: bool  # False: an exact replay of an accepted batch
    batch_id: str
    payout_ids: list[str]
    duplicates: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "received_items": len(self.payout_ids),
            "payout_ids": self.payout_ids,
            "duplicates": self.duplicates,
        }


def submit_batch(
    repo: PayoutRepository, queue: PayoutQueue, request: BatchRequest, new_e2e_id: Callable[[], str]
) -> Submission:
    digest = batch_hash(request)
    for round_ in range(_RACE_RETRIES):
        try:
            # Only the round that commits counts: a rolled-back round's messages name no payout.
            submission, sending = _write_batch(repo, queue, request, digest, new_e2e_id)
            break
        except Exception as exc:
            if not is_external_id_race(exc) or round_ == _RACE_RETRIES - 1:
                raise
            logger.info("external_id race, re-planning", extra={"batch_id": request.batch_id})
    if sending is None:
        return submission
    unsent = sending.result()
    if unsent:
        # The batch is committed; the sweeper enqueues what is left. Never fail the request here.
        logger.error("payouts not enqueued", extra={"batch_id": request.batch_id, "unsent": len(unsent)})
        count("PayoutsNotEnqueued", len(unsent))
        return submission
    repo.mark_enqueued(request.batch_id)
    return submission


def _write_batch(
    repo: PayoutRepository,
    queue: PayoutQueue,
    request: BatchRequest,
    digest: str,
    new_e2e_id: Callable[[], str],
) -> tuple[Submission, Future[list[str]] | None]:
    with repo.batch_writer() as tx:
        stored_hash = tx.insert_batch(request.batch_id, digest, len(request.items))
        if stored_hash is not None:
            stored = tx.stored_items(request.batch_id)
            if stored_hash != digest:
                diffs = replay_differences(request, [row[4] for row in stored])
                raise Conflict(f"batch {request.batch_id} was already accepted with other items", truncate(diffs))
            duplicates = [
                {"index": i, "external_id": fp[0], "payout_id": pid, "batch_id": origin}
                for i, pid, dup, origin, fp in stored
                if dup
            ]
            return Submission(False, request.batch_id, [row[1] for row in stored], duplicates), None

        plan = plan_new_batch(request, tx.existing_payouts([item.external_id for item in request.items]))
        if plan.conflicts:
            raise Conflict("some external_ids were already accepted with different content", truncate(plan.conflicts))
        new_ids = dict(zip((item.index for item in plan.new_items), new_payout_ids(len(plan.new_items)), strict=True))
        # The messages go out while the rows are written: settlement sends a message back while its
        # payout is not committed yet, and acknowledges it as unknown if this transaction rolls back.
        sending = queue.enqueue_in_background(list(new_ids.values()))
        tx.insert_payouts(request.batch_id, plan.new_items, new_ids, new_e2e_id)
        payout_ids: list[str] = []
        rows: list[tuple[int, str, bool]] = []
        duplicates: list[dict[str, Any]] = []
        for item in request.items:
            if item.index in new_ids:
                pid = new_ids[item.index]
                rows.append((item.index, pid, False))
            else:
                dup = plan.duplicates[item.index]
                pid = dup.payout_id
                rows.append((item.index, pid, True))
                duplicates.append(
                    {"index": item.index, "external_id": item.external_id, "payout_id": pid, "batch_id": dup.batch_id}
                )
            payout_ids.append(pid)
        tx.insert_batch_items(request.batch_id, rows)
    count("BatchesAccepted")
    count("PayoutsAccepted", len(new_ids))
    count("DuplicateItems", len(duplicates))
    logger.info(
        "batch accepted",
        extra={
            "batch_id": request.batch_id,
            "items": len(request.items),
            "new_payouts": len(new_ids),
            "duplicates": len(duplicates),
        },
    )
    return Submission(True, request.batch_id, payout_ids, duplicates), sending


def encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        digits = text[2:]
        if text.startswith("i:") and _is_ascii_number(digits, _MAX_CURSOR_DIGITS):
            return int(digits)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadRequest("cursor is not one this API returned")


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not _is_ascii_number(raw, len(str(MAX_PAGE))) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _is_ascii_number(text: str, max_digits: int) -> bool:
    # str.isdigit() alone admits "²" and "١٢", which int() refuses or reads as another number.
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def get_batch(
    repo: PayoutRepository, batch_id: str, limit: int = DEFAULT_PAGE, cursor: str | None = None
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else -1
    counts = repo.batch_counts(batch_id) if is_identifier(batch_id) else None
    if counts is None:
        raise _no_batch(batch_id)
    summary = Summary.from_counts(counts)
    items = repo.batch_items(batch_id, after_index=after, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return {
        "batch_id": batch_id,
        "status": batch_status(summary),
        "summary": summary.to_json(),
        "payouts": [item.to_json() for item in items],
        "next_cursor": encode_cursor(items[-1].index) if more else None,
    }


def get_report(repo: PayoutRepository, batch_id: str) -> dict[str, Any]:
    if not is_identifier(batch_id) or not repo.batch_exists(batch_id):
        raise _no_batch(batch_id)
    return build_report(batch_id, repo.batch_items(batch_id))


def get_payout(repo: PayoutRepository, payout_id: str) -> dict[str, Any]:
    if not _UUID_RE.fullmatch(payout_id):
        raise NotFound("no such payout; payout ids are UUIDs")
    payout = repo.get_payout(payout_id)
    if payout is None:
        raise NotFound(f"no payout {payout_id}")
    history = [{"at": payout.created_at.isoformat(), "event": "created", "to_status": "Pending"}]
    for event in repo.payout_events(payout_id):
        event["at"] = event["at"].isoformat()
        history.append({k: v for k, v in event.items() if v is not None})
    body = payout.to_json()
    body["history"] = history
    return body


def _no_batch(batch_id: str) -> NotFound:
    # Only a well-formed id is echoed: the rest may be long, or hold NULs and control characters.
    if is_identifier(batch_id):
        return NotFound(f"no batch {batch_id}")
    return NotFound("no such batch; batch ids are 1 to 64 letters, digits, . _ : - starting with a letter or digit")
