"""The outbox and the fan-out function: commit, answer, then enqueue each payout, resumably and safely twice."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import fanout_worker, wiring
from chalicelib.adapters.database import Database
from chalicelib.adapters.outbox import Outbox
from chalicelib.adapters.sqs_queue import PayoutQueue
from chalicelib.services import fanout
from tests.integration.helpers import batch, fan_out, item, message_payouts, post, sqs_event, sqs_records, wakeups

SEND_BATCH = "before-parameter-build.sqs.SendMessageBatch"


class Died(BaseException):
    """Where a real fan-out would die (the Lambda killed); BaseException so nothing in the stack catches it."""


def messages(aws: dict[str, Any]) -> Counter[str]:
    """payout_id -> number of messages on the payouts queue (received and deleted)."""
    found: Counter[str] = Counter()
    while msgs := aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            for pid in message_payouts(m["Body"]):
                found[pid] += 1
            aws["sqs"].delete_message(QueueUrl=aws["queue_url"], ReceiptHandle=m["ReceiptHandle"])
    return found


def records(db: Any, batch_id: str) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT outbox_id, kind, payload, progress, done_at IS NOT NULL, lease_owner FROM outbox"
            " WHERE aggregate_id = %s ORDER BY outbox_id",
            (batch_id,),
        )
        return cur.fetchall()


def settle_each_message(client: Any, sent: Counter[str]) -> None:
    """Deliver every message, duplicates included, ten per invocation as the mapping does."""
    bodies = [pid for pid, n in sent.items() for _ in range(n)]
    for i in range(0, len(bodies), 10):
        assert client.lambda_.invoke("settle", sqs_event(*bodies[i : i + 10])).payload == {"batchItemFailures": []}


def paid_once(client: Any, db: Any, ids: list[str]) -> None:
    with db.cursor() as cur:
        cur.execute(
            "SELECT payout_id::text, count(*) FROM sandbox_pix_transfers WHERE payout_id = ANY(%s::uuid[]) GROUP BY 1",
            (ids,),
        )
        assert dict(cur.fetchall()) == dict.fromkeys(ids, 1)
    assert {client.http.get(f"/payouts/{pid}").json_body["status"] for pid in ids} == {"Completed"}


def waiting_for(event: threading.Event) -> Any:
    """A botocore hook that holds each call until `event` is set (at most 10 s)."""

    def hook(**_: Any) -> None:
        event.wait(10)

    return hook


def one_wakeup(aws: dict[str, Any]) -> dict[str, Any]:
    [msg] = wakeups(aws)
    return msg


@pytest.fixture
def small_ranges(app_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Fan-out tasks of 20 payouts, one a message, sent from one thread, with progress recorded every 2 chunks."""
    monkeypatch.setenv("FANOUT_RANGE_ITEMS", "20")
    monkeypatch.setenv("ENQUEUE_WORKERS", "1")
    monkeypatch.setenv("PAYOUTS_PER_MESSAGE", "1")
    monkeypatch.setattr(fanout, "PROGRESS_EVERY_PAYOUTS", 20)
    wiring.reset()
    return app_env


def test_the_post_commits_the_batch_with_its_outbox_records_and_sends_only_one_wake_up(client, small_ranges, db):
    body = batch(*[item() for _ in range(45)])
    resp = post(client, body)
    assert resp.status_code == 201
    rows = records(db, body["batch_id"])
    assert [(r[1], r[2]["start"], r[2]["end"], r[3], r[4]) for r in rows] == [
        ("enqueue_payouts", 0, 20, 0, False),
        ("enqueue_payouts", 20, 40, 20, False),
        ("enqueue_payouts", 40, 45, 40, False),
    ]
    assert messages(small_ranges) == Counter()  # no payout message inside the request
    assert json.loads(one_wakeup(small_ranges)["Body"]) == {"outbox_ids": [r[0] for r in rows]}


