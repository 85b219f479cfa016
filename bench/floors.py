"""The floors: what the emulator and Postgres need at minimum for the same volume of work.

ingest floor = COPY of N payout rows into a scratch copy of `payouts` over one psycopg2 connection
             + N messages sent with sequential SendMessageBatch calls (10 entries) to a scratch queue.
settle floor = the same N queued messages drained by a no-op Lambda through an SQS event source
               mapping with the settle mapping's BatchSize and MaximumConcurrency.
end-to-end floor = the ingest floor's COPY, then its sends while the no-op mapping drains the queue,
               until the last message was handled.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .env import client, connect

SQS_BATCH = 10
PAYOUT_COPY_COLUMNS = "payout_id, external_id, batch_id, user_id, amount_cents, pix_key_type, pix_key, end_to_end_id"

# A silent invocation costs an extra ~50 ms in MiniStack (it waits that long for output that
# never comes: Worker._drain_stderr_bounded); the settle function always logs, so the no-op
# logs one short line too, or the floor would be higher than what the real function pays.
NOOP_SOURCE = '''"""Benchmark floor: acknowledges every SQS record and does nothing else."""


def handler(event, context):
    print("noop", len(event.get("Records", ())))
    return {"batchItemFailures": []}
'''
NOOP_SILENT_SOURCE = """def handler(event, context):
    return {"batchItemFailures": []}
"""


# -- ingest floor: COPY -------------------------------------------------------


def payout_rows(run_id: str, n: int) -> list[tuple[object, ...]]:
    """Rows shaped like the ones the API COPYs into `payouts` (same columns, same value shapes)."""
    from chalicelib.domain.end_to_end import new_end_to_end_id

    now = datetime.now(UTC)
    batch_id = f"bench-{run_id}-floor"
    return [
        (
            str(uuid.uuid4()),
            f"{batch_id}-{i}",
            batch_id,
            f"u{i}",
            100 + i % 900,
            "EMAIL",
            f"bench.floor.{i}@example.com",
            new_end_to_end_id("99999999", now),
        )
        for i in range(n)
    ]


def csv_buffer(rows: list[tuple[object, ...]]) -> io.StringIO:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    buf.seek(0)
    return buf


def copy_seconds(database_url: str, run_id: str, n: int) -> float:
    """COPY n rows into a scratch table `LIKE payouts INCLUDING ALL` (same columns, types, defaults,
    checks and indexes; no foreign keys) and commit; the table is dropped afterwards.
    Only COPY + COMMIT are timed: the CSV is built beforehand."""
    table = f"bench_scratch_payouts_{run_id.replace('-', '_')}"
    buf = csv_buffer(payout_rows(run_id, n))
    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (LIKE payouts INCLUDING ALL)")
        conn.autocommit = False
        with conn.cursor() as cur:
            started = time.perf_counter()
            cur.copy_expert(f"COPY {table} ({PAYOUT_COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)", buf)
            conn.commit()
            seconds = time.perf_counter() - started
            cur.execute(f"SELECT count(*) FROM {table}")
            copied = cur.fetchone()[0]
        conn.commit()
        if copied != n:
            raise RuntimeError(f"COPY floor wrote {copied} rows, expected {n}")
        return seconds
    finally:
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


# -- scratch queue, sends -------------------------------------------------------


@dataclass(frozen=True)
class ScratchQueue:
    url: str
    arn: str
    dlq_url: str


@contextmanager
def scratch_queue(sqs: Any, name: str, like_url: str) -> Iterator[ScratchQueue]:
    """A queue + DLQ with the payouts queue's visibility timeout and redrive count (MiniStack scans
    the DLQ policy on every receive, so the floor pays what the real queue pays); deleted afterwards."""
    like = sqs.get_queue_attributes(QueueUrl=like_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])
    attrs = like.get("Attributes", {})
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    url = None
    try:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        max_receives = json.loads(attrs.get("RedrivePolicy", "{}")).get("maxReceiveCount", 5)
        url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": attrs.get("VisibilityTimeout", "180"),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}),
            },
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield ScratchQueue(url, arn, dlq_url)
    finally:
        if url:
            sqs.delete_queue(QueueUrl=url)
        sqs.delete_queue(QueueUrl=dlq_url)


def message_batches(n: int, per_message: int = 1) -> list[list[dict[str, str]]]:
    """n payouts in messages like the app's (`{"payout_id":"<uuid>"}`), in SendMessageBatch chunks of 10;
    with per_message > 1, that many payout ids per message (`{"payout_ids":[...]}`), n / per_message messages."""
    if per_message == 1:
        bodies = [json.dumps({"payout_id": str(uuid.uuid4())}, separators=(",", ":")) for _ in range(n)]
    else:
        bodies = [
            json.dumps({"payout_ids": [str(uuid.uuid4()) for _ in range(per_message)]}, separators=(",", ":"))
            for _ in range(-(-n // per_message))
        ]
    return [
        [{"Id": str(j), "MessageBody": body} for j, body in enumerate(bodies[i : i + SQS_BATCH])]
        for i in range(0, len(bodies), SQS_BATCH)
    ]


def send_seconds(sqs: Any, queue_url: str, n: int, per_message: int = 1) -> float:
    """n payouts' messages with sequential SendMessageBatch calls; entries are built before the clock starts."""
    batches = message_batches(n, per_message)
    started = time.perf_counter()
    for entries in batches:
        resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if resp.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed for {len(resp['Failed'])} entries")
    return time.perf_counter() - started


