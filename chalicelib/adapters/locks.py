"""Per-payout leases in DynamoDB, taken for a whole SQS batch with one conditional TransactWriteItems.

Written by hand rather than with Powertools idempotency, which spends two writes per payout
(in progress, then completed): `make bench` measured those calls as over half of the settle
CPU. Here one call locks a whole SQS batch of payouts (up to 100), and a lock is only written again on failure
(released so a retry can run); after success it simply expires, the payout's terminal status
in PostgreSQL being the lasting guard.

The common case, a payout nobody has locked yet, is asked with the cheapest condition there is
(`attribute_not_exists`); only a payout whose lock turned out to exist is asked again whether
that lock's lease has run out. On the emulator the condition's parsing and evaluation were a
fifth of its CPU while settling.

A failed condition is an answer, not an outage: it says who holds a lock and never leaves this
module. Every other SDK error leaves as the domain's (aws_errors.py): Unavailable when DynamoDB is
down or throttling, DependencyRefused when the table is missing or access denied. The worker fails
closed on either: no provider call without the lock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from .aws_errors import aws_errors, error_code

_ATTEMPTS = 4  # the lease question costs one more; a TransactionConflict (another transaction on the items) too
_TRANSACTION_ITEMS = 100  # DynamoDB's most per TransactWriteItems
_FREE = "attribute_not_exists(id)"
_FREE_OR_EXPIRED = "attribute_not_exists(id) OR expiration < :now"


class _Cancelled(Exception):
    """DynamoDB cancelled the transaction; `reasons` has one entry per item, in order."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons


def lock_key(payout_id: str) -> str:
    return f"payout#{payout_id}"


class PayoutLocks:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, payout_ids: Sequence[str], owner: str, lease_seconds: float) -> tuple[list[str], list[str]]:
        """Lock every payout whose lock is free or expired. Returns (acquired, held by someone else)."""
        unique = list(dict.fromkeys(payout_ids))
        acquired: list[str] = []
        held: list[str] = []
        for i in range(0, len(unique), _TRANSACTION_ITEMS):
            got, taken = self._acquire(unique[i : i + _TRANSACTION_ITEMS], owner, lease_seconds)
            acquired += got
            held += taken
        return acquired, held

    def _acquire(self, wanted: list[str], owner: str, lease_seconds: float) -> tuple[list[str], list[str]]:
        exists: set[str] = set()  # payouts whose lock item was found: only an expired lease can be taken
        held: list[str] = []
        for _ in range(_ATTEMPTS):
            if not wanted:
                return [], held
            now = time.time()
            try:
                with aws_errors("the lock table"):
                    self._transact([self._put(p, owner, now, lease_seconds, p in exists) for p in wanted])
                return wanted, held
            except _Cancelled as cancelled:
                reasons = cancelled.reasons
                for p, reason in zip(wanted, reasons, strict=False):
                    if reason.get("Code") != "ConditionalCheckFailed":
                        continue
                    if p in exists:
                        held.append(p)  # its lease is live
                    else:
                        exists.add(p)  # asked again next round, whether its lease ran out
                wanted = [p for p in wanted if p not in held]
        return [], held + wanted  # still conflicting: treat as held, the messages come back soon

    def release(self, payout_id: str, owner: str) -> None:
        """Give a lock back early (after a failed attempt) so the retry need not wait for the lease.

        A lock someone else holds now (ours ran out and was taken over) is theirs: left alone."""
        with aws_errors("the lock table"):
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key={"id": {"S": lock_key(payout_id)}},
                    ConditionExpression="#o = :owner",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    def _transact(self, items: list[dict[str, Any]]) -> None:
        # A cancelled transaction is read here, inside aws_errors: its reasons say which locks are
        # taken. Any other error goes on to be translated.
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            raise _Cancelled(exc.response.get("CancellationReasons") or []) from exc

    def _put(self, payout_id: str, owner: str, now: float, lease_seconds: float, exists: bool) -> dict[str, Any]:
        # The lease's end is also the table's TTL attribute (whole seconds): once it has passed, the
        # item means nothing, whether DynamoDB has deleted it yet or not. Rounded down, a lease still
        # outlives its invocation, whose remaining time plus one second it was given.
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "id": {"S": lock_key(payout_id)},
                "owner": {"S": owner},
                "expiration": {"N": str(int(now + lease_seconds))},
            },
            "ConditionExpression": _FREE,
        }
        if exists:  # released since (then free) or its lease ran out
            put["ConditionExpression"] = _FREE_OR_EXPIRED
            put["ExpressionAttributeValues"] = {":now": {"N": f"{now:.3f}"}}
        return {"Put": put}
