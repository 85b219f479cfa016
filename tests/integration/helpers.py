"""Builders for requests and SQS events used by the integration tests."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

SEED = Path(__file__).resolve().parents[2] / "seeds" / "payouts_batch_example.json"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def item(amount_cents: int = 1500, **overrides: Any) -> dict[str, Any]:
    ext = unique("ext")
    body = {
        "external_id": ext,
        "user_id": f"user-{ext[-6:]}",
        "amount_cents": amount_cents,
        "pix_key": f"{ext}@example.com",
    }
    body.update(overrides)
    return body


def batch(*items: dict[str, Any], batch_id: str | None = None) -> dict[str, Any]:
    return {"batch_id": batch_id or unique("batch"), "items": list(items) or [item()]}


def seed_batch() -> dict[str, Any]:
    """The challenge's example with fresh ids, so tests can run in any order."""
    body = json.loads(SEED.read_text())
    tag = uuid.uuid4().hex[:8]
    body["batch_id"] = f"{body['batch_id']}-{tag}"
    for it in body["items"]:
        it["external_id"] = f"{it['external_id']}-{tag}"
    return body


def post(client: Any, body: Any, raw: bytes | str | None = None) -> Any:
    return client.http.post(
        "/batches",
        headers={"Content-Type": "application/json"},
        body=raw if raw is not None else json.dumps(body),
    )


def message_payouts(body: str) -> tuple[str, ...]:
    """The payouts a payouts-queue message carries: one, or a group."""
    from chalicelib.domain.payout_messages import decode

    return decode(body).payout_ids


def sqs_event(
    *payout_ids: str, receipt_handles: list[str] | None = None, sent_ms: int | None = None, receive_count: int = 1
) -> dict[str, Any]:
    """An SQS event whose records have distinct messageIds (Chalice's generator reuses one)."""
    bodies = [json.dumps({"payout_id": pid}) for pid in payout_ids]
    return sqs_records(bodies, receipt_handles, sent_ms=sent_ms, receive_count=receive_count)


def sqs_records(
    bodies: list[str], receipt_handles: list[str] | None = None, *, sent_ms: int | None = None, receive_count: int = 1
) -> dict[str, Any]:
    """An SQS event with these message bodies, sent now unless sent_ms says when."""
    sent = str(int(time.time() * 1000) if sent_ms is None else sent_ms)
    records = []
    for n, body in enumerate(bodies):
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": (receipt_handles or [])[n] if receipt_handles else f"rh-{uuid.uuid4().hex}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": sent,
                    "SenderId": "test",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:payouts",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def wakeups(aws: dict[str, Any]) -> list[dict[str, Any]]:
    """Receive (and so hide) every wake-up message visible on the fan-out queue."""
    out: list[dict[str, Any]] = []
    while msgs := aws["sqs"].receive_message(QueueUrl=aws["fanout_url"], MaxNumberOfMessages=10).get("Messages", []):
        out += msgs
    return out


def fan_out(client: Any, aws: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the fan-out function on every wake-up, as the queue's event source mapping would, until none
    is left (the first one wakes the others); returns each invocation's result."""
    results = []
    while msgs := wakeups(aws):
        for m in msgs:
            event = sqs_records([m["Body"]], [m["ReceiptHandle"]])
            result = client.lambda_.invoke("fanout", event).payload
            if not result["batchItemFailures"]:
                aws["sqs"].delete_message(QueueUrl=aws["fanout_url"], ReceiptHandle=m["ReceiptHandle"])
            results.append(result)
    return results


def service_output(printed: str, logged: str) -> str:
    """What the service printed (EMF from flush_metrics) and logged, each logger line once: the
    logger writes to stdout too whenever the capture sees it, and a line counted twice would
    count its metrics twice."""
    lines = logged.splitlines()
    seen = set(lines)
    return "\n".join(lines + [line for line in printed.splitlines() if line not in seen])


def sweep_now(stale_seconds: int = 900, lost_seconds: int | None = None) -> dict[str, int]:
    """The sweeper's run, now, on the app the test configured (outbox records due at once)."""
    from chalicelib import wiring
    from chalicelib.services import recovery

    return recovery.sweep(
        wiring.repository(),
        wiring.queue(),
        wiring.outbox(),
        wiring.fanout_queue(),
        grace_seconds=0,
        stale_seconds=stale_seconds,
        limit=1000,
        dead_letters=wiring.dead_letters() if lost_seconds is not None else None,
        lost_seconds=lost_seconds,
    )
