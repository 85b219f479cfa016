"""Small statistics helpers: percentiles and rates."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ratio(seconds: float, floor_seconds: float) -> float:
    """seconds / floor_seconds; infinity when the floor is zero (a broken floor must not look like a pass)."""
    return seconds / floor_seconds if floor_seconds > 0 else float("inf")


def per_thousand(seconds: float, items: int) -> float:
    return seconds * 1000 / items if items else 0.0
