"""Payout ids: UUIDv7 (RFC 9562), 48 bits of Unix milliseconds followed by random bits.

Time-ordered on purpose: a batch's payouts and their events sit side by side in every index
keyed by payout_id, so settling them touches a few index pages instead of one random page per
payout, however large the tables grow. Written here because the standard library has uuid7
only from Python 3.14.
"""

from __future__ import annotations

import os
import time

_RANDOM_BYTES = 10  # 12 bits of rand_a and 62 of rand_b, drawn as whole bytes


def new_payout_ids(n: int, now_ms: int | None = None) -> list[str]:
    """n distinct UUIDv7 strings for the same millisecond (now unless given), from one random draw."""
    if n < 0:
        raise ValueError("n must not be negative")
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if not 0 <= ms < 1 << 48:
        raise ValueError("now_ms must fit in 48 bits")
    prefix = f"{ms:012x}"
    head = f"{prefix[:8]}-{prefix[8:]}-7"
    rand = os.urandom(_RANDOM_BYTES * n).hex()
    ids = []
    for i in range(0, len(rand), 2 * _RANDOM_BYTES):
        r = rand[i : i + 2 * _RANDOM_BYTES]
        variant = "89ab"[int(r[3], 16) & 3]  # the two variant bits are 10
        ids.append(f"{head}{r[:3]}-{variant}{r[4:7]}-{r[8:20]}")
    return ids
