"""The data of webhook events: a batch's summary and report, a payout's snapshot, the signed body."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..domain.payout import Payout
from ..domain.payout_status import PayoutStatus
from ..domain.pix_keys import mask_pix_key
from ..domain.report import Amounts, BatchTotals, Summary, batch_status, report_totals
from ..domain.webhook_records import PendingEvent
from ..domain.webhooks import public_event_id
from .ports import RelayTransaction


def batch_data(
    batch_id: str, created_at: datetime, summary: Summary, amounts: Amounts, *, with_report: bool
) -> dict[str, Any]:
    """A batch as GET /batches lists it; batch.completed adds the report's counts."""
    data: dict[str, Any] = {
        "batch_id": batch_id,
        "created_at": created_at.isoformat(),
        "status": batch_status(summary),
        "summary": summary.to_json(),
        "amounts": amounts.to_json(),
    }
    if with_report:
        report = report_totals(batch_id, summary, amounts)
        data["report"] = {k: v for k, v in report.items() if k not in ("batch_id", "amounts")}
    return data


def accepted_data(
    batch_id: str, new_amounts: Sequence[int], duplicates: int
) -> Callable[[datetime, str], dict[str, Any]]:
    """batch.accepted's data for a batch just written: every new payout Pending."""
    summary = Summary.from_counts({"Pending": len(new_amounts), "duplicates": duplicates})
    total = sum(new_amounts)
    amounts = Amounts(total=total, paid=0, failed=0, pending=total)

    def render(created_at: datetime, event_type: str) -> dict[str, Any]:
        return batch_data(batch_id, created_at, summary, amounts, with_report=event_type == "batch.completed")

    return render


def render(event: PendingEvent, tx: RelayTransaction) -> dict[str, Any]:
    if event.data is not None:
        return event.data
    if event.snapshot is not None:
        return payout_data(event.snapshot, event.pix_key or "")
    totals = tx.batch_totals(event.batch_id)
    if totals is None:
        return {"batch_id": event.batch_id}
    return _totals_data(totals, with_report=event.type == "batch.completed")


def payout_data(snapshot: dict[str, Any], pix_key: str) -> dict[str, Any]:
    """The payout as GET /payouts/{id} shows it at the change, Pix key masked."""
    payout = Payout(
        payout_id=str(snapshot["payout_id"]),
        external_id=snapshot["external_id"],
        batch_id=snapshot["batch_id"],
        user_id=snapshot["user_id"],
        amount_cents=int(snapshot["amount_cents"]),
        pix_key_type=snapshot["pix_key_type"],
        pix_key=mask_pix_key(pix_key),
        end_to_end_id=snapshot["end_to_end_id"],
        status=PayoutStatus(snapshot["status"]),
        attempts=int(snapshot["attempts"]),
        failure_code=snapshot.get("failure_code"),
        failure_message=snapshot.get("failure_message"),
        created_at=_utc(snapshot["created_at"]),
        updated_at=_utc(snapshot["updated_at"]),
    )
    return payout.to_json()


def _totals_data(totals: BatchTotals, *, with_report: bool) -> dict[str, Any]:
    return batch_data(totals.batch_id, totals.created_at, totals.summary, totals.amounts, with_report=with_report)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def event_body(event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]) -> str:
    """The bytes every attempt of the event sends (and signs)."""
    body = {"id": public_event_id(event_id), "type": event_type, "created_at": created_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
