"""Reconciliation: the provider's sends against our payouts, compared exactly, as findings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from .money import exact_centavos, reais
from .payout_status import PayoutStatus
from .pix_keys import InvalidPixKey, mask_pix_key, parse_pix_key
from .send_id import payout_id_for

PAID = "REALIZADO"  # the provider's word for "the money moved"
REJECTED = "NAO_REALIZADO"  # the provider's word for "it never will"


class FindingKind(StrEnum):
    """What can be off, worst first (the order of a report)."""

    DOUBLE_PAYMENT = "double_payment"  # more than one transfer there for one payout
    PAID_NOT_COMPLETED = "paid_not_completed"  # REALIZADO there, not Completed here
    COMPLETED_NOT_PAID = "completed_not_paid"  # Completed here, missing or not REALIZADO there
    AMOUNT_MISMATCH = "amount_mismatch"
    KEY_MISMATCH = "key_mismatch"
    UNKNOWN_SEND = "unknown_send"  # a send there that names no payout of ours


_SEVERITY = {kind: n for n, kind in enumerate(FindingKind)}


@dataclass(frozen=True, slots=True)
class ProviderSend:
    """One send in the provider's own words, not yet judged: whatever it wrote, nothing refused."""

    send_id: str | None
    status: str | None
    valor: str | None  # reais, as the provider spelled them
    pix_key: str | None
    end_to_end_id: str | None = None


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    """What we hold of a payout, as far as reconciliation needs it."""

    payout_id: str
    status: str
    amount_cents: int
    pix_key: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that is off; `here` and `there` are printable as they are (Pix keys masked)."""

    kind: FindingKind
    payout_id: str | None
    send_id: str | None
    here: str
    there: str

    def fields(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "payout_id": self.payout_id,
            "send_id": self.send_id,
            "here": self.here,
            "there": self.there,
        }


def payout_named(send_id: str | None) -> str | None:
    """The payout a send's idEnvio names: the payout id's 32 hex digits, in either case."""
    # We send them lowercase (send_id_for). The provider takes another spelling for another send,
    # so an uppercase idEnvio spelling one of our payouts is a second transfer for it, not a stranger's.
    return payout_id_for(send_id.lower()) if isinstance(send_id, str) else None


def compare(sends: Iterable[ProviderSend], payouts: Iterable[PayoutRecord]) -> list[Finding]:
    """Every finding between the provider's sends and our payouts, worst first.

    `payouts` must hold each payout a send names (whatever its status) and each payout Completed in
    the window: a Completed payout with no send here is one the provider has no transfer for.
    """
    ours = {payout.payout_id: payout for payout in payouts}
    sends_of: dict[str, list[ProviderSend]] = defaultdict(list)
    findings: list[Finding] = []
    for send in sends:
        payout_id = payout_named(send.send_id)
        if payout_id is None or payout_id not in ours:
            there = f"{_described(send)}: {send.valor or 'no amount'} to {mask_pix_key(send.pix_key or '')}"
            findings.append(Finding(FindingKind.UNKNOWN_SEND, None, send.send_id, "no such payout", there))
        else:
            sends_of[payout_id].append(send)
    for payout in ours.values():
        findings.extend(_findings(payout, sends_of.get(payout.payout_id, [])))
    return sorted(findings, key=lambda f: (_SEVERITY[f.kind], f.payout_id or "", f.send_id or ""))


def same_pix_key(ours: str, theirs: str | None) -> bool:
    """Equal once both are normalised (a CPF punctuated or bare, an e-mail in any case)."""
    return theirs is not None and _normalised(ours) == _normalised(theirs)


def previous_utc_day(now: datetime) -> tuple[datetime, datetime]:
    """[yesterday 00:00, today 00:00) in UTC: the window a daily run reconciles."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today


def _findings(payout: PayoutRecord, sends: list[ProviderSend]) -> Iterable[Finding]:
    def finding(kind: FindingKind, here: str, there: str, send: ProviderSend | None = None) -> Finding:
        return Finding(kind, payout.payout_id, send.send_id if send else _first_send_id(sends), here, there)

    live = [send for send in sends if send.status != REJECTED]
    if len(live) > 1:
        there = f"{len(live)} transfers: " + ", ".join(_described(send) for send in live)
        yield finding(FindingKind.DOUBLE_PAYMENT, f"1 payout of {reais(payout.amount_cents)}", there)
    paid = any(send.status == PAID for send in sends)
    completed = payout.status == PayoutStatus.COMPLETED.value
    if paid and not completed:
        yield finding(FindingKind.PAID_NOT_COMPLETED, payout.status, PAID)
    if completed and not paid:
        there = ", ".join(send.status or "no status" for send in sends) or "no send"
        yield finding(FindingKind.COMPLETED_NOT_PAID, payout.status, there)
    for send in sends:
        # Integers only: the provider's reais converted exactly, or not at all.
        if exact_centavos(send.valor) != payout.amount_cents:
            there = "no amount" if send.valor is None else send.valor
            yield finding(FindingKind.AMOUNT_MISMATCH, reais(payout.amount_cents), there, send)
        if not same_pix_key(payout.pix_key, send.pix_key):
            there = "no key" if send.pix_key is None else mask_pix_key(send.pix_key)
            yield finding(FindingKind.KEY_MISMATCH, mask_pix_key(payout.pix_key), there, send)


def _normalised(key: str) -> tuple[str, str]:
    try:
        parsed = parse_pix_key(key)
    except InvalidPixKey:
        return ("unparsed", key.strip())
    return (parsed.type.value, parsed.value)


def _described(send: ProviderSend) -> str:
    return f"{send.status or 'no status'} {send.end_to_end_id or send.send_id or 'without ids'}"


def _first_send_id(sends: list[ProviderSend]) -> str | None:
    return sends[0].send_id if sends else None
