"""Decides what a submitted batch means given what is already stored: create, replay or conflict."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .batch_request import BatchRequest, PayoutItem

Fingerprint = tuple[str, str, int, str, str]
_FIELDS = ("external_id", "user_id", "amount_cents", "pix_key_type", "pix_key")
# A 409 names what differs; past this many differences it gives a count instead.
MAX_LISTED_DIFFERENCES = 50


def request_hash(fingerprints: Iterable[Fingerprint]) -> str:
    digest = hashlib.sha256()
    for fp in fingerprints:
        digest.update(repr(fp).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def batch_hash(request: BatchRequest) -> str:
    return request_hash(item.fingerprint() for item in request.items)


def _differing_fields(a: Fingerprint, b: Fingerprint) -> list[str]:
    return [name for name, x, y in zip(_FIELDS, a, b, strict=False) if x != y]


def replay_differences(request: BatchRequest, stored: Sequence[Fingerprint]) -> list[dict[str, object]]:
    """What differs between a resubmitted batch and the stored one (empty: an exact replay)."""
    diffs: list[dict[str, object]] = []
    if len(request.items) != len(stored):
        diffs.append(
            {
                "field": "items",
                "message": f"batch was accepted with {len(stored)} items, this request has {len(request.items)}",
            }
        )
    for item, old in zip(request.items, stored, strict=False):
        fields = _differing_fields(item.fingerprint(), old)
        if fields:
            diffs.append(
                {
                    "index": item.index,
                    "external_id": item.external_id,
                    "fields": fields,
                    "message": f"item {item.index} differs from the accepted batch in {', '.join(fields)}",
                }
            )
    return diffs


@dataclass(frozen=True, slots=True)
class ExistingPayout:
    payout_id: str
    batch_id: str
    fingerprint: Fingerprint


@dataclass(slots=True)
class Plan:
    """What to write for a new batch_id: payouts to create, items that duplicate earlier payouts, conflicts."""

    new_items: list[PayoutItem] = field(default_factory=list)
    duplicates: dict[int, ExistingPayout] = field(default_factory=dict)
    conflicts: list[dict[str, object]] = field(default_factory=list)


def plan_new_batch(request: BatchRequest, existing: Mapping[str, ExistingPayout]) -> Plan:
    plan = Plan()
    for item in request.items:
        found = existing.get(item.external_id)
        if found is None:
            plan.new_items.append(item)
            continue
        fields = _differing_fields(item.fingerprint(), found.fingerprint)
        if fields:
            plan.conflicts.append(
                {
                    "index": item.index,
                    "external_id": item.external_id,
                    "fields": fields,
                    "existing_payout_id": found.payout_id,
                    "existing_batch_id": found.batch_id,
                    "message": f"external_id {item.external_id} was already accepted"
                    f" with a different {', '.join(fields)}",
                }
            )
        else:
            plan.duplicates[item.index] = found
    return plan


def truncate(diffs: list[dict[str, object]]) -> list[dict[str, object]]:
    if len(diffs) <= MAX_LISTED_DIFFERENCES:
        return diffs
    rest = len(diffs) - MAX_LISTED_DIFFERENCES
    return [*diffs[:MAX_LISTED_DIFFERENCES], {"message": f"... and {rest} more differences"}]
