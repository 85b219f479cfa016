"""The benchmark's Postgres side against a real (scratch) database: settle detection and ingest phases."""

from __future__ import annotations

from typing import Any

import pytest

from bench import floors, measure
from bench.payloads import new_run_id


def add_batch(db: Any, n: int, status: str, **times: str) -> str:
    batch_id = f"bench-{new_run_id()}"
    rows = floors.payout_rows(new_run_id(), n)
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, request_hash, item_count, created_at, enqueued_at)"
            " VALUES (%s, 'h', %s, %s, %s)",
            (batch_id, n, times.get("created", "2026-01-01T00:00:00Z"), times.get("enqueued")),
        )
        for i, row in enumerate(rows):
            cur.execute(
                f"INSERT INTO payouts ({floors.PAYOUT_COPY_COLUMNS}, status, failure_code, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    *row[:2],
                    batch_id,
                    *row[3:],
                    status,
                    "AC03" if status == "Failed" else None,
                    f"2026-01-01T00:00:{10 + i:02d}Z",
                ),
            )
    return batch_id


def test_wait_terminal_returns_when_the_last_payout_finished_not_when_it_was_noticed(db: Any) -> None:
    batch_id = add_batch(db, 3, "Completed")
    last = measure.wait_terminal(db, batch_id, 3, timeout=5)
    assert last == 1767225612.0  # 2026-01-01T00:00:12Z, the latest updated_at


def test_wait_terminal_gives_up_while_payouts_are_open(db: Any) -> None:
    batch_id = add_batch(db, 2, "Processing")
    with pytest.raises(TimeoutError, match="2 payouts still open"):
        measure.wait_terminal(db, batch_id, 2, timeout=0.2, poll=0.05)


def test_ingest_phases_split_the_post_at_the_apps_own_timestamps(db: Any) -> None:
    batch_id = add_batch(db, 1, "Pending", created="2026-01-01T00:00:01Z", enqueued="2026-01-01T00:00:03.5Z")
    t0 = 1767225600.0  # 2026-01-01T00:00:00Z
    ingest = measure.Ingest(batch_id, 1, seconds=4.0, sent_at=t0, answered_at=t0 + 4.0)
    phases = measure.ingest_phases(db, ingest, accepted=t0 + 1.5)
    assert phases == {"before_transaction": 1.0, "write_transaction": 0.5, "enqueue": 2.0, "reply": 0.5}
    assert sum(phases.values()) == ingest.seconds
    without_log = measure.ingest_phases(db, ingest, accepted=None)
    assert without_log["write_transaction_and_enqueue"] == 2.5
