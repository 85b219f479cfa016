"""The one guarded transition path: the domain's state machine decides, a status guard generated from it writes.

Every word about a payout (a send's answer, an ask, a callback, a poll) goes through `Transitions.apply`:
the rows are locked in id order, `decide` says move, stay or refuse, and the UPDATE carries a guard
built from `sources(event)`, so even a writer that skipped the decision could never move a payout
backwards or twice. Each word lands in the payout's history, whether it moved the payout or not.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg2.extensions
import psycopg2.extras

from ..domain.payout_status import (
    RETRIES_EXHAUSTED,
    TERMINAL,
    Decision,
    PayoutEvent,
    PayoutState,
    PayoutStatus,
    ProviderStep,
    Verdict,
    Word,
    decide,
    failed,
    sources,
)
from ..observability import logger
from .database import Database
from .pg_conflicts import retry_conflicts

# A Processing row written before the step existed has none: it had not reached the provider.
STEP_SQL = "CASE WHEN {status} = 'Processing' THEN coalesce({step}, 'not_sent') END"


def guard(event: PayoutEvent, status: str = "status", step: str = "provider_step", code: str = "failure_code") -> str:
    """SQL true exactly for the rows `event` moves out of, per the domain's `sources(event)`.

    A Failed payout moves (the operator's reopen) only for our own give-up, never for a provider's
    rejection code: the guard says so where the machine tells the two apart.
    """
    pairs = sources(event)
    if not pairs:
        return "false"
    by_status: dict[PayoutStatus, set[ProviderStep]] = {}
    bare: set[PayoutStatus] = set()
    for st, sp in pairs:
        if sp is None:
            bare.add(st)
        else:
            by_status.setdefault(st, set()).add(sp)
    terms = []
    for st in sorted(bare):
        term = f"{status} = '{st.value}'"
        if st is PayoutStatus.FAILED:
            ours = decide(failed(RETRIES_EXHAUSTED), event).moves
            theirs = decide(failed("AC03"), event).moves
            if ours != theirs:
                term += f" AND {code} {'=' if ours else '<>'} '{RETRIES_EXHAUSTED}'"
        terms.append(f"({term})")
    step_sql = STEP_SQL.format(status=status, step=step)
    for st, steps in sorted(by_status.items()):
        listed = ", ".join(f"'{s.value}'" for s in sorted(steps))
        terms.append(f"({status} = '{st.value}' AND {step_sql} IN ({listed}))")
    return "(" + " OR ".join(terms) + ")"


def state_of(status: str, step: str | None, failure_code: str | None) -> PayoutState:
    """A stored row as the domain's state (a Processing row without a step reads as not_sent)."""
    s = PayoutStatus(status)
    if s is PayoutStatus.PROCESSING:
        return PayoutState(s, ProviderStep(step or ProviderStep.NOT_SENT.value))
    if s is PayoutStatus.FAILED:
        return PayoutState(s, failure_code=failure_code or "UNKNOWN")
    return PayoutState(s)


_CASE_GUARD = (
    "CASE v.event "
    + " ".join(
        f"WHEN '{e.value}' THEN {guard(e, 'p.status', 'p.provider_step', 'p.failure_code')}" for e in PayoutEvent
    )
    + " ELSE false END"
)


class Transitions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def states(self, payout_ids: Sequence[str]) -> dict[str, PayoutState]:
        """The stored state of each payout that exists."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT payout_id::text, status, provider_step, failure_code FROM payouts"
                " WHERE payout_id = ANY(%s::uuid[])",
                (list(payout_ids),),
            )
            return {r[0]: state_of(r[1], r[2], r[3]) for r in cur.fetchall()}

    def amounts(self, payout_ids: Sequence[str]) -> dict[str, int]:
        """amount_cents of each payout that exists: what a provider's word must agree with."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT payout_id::text, amount_cents FROM payouts WHERE payout_id = ANY(%s::uuid[])",
                (list(payout_ids),),
            )
            return {r[0]: int(r[1]) for r in cur.fetchall()}

    @retry_conflicts
    def claim_awaiting(self, older_than_seconds: int, limit: int) -> list[str]:
        """Payouts awaiting the provider's confirmation, untouched and unasked for older_than_seconds,
        oldest first; marks them asked now, so two pollers never ask about the same payout at once."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE payouts SET provider_polled_at = now() WHERE payout_id IN ("
                " SELECT payout_id FROM payouts WHERE status = 'Processing' AND provider_step = 'awaiting_confirmation'"
                " AND greatest(updated_at, provider_polled_at) < now() - make_interval(secs => %s)"
                " ORDER BY updated_at LIMIT %s FOR NO KEY UPDATE SKIP LOCKED)"
                " RETURNING payout_id::text",
                (older_than_seconds, limit),
            )
            return [r[0] for r in cur.fetchall()]

    @retry_conflicts
    def apply(self, words: Sequence[Word]) -> list[Decision | None]:
        """Decide and record each word in order, in one transaction; None for a payout that does not exist."""
        if not words:
            return []
        with self.db.transaction() as cur:
            return self._apply(cur, words)

    def _apply(self, cur: psycopg2.extensions.cursor, words: Sequence[Word]) -> list[Decision | None]:
        ids = sorted({w.payout_id for w in words})
        cur.execute(
            "SELECT payout_id::text, status, provider_step, failure_code FROM payouts"
            " WHERE payout_id = ANY(%s::uuid[]) ORDER BY payout_id FOR NO KEY UPDATE",
            (ids,),
        )
        states = {r[0]: state_of(r[1], r[2], r[3]) for r in cur.fetchall()}
        first_move: dict[str, PayoutEvent] = {}
        decisions: list[Decision | None] = []
        for word in words:
            state = states.get(word.payout_id)
            if state is None:
                decisions.append(None)
                continue
            decision = decide(state, word.event, word.failure_code)
            decisions.append(decision)
            if decision.moves:
                first_move.setdefault(word.payout_id, word.event)
                states[word.payout_id] = decision.target
            elif decision.verdict is Verdict.REFUSE:
                logger.warning(
                    "transition refused",
                    extra={
                        "payout_id": word.payout_id,
                        "event": word.event.value,
                        "source": word.source,
                        "state": str(state),
                        "reason": decision.reason,
                    },
                )
        rows = [
            _row(payout_id, states[payout_id], first_move.get(payout_id), words, decisions)
            for payout_id in ids
            if payout_id in states
        ]
        psycopg2.extras.execute_values(
            cur,
            "UPDATE payouts p SET"
            " status = CASE WHEN v.moved THEN v.status ELSE p.status END,"
            " provider_step = CASE WHEN v.moved THEN v.step ELSE p.provider_step END,"
            " failure_code = CASE WHEN v.moved THEN v.failure_code ELSE p.failure_code END,"
            " failure_message = CASE WHEN v.moved THEN v.failure_message ELSE p.failure_message END,"
            " updated_at = CASE WHEN v.moved THEN now() ELSE p.updated_at END,"
            " provider = coalesce(v.provider, p.provider),"
            " provider_send_id = coalesce(v.send_id, p.provider_send_id),"
            " provider_end_to_end_id = coalesce(v.e2e, p.provider_end_to_end_id),"
            " provider_status = coalesce(v.provider_status, p.provider_status)"
            " FROM (VALUES %s) AS v(payout_id, event, moved, status, step, failure_code, failure_message,"
            " provider, send_id, e2e, provider_status)"
            f" WHERE p.payout_id = v.payout_id::uuid AND (NOT v.moved OR {_CASE_GUARD})"
            " RETURNING p.payout_id::text, v.moved",
            rows,
            template="(%s, %s, %s::boolean, %s, %s, %s, %s, %s, %s, %s, %s)",
        )
        written = {r[0] for r in cur.fetchall() if r[1]}
        lost = set(first_move) - written
        if lost:  # the lock makes this impossible; the guard makes it harmless if it ever is not
            raise RuntimeError(f"guarded transition found rows in an unexpected state: {sorted(lost)}")
        events = [
            (
                w.payout_id,
                _event_name(w, d),
                d.source.status.value if d.moves else None,
                d.target.status.value if d.moves else None,
                w.attempt,
                d.target.failure_code if d.moves and d.target.failure_code else w.failure_code,
                w.detail if d.verdict is not Verdict.REFUSE else f"refused: {d.reason}",
                w.source,
                w.provider_status,
            )
            for w, d in zip(words, decisions, strict=True)
            if d is not None
        ]
        if events:
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO payout_events (payout_id, event, from_status, to_status, attempt, code, detail,"
                " source, provider_status) VALUES %s",
                events,
            )
        return decisions


Row = tuple[str, str, bool, str, str | None, str | None, str | None, str | None, str | None, str | None, str | None]


def _row(
    payout_id: str,
    target: PayoutState,
    first_move: PayoutEvent | None,
    words: Sequence[Word],
    decisions: Sequence[Decision | None],
) -> Row:
    """One payout's UPDATE values: its final state, and the provider's facts it heard.

    Ids are kept whatever the verdict (a late callback still names the end-to-end id); the provider's
    status only from a word that moved the payout, or while it is still open: a late EM_PROCESSAMENTO
    never overwrites a REALIZADO.
    """
    provider = send_id = e2e = provider_status = failure_message = None
    for word, decision in zip(words, decisions, strict=True):
        if word.payout_id != payout_id or decision is None or decision.verdict is Verdict.REFUSE:
            continue
        provider = word.provider or provider
        send_id = word.send_id or send_id
        e2e = word.end_to_end_id or e2e
        if decision.moves or decision.target.status not in TERMINAL:
            provider_status = word.provider_status or provider_status
        if decision.moves and decision.target.failure_code:
            failure_message = word.detail
    return (
        payout_id,
        (first_move or PayoutEvent.ATTEMPT).value,
        first_move is not None,
        target.status.value,
        target.step.value if target.step else None,
        target.failure_code,
        failure_message,
        provider,
        send_id,
        e2e,
        provider_status,
    )


def _event_name(word: Word, decision: Decision) -> str:
    """History names: the step or status reached when the payout moved, else what was heard."""
    if not decision.moves:
        return f"{word.source}_{word.event.value}"
    target = decision.target
    if target.status is PayoutStatus.PROCESSING and target.step is not None:
        return target.step.value
    if target.status is PayoutStatus.COMPLETED and word.source == "ask":
        return "recovered"  # found paid by asking, after an unknown outcome or a worker that died
    return target.status.value.lower()
