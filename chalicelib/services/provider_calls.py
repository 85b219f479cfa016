"""Calls to a Pix provider as settlement makes them: one shape for every provider, overlapped when it can be."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from ..domain.payout import Payout
from ..domain.payout_status import PayoutEvent
from ..domain.provider import PixProvider, SendReport, Transfer
from ..domain.send_id import send_id_for

T = TypeVar("T")
R = TypeVar("R")

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def is_async(provider: PixProvider) -> bool:
    """A provider that accepts now and confirms later, asked by our send id (Efí); else it pays inline (sandbox)."""
    return callable(getattr(provider, "ask", None))


def overlaps(provider: PixProvider) -> bool:
    """Whether calls may run side by side: the in-database sandbox shares one connection, so it may not."""
    return is_async(provider)


def send_id(provider: PixProvider, payout_id: str, end_to_end_id: str) -> str:
    return send_id_for(payout_id) if is_async(provider) else end_to_end_id


def send(provider: PixProvider, transfer: Transfer) -> SendReport:
    """The provider's answer to a send; a provider that pays inline answers "confirmed" by returning."""
    answer = provider.send(transfer)
    if isinstance(answer, SendReport):
        return answer
    return inline_report(transfer, datetime.now(UTC))


def inline_report(transfer: Transfer, settled_at: datetime | None = None) -> SendReport:
    """What a provider that pays inline said by returning: paid, under our end-to-end id."""
    return SendReport(
        send_id=transfer.end_to_end_id,
        event=PayoutEvent.CONFIRMED,
        provider_status="PAID",
        amount_cents=transfer.amount_cents,
        end_to_end_id=transfer.end_to_end_id,
        settled_at=settled_at,
    )


def ask(provider: PixProvider, payout: Payout) -> SendReport | None:
    """What the provider knows of the payout's send; None when nothing was sent."""
    if is_async(provider):
        known: SendReport | None = provider.ask(send_id_for(payout.payout_id))  # type: ignore[attr-defined]
        return known
    executed = provider.find(payout.end_to_end_id)
    if executed is None:
        return None
    return SendReport(
        send_id=payout.end_to_end_id,
        event=PayoutEvent.CONFIRMED,
        provider_status="PAID",
        amount_cents=executed.amount_cents,
        end_to_end_id=executed.end_to_end_id,
        settled_at=executed.executed_at,
    )


def ask_by_id(provider: PixProvider, payout_id: str) -> SendReport | None:
    """An asynchronous provider's word on the payout's send, asked by our send id."""
    known: SendReport | None = provider.ask(send_id_for(payout_id))  # type: ignore[attr-defined]
    return known


class NotStarted(Exception):
    """The call was not made: it could not have finished before the invocation's deadline."""


def call_each(
    call: Callable[[T], R], items: Sequence[T], workers: int, start_by: float | None = None
) -> list[R | Exception]:
    """call(item) for each item, in order: its result or the Exception it raised (BaseExceptions propagate).

    With workers > 1 the calls run side by side on a pool kept per container, so a provider's latency is
    paid once per wave of `workers` calls, not once per call. Past `start_by` (time.monotonic()) a call
    not started yet is not started (NotStarted), except in the first wave, so every invocation makes
    progress: a settle invocation of many payouts ends before its timeout instead of dying with its
    answers unrecorded.
    """

    def guarded(numbered: tuple[int, T]) -> R | Exception:
        n, item = numbered
        if start_by is not None and n >= workers and time.monotonic() > start_by:
            return NotStarted()
        try:
            return call(item)
        except Exception as exc:  # noqa: BLE001 - the caller handles each item's error
            return exc

    if workers <= 1 or len(items) <= 1:
        return [guarded(numbered) for numbered in enumerate(items)]
    return list(_pool(workers).map(guarded, enumerate(items)))


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provider")
        return _pools[workers]