def queue_depth(sqs: Any, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def wait_empty(sqs: Any, queue_url: str, timeout: float, poll: float = 0.5) -> float:
    """Epoch at which the queue was first seen empty (visible + in flight + delayed = 0).
    Each poll costs MiniStack a scan of the queue, hence the half-second interval."""
    deadline = time.monotonic() + timeout
    while True:
        if queue_depth(sqs, queue_url) == 0:
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{queue_url} not drained after {timeout:.0f} s")
        time.sleep(poll)


def last_invocation_end(function_name: str, seen_empty_at: float, lookback: float = 5.0) -> float | None:
    """Epoch of the function's last CloudWatch log event (MiniStack writes an invocation's START..REPORT
    lines when it returns), looked up shortly before the queue was seen empty; None if there is none."""
    logs = client("logs")
    kwargs: dict[str, Any] = {
        "logGroupName": f"/aws/lambda/{function_name}",
        "startTime": int((seen_empty_at - lookback) * 1000),
    }
    last = None
    while True:
        page = logs.filter_log_events(**kwargs)
        stamps = [e["timestamp"] for e in page.get("events", [])]
        if stamps:
            last = max(stamps + ([last] if last is not None else []))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    return last / 1000 if last is not None else None


def drain_seconds(sqs: Any, queue_url: str, mapping_uuid: str, function_name: str, timeout: float) -> float:
    """Enable the no-op mapping and time until the last message was handled: the end of the last
    invocation from its log timestamp (the poll only notices it up to half a second later)."""
    started = time.time()
    set_mapping(mapping_uuid, True)
    seen_empty = wait_empty(sqs, queue_url, timeout)
    last = last_invocation_end(function_name, seen_empty)
    end = last if last is not None and started < last <= seen_empty else seen_empty
    return end - started


def end_to_end_seconds(
    sqs: Any, queue_url: str, noop: NoopMapping, database_url: str, run_id: str, n: int, timeout: float
) -> dict[str, float]:
    """The end-to-end floor: COPY of n rows, then n sequential sends while the no-op mapping drains the
    scratch queue, until the last invocation's end. The mapping is enabled before the COPY, so the
    drain runs throughout, as settlement does in the service."""
    set_mapping(noop.uuid, True)
    try:
        copy_s = copy_seconds(database_url, run_id, n)
        started = time.time()
        send_s = send_seconds(sqs, queue_url, n)
        seen_empty = wait_empty(sqs, queue_url, timeout)
        last = last_invocation_end(noop.function_name, seen_empty)
    finally:
        set_mapping(noop.uuid, False)
    end = last if last is not None and started < last <= seen_empty else seen_empty
    return {"copy_seconds": copy_s, "send_seconds": send_s, "seconds": copy_s + end - started}


# -- settle floor: no-op function behind an event source mapping -----------------


def noop_zip(silent: bool = False, sleep_seconds: float = 0.0) -> bytes:
    """The no-op function; with sleep_seconds, each invocation first waits that long (one provider call,
    every send of the batch perfectly overlapped: the settle_latency floor)."""
    source = NOOP_SILENT_SOURCE if silent else NOOP_SOURCE
    if sleep_seconds:
        source = source.replace(
            "def handler(event, context):\n",
            f"def handler(event, context):\n    __import__('time').sleep({sleep_seconds!r})\n",
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("noop.py", source)
    return buf.getvalue()


@dataclass(frozen=True)
class NoopMapping:
    function_name: str
    uuid: str


@contextmanager
def noop_consumer(
    name: str,
    queue_arn: str,
    batch_size: int,
    max_concurrency: int,
    runtime: str = "python3.11",
    silent: bool = False,
    sleep_seconds: float = 0.0,
) -> Iterator[NoopMapping]:
    """A no-op function with a disabled SQS mapping (same BatchSize, MaximumConcurrency and
    ReportBatchItemFailures as the settle mapping); mapping and function are deleted afterwards."""
    lam = client("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role="arn:aws:iam::000000000000:role/pix-bench-noop",
        Handler="noop.handler",
        Code={"ZipFile": noop_zip(silent, sleep_seconds)},
        Timeout=30,
        MemorySize=512,
    )
    mapping_uuid = None
    try:
        mapping_uuid = lam.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=name,
            BatchSize=batch_size,
            Enabled=False,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": max_concurrency},
        )["UUID"]
        yield NoopMapping(name, mapping_uuid)
    finally:
        if mapping_uuid:
            lam.delete_event_source_mapping(UUID=mapping_uuid)
        lam.delete_function(FunctionName=name)
        logs = client("logs")
        try:
            logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")
        except logs.exceptions.ResourceNotFoundException:
            pass


def set_mapping(uuid_: str, enabled: bool) -> None:
    client("lambda").update_event_source_mapping(UUID=uuid_, Enabled=enabled)
