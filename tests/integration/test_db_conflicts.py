"""Row locks on a real PostgreSQL: duplicate batches never deadlock settlement, lost conflicts are retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from chalicelib.adapters.database import Database
from chalicelib.adapters.postgres import _LOCK_BY_ID, BatchWriter, PayoutRepository
from chalicelib.api.http import error_response
from chalicelib.domain.errors import Busy
from tests.integration.helpers import batch, item, post, unique


@pytest.fixture
def payouts(client: Any) -> list[str]:
    """Two Pending payouts, in payout_id order (the order settlement locks them in)."""
    return sorted(post(client, batch(item(), item())).json_body["payout_ids"])


@pytest.fixture
def other(database_url: str) -> Iterator[Any]:
    """A second session, in a transaction the test ends."""
    conn = psycopg2.connect(database_url, application_name="pix-test-other")
    yield conn
    conn.rollback()
    conn.close()


def repository(database_url: str, name: str = "pix-payouts", **settings: str) -> PayoutRepository:
    options = " ".join(f"-c {k}={v}" for k, v in settings.items())
    return PayoutRepository(Database(database_url, options=options, application_name=name))


def duplicate_batch_items(cur: Any, payout_ids: list[str]) -> None:
    """What a batch repeating these payouts' external_ids writes: its row, then batch_items pointing at them."""
    batch_id = unique("dup")
    cur.execute("INSERT INTO batches (batch_id, request_hash, item_count) VALUES (%s, 'h', %s)", (batch_id, 2))
    BatchWriter(cur).insert_batch_items(batch_id, [(n, pid, True) for n, pid in enumerate(payout_ids)])


def wait_until_blocked(db: Any, application_name: str, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with db.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                (application_name,),
            )
            if cur.fetchone()[0]:
                return
        time.sleep(0.01)
    raise AssertionError(f"{application_name} never waited for a lock")


def events(db: Any, pid: str, name: str) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM payout_events WHERE payout_id = %s AND event = %s", (pid, name))
        return int(cur.fetchone()[0])


def test_a_claim_does_not_wait_for_a_duplicate_batch_holding_foreign_key_locks(payouts, other, database_url):
    # The duplicate batch got as far as its second payout (shuffled order), holding KEY SHARE on it.
    with other.cursor() as cur:
        duplicate_batch_items(cur, [payouts[1]])
    # A claim waiting on that row while holding the first one was half of the old deadlock.
    claimed = repository(database_url, lock_timeout="2s").start_attempts(payouts)
    assert sorted(claimed) == payouts
    with other.cursor() as cur:
        duplicate_batch_items(cur, [payouts[0]])
    other.commit()


def test_a_duplicate_batch_does_not_wait_for_a_claim_holding_its_payouts(payouts, other, database_url):
    claim = psycopg2.connect(database_url)
    try:
        with claim.cursor() as cur:
            cur.execute(_LOCK_BY_ID, (payouts,))  # settlement's row locks, held in an open transaction
            assert len(cur.fetchall()) == 2
        with other.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")
            duplicate_batch_items(cur, list(reversed(payouts)))
        other.commit()
    finally:
        claim.rollback()
        claim.close()


def test_a_deadlock_is_retried_in_place_and_the_claim_goes_through_once(payouts, other, database_url, db, service_logs):
    first, second = payouts
    with other.cursor() as cur:
        cur.execute("UPDATE payouts SET updated_at = now() WHERE payout_id = %s", (second,))
    # Our session detects the deadlock long before the other one, so it is the one rolled back.
    repo = repository(database_url, "pix-test-claim", deadlock_timeout="50ms")
    result: dict[str, Any] = {}
    claim = threading.Thread(target=lambda: result.update(repo.start_attempts(payouts)))
    claim.start()
    wait_until_blocked(db, "pix-test-claim")  # holds `first`, waits for `second`
    with other.cursor() as cur:
        cur.execute("UPDATE payouts SET updated_at = now() WHERE payout_id = %s", (first,))  # the deadlock
    other.commit()
    claim.join(timeout=30)
    assert sorted(result) == payouts
    assert [result[p][0].attempts for p in payouts] == [1, 1]
    assert [events(db, p, "attempt_started") for p in payouts] == [1, 1]
    assert '"sqlstate":"40P01"' in service_logs.getvalue().replace(" ", "")


def test_a_conflict_that_outlasts_the_retries_is_busy_not_unavailable(payouts, other, database_url, db):
    with other.cursor() as cur:
        cur.execute("UPDATE payouts SET updated_at = now() WHERE payout_id = %s", (payouts[0],))
    repo = repository(database_url, lock_timeout="50ms")
    with pytest.raises(Busy) as caught:
        repo.start_attempts(payouts)
    response = error_response(caught.value)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert '"code":"busy"' in response.body
    assert [events(db, p, "attempt_started") for p in payouts] == [0, 0]
    other.commit()
    assert sorted(repo.start_attempts(payouts)) == payouts  # same connection, still usable
