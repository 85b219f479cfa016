"""Payout life cycle: one state machine that decides every transition, the provider's step included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class PayoutStatus(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ProviderStep(StrEnum):
    """Where a Processing payout stands with the provider; no step outside Processing."""

    NOT_SENT = "not_sent"  # nothing the provider accepted yet: safe to send
    UNCERTAIN = "uncertain"  # a send may have reached the provider: ask before sending again
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # accepted; money moves when the provider says so


class PayoutEvent(StrEnum):
    """What can happen to a payout: a worker's act, or the provider's word (answer, callback or poll)."""

    ATTEMPT = "attempt"  # a worker takes the payout to settle it
    ACCEPTED = "accepted"  # the provider took the send and has not settled it (EM_PROCESSAMENTO)
    CONFIRMED = "confirmed"  # the money moved (REALIZADO, or a provider that pays inline)
    REJECTED = "rejected"  # the provider refused it for good (4xx with a code, NAO_REALIZADO)
    OUTCOME_UNKNOWN = "outcome_unknown"  # 5xx, timeout, reset: the send may or may not have arrived
    NOTHING_SENT = "nothing_sent"  # throttled before sending, or asked and the provider has nothing
    GIVE_UP = "give_up"  # our own retries ran out
    REOPEN = "reopen"  # the operator's redrive of a payout whose retries ran out


class Verdict(StrEnum):
    MOVE = "move"  # record the target state (a retry attempt moves Processing to itself)
    STAY = "stay"  # already there or past it (repeated, late, out of order): acknowledge, change nothing
    REFUSE = "refuse"  # contradicts what is recorded, or not allowed from here: change nothing, report it


class NextAction(StrEnum):
    SEND = "send"
    ASK = "ask"
    WAIT = "wait"  # for the webhook; the poller asks after a while
    NONE = "none"


RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"

# A reversal after completion is a new record, so nothing ever leaves these.
TERMINAL: frozenset[PayoutStatus] = frozenset({PayoutStatus.COMPLETED, PayoutStatus.FAILED})


@dataclass(frozen=True, slots=True)
class PayoutState:
    status: PayoutStatus
    step: ProviderStep | None = None
    failure_code: str | None = None

    def __post_init__(self) -> None:
        if (self.status is PayoutStatus.PROCESSING) != (self.step is not None):
            raise ValueError("a provider step exists exactly when the payout is Processing")
        if (self.status is PayoutStatus.FAILED) != (self.failure_code is not None):
            raise ValueError("a failure code exists exactly when the payout is Failed")

    def __str__(self) -> str:
        return f"{self.status.value}/{self.step.value}" if self.step else self.status.value


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    source: PayoutState
    event: PayoutEvent
    target: PayoutState
    reason: str

    @property
    def moves(self) -> bool:
        return self.verdict is Verdict.MOVE


PENDING = PayoutState(PayoutStatus.PENDING)
NOT_SENT = PayoutState(PayoutStatus.PROCESSING, ProviderStep.NOT_SENT)
UNCERTAIN = PayoutState(PayoutStatus.PROCESSING, ProviderStep.UNCERTAIN)
AWAITING = PayoutState(PayoutStatus.PROCESSING, ProviderStep.AWAITING_CONFIRMATION)
COMPLETED = PayoutState(PayoutStatus.COMPLETED)


def failed(code: str) -> PayoutState:
    return PayoutState(PayoutStatus.FAILED, failure_code=code)


_E = PayoutEvent
_S = ProviderStep
# Moves inside Processing and out of it, by step: None marks "stay", a missing event "refuse".
_PROCESSING: dict[ProviderStep, dict[PayoutEvent, PayoutState | None]] = {
    _S.NOT_SENT: {
        _E.ATTEMPT: NOT_SENT,
        _E.ACCEPTED: AWAITING,
        _E.CONFIRMED: COMPLETED,
        _E.OUTCOME_UNKNOWN: UNCERTAIN,
        _E.NOTHING_SENT: None,
    },
    _S.UNCERTAIN: {
        _E.ATTEMPT: UNCERTAIN,
        _E.ACCEPTED: AWAITING,
        _E.CONFIRMED: COMPLETED,
        _E.OUTCOME_UNKNOWN: None,
        _E.NOTHING_SENT: NOT_SENT,
    },
    _S.AWAITING_CONFIRMATION: {
        # A redelivered message finds nothing to send; a late EM_PROCESSAMENTO or a failed ask
        # never undoes the provider's acceptance.
        _E.ATTEMPT: None,
        _E.ACCEPTED: None,
        _E.CONFIRMED: COMPLETED,
        _E.OUTCOME_UNKNOWN: None,
    },
}
# Events after the end: repeats and late words are acknowledged; the rest contradict the record.
_STAYS_AFTER: dict[PayoutStatus, frozenset[PayoutEvent]] = {
    PayoutStatus.COMPLETED: frozenset({_E.ATTEMPT, _E.ACCEPTED, _E.CONFIRMED, _E.OUTCOME_UNKNOWN, _E.GIVE_UP}),
    PayoutStatus.FAILED: frozenset(
        {_E.ATTEMPT, _E.ACCEPTED, _E.REJECTED, _E.OUTCOME_UNKNOWN, _E.NOTHING_SENT, _E.GIVE_UP}
    ),
}


def decide(state: PayoutState, event: PayoutEvent, failure_code: str | None = None) -> Decision:
    """What event does to a payout in state; failure_code names a rejection (REJECTED only)."""
    event = PayoutEvent(event)

    def move(target: PayoutState, reason: str) -> Decision:
        return Decision(Verdict.MOVE, state, event, target, reason)

    def stay(reason: str) -> Decision:
        return Decision(Verdict.STAY, state, event, state, reason)

    def refuse(reason: str) -> Decision:
        return Decision(Verdict.REFUSE, state, event, state, reason)

    status = state.status
    if status is PayoutStatus.PENDING:
        if event is _E.ATTEMPT:
            return move(NOT_SENT, "first attempt")
        if event is _E.GIVE_UP:
            return move(failed(RETRIES_EXHAUSTED), "retries ran out before any send")
        return refuse("the provider cannot speak of a payout that was never sent")
    if status is PayoutStatus.PROCESSING:
        assert state.step is not None
        if event is _E.REJECTED:
            return move(failed(failure_code or "REJECTED"), "rejected by the provider")
        if event is _E.GIVE_UP:
            if state.step is _S.NOT_SENT:
                return move(failed(RETRIES_EXHAUSTED), "retries ran out and nothing was sent")
            return refuse("the provider may hold the send: ask it before giving up")
        table = _PROCESSING[state.step]
        if event not in table:
            return refuse(f"{event.value} contradicts {state}")
        target = table[event]
        return stay(f"{event.value} changes nothing in {state}") if target is None else move(target, event.value)
    if event in _STAYS_AFTER[status]:
        return stay(f"{state} is final; {event.value} is repeated or late")
    if status is PayoutStatus.FAILED and event is _E.REOPEN and state.failure_code == RETRIES_EXHAUSTED:
        return move(PENDING, "the operator reopened a payout whose retries ran out")
    return refuse(f"{event.value} contradicts {state}")


class IllegalTransition(Exception):
    def __init__(self, src: object, dst: object, reason: str = "") -> None:
        self.src: object = src
        self.dst: object = dst
        message = f"a payout cannot move from {_label(src)} to {_label(dst)}"
        super().__init__(f"{message}: {reason}" if reason else message)


def apply(state: PayoutState, event: PayoutEvent, failure_code: str | None = None) -> PayoutState:
    """The state after event; the same state when it changes nothing; IllegalTransition when refused."""
    decision = decide(state, event, failure_code)
    if decision.verdict is Verdict.REFUSE:
        raise IllegalTransition(state, event, decision.reason)
    return decision.target


def next_action(state: PayoutState) -> NextAction:
    """What settling a payout in state does with the provider."""
    if state.status is PayoutStatus.PENDING or state.step is _S.NOT_SENT:
        return NextAction.SEND
    if state.step is _S.UNCERTAIN:
        return NextAction.ASK
    if state.step is _S.AWAITING_CONFIRMATION:
        return NextAction.WAIT
    return NextAction.NONE


def every_state() -> Iterator[PayoutState]:
    """Each state a payout can be in (Failed once for our own give-up, once for a provider's code)."""
    yield PENDING
    yield from (PayoutState(PayoutStatus.PROCESSING, step) for step in ProviderStep)
    yield COMPLETED
    yield failed(RETRIES_EXHAUSTED)
    yield failed("AC03")


def sources(event: PayoutEvent) -> frozenset[tuple[PayoutStatus, ProviderStep | None]]:
    """The (status, step) pairs event moves a payout out of: what a storage guard must require."""
    return frozenset((state.status, state.step) for state in every_state() if decide(state, event).moves)


# The status-level view of the machine, for callers that only see statuses. The operator's reopen
# is left out on purpose: as far as the service's own events go, nothing leaves a final status.
_ALLOWED: frozenset[tuple[PayoutStatus, PayoutStatus]] = frozenset(
    (d.source.status, d.target.status)
    for state in every_state()
    for event in PayoutEvent
    if event is not _E.REOPEN and (d := decide(state, event)).moves
)


def can_transition(src: PayoutStatus, dst: PayoutStatus) -> bool:
    """True when some event moves a payout in status src to status dst; unknown statuses never may."""
    source = _coerce(src)
    target = _coerce(dst)
    if source is None or target is None:
        return False
    return (source, target) in _ALLOWED


def check_transition(src: PayoutStatus, dst: PayoutStatus) -> None:
    """Raise IllegalTransition unless can_transition(src, dst)."""
    if not can_transition(src, dst):
        raise IllegalTransition(src, dst)


def _coerce(value: object) -> PayoutStatus | None:
    # Statuses read back from storage arrive as plain strings; anything that is
    # not a known status is refused rather than guessed at.
    if not isinstance(value, str):
        return None
    try:
        return PayoutStatus(value)
    except ValueError:
        return None


def _label(value: object) -> str:
    if isinstance(value, PayoutState | PayoutEvent):
        return str(value.value if isinstance(value, PayoutEvent) else value)
    status = _coerce(value)
    return status.value if status is not None else "an unknown status"


def exhausted_reason(failures: int, code: str | None, detail: str | None) -> str:
    """The failure message of a payout failed RETRIES_EXHAUSTED, naming its last provider error."""
    reason = f"gave up after {failures} failed provider attempt(s)"
    last = f"{code or ''} {detail or ''}".strip()
    return f"{reason}; last error: {last}" if last else reason


@dataclass(frozen=True, slots=True)
class Word:
    """One thing said about a payout, and where it came from (send, ask, callback, poll, worker)."""

    payout_id: str
    event: PayoutEvent
    source: str
    attempt: int | None = None
    failure_code: str | None = None
    detail: str | None = None
    provider: str | None = None
    send_id: str | None = None
    end_to_end_id: str | None = None
    provider_status: str | None = None
