"""How a new batch's payouts are split into fan-out tasks: item-index ranges of at most N new payouts."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.services.fanout import plan_ranges


def test_a_full_batch_is_split_into_equal_contiguous_ranges() -> None:
    assert plan_ranges(list(range(10_000)), 2500) == [(0, 2500), (2500, 5000), (5000, 7500), (7500, 10_000)]


def test_duplicates_leave_gaps_that_no_range_needs_to_cover() -> None:
    # items 1, 2 and 6 are duplicates of earlier batches' payouts: the fan-out never sends them
    assert plan_ranges([0, 3, 4, 5, 7], 2) == [(0, 4), (4, 6), (7, 8)]


def test_a_batch_of_duplicates_only_needs_no_task() -> None:
    assert plan_ranges([], 2500) == []


@given(st.sets(st.integers(0, 10_000), max_size=300), st.integers(1, 50))
def test_every_new_item_is_in_exactly_one_range_and_no_range_holds_too_many(indexes: set[int], per: int) -> None:
    ordered = sorted(indexes)
    ranges = plan_ranges(ordered, per)
    covered = [[i for i in ordered if start <= i < end] for start, end in ranges]
    assert [i for part in covered for i in part] == ordered
    assert all(0 < len(part) <= per for part in covered)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
