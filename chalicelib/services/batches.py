"""Use cases of the HTTP API: submit a batch, read one payout (the rest of the read side: queries.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..conflicts import after_conflict
from ..domain.batch_request import BatchRequest
from ..domain.errors import Conflict, ExternalIdTaken, NotFound, WriteConflict
from ..domain.idempotency import batch_hash, plan_new_batch, replay_differences, truncate
from ..domain.payout_ids import new_payout_ids
from ..domain.payout_status import PayoutStatus
from ..domain.uuids import is_any_case_uuid
from ..observability import count, logger
from .fanout import plan_ranges
from .ports import BatchWrites, FanoutQueue, PayoutReads
from .webhook_events import accepted_data

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


@dataclass(frozen=True, slots=True)
class FanoutPlan:
    """How a new batch's messages go out after the commit: item ranges per outbox record, and where to."""

    wakeups: FanoutQueue
    range_items: int
    grace_seconds: int  # the sweeper leaves a new record alone this long: its wake-up is on the way


def submit_batch(
    repo: BatchWrites, fanout: FanoutPlan, request: BatchRequest, new_e2e_id: Callable[[], str]
) -> Submission:
    """Write the batch and its outbox records in one transaction, commit, then wake the fan-out once.

    Nothing else is sent from here: the fan-out function enqueues the payouts from the outbox.
    """
    digest = batch_hash(request)
    races = conflicts = 0
    while True:
        try:
            submission, outbox_ids = _write_batch(repo, fanout, request, digest, new_e2e_id)
            break
        except WriteConflict as exc:
            # A deadlock or lock timeout rolled the whole transaction back: run it again.
            after_conflict(exc, conflicts, "submit_batch")
            conflicts += 1
            continue
        except ExternalIdTaken:
            races += 1
            if races == _RACE_RETRIES:
                raise
            logger.info("external_id race, re-planning", extra={"batch_id": request.batch_id})
    if outbox_ids:
        try:
            fanout.wakeups.wake(outbox_ids)
        except Exception:  # noqa: BLE001 - the batch is committed; the sweeper wakes its records. Never fail here.
            logger.exception("fan-out not woken", extra={"batch_id": request.batch_id, "outbox_ids": outbox_ids})
            count("FanoutWakeupsFailed")
    return submission


def _write_batch(
    repo: BatchWrites,
    fanout: FanoutPlan,
    request: BatchRequest,
    digest: str,
    new_e2e_id: Callable[[], str],
) -> tuple[Submission, list[int]]:
    with repo.batch_writer() as tx:
        stored_hash = tx.insert_batch(request.batch_id, digest, len(request.items))
        if stored_hash is not None:
            stored = tx.stored_items(request.batch_id)
            if stored_hash != digest:
                diffs = replay_differences(request, [row[4] for row in stored])
                raise Conflict(f"batch {request.batch_id} was already accepted with other items", truncate(diffs))
            replayed: list[dict[str, Any]] = [
                {"index": i, "external_id": fp[0], "payout_id": pid, "batch_id": origin}
                for i, pid, dup, origin, fp in stored
                if dup
            ]
            return Submission(False, request.batch_id, [row[1] for row in stored], replayed), []

        plan = plan_new_batch(request, tx.existing_payouts([item.external_id for item in request.items]))
        if plan.conflicts:
            raise Conflict("some external_ids were already accepted with different content", truncate(plan.conflicts))
        new_ids = dict(zip((item.index for item in plan.new_items), new_payout_ids(len(plan.new_items)), strict=True))
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
        ranges = plan_ranges(sorted(new_ids), fanout.range_items)
        outbox_ids = tx.add_enqueue_tasks(request.batch_id, ranges, fanout.grace_seconds)
        # Beside the outbox records, in the same transaction: committed with the batch or not at all.
        event_data = accepted_data(request.batch_id, [item.amount_cents for item in plan.new_items], len(duplicates))
        tx.add_batch_accepted(request.batch_id, event_data, completed=not new_ids)
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
            "outbox_records": len(outbox_ids),
        },
    )
    return Submission(True, request.batch_id, payout_ids, duplicates), outbox_ids


def get_payout(repo: PayoutReads, payout_id: str) -> dict[str, Any]:
    if not is_any_case_uuid(payout_id):
        raise NotFound("no such payout; payout ids are UUIDs")
    payout = repo.get_payout(payout_id)
    if payout is None:
        raise NotFound(f"no payout {payout_id}")
    history = [{"at": payout.created_at.isoformat(), "event": "created", "to_status": "Pending"}]
    for event in repo.payout_events(payout_id):
        event["at"] = event["at"].isoformat()
        history.append({k: v for k, v in event.items() if v is not None})
    body = payout.to_json()
    if payout.provider_step is not None and payout.status is PayoutStatus.PROCESSING:
        body["step"] = payout.provider_step.value
    if payout.provider is not None:
        body["provider"] = {
            "name": payout.provider,
            "send_id": payout.provider_send_id,
            "end_to_end_id": payout.provider_end_to_end_id,
            "status": payout.provider_status,
        }
    body["history"] = history
    return body
