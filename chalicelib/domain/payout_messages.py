"""The payouts queue's message body: one payout, or a group of a batch's payouts sent together.

A group (`{"payout_ids": [...]}`) is how the fan-out sends: ten payouts a message cut SQS's work
per payout tenfold. It lives only until its first settle attempt: a payout of the group that has
to come back is sent on as a message of its own (`{"payout_id": ..., "retries": n}`), so its
backoff, its receive count and its way to the dead-letter queue stay its own (services/comebacks.py).
`retries` carries the receives of the messages this one continues (renewed or split from).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .uuids import is_uuid

MAX_GROUP = 10  # payouts in one message: 10 messages of a settle batch lock at most 100 (one DynamoDB transaction)


class MalformedMessage(Exception):
    """A body that names no payout, or names one that could not be ours: no receive will ever settle it."""


@dataclass(frozen=True, slots=True)
class PayoutMessage:
    payout_ids: tuple[str, ...]
    retries: int = 0

    @property
    def is_group(self) -> bool:
        return len(self.payout_ids) > 1

    def comebacks(self, receive_count: int) -> int:
        """How often its payouts' messages came back: this message's receives plus those it continues."""
        return receive_count + self.retries


def encode(payout_ids: Sequence[str], retries: int = 0) -> str:
    """One payout as `{"payout_id"}` (what every sender wrote before groups), several as `{"payout_ids"}`."""
    if not payout_ids or len(payout_ids) > MAX_GROUP:
        raise ValueError(f"a message carries 1 to {MAX_GROUP} payouts, not {len(payout_ids)}")
    body: dict[str, object] = {"payout_id": payout_ids[0]} if len(payout_ids) == 1 else {"payout_ids": list(payout_ids)}
    if retries > 0:
        body["retries"] = retries
    return json.dumps(body, separators=(",", ":"))


def decode(body: str) -> PayoutMessage:
    """The message's payouts, checked here: one bad id must not fail the statement for a whole batch."""
    try:
        parsed = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise MalformedMessage("not JSON") from exc
    if not isinstance(parsed, dict):
        raise MalformedMessage("not an object")
    if "payout_ids" in parsed:
        ids = parsed["payout_ids"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_GROUP:
            raise MalformedMessage(f"payout_ids is not a list of 1 to {MAX_GROUP} ids")
    elif "payout_id" in parsed:
        ids = [parsed["payout_id"]]
    else:
        raise MalformedMessage("names no payout")
    if not all(isinstance(p, str) and is_uuid(p) for p in ids):
        raise MalformedMessage("a payout id is not a UUID")
    retries = parsed.get("retries", 0)
    retries = retries if isinstance(retries, int) and not isinstance(retries, bool) and retries > 0 else 0
    return PayoutMessage(tuple(dict.fromkeys(ids)), retries)
