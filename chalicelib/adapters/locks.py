"""Per-payout leases in DynamoDB, taken for a whole SQS batch with one conditional TransactWriteItems.

Written by hand rather than with Powertools idempotency, which spends two writes per payout
(in progress, then completed): `make bench` measured those calls as over half of the settle
CPU. Here one call locks up to ten payouts, and a lock is only written again on failure
(released so a retry can run); after success it simply expires, the payout's terminal status
in PostgreSQL being the lasting guard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

_TTL_SLACK_SECONDS = 3600  # DynamoDB deletes expired lock items some time after this
_ATTEMPTS = 3  # a TransactionConflict (another transaction on the same items) is retried


def lock_key(payout_id: str) -> str:
    return f"payout#{payout_id}"


class PayoutLocks:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, payout_ids: Sequence[str], owner: str, lease_seconds: float) -> tuple[list[str], list[str]]:
        """Lock every payout whose lock is free or expired. Returns (acquired, held by someone else)."""
        wanted = list(dict.fromkeys(payout_ids))
        held: list[str] = []
        for _ in range(_ATTEMPTS):
            if not wanted:
                return [], held
            now = time.time()
            try:
                self._client.transact_write_items(
                    TransactItems=[self._put(p, owner, now, lease_seconds) for p in wanted]
                )
                return wanted, held
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                taken = [p for p, r in zip(wanted, reasons, strict=False) if r.get("Code") == "ConditionalCheckFailed"]
                held += taken
                wanted = [p for p in wanted if p not in taken]
        return [], held + wanted  # still conflicting: treat as held, the messages come back soon

    def release(self, payout_id: str, owner: str) -> None:
        """Give a lock back early (after a failed attempt) so the retry need not wait for the lease."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"id": {"S": lock_key(payout_id)}},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _put(self, payout_id: str, owner: str, now: float, lease_seconds: float) -> dict[str, Any]:
        until = now + lease_seconds
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "id": {"S": lock_key(payout_id)},
                    "owner": {"S": owner},
                    "lease_until": {"N": f"{until:.3f}"},
                    "expiration": {"N": str(int(until) + _TTL_SLACK_SECONDS)},
                },
                "ConditionExpression": "attribute_not_exists(id) OR lease_until < :now",
                "ExpressionAttributeValues": {":now": {"N": f"{now:.3f}"}},
            }
        }
