"""Use cases of the read side: list batches, a batch's (filtered) payouts, its report, find payouts."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from ..domain.batch_request import is_identifier, user_id_problem
from ..domain.errors import BadRequest, NotFound
from ..domain.payout_status import PayoutStatus
from ..domain.report import (
    BATCH_STATUSES,
    REPORT_CSV_COLUMNS,
    BatchTotals,
    batch_status,
    report_csv_row,
    report_detail,
    report_totals,
)
from .paging import (
    DEFAULT_PAGE,
    MAX_PAGE,
    decode_batch_cursor,
    decode_cursor,
    decode_payout_cursor,
    encode_batch_cursor,
    encode_cursor,
    encode_payout_cursor,
    parse_utc,
)
from .ports import ReadModel

# A report page as large as any page: a batch of up to 1,000 items still reads in one answer, as before paging.
REPORT_PAGE = MAX_PAGE
PAYOUT_STATUSES = tuple(s.value for s in PayoutStatus)
# RFC 3339, as the OpenAPI document's date-time: datetime.fromisoformat alone also takes "2026-01-01".
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")


def list_batches(
    views: ReadModel,
    *,
    created_after: str | None = None,
    created_before: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> dict[str, Any]:
    if status is not None and status not in BATCH_STATUSES:
        raise BadRequest("status must be one of " + ", ".join(BATCH_STATUSES))
    rows = views.batches(
        created_after=_parse_time("created_after", created_after),
        created_before=_parse_time("created_before", created_before),
        status=status,
        after=decode_batch_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "batches": [_batch_entry(row) for row in rows],
        "next_cursor": encode_batch_cursor(rows[-1].created_at, rows[-1].batch_id) if more else None,
    }


def get_batch(
    views: ReadModel,
    batch_id: str,
    *,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """A page of the batch's items, all or only those whose payout has `status`, and the whole batch's summary."""
    _check_payout_status(status)
    after = decode_cursor(cursor) if cursor else -1
    totals = _totals(views, batch_id)
    items = views.batch_items(batch_id, after_index=after, limit=limit + 1, status=status)
    more = len(items) > limit
    items = items[:limit]
    return {
        "batch_id": batch_id,
        "status": batch_status(totals.summary),
        "summary": totals.summary.to_json(),
        "amounts": totals.amounts.to_json(),
        "payouts": [item.to_json() for item in items],
        "next_cursor": encode_cursor(items[-1].index) if more else None,
    }


def get_report(
    views: ReadModel, batch_id: str, *, limit: int = REPORT_PAGE, cursor: str | None = None
) -> dict[str, Any]:
    """The report's totals for the whole batch, with one page of its details."""
    after = decode_cursor(cursor) if cursor else -1
    totals = _totals(views, batch_id)
    items = views.batch_items(batch_id, after_index=after, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    report = report_totals(batch_id, totals.summary, totals.amounts)
    report["details"] = [report_detail(item) for item in items]
    report["next_cursor"] = encode_cursor(items[-1].index) if more else None
    return report


def report_csv(views: ReadModel, batch_id: str) -> str:
    """The whole report as CSV, one line per item in request order (10,000 items: about 0.8 MB)."""
    _totals(views, batch_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_CSV_COLUMNS)
    writer.writerows(report_csv_row(item) for item in views.batch_items(batch_id))
    return out.getvalue()


def find_payouts(
    views: ReadModel,
    *,
    external_id: str | None = None,
    user_id: str | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> dict[str, Any]:
    if (external_id is None) == (user_id is None):
        raise BadRequest("give exactly one of external_id and user_id")
    if external_id is not None and not is_identifier(external_id):
        raise BadRequest("external_id must be 1 to 64 letters, digits, . _ : - starting with a letter or digit")
    if user_id is not None and (problem := user_id_problem(user_id)):
        raise BadRequest(problem)
    after = decode_payout_cursor(cursor) if cursor else None
    payouts = views.payouts(external_id=external_id, user_id=user_id, after_id=after, limit=limit + 1)
    more = len(payouts) > limit
    payouts = payouts[:limit]
    return {
        "payouts": [p.to_json() for p in payouts],
        "next_cursor": encode_payout_cursor(payouts[-1].payout_id) if more else None,
    }


def wants_csv(accept: str | None) -> bool:
    """Accept names text/csv: the report as CSV. Anything else (or nothing) gets JSON."""
    return accept is not None and any(part.split(";", 1)[0].strip().lower() == "text/csv" for part in accept.split(","))


def _no_batch(batch_id: str) -> NotFound:
    # Only a well-formed id is echoed: the rest may be long, or hold NULs and control characters.
    if is_identifier(batch_id):
        return NotFound(f"no batch {batch_id}")
    return NotFound("no such batch; batch ids are 1 to 64 letters, digits, . _ : - starting with a letter or digit")


def _totals(views: ReadModel, batch_id: str) -> BatchTotals:
    totals = views.batch_totals(batch_id) if is_identifier(batch_id) else None
    if totals is None:
        raise _no_batch(batch_id)
    return totals


def _batch_entry(row: BatchTotals) -> dict[str, Any]:
    return {
        "batch_id": row.batch_id,
        "created_at": row.created_at.isoformat(),
        "status": batch_status(row.summary),
        "summary": row.summary.to_json(),
        "amounts": row.amounts.to_json(),
    }


def _check_payout_status(status: str | None) -> None:
    if status is not None and status not in PAYOUT_STATUSES:
        raise BadRequest("status must be one of " + ", ".join(PAYOUT_STATUSES))


def _parse_time(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if _RFC3339.fullmatch(raw):
        try:
            return parse_utc(raw.upper())
        except (ValueError, OverflowError):
            pass
    raise BadRequest(f"{name} must be an RFC 3339 date-time with its offset, e.g. 2026-01-31T12:00:00Z")
