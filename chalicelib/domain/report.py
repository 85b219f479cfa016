"""The batch summary and the challenge's final report, built from a batch's items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


def batch_status(summary: Summary) -> str:
    """One word for the whole batch, for clients that poll."""
    if not summary.done:
        return "Processing" if summary.processing or summary.completed or summary.failed else "Pending"
    if summary.failed == 0:
        return "Completed"
    return "Failed" if summary.completed == 0 else "PartiallyCompleted"


def report_status(item: BatchItem) -> str:
    return "duplicate" if item.duplicate else _REPORT_STATUS[item.payout.status]


def build_report(batch_id: str, items: Iterable[BatchItem]) -> dict[str, object]:
    details: list[dict[str, object]] = []
    counts = {"paid": 0, "failed": 0, "duplicate": 0, "pending": 0}
    for item in items:
        status = report_status(item)
        counts[status] += 1
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
        details.append(detail)
    return {
        "batch_id": batch_id,
        "total": len(details),
        # processed: items whose outcome is final (paid, failed, or recognised as a duplicate)
        "processed": counts["paid"] + counts["failed"] + counts["duplicate"],
        "successful": counts["paid"],
        "failed": counts["failed"],
        "duplicates": counts["duplicate"],
        "pending": counts["pending"],
        "details": details,
    }
