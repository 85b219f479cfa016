"""The PostgreSQL side on its own: migrations, constraints, and the guarded transitions."""

from __future__ import annotations

import threading
import uuid

import psycopg2
import psycopg2.errors
import pytest

from chalicelib.adapters.migrations import apply_migrations, migration_files
from chalicelib.adapters.postgres import Database, PayoutRepository
from chalicelib.domain.payout_status import PayoutStatus
from tests.support import scratch_database


def test_migrations_apply_once_even_when_run_twice_and_concurrently():
    with scratch_database("pix_mig", migrate=False) as url:
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def migrate() -> None:
            try:
                results.append(apply_migrations(url))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=migrate) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        names = [p.name for p in migration_files()]
        assert errors == []
        assert sorted(results, key=len) == [[], [], [], names]  # one applied them all, the others waited
        assert apply_migrations(url) == []
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in cur.fetchall()] == names


def insert_payout(cur, batch_id: str, external_id: str, status: str = "Pending") -> str:
    payout_id = str(uuid.uuid4())
    cur.execute(
        "INSERT INTO payouts (payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key,"
        " end_to_end_id, status, failure_code) VALUES (%s, %s, %s, 'u', 100, 'EMAIL', 'a@b.com', %s, %s, %s)",
        (
            payout_id,
            external_id,
            batch_id,
            ("E" + uuid.uuid4().hex + "x")[:32],
            status,
            "AC03" if status == "Failed" else None,
        ),
    )
    return payout_id


@pytest.fixture
def batch_row(db):
    batch_id = f"repo-{uuid.uuid4().hex[:10]}"
    with db.cursor() as cur:
        cur.execute("INSERT INTO batches (batch_id, request_hash, item_count) VALUES (%s, 'h', 1)", (batch_id,))
    return batch_id


def test_the_database_itself_refuses_a_second_payout_for_an_external_id(db, batch_row):
    with db.cursor() as cur:
        insert_payout(cur, batch_row, f"ext-{batch_row}")
        with pytest.raises(psycopg2.errors.UniqueViolation):
            insert_payout(cur, batch_row, f"ext-{batch_row}")


def test_a_failed_payout_must_carry_a_reason(db, batch_row):
    with db.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
        cur.execute(
            "INSERT INTO payouts (payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key,"
            " end_to_end_id, status) VALUES (%s, %s, %s, 'u', 1, 'EMAIL', 'a@b.com', %s, 'Failed')",
            (str(uuid.uuid4()), f"x-{batch_row}", batch_row, "E" * 32),
        )


def test_transitions_only_move_forward(database_url, db, batch_row):
    repo = PayoutRepository(Database(database_url))
    with db.cursor() as cur:
        open_id = insert_payout(cur, batch_row, f"a-{batch_row}")
        done_id = insert_payout(cur, batch_row, f"b-{batch_row}", status="Failed")
    started = repo.start_attempts([open_id, done_id])
    assert set(started) == {open_id}  # a Failed payout is not reopened by a settle attempt
    assert repo.complete_many([(open_id, 1, "completed"), (done_id, 1, "completed")]) == {open_id}
    assert repo.start_attempts([open_id]) == {}  # nor is a Completed one
    assert repo.get_payout(done_id).status is PayoutStatus.FAILED
    events = [e["event"] for e in repo.payout_events(open_id)]
    assert events == ["attempt_started", "completed"]
    repo.db.close()
