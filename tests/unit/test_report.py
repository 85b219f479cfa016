"""The batch summary and the final report."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.payout import BatchItem, Payout
from chalicelib.domain.payout_status import PayoutStatus
from chalicelib.domain.report import Summary, batch_status, build_report

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bitem(index: int, status: PayoutStatus, duplicate: bool = False, code: str | None = None) -> BatchItem:
    payout = Payout(
        payout_id=f"p{index}",
        external_id=f"e{index}",
        batch_id="origin" if duplicate else "b",
        user_id="u",
        amount_cents=100 * (index + 1),
        pix_key_type="EMAIL",
        pix_key="a@b.com",
        end_to_end_id="E" * 32,
        status=status,
        attempts=1,
        failure_code=code,
        failure_message="closed" if code else None,
        created_at=NOW,
        updated_at=NOW,
    )
    return BatchItem(index=index, duplicate=duplicate, payout=payout)


def test_the_report_counts_paid_failed_duplicate_and_pending_items():
    items = [
        bitem(0, PayoutStatus.COMPLETED),
        bitem(1, PayoutStatus.FAILED, code="AC07"),
        bitem(2, PayoutStatus.COMPLETED, duplicate=True),
        bitem(3, PayoutStatus.PROCESSING),
    ]
    report = build_report("b", items)
    assert (
        report["total"],
        report["processed"],
        report["successful"],
        report["failed"],
        report["duplicates"],
        report["pending"],
    ) == (4, 3, 1, 1, 1, 1)
    assert [d["status"] for d in report["details"]] == ["paid", "failed", "duplicate", "pending"]
    assert report["details"][1]["reason"] == {"code": "AC07", "message": "closed"}
    assert report["details"][2]["duplicate_of"] == {"payout_id": "p2", "batch_id": "origin", "status": "Completed"}


def test_the_seed_shaped_report_matches_the_challenge():
    report = build_report("2025-10-05-A", [bitem(0, PayoutStatus.COMPLETED), bitem(1, PayoutStatus.COMPLETED)])
    assert {k: report[k] for k in ("processed", "successful", "failed", "duplicates")} == {
        "processed": 2,
        "successful": 2,
        "failed": 0,
        "duplicates": 0,
    }
    assert report["details"][0] == {"external_id": "e0", "payout_id": "p0", "status": "paid", "amount_cents": 100}


def test_the_summary_counts_duplicates_apart_from_the_batch_own_payouts():
    s = Summary.from_counts({"Pending": 2, "Completed": 3, "duplicates": 4})
    assert s.to_json() == {"total": 9, "pending": 2, "processing": 0, "completed": 3, "failed": 0, "duplicates": 4}
    assert not s.done


def test_the_batch_status_follows_its_payouts():
    assert batch_status(Summary.from_counts({"Pending": 2})) == "Pending"
    assert batch_status(Summary.from_counts({"Pending": 1, "Completed": 1})) == "Processing"
    assert batch_status(Summary.from_counts({"Completed": 2, "duplicates": 1})) == "Completed"
    assert batch_status(Summary.from_counts({"Completed": 1, "Failed": 1})) == "PartiallyCompleted"
    assert batch_status(Summary.from_counts({"Failed": 2})) == "Failed"
