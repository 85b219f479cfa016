"""Replay, conflict and duplicate decisions, without a database."""

from __future__ import annotations

from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.idempotency import (
    MAX_LISTED_DIFFERENCES,
    ExistingPayout,
    batch_hash,
    plan_new_batch,
    replay_differences,
    truncate,
)


def request(*items: tuple[str, int, str], batch_id: str = "b-1"):
    return parse_batch_request(
        {
            "batch_id": batch_id,
            "items": [{"external_id": e, "user_id": "u", "amount_cents": a, "pix_key": k} for e, a, k in items],
        }
    )


def test_equivalent_spellings_of_a_key_hash_the_same():
    a = request(("e1", 100, "+55 11 91234-5678"))
    b = request(("e1", 100, "+5511912345678"))
    assert batch_hash(a) == batch_hash(b)


def test_a_changed_amount_changes_the_hash_and_is_named_as_the_difference():
    a = request(("e1", 100, "a@b.com"), ("e2", 200, "c@d.com"))
    b = request(("e1", 100, "a@b.com"), ("e2", 201, "c@d.com"))
    assert batch_hash(a) != batch_hash(b)
    diffs = replay_differences(b, [it.fingerprint() for it in a.items])
    assert diffs == [
        {
            "index": 1,
            "external_id": "e2",
            "fields": ["amount_cents"],
            "message": "item 1 differs from the accepted batch in amount_cents",
        }
    ]


def test_a_different_item_count_is_named():
    a = request(("e1", 100, "a@b.com"), ("e2", 200, "c@d.com"))
    b = request(("e1", 100, "a@b.com"))
    diffs = replay_differences(b, [it.fingerprint() for it in a.items])
    assert diffs[0]["field"] == "items" and "2 items" in str(diffs[0]["message"])


def test_reordered_items_are_not_a_replay():
    a = request(("e1", 100, "a@b.com"), ("e2", 200, "c@d.com"))
    b = request(("e2", 200, "c@d.com"), ("e1", 100, "a@b.com"))
    assert batch_hash(a) != batch_hash(b)
    assert len(replay_differences(b, [it.fingerprint() for it in a.items])) == 2


def test_new_external_ids_are_created_known_ones_with_the_same_content_are_duplicates():
    earlier = request(("e1", 100, "a@b.com"), batch_id="old")
    existing = {"e1": ExistingPayout("p-1", "old", earlier.items[0].fingerprint())}
    plan = plan_new_batch(request(("e1", 100, "A@B.com"), ("e2", 5, "c@d.com")), existing)
    assert [it.external_id for it in plan.new_items] == ["e2"]
    assert plan.duplicates == {0: existing["e1"]}
    assert plan.conflicts == []


def test_a_known_external_id_with_other_content_is_a_conflict_naming_the_fields():
    earlier = request(("e1", 100, "a@b.com"), batch_id="old")
    existing = {"e1": ExistingPayout("p-1", "old", earlier.items[0].fingerprint())}
    plan = plan_new_batch(request(("e1", 100, "z@b.com")), existing)
    assert plan.conflicts[0]["fields"] == ["pix_key"]
    assert plan.conflicts[0]["existing_payout_id"] == "p-1"


def test_long_difference_lists_are_truncated_with_a_count():
    diffs = [{"message": str(n)} for n in range(MAX_LISTED_DIFFERENCES + 7)]
    out = truncate(diffs)
    assert len(out) == MAX_LISTED_DIFFERENCES + 1
    assert out[-1]["message"] == "... and 7 more differences"
