"""In-memory fakes of settlement's ports: SettlementStatements, Transitions and two Pix providers.

They work on the rows of a FakeRepository (tests/fakes.py), so a batch submitted through the fake
repository is settled by these, as one PostgreSQL holds both. Every transition is decided by the
domain's own state machine (`decide`), as the guarded SQL path does; tests/integration/
test_settlement_contract.py runs the same tests on these and on PostgreSQL.

The providers never deduplicate: each send that pays is counted, so a payout sent twice shows up
as two payments instead of being hidden by a forgiving fake.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.errors import ProviderOutcomeUnknown, Unavailable
from chalicelib.domain.payout import Payout
from chalicelib.domain.payout_status import (
    TERMINAL,
    Decision,
    PayoutEvent,
    PayoutState,
    PayoutStatus,
    ProviderStep,
    Verdict,
    Word,
    decide,
    exhausted_reason,
)
from chalicelib.domain.provider import ExecutedTransfer, SendReport, Transfer
from chalicelib.domain.send_id import send_id_for
from chalicelib.services.batches import FanoutPlan, submit_batch
from tests.fakes import FakeFanoutQueue, FakeRepository, touch

PAID_AT = datetime(2026, 1, 1, 12, tzinfo=UTC)
_E2E = itertools.count()


def submit_on_fakes(repo: FakeRepository, n: int) -> list[str]:
    """A batch of n payouts (1000 + i centavos each) submitted through the real use case into the fake repository."""
    batch_id = f"s-{uuid.uuid4().hex[:12]}"
    items = [
        {"external_id": f"{batch_id}-{i}", "user_id": f"u{i}", "amount_cents": 1000 + i, "pix_key": f"u{i}@x.com"}
        for i in range(n)
    ]
    plan = FanoutPlan(wakeups=FakeFanoutQueue(), range_items=100, grace_seconds=30)
    request = parse_batch_request({"batch_id": batch_id, "items": items})
    return submit_batch(repo, plan, request, lambda: f"E{next(_E2E):031d}").payout_ids


def state_of(row: dict[str, Any]) -> PayoutState:
    status = PayoutStatus(row["status"])
    if status is PayoutStatus.PROCESSING:
        return PayoutState(status, ProviderStep(row["provider_step"] or ProviderStep.NOT_SENT))
    if status is PayoutStatus.FAILED:
        return PayoutState(status, failure_code=row["failure_code"] or "UNKNOWN")
    return PayoutState(status)


def payout_of(payout_id: str, row: dict[str, Any]) -> Payout:
    return Payout(
        payout_id=payout_id,
        external_id=row["external_id"],
        batch_id=row["batch_id"],
        user_id=row["user_id"],
        amount_cents=row["amount_cents"],
        pix_key_type=row["pix_key_type"],
        pix_key=row["pix_key"],
        end_to_end_id=row["end_to_end_id"],
        status=PayoutStatus(row["status"]),
        attempts=row["attempts"],
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        provider_failures=row["provider_failures"],
        provider=row["provider"],
        provider_send_id=row["provider_send_id"],
        provider_end_to_end_id=row["provider_end_to_end_id"],
        provider_status=row["provider_status"],
        provider_step=ProviderStep(row["provider_step"]) if row["provider_step"] else None,
    )


class _Rows:
    """The repository's payout rows; `down` makes every statement fail as a database that is down does."""

    def __init__(self, repo: FakeRepository) -> None:
        self.repo = repo
        self.down = False

    def rows(self) -> dict[str, dict[str, Any]]:
        if self.down:
            raise Unavailable("the database is unavailable")
        return self.repo.tables.payouts

    def log(
        self, payout_id: str, event: str, attempt: int | None = None, code: str | None = None, detail: str | None = None
    ) -> None:
        self.repo.tables.history.append((payout_id, event))
        touch(self.repo.tables.payouts[payout_id], event, attempt, code, detail)


