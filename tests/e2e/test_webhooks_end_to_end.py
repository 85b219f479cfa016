"""Webhooks on the embedded stack: the relay's schedule, the delivery queue and function, a local receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ROOT
from tests.e2e.test_payouts_end_to_end import post, wait_until_settled
from tests.e2e.test_readme_commands import block_with, sh
from tests.integration.helpers import seed_batch
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
# The relay is started every minute (its first run up to a minute after the deploy), then polls.
DELIVERY_DEADLINE = 180.0
ALL_EVENTS = ["batch.accepted", "payout.completed", "payout.failed", "batch.completed"]


def delete(stack: Any, path: str) -> requests.Response:
    return requests.delete(stack.url(path), headers={"x-api-key": stack.api_key}, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readme_webhook_commands(port: int) -> tuple[str, str]:
    """The README's Webhooks block: its registering curl lines and its receiver line, on `port` instead of 8000."""
    block = block_with('curl -s -X POST "$API/webhook-endpoints"').replace("8000", str(port))
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    (serve,) = [line for line in lines if "examples/webhook_receiver.py" in line]
    return "\n".join(line for line in lines if line != serve), serve


def test_the_seed_batch_is_told_to_a_local_receiver_every_signature_valid(stack):
    receiver = Receiver()
    resp = stack.post("/webhook-endpoints", json.dumps({"url": receiver.url, "events": ALL_EVENTS}))
    assert resp.status_code == 201, resp.text
    endpoint = resp.json()
    # The README's two commands, as it shows them but on a free port: curl registers a second endpoint, and
    # examples/webhook_receiver.py serves it with the secret curl printed.
    port = free_port()
    register, serve = readme_webhook_commands(port)
    done = sh(register)
    assert done.returncode == 0, done.stderr
    example = json.loads(done.stdout)
    readme_receiver = subprocess.Popen(
        ["bash", "-c", serve.replace("whsec_...", example["secret"])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        body = seed_batch()
        assert post(stack, body).status_code == 201
        wait_until_settled(stack, body["batch_id"])
        expected = ["batch.accepted", "batch.completed"] + ["payout.completed"] * len(body["items"])
        end = time.monotonic() + DELIVERY_DEADLINE
        while True:
            events = receiver.events(endpoint["secret"], body["batch_id"])  # raises on a bad signature
            if sorted(e["type"] for e in events) == expected or time.monotonic() > end:
                break
            time.sleep(1)
        assert sorted(e["type"] for e in events) == expected
        assert len({e["id"] for e in events}) == len(expected)
        keys = {item["pix_key"] for item in body["items"]}
        assert not any(e["data"].get("pix_key") in keys for e in events)
        attempts = stack.get(f"/webhook-endpoints/{endpoint['id']}/deliveries").json()["deliveries"]
        assert {a["status_code"] for a in attempts} == {200} and len(attempts) >= len(expected)
        end = time.monotonic() + 30
        while time.monotonic() < end and len(
            stack.get(f"/webhook-endpoints/{example['id']}/deliveries").json()["deliveries"]
        ) < len(expected):
            time.sleep(1)
    finally:
        delete(stack, f"/webhook-endpoints/{endpoint['id']}")
        delete(stack, f"/webhook-endpoints/{example['id']}")
        receiver.close()
        os.killpg(readme_receiver.pid, signal.SIGTERM)
    printed = [line.split() for line in readme_receiver.communicate(timeout=10)[0].splitlines()]
    assert sorted(p[0] for p in printed if p[1] == body["batch_id"]) == expected


def test_metadata_and_private_addresses_are_refused_through_the_gateway(stack):
    for url in ("https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hook", "http://169.254.170.2/v2"):
        resp = stack.post("/webhook-endpoints", json.dumps({"url": url, "events": ["payout.failed"]}))
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_endpoint", resp.text


def test_the_cli_adds_lists_and_removes_an_endpoint(stack):
    from tests.e2e.test_cli import run

    added = run(stack, "webhooks", "add", "http://127.0.0.1:9/cli-hook", "--events", "payout.failed,batch.completed")
    assert added.returncode == 0, added.stderr
    secret = next(line.strip() for line in added.stdout.splitlines() if line.strip().startswith("whsec_"))
    endpoints = stack.get("/webhook-endpoints").json()["webhook_endpoints"]
    endpoint_id = next(e["id"] for e in endpoints if "cli-hook" in e["url"])
    listed = run(stack, "webhooks", "list")
    assert listed.returncode == 0 and endpoint_id in listed.stdout and "cli-hook" in listed.stdout
    assert secret not in listed.stdout
    refused = run(stack, "webhooks", "add", "https://169.254.169.254/latest/meta-data/")
    assert refused.returncode == 2 and "metadata" in refused.stderr
    removed = run(stack, "webhooks", "remove", endpoint_id)
    assert removed.returncode == 0
    assert endpoint_id not in run(stack, "webhooks", "list").stdout
    assert run(stack, "webhooks", "remove", endpoint_id).returncode == 2
