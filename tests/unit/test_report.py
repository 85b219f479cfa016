"""The batch summary and the final report."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.payout import BatchItem, Payout
from chalicelib.domain.payout_status import PayoutStatus
from chalicelib.domain.report import REPORT_CSV_COLUMNS, Summary, batch_status, build_report, report_csv_row

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
    assert report["details"][0] == {
        "external_id": "e0",
        "payout_id": "p0",
        "status": "paid",
        "amount_cents": 100,
        "end_to_end_id": "E" * 32,
        "paid_at": NOW.isoformat(),
    }


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


def test_the_report_sums_the_batch_own_centavos_by_outcome_and_leaves_duplicates_out():
    items = [
        bitem(0, PayoutStatus.COMPLETED),  # 100
        bitem(1, PayoutStatus.FAILED, code="AC07"),  # 200
        bitem(2, PayoutStatus.COMPLETED, duplicate=True),  # 300, another batch's money
        bitem(3, PayoutStatus.PROCESSING),  # 400
        bitem(4, PayoutStatus.PENDING),  # 500
    ]
    assert build_report("b", items)["amounts"] == {"total": 1200, "paid": 100, "failed": 200, "pending": 900}


def test_only_paid_items_carry_the_end_to_end_id_and_the_time_paid():
    report = build_report("b", [bitem(0, PayoutStatus.FAILED, code="AC03"), bitem(1, PayoutStatus.COMPLETED)])
    failed, paid = report["details"]
    assert "end_to_end_id" not in failed and "paid_at" not in failed
    assert (paid["end_to_end_id"], paid["paid_at"]) == ("E" * 32, NOW.isoformat())


def test_a_csv_row_has_one_cell_per_column_and_the_failure_of_the_batch_own_payout_only():
    failed = dict(zip(REPORT_CSV_COLUMNS, report_csv_row(bitem(0, PayoutStatus.FAILED, code="AC07")), strict=True))
    assert (failed["status"], failed["failure_code"], failed["failure_message"], failed["end_to_end_id"]) == (
        "failed",
        "AC07",
        "closed",
        "",
    )
    dup = dict(zip(REPORT_CSV_COLUMNS, report_csv_row(bitem(1, PayoutStatus.FAILED, True, "AC07")), strict=True))
    assert (dup["status"], dup["failure_code"]) == ("duplicate", "")


def test_a_csv_cell_a_spreadsheet_would_run_as_a_formula_is_quoted():
    item = bitem(0, PayoutStatus.FAILED, code="=HYPERLINK(1)")
    assert report_csv_row(item)[REPORT_CSV_COLUMNS.index("failure_code")] == "'=HYPERLINK(1)"
