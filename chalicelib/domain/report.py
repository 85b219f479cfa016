"""The batch summary, its amounts, and the challenge's final report, built from a batch's items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .payout import BatchItem
from .payout_status import PayoutStatus

_REPORT_STATUS = {
    PayoutStatus.COMPLETED: "paid",
    PayoutStatus.FAILED: "failed",
    PayoutStatus.PENDING: "pending",
    PayoutStatus.PROCESSING: "pending",
}


@dataclass(frozen=True, slots=True)
class Summary:
    total: int
    pending: int
    processing: int
    completed: int
    failed: int
    duplicates: int

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> Summary:
        """counts: status name -> number of the batch's own payouts, plus "duplicates"."""
        own = {s: counts.get(s.value, 0) for s in PayoutStatus}
        dups = counts.get("duplicates", 0)
        return cls(
            total=sum(own.values()) + dups,
            pending=own[PayoutStatus.PENDING],
            processing=own[PayoutStatus.PROCESSING],
            completed=own[PayoutStatus.COMPLETED],
            failed=own[PayoutStatus.FAILED],
            duplicates=dups,
        )

    @property
    def done(self) -> bool:
        return self.pending == 0 and self.processing == 0

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "pending": self.pending,
            "processing": self.processing,
            "completed": self.completed,
            "failed": self.failed,
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True, slots=True)
class Amounts:
    """Centavos of the batch's own payouts (duplicates are another batch's money), by outcome."""

    total: int
    paid: int
    failed: int
    pending: int

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "paid": self.paid, "failed": self.failed, "pending": self.pending}


BATCH_STATUSES = ("Pending", "Processing", "Completed", "PartiallyCompleted", "Failed")


def batch_status(summary: Summary) -> str:
    """One word for the whole batch, for clients that poll."""
    if not summary.done:
        return "Processing" if summary.processing or summary.completed or summary.failed else "Pending"
    if summary.failed == 0:
        return "Completed"
    return "Failed" if summary.completed == 0 else "PartiallyCompleted"


def report_status(item: BatchItem) -> str:
    return "duplicate" if item.duplicate else _REPORT_STATUS[item.payout.status]


def report_detail(item: BatchItem) -> dict[str, object]:
    """One line of the report; a paid item carries its proof: the end-to-end id and when it was paid."""
    status = report_status(item)
    detail: dict[str, object] = {
        "external_id": item.payout.external_id,
        "payout_id": item.payout.payout_id,
        "status": status,
        "amount_cents": item.payout.amount_cents,
    }
    if item.duplicate:
        detail["duplicate_of"] = {
            "payout_id": item.payout.payout_id,
            "batch_id": item.payout.batch_id,
            "status": item.payout.status.value,
        }
    elif item.payout.failure_code is not None:
        detail["reason"] = {"code": item.payout.failure_code, "message": item.payout.failure_message}
    if status == "paid":
        detail["end_to_end_id"] = item.payout.end_to_end_id
        # A Completed payout never changes again, so its last update is the moment it was paid.
        detail["paid_at"] = item.payout.updated_at.isoformat()
    return detail


def report_totals(batch_id: str, summary: Summary, amounts: Amounts) -> dict[str, object]:
    """The report's counts for the whole batch, whichever page of details goes with them."""
    return {
        "batch_id": batch_id,
        "total": summary.total,
        # processed: items whose outcome is final (paid, failed, or recognised as a duplicate)
        "processed": summary.completed + summary.failed + summary.duplicates,
        "successful": summary.completed,
        "failed": summary.failed,
        "duplicates": summary.duplicates,
        "pending": summary.pending + summary.processing,
        "amounts": amounts.to_json(),
    }


def build_report(batch_id: str, items: Iterable[BatchItem]) -> dict[str, object]:
    """The whole report from every item of a batch (the API pages it: services/queries.py)."""
    items = list(items)
    counts: dict[str, int] = {"duplicates": 0}
    cents = {"total": 0, "paid": 0, "failed": 0, "pending": 0}
    for item in items:
        if item.duplicate:
            counts["duplicates"] += 1
            continue
        status = item.payout.status
        counts[status.value] = counts.get(status.value, 0) + 1
        cents["total"] += item.payout.amount_cents
        cents[_REPORT_STATUS[status]] += item.payout.amount_cents
    report = report_totals(batch_id, Summary.from_counts(counts), Amounts(**cents))
    report["details"] = [report_detail(item) for item in items]
    return report


REPORT_CSV_COLUMNS = (
    "external_id",
    "status",
    "amount_cents",
    "failure_code",
    "failure_message",
    "payout_id",
    "end_to_end_id",
    "paid_at",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_csv_row(item: BatchItem) -> tuple[str, ...]:
    status = report_status(item)
    p = item.payout
    own_failure = not item.duplicate and p.failure_code is not None
    cells = (
        p.external_id,
        status,
        str(p.amount_cents),
        p.failure_code if own_failure else None,
        p.failure_message if own_failure else None,
        p.payout_id,
        p.end_to_end_id if status == "paid" else None,
        p.updated_at.isoformat() if status == "paid" else None,
    )
    return tuple(_safe_cell(cell or "") for cell in cells)


def _safe_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


@dataclass(frozen=True, slots=True)
class BatchTotals:
    batch_id: str
    created_at: datetime
    item_count: int
    summary: Summary
    amounts: Amounts