class FakeSettlementStatements(_Rows):
    """SettlementStatements (adapters/settlement_store.py) over the fake repository's rows."""

    def settled_ids(self, payout_ids: Sequence[str]) -> set[str]:
        """Final, or awaiting the provider's confirmation: nothing for a message to do."""
        rows = self.rows()
        return {
            p
            for p in payout_ids
            if p in rows
            and (
                PayoutStatus(rows[p]["status"]) in (PayoutStatus.COMPLETED, PayoutStatus.FAILED)
                or state_of(rows[p]).step is ProviderStep.AWAITING_CONFIRMATION
            )
        }

    def start_attempts(self, payout_ids: Sequence[str]) -> dict[str, tuple[Payout, PayoutStatus]]:
        rows = self.rows()
        started: dict[str, tuple[Payout, PayoutStatus]] = {}
        for payout_id in dict.fromkeys(payout_ids):
            row = rows.get(payout_id)
            if row is None or not decide(state_of(row), PayoutEvent.ATTEMPT).moves:
                continue  # unknown, final, or awaiting the provider's confirmation
            previous = PayoutStatus(row["status"])
            row["provider_step"] = state_of(row).step.value if previous is PayoutStatus.PROCESSING else "not_sent"
            row["status"] = PayoutStatus.PROCESSING
            row["attempts"] += 1
            self.log(payout_id, "attempt_started", row["attempts"])
            started[payout_id] = (payout_of(payout_id, row), previous)
        return started

    def record_provider_failure(
        self, payout_id: str, event: str, attempt: int, code: str | None, detail: str, budget: int
    ) -> tuple[int, bool]:
        row = self.rows().get(payout_id)
        if row is None or row["status"] != PayoutStatus.PROCESSING:
            return 0, False
        row["provider_failures"] += 1
        failures = int(row["provider_failures"])
        self.log(payout_id, event, attempt, code, detail)
        if event != "attempt_failed" or failures < budget:
            return failures, False
        row.update(
            status=PayoutStatus.FAILED,
            failure_code="RETRIES_EXHAUSTED",
            failure_message=exhausted_reason(failures, code, detail),
            provider_step=None,
        )
        self.log(payout_id, "failed", attempt, "RETRIES_EXHAUSTED", row["failure_message"])
        return failures, True


class FakeTransitions(_Rows):
    """Transitions (adapters/transitions.py): decide each word in order, keep what the provider said."""

    def states(self, payout_ids: Sequence[str]) -> dict[str, PayoutState]:
        rows = self.rows()
        return {p: state_of(rows[p]) for p in payout_ids if p in rows}

    def amounts(self, payout_ids: Sequence[str]) -> dict[str, int]:
        rows = self.rows()
        return {p: int(rows[p]["amount_cents"]) for p in payout_ids if p in rows}

    def claim_awaiting(self, older_than_seconds: int, limit: int) -> list[str]:
        """Awaiting payouts not asked about yet (no clock here: each is claimed once)."""
        rows = self.rows()
        claimed = [p for p, row in sorted(rows.items()) if state_of(row).step is ProviderStep.AWAITING_CONFIRMATION]
        claimed = [p for p in claimed if not rows[p].get("polled")][:limit]
        for p in claimed:
            rows[p]["polled"] = True
        return claimed

    def apply(self, words: Sequence[Word]) -> list[Decision | None]:
        rows = self.rows()
        decisions: list[Decision | None] = []
        for word in words:
            row = rows.get(word.payout_id)
            if row is None:
                decisions.append(None)
                continue
            decision = decide(state_of(row), word.event, word.failure_code)
            decisions.append(decision)
            heard = f"{word.source}_{word.event.value}"
            if decision.verdict is Verdict.REFUSE:
                self.log(word.payout_id, heard, word.attempt, word.failure_code, f"refused: {decision.reason}")
                continue
            if decision.moves:
                target = decision.target
                row.update(
                    status=target.status,
                    provider_step=target.step.value if target.step else None,
                    failure_code=target.failure_code,
                    failure_message=word.detail if target.failure_code else row["failure_message"],
                )
            if decision.moves or decision.target.status not in TERMINAL:
                row["provider_status"] = word.provider_status or row["provider_status"]
            row["provider"] = word.provider or row["provider"]
            row["provider_send_id"] = word.send_id or row["provider_send_id"]
            row["provider_end_to_end_id"] = word.end_to_end_id or row["provider_end_to_end_id"]
            self.log(word.payout_id, str(decision.target) if decision.moves else heard, word.attempt, word.failure_code)
        return decisions


