"""Reconcile a window: the provider's sends against our payouts; each finding logged and counted."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from ..domain.reconciliation import Finding, FindingKind, PayoutRecord, ProviderSend, compare, payout_named
from ..domain.send_id import send_id_for
from ..observability import logger, metrics

FINDINGS_METRIC = "ReconciliationFindings"


class ProviderSends(Protocol):
    def sends_between(self, since: datetime, until: datetime) -> Iterable[ProviderSend]:
        """Every send the provider lists with its request time in the window, all pages."""

    def send(self, send_id: str) -> ProviderSend | None:
        """The provider's send under this id, or None when it has none."""


class PayoutRecords(Protocol):
    def by_ids(self, payout_ids: Collection[str]) -> list[PayoutRecord]: ...

    def completed_between(self, since: datetime, until: datetime) -> list[PayoutRecord]: ...


@dataclass(frozen=True, slots=True)
class Reconciliation:
    since: datetime
    until: datetime
    sends: int  # the provider's, listed in the window or asked for
    payouts: int  # ours, named by a send or Completed in the window
    findings: list[Finding]

    def by_kind(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in FindingKind}
        for finding in self.findings:
            counts[finding.kind.value] += 1
        return counts

    def summary(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "sends": self.sends,
            "payouts": self.payouts,
            "findings": len(self.findings),
            "by_kind": self.by_kind(),
        }


def reconcile(provider: ProviderSends, records: PayoutRecords, since: datetime, until: datetime) -> Reconciliation:
    """Compare the window's sends with our payouts; log each finding, count them by kind."""
    if since.tzinfo is None or until.tzinfo is None or until <= since:
        raise ValueError("a reconciliation window needs since < until, both with a time zone")
    sends = list(provider.sends_between(since, until))
    named = {payout_id for send in sends if (payout_id := payout_named(send.send_id))}
    payouts = {record.payout_id: record for record in records.by_ids(named)}
    for record in records.completed_between(since, until):
        if record.payout_id in payouts:
            continue
        payouts[record.payout_id] = record
        # The provider lists a send by its request time, we a payout by its completion: one sent just
        # before `since` and confirmed after it is in the previous window's list. Ask before calling it missing.
        asked = provider.send(send_id_for(record.payout_id))
        if asked is not None:
            sends.append(asked)
    result = Reconciliation(since, until, len(sends), len(payouts), compare(sends, payouts.values()))
    for finding in result.findings:
        logger.error("reconciliation finding", extra=finding.fields())
    _count(result)
    logger.info("reconciliation done", extra=result.summary())
    return result


def _count(result: Reconciliation) -> None:
    # Zeros too: a clean run and a run that never happened must look different on a dashboard.
    metrics.add_metric(name=FINDINGS_METRIC, unit=MetricUnit.Count, value=len(result.findings))
    for kind, n in result.by_kind().items():
        metrics.add_metric(name=f"{FINDINGS_METRIC}_{kind}", unit=MetricUnit.Count, value=n)