def test_the_fan_out_enqueues_each_new_payout_once_and_never_a_duplicate_item(client, small_ranges, db):
    repeated = item()
    earlier = post(client, batch(repeated)).json_body
    fan_out(client, small_ranges)
    messages(small_ranges)
    body = batch(*[item() for _ in range(25)], dict(repeated))
    resp = post(client, body).json_body
    assert resp["duplicates"][0]["payout_id"] == earlier["payout_ids"][0]
    results = fan_out(client, small_ranges)
    assert len(results) == 2 and all(r == {"batchItemFailures": []} for r in results)
    new_ids = resp["payout_ids"][:25]
    assert messages(small_ranges) == Counter(dict.fromkeys(new_ids, 1))
    assert all(r[4] and r[5] is None for r in records(db, body["batch_id"]))  # done, lease given back


def test_a_replay_answers_200_with_the_same_ids_and_wakes_nothing(client, small_ranges, db):
    body = batch(item(), item())
    first = post(client, body)
    one_wakeup(small_ranges)
    replay = post(client, body)
    assert replay.status_code == 200 and replay.json_body["payout_ids"] == first.json_body["payout_ids"]
    assert wakeups(small_ranges) == [] and len(records(db, body["batch_id"])) == 1


def test_a_fan_out_that_dies_part_way_resumes_where_its_progress_stopped_and_all_payouts_settle(
    client, small_ranges, db, monkeypatch
):
    monkeypatch.setenv("FANOUT_RANGE_ITEMS", "40")
    wiring.reset()
    body = batch(*[item() for _ in range(60)])
    ids = post(client, body).json_body["payout_ids"]
    wake = one_wakeup(small_ranges)
    calls = []

    def die_on_the_fourth_payout_chunk(params: dict[str, Any], **_: Any) -> None:
        if params["QueueUrl"] == small_ranges["queue_url"]:
            calls.append(1)
            if len(calls) == 4:
                raise Died()

    wiring.sqs().meta.events.register(SEND_BATCH, die_on_the_fourth_payout_chunk)
    event = sqs_records([wake["Body"]], [wake["ReceiptHandle"]])
    with pytest.raises(Died):
        client.lambda_.invoke("fanout", event)
    wiring.sqs().meta.events.unregister(SEND_BATCH, die_on_the_fourth_payout_chunk)
    # The wake-up for the second range went out first; the first range died after three chunks,
    # with its progress recorded after the second (every 2 chunks here).
    [own, sibling] = records(db, body["batch_id"])
    assert own[3] == 20 and not own[4] and own[5] is not None
    assert not sibling[4] and sibling[5] is None

    # Redelivered while the dead invocation's lease runs: sent back, nothing sent.
    again = client.lambda_.invoke("fanout", sqs_records([json.dumps({"outbox_ids": [own[0]]})])).payload
    assert len(again["batchItemFailures"]) == 1
    with db.cursor() as cur:  # the lease runs out (it lasts as long as a fan-out may run)
        cur.execute("UPDATE outbox SET lease_until = now() - interval '1 second' WHERE outbox_id = %s", (own[0],))
    client.lambda_.invoke("fanout", sqs_records([json.dumps({"outbox_ids": [own[0]]})]))
    fan_out(client, small_ranges)  # the sibling's own wake-up
    assert all(r[4] for r in records(db, body["batch_id"]))

    sent = messages(small_ranges)
    assert set(sent) == set(ids)
    assert sorted(n for n in sent.values() if n > 1) == [2] * 10  # the third chunk, sent before and after
    settle_each_message(client, sent)
    paid_once(client, db, ids)


def held_fan_out(outbox_id: int, owner: str, lease: float, queue_url: str) -> Any:
    """Run enqueue_range for the record in a thread of its own (its own connection and SQS client) whose
    sends are held until the returned function is called; that function then returns the thread's result."""
    release, results = threading.Event(), []
    held_client = boto3.client("sqs")
    held_client.meta.events.register(SEND_BATCH, waiting_for(release))
    db = Database(wiring.database_url())
    queue = PayoutQueue(held_client, queue_url, workers=1)

    def run() -> None:
        results.append(fanout.enqueue_range(Outbox(db), queue, outbox_id, owner, lease))

    thread = threading.Thread(target=run)
    thread.start()

    def finish() -> dict[str, Any]:
        release.set()
        thread.join()
        db.close()
        return results[0]

    return finish


