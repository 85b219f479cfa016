"""One contract for the BatchWrites port, run against the in-memory fake and against PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from chalicelib.adapters.database import Database
from chalicelib.adapters.postgres import PayoutRepository
from chalicelib.domain.batch_request import PayoutItem, parse_batch_request
from chalicelib.domain.errors import ExternalIdTaken
from chalicelib.domain.payout_ids import new_payout_ids
from tests.fakes import FakeRepository

_E2E = itertools.count()


def new_e2e_id() -> str:
    return f"E{next(_E2E):031d}"


def items(prefix: str, n: int = 2) -> tuple[PayoutItem, ...]:
    body = {
        "batch_id": "contract",
        "items": [
            {"external_id": f"{prefix}-{i}", "user_id": f"u{i}", "amount_cents": 100 + i, "pix_key": f"k{i}@email.com"}
            for i in range(n)
        ],
    }
    return parse_batch_request(body).items


def write(repo: Any, batch_id: str, new: tuple[PayoutItem, ...]) -> dict[int, str]:
    ids = dict(zip((i.index for i in new), new_payout_ids(len(new)), strict=True))
    with repo.batch_writer() as tx:
        assert tx.insert_batch(batch_id, f"hash-{batch_id}", len(new)) is None
        tx.insert_payouts(batch_id, new, ids, new_e2e_id)
        tx.insert_batch_items(batch_id, [(i.index, ids[i.index], False) for i in new])
    return ids


@pytest.fixture(params=["fake", "postgres"])
def repo(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return FakeRepository()
    return PayoutRepository(Database(request.getfixturevalue("database_url")))


class TestBatchWrites:
    def test_a_batch_id_is_claimed_once_then_answers_its_stored_hash(self, repo):
        batch_id = f"c-{uuid.uuid4().hex[:12]}"
        with repo.batch_writer() as tx:
            assert tx.insert_batch(batch_id, "first", 1) is None
        with repo.batch_writer() as tx:
            assert tx.insert_batch(batch_id, "second", 1) == "first"

    def test_stored_items_come_back_in_order_with_their_fingerprints_and_origin(self, repo):
        batch_id = f"c-{uuid.uuid4().hex[:12]}"
        new = items(batch_id, 3)
        ids = write(repo, batch_id, new)
        with repo.batch_writer() as tx:
            stored = tx.stored_items(batch_id)
        assert stored == [(i.index, ids[i.index], False, batch_id, i.fingerprint()) for i in new]

    def test_existing_payouts_are_found_by_external_id(self, repo):
        batch_id = f"c-{uuid.uuid4().hex[:12]}"
        new = items(batch_id, 2)
        ids = write(repo, batch_id, new)
        with repo.batch_writer() as tx:
            found = tx.existing_payouts([new[1].external_id, "nobody-has-this"])
        assert list(found) == [new[1].external_id]
        assert (found[new[1].external_id].payout_id, found[new[1].external_id].batch_id) == (ids[1], batch_id)
        assert found[new[1].external_id].fingerprint == new[1].fingerprint()

    def test_a_writer_whose_block_fails_leaves_nothing_behind(self, repo):
        batch_id = f"c-{uuid.uuid4().hex[:12]}"
        with pytest.raises(RuntimeError), repo.batch_writer() as tx:
            tx.insert_batch(batch_id, "h", 1)
            raise RuntimeError("the use case gave up")
        with repo.batch_writer() as tx:
            assert tx.insert_batch(batch_id, "h", 1) is None

    def test_an_external_id_another_batch_committed_is_the_domains_race_error(self, repo):
        first = f"c-{uuid.uuid4().hex[:12]}"
        new = items(first, 1)
        write(repo, first, new)
        second = f"c-{uuid.uuid4().hex[:12]}"
        with pytest.raises(ExternalIdTaken), repo.batch_writer() as tx:
            tx.insert_batch(second, "h", 1)
            tx.insert_payouts(second, new, dict(zip([0], new_payout_ids(1), strict=True)), new_e2e_id)
        with repo.batch_writer() as tx:
            assert tx.insert_batch(second, "h", 1) is None
