"""A Pix provider that settles into its own Postgres ledger and fails on purpose, by rule.

Rules map an exact amount_cents to a behaviour, so a test picks its path by its amount:
  reject:<CODE>   permanent rejection with that SPI code (AC03 invalid account, AC06 blocked, AC07 closed)
  transient:<N>   the first N attempts of an end-to-end id fail without paying (code AB03), then it pays
  timeout:<N>     the first N attempts pay and then time out, so the caller cannot know it paid
  slow:<MS>       pays after MS milliseconds
  crash_before:<N> / crash_after:<N>   the first N attempts kill the worker before / after paying
SANDBOX_PIX_RULES replaces the defaults (DEFAULT_RULES below); "none" disables them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from ..domain.errors import ProviderOutcomeUnknown, ProviderRejected, ProviderTransientError
from ..domain.provider import ExecutedTransfer, Transfer
from ..observability import logger
from .database import Database, one

DEFAULT_RULES = (
    "66601:reject:AC03,66606:reject:AC06,66607:reject:AC07,"
    "66699:transient:2,66698:timeout:1,66697:slow:1500,66695:transient:5,66694:transient:1000,"
    "66693:crash_before:1,66692:crash_after:1"
)
_REJECTIONS = {
    "AC03": "invalid creditor account",
    "AC06": "creditor account is blocked",
    "AC07": "creditor account is closed",
}
_ACTIONS = {"reject", "transient", "timeout", "slow", "crash_before", "crash_after"}


# What a Lambda runtime reports for a process that ended without answering; any non-zero code would do.
CRASH_EXIT_CODE = 70


def end_the_process(reason: str) -> NoReturn:
    """A crash as the runtime sees one (the worker process is gone), told in one log line, not a traceback."""
    logger.error("simulated crash: the sandbox ends this worker process", extra={"reason": reason})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(CRASH_EXIT_CODE)


# Where a crash rule goes. In-process tests replace it (tests/crash.py), since ending the
# process would end the test run; Lambda workers keep it.
crash: Callable[[str], NoReturn] = end_the_process


@dataclass(frozen=True, slots=True)
class Rule:
    action: str
    arg: str


def parse_rules(text: str) -> dict[int, Rule]:
    text = text.strip() or DEFAULT_RULES
    if text.lower() == "none":
        return {}
    rules: dict[int, Rule] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        amount, action, arg = ([*part.split(":", 2), ""])[:3]
        if action not in _ACTIONS or not amount.isdigit():
            raise ValueError(f"bad sandbox rule {part!r}: expected <amount_cents>:<{'|'.join(sorted(_ACTIONS))}>:<arg>")
        if action != "reject" and not arg.isdigit():
            raise ValueError(f"bad sandbox rule {part!r}: {action} takes a whole number")
        rules[int(amount)] = Rule(action, arg)
    return rules


class SandboxPixProvider:
    def __init__(self, db: Database, rules: str = "", latency_ms: int = 0) -> None:
        self._db = db
        self._rules = parse_rules(rules)
        self._latency = latency_ms / 1000

    def send(self, transfer: Transfer) -> None:
        rule = self._rules.get(transfer.amount_cents)
        if rule is None and not self._latency:  # the common case: pay, one statement
            self._execute(transfer)
            return
        attempt = self._count_attempt(transfer.end_to_end_id)
        delay = self._latency + (int(rule.arg) / 1000 if rule and rule.action == "slow" else 0)
        if delay:
            time.sleep(delay)
        if rule is None:
            self._execute(transfer)
            return
        if rule.action == "reject":
            raise ProviderRejected(_REJECTIONS.get(rule.arg, "rejected by the receiving institution"), rule.arg)
        first_attempts = attempt <= int(rule.arg or 0)
        if first_attempts and rule.action == "transient":
            raise ProviderTransientError("settlement timed out at the receiving institution", "AB03")
        if first_attempts and rule.action == "crash_before":
            crash("worker died before the transfer")
        self._execute(transfer)
        if first_attempts and rule.action == "timeout":
            raise ProviderOutcomeUnknown("no answer from the provider after the transfer was sent")
        if first_attempts and rule.action == "crash_after":
            crash("worker died after the transfer")

    def send_many(self, transfers: Sequence[Transfer]) -> list[Exception | None]:
        """The batch endpoint: transfers without a rule are paid in one statement, the rest one by one."""
        plain = [t for t in transfers if t.amount_cents not in self._rules] if not self._latency else []
        if plain:
            self._execute_many(plain)
        paid = {id(t) for t in plain}
        results: list[Exception | None] = []
        for transfer in transfers:
            if id(transfer) in paid:
                results.append(None)
                continue
            try:
                self.send(transfer)
                results.append(None)
            except Exception as exc:  # noqa: BLE001 - reported per transfer, like a batch API does
                results.append(exc)
        return results

    def find(self, end_to_end_id: str) -> ExecutedTransfer | None:
        with self._db.statement() as cur:
            cur.execute(
                "SELECT end_to_end_id, amount_cents, executed_at FROM sandbox_pix_transfers"
                " WHERE end_to_end_id = %s ORDER BY transfer_id LIMIT 1",
                (end_to_end_id,),
            )
            row = cur.fetchone()
        return None if row is None else ExecutedTransfer(row[0], row[1], row[2])

    def _count_attempt(self, end_to_end_id: str) -> int:
        with self._db.statement() as cur:
            cur.execute(
                "INSERT INTO sandbox_pix_attempts (end_to_end_id, attempts) VALUES (%s, 1)"
                " ON CONFLICT (end_to_end_id) DO UPDATE SET attempts = sandbox_pix_attempts.attempts + 1"
                " RETURNING attempts",
                (end_to_end_id,),
            )
            return int(one(cur)[0])

    def _execute_many(self, transfers: Sequence[Transfer]) -> None:
        with self._db.statement() as cur:
            cur.execute(
                "INSERT INTO sandbox_pix_transfers (end_to_end_id, payout_id, amount_cents, pix_key_type, pix_key)"
                " SELECT * FROM unnest(%s::text[], %s::uuid[], %s::bigint[], %s::text[], %s::text[])",
                tuple(
                    list(col)
                    for col in zip(
                        *((t.end_to_end_id, t.payout_id, t.amount_cents, t.pix_key_type, t.pix_key) for t in transfers),
                        strict=True,
                    )
                ),
            )

    def _execute(self, transfer: Transfer) -> None:
        with self._db.statement() as cur:
            cur.execute(
                "INSERT INTO sandbox_pix_transfers (end_to_end_id, payout_id, amount_cents, pix_key_type, pix_key)"
                " VALUES (%s, %s, %s, %s, %s)",
                (
                    transfer.end_to_end_id,
                    transfer.payout_id,
                    transfer.amount_cents,
                    transfer.pix_key_type,
                    transfer.pix_key,
                ),
            )
