"""Faults of our own infrastructure injected for real on the embedded stack: nothing lost, failed or paid twice.

Each test settles a batch, breaks a part of the stack mid-settle, brings it back with `infra/stack.py up`
(what `make up` runs), waits until every payout is final, and checks the ledger. The figures (time to
recover) are printed for the record, never asserted. On the in-database sandbox provider, whose ledger
table counts every transfer (`PIX_STACK_PROVIDER=sandbox`; the tests' `up` keeps it).
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import psycopg2
import pytest
import requests

from tests.e2e.conftest import ROOT, SANDBOX, STACK
from tests.integration.helpers import batch, item, unique

# They break shared parts of the stack: run after every other test (tests/e2e/conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.stack_faults, pytest.mark.stack_mode(SANDBOX)]
BATCH = 500
KILL_BATCH = 4000
FINAL_DEADLINE = 300.0
PG_LOG = STACK / "pgdata" / "log"  # pgserver starts PostgreSQL with `pg_ctl -l <pgdata>/log`


def stack_py(*args: str) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "infra" / "stack.py"), *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout


def connect(stack: Any) -> Any:
    conn = psycopg2.connect(stack.database_url)
    conn.autocommit = True
    return conn


def scalar(stack: Any, sql: str, *args: Any) -> Any:
    conn = connect(stack)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]
    finally:
        conn.close()


def submit(stack: Any, body: dict[str, Any]) -> list[str]:
    resp = stack.post("/batches", json.dumps(body))
    assert resp.status_code == 201, resp.text[:300]
    return list(resp.json()["payout_ids"])


def wait_until(predicate: Any, deadline: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > deadline:
            raise AssertionError(f"{what} not reached in {deadline} s")
        time.sleep(0.25)
    return time.monotonic() - start


def completed(stack: Any, batch_id: str) -> int:
    return int(scalar(stack, "SELECT count(*) FROM payouts WHERE batch_id = %s AND status = 'Completed'", batch_id))


def open_count(stack: Any, ids: list[str]) -> int:
    try:
        return int(
            scalar(
                stack,
                "SELECT count(*) FROM payouts"
                " WHERE payout_id = ANY(%s::uuid[]) AND status IN ('Pending', 'Processing')",
                ids,
            )
        )
    except psycopg2.OperationalError:
        return len(ids)  # the database is still down


def ledger(stack: Any, ids: list[str]) -> dict[str, int]:
    """What the issue asks to be zero, and what it asks to be everything."""
    conn = connect(stack)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "WITH t AS (SELECT payout_id, count(*) AS n FROM sandbox_pix_transfers"
                " WHERE payout_id = ANY(%s::uuid[]) GROUP BY payout_id)"
                " SELECT count(*) FILTER (WHERE p.status = 'Completed' AND t.n = 1),"
                " count(*) FILTER (WHERE t.n > 1),"
                " count(*) FILTER (WHERE p.status = 'Completed' AND coalesce(t.n, 0) <> 1),"
                " count(*) FILTER (WHERE p.status = 'Failed' AND (p.provider_failures = 0 OR t.n IS NOT NULL)),"
                " count(*) FILTER (WHERE p.status IN ('Pending', 'Processing'))"
                " FROM payouts p LEFT JOIN t USING (payout_id) WHERE p.payout_id = ANY(%s::uuid[])",
                (ids, ids),
            )
            row = cur.fetchone()
    finally:
        conn.close()
    names = ("paid_once", "paid_twice", "completed_not_paid_once", "failed_without_provider_attempt", "open")
    return dict(zip(names, row, strict=True))


def assert_every_payout_paid_once(stack: Any, ids: list[str]) -> None:
    figures = ledger(stack, ids)
    assert figures == {
        "paid_once": len(ids),
        "paid_twice": 0,
        "completed_not_paid_once": 0,
        "failed_without_provider_attempt": 0,
        "open": 0,
    }


def log_offset() -> int:
    return PG_LOG.stat().st_size


def deadlocks_since(offset: int) -> list[str]:
    with PG_LOG.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    return [line for line in text.splitlines() if "deadlock detected" in line]


def report(fault: str, **figures: Any) -> None:
    print(f"\nfault: {fault}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def postmaster_pid() -> int:
    return int((STACK / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def ministack_pid() -> int:
    return int((STACK / "ministack.pid").read_text().strip())


def test_postgres_stopped_mid_settle_and_brought_back_by_up_loses_fails_and_double_pays_nothing(stack):
    body = batch(*[item(amount_cents=100 + n) for n in range(BATCH)])
    ids = submit(stack, body)
    offset = log_offset()
    wait_until(lambda: completed(stack, body["batch_id"]) >= BATCH // 10, 120, "settlement under way")
    emulator = ministack_pid()
    # SIGINT is PostgreSQL's fast shutdown: sessions are cut at once, and the sandbox provider's
    # asynchronously committed ledger is flushed (an immediate shutdown could lose transfers the
    # "provider" made, which no real provider does).
    os.kill(postmaster_pid(), signal.SIGINT)
    wait_until(lambda: not (STACK / "pgdata" / "postmaster.pid").exists(), 60, "PostgreSQL stopped")
    time.sleep(20)  # the outage of the issue: 20 s
    back = time.monotonic()
    stack_py("up")
    assert ministack_pid() == emulator  # `up` brought back PostgreSQL and left the emulator running
    up_seconds = time.monotonic() - back
    recovered = wait_until(lambda: open_count(stack, ids) == 0, FINAL_DEADLINE, "every payout final")
    assert_every_payout_paid_once(stack, ids)
    assert deadlocks_since(offset) == []
    report(
        "PostgreSQL stopped 20 s mid-settle",
        payouts=len(ids),
        up_s=round(up_seconds, 1),
        all_final_after_up_s=round(recovered, 1),
        **ledger(stack, ids),
    )


def _stack_env() -> dict[str, str]:
    env = dict(os.environ)
    for line in stack_py("env").splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = (shlex.split(value) or [""])[0]
    return env


def sqs() -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{os.environ.get('PIX_STACK_PORT', '4566')}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def queued_messages() -> int:
    """Messages on the payouts queue, waiting or in flight (not the delayed ones)."""
    url = (STACK / "queue_url").read_text().strip()
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


def test_the_emulator_and_its_workers_killed_mid_settle_lose_fail_and_double_pay_nothing(stack):
    # Ten payouts a message settle 500 in about a second: a larger batch is still settling when the emulator dies.
    size = KILL_BATCH
    body = batch(*[item(amount_cents=100 + n % 900) for n in range(size)])
    ids = submit(stack, body)
    wait_until(lambda: completed(stack, body["batch_id"]) >= size // 10, 120, "settlement under way")
    # A POST in flight when the emulator dies: it may commit its batch and never get an answer.
    in_flight = batch(*[item(amount_cents=100 + n) for n in range(BATCH // 2)])
    answers: list[Any] = []

    def post_in_flight() -> None:
        try:
            answers.append(stack.post("/batches", json.dumps(in_flight)).status_code)
        except requests.RequestException as exc:
            answers.append(type(exc).__name__)

    poster = threading.Thread(target=post_in_flight)
    poster.start()
    database = postmaster_pid()
    wait_until(
        lambda: (
            scalar(stack, "SELECT count(*) FROM batches WHERE batch_id = %s", in_flight["batch_id"]) > 0
            or not poster.is_alive()
        ),
        60,
        "the second batch committed",
    )
    os.killpg(ministack_pid(), signal.SIGKILL)  # the emulator and every Lambda worker it runs
    killed = time.monotonic()
    poster.join(timeout=90)
    back = time.monotonic()
    stack_py("up")
    assert postmaster_pid() == database  # `up` brought back the emulator and left PostgreSQL running
    up_seconds = time.monotonic() - back
    # A payout whose message died with the emulator has been untouched since the kill: once the
    # sweep's 5 s window has passed since then, every such payout is old enough to be found.
    time.sleep(max(0.0, killed + 6 - time.monotonic()))
    # The fresh emulator restores the state of its last clean stop (an earlier test's): those old
    # messages, of payouts long final, are no-ops that settlement deletes within seconds, and until
    # then they hide as many lost ones from the sweeper (the scheduled one runs again a minute later).
    wait_until(lambda: queued_messages() == 0, 60, "the restored old messages settled")
    # What the scheduled sweeper does within a minute once the payouts are a minute old, run now:
    # the queues are empty and the payouts open, so every message is known to be gone.
    swept = json.loads(
        subprocess.run(
            [sys.executable, "-m", "chalicelib.cli", "sweep", "--lost-seconds", "5", "--grace-seconds", "5"],
            cwd=ROOT,
            env=_stack_env(),
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    committed = [
        str(r[0]) for r in _rows(stack, "SELECT payout_id FROM payouts WHERE batch_id = %s", in_flight["batch_id"])
    ]
    every = ids + committed
    recovered = wait_until(lambda: open_count(stack, every) == 0, FINAL_DEADLINE, "every payout final")
    assert_every_payout_paid_once(stack, every)
    assert swept["missing"] > 0 and swept["lost_payouts"] + swept["outbox_records"] > 0, swept
    report(
        "emulator and settle workers killed -9 mid-settle",
        payouts=len(every),
        post_in_flight=answers,
        up_s=round(up_seconds, 1),
        resent=swept["lost_payouts"],
        outbox_records_woken=swept["outbox_records"],
        all_final_after_up_s=round(recovered, 1),
        **ledger(stack, every),
    )


def _rows(stack: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = connect(stack)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_a_clean_down_and_up_keeps_the_emulator_s_queues_and_the_stack(stack):
    queues = sqs()
    probe = queues.create_queue(QueueName=unique("persist"))["QueueUrl"]
    queues.send_message(QueueUrl=probe, MessageBody="kept")
    key = stack.api_key
    for target in ("down", "up"):  # as the README shows them
        subprocess.run(["make", "--no-print-directory", target], cwd=ROOT, check=True, capture_output=True, timeout=600)
    msgs = queues.receive_message(QueueUrl=probe, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in msgs] == ["kept"]
    assert stack.api_key == key  # the same deployed stack, not a new one
    body = batch(*[item(amount_cents=100 + n) for n in range(50)])
    ids = submit(stack, body)
    wait_until(lambda: open_count(stack, ids) == 0, FINAL_DEADLINE, "every payout final")
    assert_every_payout_paid_once(stack, ids)
    queues.delete_queue(QueueUrl=probe)


def test_shuffled_duplicate_batches_racing_a_settling_batch_never_deadlock_or_answer_503(stack):
    items = [item(amount_cents=100 + n % 900) for n in range(2 * BATCH)]  # 8 x 1,000 items stay under 29 s here
    duplicates = []
    for n in range(8):  # the same external_ids, each in its own order, under a batch_id of its own
        shuffled = list(items)
        random.Random(n).shuffle(shuffled)
        duplicates.append(json.dumps(batch(*shuffled)))
    body = batch(*items)
    offset = log_offset()
    ids = submit(stack, body)  # its messages went out with it: settlement is under way

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda d: stack.post("/batches", d), duplicates))
    settled_meanwhile = completed(stack, body["batch_id"])
    assert [r.status_code for r in answers] == [201] * 8, [r.text[:200] for r in answers if r.status_code != 201]
    for resp in answers:
        assert len(resp.json()["duplicates"]) == len(items) and set(resp.json()["payout_ids"]) == set(ids)
    recovered = wait_until(lambda: open_count(stack, ids) == 0, FINAL_DEADLINE, "every payout final")
    assert_every_payout_paid_once(stack, ids)
    deadlocks = deadlocks_since(offset)
    assert deadlocks == []
    report(
        "8 shuffled duplicate POSTs racing settlement",
        payouts=len(ids),
        answers=sorted({r.status_code for r in answers}),
        deadlocks=len(deadlocks),
        completed_when_the_duplicates_were_answered=settled_meanwhile,
        all_final_after_s=round(recovered, 1),
        **ledger(stack, ids),
    )