# --- providers --------------------------------------------------------------------------------------------

PAY = "pay"
LOSE_ANSWER = "lose_answer"  # the money moves, then the answer is lost: ProviderOutcomeUnknown


class _ScriptedProvider:
    """Answers each send from a per-payout script (PAY, LOSE_ANSWER or an exception to raise); PAY when
    the script is empty. `ask_errors[key]` makes the next asks by that key raise (an inline provider
    is asked by end-to-end id, an asynchronous one by send id)."""

    def __init__(self) -> None:
        self.script: dict[str, list[object]] = {}
        self.ask_errors: dict[str, list[Exception]] = {}
        self.sends: list[Transfer] = []
        self.asks: list[str] = []  # the keys asked, in order
        self.payments: Counter[str] = Counter()  # payout_id -> times the money moved

    def answer(self, payout_id: str, *answers: object) -> None:
        self.script.setdefault(payout_id, []).extend(answers)

    def _send(self, transfer: Transfer) -> None:
        self.sends.append(transfer)
        answers = self.script.get(transfer.payout_id)
        step = answers.pop(0) if answers else PAY
        if isinstance(step, Exception):
            raise step
        self.payments[transfer.payout_id] += 1
        self._paid(transfer)
        if step == LOSE_ANSWER:
            raise ProviderOutcomeUnknown("connection reset after the request was sent")

    def _paid(self, transfer: Transfer) -> None:
        raise NotImplementedError

    def _asked(self, key: str) -> None:
        self.asks.append(key)
        errors = self.ask_errors.get(key)
        if errors:
            raise errors.pop(0)


class FakeInlineProvider(_ScriptedProvider):
    """A provider that pays inline, as the sandbox does: a send that returns paid; `find` by end-to-end id."""

    def __init__(self) -> None:
        super().__init__()
        self.executed: dict[str, ExecutedTransfer] = {}  # by end-to-end id

    def send(self, transfer: Transfer) -> None:
        self._send(transfer)

    def _paid(self, transfer: Transfer) -> None:
        self.executed[transfer.end_to_end_id] = ExecutedTransfer(transfer.end_to_end_id, transfer.amount_cents, PAID_AT)

    def find(self, end_to_end_id: str) -> ExecutedTransfer | None:
        self._asked(end_to_end_id)
        return self.executed.get(end_to_end_id)


class FakeAsyncProvider(_ScriptedProvider):
    """A provider that accepts now and confirms later (Efí): asked by our send id; `confirm` settles."""

    def __init__(self) -> None:
        super().__init__()
        self.known: dict[str, SendReport] = {}  # send id -> its latest report

    def send(self, transfer: Transfer) -> SendReport:
        self._send(transfer)
        return self.known[send_id_for(transfer.payout_id)]

    def _paid(self, transfer: Transfer) -> None:
        sid = send_id_for(transfer.payout_id)
        self.known[sid] = SendReport(sid, PayoutEvent.ACCEPTED, "EM_PROCESSAMENTO", amount_cents=transfer.amount_cents)

    def confirm(self, payout_id: str, end_to_end_id: str) -> None:
        sid = send_id_for(payout_id)
        accepted = self.known[sid]
        self.known[sid] = SendReport(
            sid, PayoutEvent.CONFIRMED, "REALIZADO", accepted.amount_cents, end_to_end_id, settled_at=PAID_AT
        )

    def ask(self, send_id: str) -> SendReport | None:
        self._asked(send_id)
        return self.known.get(send_id)

    def find(self, end_to_end_id: str) -> ExecutedTransfer | None:
        raise AssertionError("an asynchronous provider is asked by send id")
