"""The read side through Chalice's test client: listing batches, filters, finding payouts, the report and its CSV."""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.domain.report import Summary, batch_status
from tests.integration.helpers import batch, item, post, unique


def get(client: Any, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    query = "?" + urlencode(params) if params else ""
    return client.http.get(path + query, headers=headers or {})


def window() -> datetime:
    """A minute of its own in a far year, so other tests' batches never fall inside a test's filter."""
    return datetime(2031, 1, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(10_000_000))


def submit(client: Any, *amounts: int, created_at: datetime | None = None, db: Any = None) -> dict[str, Any]:
    body = batch(*(item(amount_cents=a) for a in amounts))
    resp = post(client, body)
    assert resp.status_code == 201, resp.body
    if created_at is not None:
        with db.cursor() as cur:
            cur.execute("UPDATE batches SET created_at = %s WHERE batch_id = %s", (created_at, body["batch_id"]))
    return {"batch_id": body["batch_id"], "payout_ids": resp.json_body["payout_ids"], "items": body["items"]}


def settle(db: Any, payout_id: str, status: str) -> None:
    code, message = ("AC07", "closed account") if status == "Failed" else (None, None)
    with db.cursor() as cur:
        cur.execute(
            "UPDATE payouts SET status = %s, failure_code = %s, failure_message = %s WHERE payout_id = %s",
            (status, code, message, payout_id),
        )


def test_batches_are_listed_newest_first_with_their_counts_and_amounts_and_page_by_cursor(client, db):
    start = window()
    made = [submit(client, 100 * (n + 1), 7, created_at=start + timedelta(seconds=n), db=db) for n in range(3)]
    settle(db, made[0]["payout_ids"][0], "Completed")
    settle(db, made[0]["payout_ids"][1], "Failed")

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    params = {"created_after": start.isoformat(), "created_before": (start + timedelta(minutes=1)).isoformat()}
    while True:
        resp = get(client, "/batches", limit=2, **params, **({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.body
        seen += resp.json_body["batches"]
        cursor = resp.json_body["next_cursor"]
        if cursor is None:
            break
    assert [b["batch_id"] for b in seen] == [m["batch_id"] for m in reversed(made)]
    oldest = seen[-1]
    assert oldest["status"] == "PartiallyCompleted"
    assert oldest["summary"] == {
        "total": 2,
        "pending": 0,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "duplicates": 0,
    }
    assert oldest["amounts"] == {"total": 107, "paid": 100, "failed": 7, "pending": 0}
    assert seen[0]["amounts"] == {"total": 307, "paid": 0, "failed": 0, "pending": 307}


@pytest.mark.parametrize(
    "statuses",
    [
        ("Completed", "Completed"),
        ("Completed", "Failed"),
        ("Failed", "Failed"),
        ("Pending", "Pending"),
        ("Processing", "Pending"),
        ("Completed", "Pending"),
    ],
)
def test_the_status_filter_of_the_listing_agrees_with_the_batch_status_of_each_batch(client, db, statuses):
    start = window()
    made = submit(client, 10, 20, created_at=start, db=db)
    for pid, status in zip(made["payout_ids"], statuses, strict=True):
        settle(db, pid, status)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    expected = batch_status(Summary.from_counts(counts))
    bounds = {"created_after": start.isoformat(), "created_before": (start + timedelta(seconds=1)).isoformat()}
    for status in ("Pending", "Processing", "Completed", "PartiallyCompleted", "Failed"):
        found = get(client, "/batches", status=status, **bounds).json_body["batches"]
        assert [b["batch_id"] for b in found] == ([made["batch_id"]] if status == expected else []), status


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"status": "Done"}, "status must be one of"),
        ({"created_after": "2026-01-01"}, "created_after must be an RFC 3339"),
        ({"created_before": "2026-02-30T00:00:00Z"}, "created_before must be an RFC 3339"),
        # found by schemathesis: PostgreSQL refuses offsets past 15:59, datetime years past 9999
        ({"created_before": "7180-05-22T06:47:17.02484+19:02"}, None),
        ({"created_after": "9999-12-31T23:00:00-05:00"}, "created_after must be an RFC 3339"),
        ({"created_after": "0001-01-01T00:30:00+01:00"}, "created_after must be an RFC 3339"),
        ({"cursor": "bm90LW91cnM"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"b:7180-05-22T06:47:17+19:02|x").decode()}, None),
        ({"cursor": base64.urlsafe_b64encode(b"b:9999-12-31T23:00:00-05:00|x").decode()}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_listing_parameter_is_a_400_that_says_which_and_an_odd_offset_is_read_in_utc(client, params, fragment):
    resp = get(client, "/batches", **params)
    if fragment is None:
        assert resp.status_code == 200, resp.body
        return
    assert resp.status_code == 400
    assert fragment in resp.json_body["error"]["message"]


def test_a_batch_filtered_by_status_pages_through_only_those_payouts_and_keeps_the_whole_summary(client, db):
    made = submit(client, 1, 2, 3, 4, 5)
    failed = [made["payout_ids"][i] for i in (0, 2, 4)]
    for pid in failed:
        settle(db, pid, "Failed")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = get(client, f"/batches/{made['batch_id']}", status="Failed", limit=2, **extra).json_body
        assert page["summary"]["total"] == 5 and page["summary"]["failed"] == 3
        assert all(p["status"] == "Failed" for p in page["payouts"])
        seen += [p["payout_id"] for p in page["payouts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == failed
    assert get(client, f"/batches/{made['batch_id']}", status="Completed").json_body["payouts"] == []
    assert get(client, f"/batches/{made['batch_id']}", status="paid").status_code == 400


def test_payouts_are_found_by_external_id_or_by_receiver(client):
    user = unique("receiver")
    body = batch(item(user_id=user), item(user_id=user), item(user_id=user), item())
    ids = post(client, body).json_body["payout_ids"]

    one = get(client, "/payouts", external_id=body["items"][3]["external_id"]).json_body
    assert [p["payout_id"] for p in one["payouts"]] == [ids[3]] and one["next_cursor"] is None

    first = get(client, "/payouts", user_id=user, limit=2).json_body
    rest = get(client, "/payouts", user_id=user, limit=2, cursor=first["next_cursor"]).json_body
    assert [p["payout_id"] for p in first["payouts"] + rest["payouts"]] == sorted(ids[:3])
    assert rest["next_cursor"] is None
    assert get(client, "/payouts", external_id=unique("nobody")).json_body == {"payouts": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [{}, {"external_id": "a", "user_id": "b"}, {"external_id": "-x"}, {"user_id": "a\x00b"}, {"user_id": "   "}],
)
def test_finding_payouts_needs_exactly_one_well_formed_id(client, params):
    resp = get(client, "/payouts", **params)
    assert resp.status_code == 400
    assert resp.json_body["error"]["code"] == "bad_request"


def test_the_report_has_the_whole_batch_totals_on_every_page_and_proof_for_paid_items(client, db):
    made = submit(client, 100, 200, 300)
    settle(db, made["payout_ids"][0], "Completed")
    settle(db, made["payout_ids"][1], "Failed")
    path = f"/batches/{made['batch_id']}/report"

    whole = get(client, path).json_body
    assert whole["next_cursor"] is None and len(whole["details"]) == 3
    assert (whole["processed"], whole["successful"], whole["failed"], whole["pending"]) == (2, 1, 1, 1)
    assert whole["amounts"] == {"total": 600, "paid": 100, "failed": 200, "pending": 300}
    paid = whole["details"][0]
    assert len(paid["end_to_end_id"]) == 32 and datetime.fromisoformat(paid["paid_at"]).tzinfo is not None

    first = get(client, path, limit=2).json_body
    second = get(client, path, limit=2, cursor=first["next_cursor"]).json_body
    assert first["details"] + second["details"] == whole["details"]
    assert {k: v for k, v in second.items() if k not in ("details", "next_cursor")} == {
        k: v for k, v in whole.items() if k not in ("details", "next_cursor")
    }


def test_the_report_answers_csv_when_asked_one_line_per_item(client, db):
    made = submit(client, 100, 200)
    settle(db, made["payout_ids"][1], "Failed")
    path = f"/batches/{made['batch_id']}/report"
    resp = get(client, path, headers={"Accept": "text/csv"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.body.decode())))
    assert [(r["external_id"], r["status"], r["amount_cents"], r["payout_id"]) for r in rows] == [
        (made["items"][0]["external_id"], "pending", "100", made["payout_ids"][0]),
        (made["items"][1]["external_id"], "failed", "200", made["payout_ids"][1]),
    ]
    assert (rows[1]["failure_code"], rows[1]["failure_message"]) == ("AC07", "closed account")
    as_json = get(client, path, headers={"Accept": "application/json"})
    assert as_json.headers["Content-Type"] == "application/json" and json.loads(as_json.body)["total"] == 2
    assert get(client, "/batches/no-such-batch/report", headers={"Accept": "text/csv"}).status_code == 404


def test_the_docs_page_embeds_the_document_and_loads_its_assets_from_the_service(client):
    page = get(client, "/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    assert '"operationId":"listBatches"' in html
    assert "http://" not in html.split("<script>")[0] and "https://" not in html.split("<script>")[0]
    for asset, media in (("swagger-ui.css", "text/css"), ("swagger-ui-bundle.js", "application/javascript")):
        assert f'"docs/{asset}"' in html
        resp = get(client, f"/docs/{asset}")
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(media)
        assert len(resp.body) > 100_000
