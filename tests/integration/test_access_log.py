"""Every API request leaves one log line: method, route template, status, duration, and the ids in its path."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.helpers import batch, item, post


def request_lines(logs: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, logs.splitlines()) if line.get("message") == "request"]


def test_each_request_logs_its_route_status_and_duration_and_names_the_batch(client, service_logs):
    body = batch(item(), item())
    assert post(client, body).status_code == 201
    assert client.http.get(f"/batches/{body['batch_id']}").status_code == 200
    assert client.http.get("/payouts/00000000-0000-7000-8000-000000000000").status_code == 404
    lines = request_lines(service_logs.getvalue())
    assert [(x["method"], x["route"], x["status"]) for x in lines] == [
        ("POST", "/batches", 201),
        ("GET", "/batches/{batch_id}", 200),
        ("GET", "/payouts/{payout_id}", 404),
    ]
    assert lines[0]["batch_id"] == lines[1]["batch_id"] == body["batch_id"] and "batch_id" not in lines[2]
    assert lines[2]["payout_id"] == "00000000-0000-7000-8000-000000000000"
    assert all(isinstance(x["duration_ms"], float) and x["duration_ms"] >= 0 for x in lines)
    assert {x["level"] for x in lines} == {"INFO"}


def test_a_request_the_router_refuses_is_logged_too_and_carries_no_body(client, service_logs):
    pix_key = "529.982.247-25"
    resp = client.http.put("/batches", headers={"Content-Type": "application/json"}, body=json.dumps({"k": pix_key}))
    assert resp.status_code == 405
    [line] = request_lines(service_logs.getvalue())
    assert (line["method"], line["status"]) == ("PUT", 405)
    assert pix_key not in service_logs.getvalue()
