"""The PostgreSQL side on its own: migrations, constraints, and the guarded transitions."""

from __future__ import annotations

import threading
import uuid

import psycopg2
import psycopg2.errors
import pytest

from chalicelib.adapters.database import Database
from chalicelib.adapters.migrations import apply_migrations, migration_files
from chalicelib.adapters.postgres import PayoutRepository
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


class _Recording(psycopg2.extensions.cursor):
    """Keeps the text of every statement it ran, parameters bound, so its plan can be asked for."""

    seen: list[str] = []

    def execute(self, query, vars=None):
        super().execute(query, vars)
        _Recording.seen.append(self.query.decode())


def test_settlement_finds_payouts_by_id_even_when_the_statistics_say_nothing_is_open():
    """The statistics of a table whose payouts were all final when it was last analyzed say that
    nothing is open; then a batch arrives. A status test on the scan let the planner answer the
    claim from payouts_open_idx, reading every open payout to find ten."""
    with scratch_database("pix_plan") as url:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE payouts SET (autovacuum_enabled = false)")  # keep the statistics stale
            cur.execute(
                "INSERT INTO batches (batch_id, request_hash, item_count) VALUES ('old', 'h', 1), ('new', 'h', 2)"
            )
            cur.execute(
                "INSERT INTO payouts (payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key,"
                " end_to_end_id, status) SELECT gen_random_uuid(), 'old-' || i, 'old', 'u', 100, 'EMAIL', 'a@b.com',"
                " 'E' || lpad(i::text, 31, '0'), 'Completed' FROM generate_series(1, 5000) i"
            )
            cur.execute("ANALYZE payouts")
            cur.execute(
                "INSERT INTO payouts (payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key,"
                " end_to_end_id) SELECT gen_random_uuid(), 'new-' || i, 'new', 'u', 100, 'EMAIL', 'a@b.com',"
                " 'F' || lpad(i::text, 31, '0') FROM generate_series(1, 3000) i"
            )
            cur.execute("SELECT payout_id::text FROM payouts WHERE batch_id = 'new' ORDER BY payout_id LIMIT 11")
            ids = [r[0] for r in cur.fetchall()]
        repo = PayoutRepository(Database(url))
        repo.db._connection().cursor_factory = _Recording  # instrumentation only: the real statements run
        _Recording.seen = []
        started = repo.start_attempts(ids[:10])
        assert set(started) == set(ids[:10])
        assert repo.complete_many([(p, 1, "completed") for p in ids[:9]]) == set(ids[:9])
        assert repo.start_attempts([ids[10]]) and repo.finish(ids[10], PayoutStatus.FAILED, 1, "AC03", "closed")
        assert repo.finish(ids[9], PayoutStatus.FAILED, 1, "AC03", "closed") is True
        statements = [s for s in _Recording.seen if "UPDATE payouts" in s]  # not the events' INSERTs
        repo.db.close()
        assert len(statements) == 5  # two claims, one completion, two failures
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute("EXPLAIN " + statement)
                plan = "\n".join(r[0] for r in cur.fetchall())
                assert "payouts_open_idx" not in plan, f"{statement[:60]}...\n{plan}"
                assert "payouts_pkey" in plan
        conn.close()
