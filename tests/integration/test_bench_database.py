"""The benchmark's Postgres side against a real (scratch) database: settle detection and ingest phases."""

from __future__ import annotations

from typing import Any

import pytest

from bench import floors, measure
from bench.payloads import new_run_id


def add_batch(db: Any, n: int, status: str, **times: Any) -> str:
    batch_id = f"bench-{new_run_id()}"
    rows = floors.payout_rows(new_run_id(), n)
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO batches (batch_id, request_hash, item_count, created_at) VALUES (%s, 'h', %s, %s)",
            (batch_id, n, times.get("created", "2026-01-01T00:00:00Z")),
        )
        for start, end, done in times.get("ranges", ()):
            cur.execute(
                "INSERT INTO outbox (kind, aggregate_id, payload, done_at)"
                " VALUES ('enqueue_payouts', %s, jsonb_build_object('start', %s, 'end', %s), %s)",
                (batch_id, start, end, done),
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


def test_enqueued_is_when_the_last_outbox_record_was_done_and_waits_for_every_record(db: Any) -> None:
    done = [(0, 2, "2026-01-01T00:00:02Z"), (2, 3, "2026-01-01T00:00:04.5Z")]
    batch_id = add_batch(db, 3, "Pending", ranges=done)
    assert measure.wait_enqueued(db, batch_id, 3, timeout=5) == 1767225604.5
    half = add_batch(db, 3, "Pending", ranges=[done[0], (2, 3, None)])
    with pytest.raises(TimeoutError, match="1 of 2 outbox records undone"):
        measure.wait_enqueued(db, half, 3, timeout=0.2, poll=0.05)


def test_ingest_phases_split_the_post_and_the_fan_out_at_the_apps_own_timestamps(db: Any) -> None:
    batch_id = add_batch(db, 1, "Pending", created="2026-01-01T00:00:01Z")
    t0 = 1767225600.0  # 2026-01-01T00:00:00Z
    ingest = measure.Ingest(batch_id, 1, seconds=2.0, sent_at=t0, answered_at=t0 + 2.0)
    phases = measure.ingest_phases(db, ingest, accepted=t0 + 1.5, enqueued=t0 + 3.5)
    assert phases == {"before_transaction": 1.0, "write_transaction": 0.5, "reply": 0.5, "fan_out_after_reply": 1.5}
    assert sum(phases.values()) == 3.5
    without_log = measure.ingest_phases(db, ingest, accepted=None, enqueued=t0 + 3.5)
    assert without_log["write_transaction_and_reply"] == 1.0
