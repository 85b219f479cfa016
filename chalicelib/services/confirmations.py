"""The provider's later word, by its two doors: the webhook it calls, and the poller that asks.

Both turn what the provider said into words for the one guarded transition path. A word that does not
fit (not one of our send ids, no such payout, another amount) changes nothing and is logged as an error:
answering it with an error would only make the provider retry a message that will never fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..domain.errors import BadRequest
from ..domain.payout_status import Verdict, Word
from ..domain.provider import PixProvider, SendReport
from ..domain.send_id import payout_id_for, send_id_for
from ..observability import count, logger
from .ports import Transitions
from .provider_calls import call_each


def receive_callback(
    transitions: Transitions,
    body: Any,
    parse: Callable[[Any], list[SendReport]],
    provider_name: str = "efi",
) -> dict[str, int]:
    """A webhook POST ({"pix": [...]}): each entry that fits moves its payout as the state machine says.

    `parse` is the provider's reading of its callback body (adapters/efi/mapping.py): ValueError when it
    is not that provider's shape."""
    try:
        reports = parse(body)
    except ValueError as exc:
        logger.error("webhook body is not Efí's shape", extra={"error": str(exc)})
        count("CallbacksRefused")
        raise BadRequest(f"not a Pix callback: {exc}") from exc
    summary = _apply(transitions, reports, "callback", provider_name)
    count("CallbacksReceived", len(reports))
    return summary


def poll(
    transitions: Transitions,
    provider: PixProvider,
    *,
    older_than_seconds: int,
    limit: int,
    concurrency: int = 1,
    provider_name: str = "efi",
) -> dict[str, int]:
    """Ask the provider about payouts awaiting its confirmation longer than older_than_seconds."""
    ask = getattr(provider, "ask", None)
    if ask is None:
        return {"asked": 0, "moved": 0, "ignored": 0, "unanswered": 0}
    payout_ids = transitions.claim_awaiting(older_than_seconds, limit)
    answers = call_each(lambda pid: ask(send_id_for(pid)), payout_ids, concurrency)
    reports: list[SendReport] = []
    unanswered = 0
    for payout_id, answer in zip(payout_ids, answers, strict=True):
        if isinstance(answer, SendReport):
            reports.append(answer)
        else:
            # None: the provider has nothing under our send id although it accepted it; an error: ask later.
            unanswered += 1
            logger.error(
                "poll found no answer for an accepted payout",
                extra={"payout_id": payout_id, "error": repr(answer) if answer is not None else "not found"},
            )
    summary = _apply(transitions, reports, "poll", provider_name)
    summary.update(asked=len(payout_ids), unanswered=unanswered)
    count("PayoutsPolled", len(payout_ids))
    if payout_ids:
        logger.info("asked the provider about payouts awaiting confirmation", extra=summary)
    return summary


def _apply(transitions: Transitions, reports: Sequence[SendReport], source: str, provider_name: str) -> dict[str, int]:
    ids = {r.send_id: payout_id_for(r.send_id) for r in reports}
    amounts = transitions.amounts([pid for pid in ids.values() if pid is not None])
    words: list[Word] = []
    ignored = 0
    for report in reports:
        payout_id = ids[report.send_id]
        problem = None
        if payout_id is None or payout_id not in amounts:
            problem = "unknown send id"
        elif report.amount_cents is not None and report.amount_cents != amounts[payout_id]:
            problem = "amount differs from the payout's"
        if problem is not None:
            ignored += 1
            logger.error(
                "provider word ignored",
                extra={
                    "source": source,
                    "problem": problem,
                    "send_id": report.send_id,
                    "payout_id": payout_id,
                    "amount_cents": report.amount_cents,
                    "expected_cents": amounts.get(payout_id or ""),
                },
            )
            continue
        assert payout_id is not None
        words.append(report.word(payout_id, source, provider_name))
    decisions = transitions.apply(words)
    moved = sum(1 for d in decisions if d is not None and d.moves)
    refused = sum(1 for d in decisions if d is not None and d.verdict is Verdict.REFUSE)
    if ignored:
        count("ProviderWordsIgnored", ignored)
    return {"received": len(reports), "moved": moved, "refused": refused, "ignored": ignored}
