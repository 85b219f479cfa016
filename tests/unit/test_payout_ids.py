"""Payout ids are RFC 9562 UUIDv7: version 7, RFC 4122 variant, the millisecond in the first 48 bits."""

from __future__ import annotations

import time
import uuid

import pytest

from chalicelib.domain.payout_ids import new_payout_ids


def test_ids_are_version_7_with_the_rfc_variant_and_canonical_text() -> None:
    for text in new_payout_ids(2_000):
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case, hyphenated: what Postgres returns for ::text


def test_the_first_48_bits_are_the_given_millisecond() -> None:
    ms = 1_795_981_580_599
    for text in new_payout_ids(50, now_ms=ms):
        assert uuid.UUID(text).int >> 80 == ms


def test_the_default_millisecond_is_now() -> None:
    before = time.time_ns() // 1_000_000
    (text,) = new_payout_ids(1)
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(text).int >> 80 <= after


def test_ids_of_a_later_millisecond_sort_after_every_id_of_an_earlier_one() -> None:
    earlier = new_payout_ids(200, now_ms=1_000_000)
    later = new_payout_ids(200, now_ms=1_000_001)
    assert max(earlier) < min(later)  # as text, and so as Postgres orders uuid values
    assert max(uuid.UUID(t) for t in earlier) < min(uuid.UUID(t) for t in later)


def test_ids_are_distinct_and_their_random_bits_all_vary() -> None:
    ids = new_payout_ids(20_000, now_ms=42)
    assert len(set(ids)) == len(ids)
    randoms = [uuid.UUID(t).int & ((1 << 80) - 1) for t in ids]
    seen_or, seen_and = 0, (1 << 80) - 1
    for r in randoms:
        seen_or |= r
        seen_and &= r
    fixed = (0xF << 76) | (0x3 << 62)  # version nibble and variant bits
    assert seen_or | fixed == (1 << 80) - 1  # every random bit was 1 somewhere
    assert seen_and & ~fixed == 0  # and 0 somewhere


def test_counts_and_bounds() -> None:
    assert new_payout_ids(0) == []
    assert len(new_payout_ids(7)) == 7
    with pytest.raises(ValueError):
        new_payout_ids(-1)
    with pytest.raises(ValueError):
        new_payout_ids(1, now_ms=1 << 48)
    with pytest.raises(ValueError):
        new_payout_ids(1, now_ms=-1)