def test_the_same_record_processed_twice_at_once_lets_one_in_and_sends_the_other_back(small_ranges, db, client):
    body = batch(*[item() for _ in range(20)])
    ids = post(client, body).json_body["payout_ids"]
    [(outbox_id, *_)] = records(db, body["batch_id"])
    finish_first = held_fan_out(outbox_id, "first", 60, small_ranges["queue_url"])
    try:
        while records(db, body["batch_id"])[0][5] != "first":
            threading.Event().wait(0.05)
        with pytest.raises(fanout.StillLeased) as held:
            fanout.enqueue_range(wiring.outbox(), wiring.queue(), outbox_id, "second", 60)
        assert 50 < held.value.seconds <= 60
    finally:
        first = finish_first()
    assert first == {"outbox_id": outbox_id, "batch_id": body["batch_id"], "outcome": "sent", "sent": 20}
    assert messages(small_ranges) == Counter(dict.fromkeys(ids, 1))


def test_a_fan_out_that_outlives_its_lease_stops_at_its_next_progress_record_and_nothing_is_paid_twice(
    small_ranges, db, client
):
    body = batch(*[item() for _ in range(20)])
    ids = post(client, body).json_body["payout_ids"]
    [(outbox_id, *_)] = records(db, body["batch_id"])
    # A lease of one second, then a stall of a few: the record is free again while "late" still runs.
    finish_late = held_fan_out(outbox_id, "late", 1, small_ranges["queue_url"])
    try:
        threading.Event().wait(1.5)
        other = fanout.enqueue_range(wiring.outbox(), wiring.queue(), outbox_id, "other", 60)
    finally:
        late = finish_late()
    assert other["outcome"] == "sent" and other["sent"] == 20
    assert late["outcome"] == "lease_lost" and late["sent"] == 20  # its two chunks, then it stopped
    sent = messages(small_ranges)
    assert sent == Counter(dict.fromkeys(ids, 2))
    settle_each_message(client, sent)
    paid_once(client, db, ids)


def test_a_fan_out_sqs_refuses_keeps_its_progress_frees_its_record_and_its_retry_finishes_it(client, small_ranges, db):
    body = batch(*[item() for _ in range(20)])
    ids = post(client, body).json_body["payout_ids"]
    wake = one_wakeup(small_ranges)
    calls = []

    def unavailable_from_the_second_send(**_: Any) -> None:
        calls.append(1)
        if len(calls) >= 2:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")

    wiring.sqs().meta.events.register(SEND_BATCH, unavailable_from_the_second_send)
    result = client.lambda_.invoke("fanout", sqs_records([wake["Body"]], [wake["ReceiptHandle"]])).payload
    assert len(result["batchItemFailures"]) == 1
    wiring.sqs().meta.events.unregister(SEND_BATCH, unavailable_from_the_second_send)
    [(outbox_id, _, _, progress, done, owner)] = records(db, body["batch_id"])
    assert (progress, done, owner) == (10, False, None)
    retry = client.lambda_.invoke("fanout", sqs_records([json.dumps({"outbox_ids": [outbox_id]})])).payload
    assert retry == {"batchItemFailures": []} and records(db, body["batch_id"])[0][4]
    assert messages(small_ranges) == Counter(dict.fromkeys(ids, 1))


def test_a_wake_up_the_database_refuses_comes_back_in_seconds_not_after_the_visibility_timeout(
    client, small_ranges, database_url, monkeypatch
):
    body = batch(*[item() for _ in range(20)])
    ids = post(client, body).json_body["payout_ids"]
    wake = one_wakeup(small_ranges)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")  # nothing listens there
    wiring.reset()
    delays: list[int] = []
    hook = "before-parameter-build.sqs.ChangeMessageVisibility"
    wiring.sqs().meta.events.register(hook, lambda params, **_: delays.append(params["VisibilityTimeout"]))
    result = client.lambda_.invoke("fanout", sqs_records([wake["Body"]], [wake["ReceiptHandle"]])).payload
    assert len(result["batchItemFailures"]) == 1
    assert delays == [fanout_worker.RETRY_SECONDS]
    monkeypatch.setenv("DATABASE_URL", database_url)
    wiring.reset()
    retry = client.lambda_.invoke("fanout", sqs_records([wake["Body"]])).payload
    assert retry == {"batchItemFailures": []}
    assert messages(small_ranges) == Counter(dict.fromkeys(ids, 1))
