"""`reconcile` against the local PSP over mutual TLS and a scratch PostgreSQL: the CLI and the daily schedule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.payout import Payout
from chalicelib.domain.provider import Transfer
from chalicelib.domain.send_id import send_id_for
from chalicelib.services import batches
from infra.localpsp import LocalPsp
from tests.integration.helpers import batch, item
from tests.integration.psp import PAYER_KEY, efi_env, eventually
from tests.support import scratch_database

ROOT = Path(__file__).resolve().parents[2]
REJECTED_BY_WEBHOOK = 66601  # the local PSP's default fault: accepted, then NAO_REALIZADO with AC03


@dataclass
class Books:
    psp: LocalPsp
    database_url: str

    def submit(self, *amounts: int) -> list[Payout]:
        """Payouts stored the way POST /batches stores them, in request order."""
        request = parse_batch_request(batch(*(item(amount) for amount in amounts)))
        batches.submit_batch(wiring.repository(), wiring.fanout_plan(), request, wiring.new_e2e_id)
        return [entry.payout for entry in wiring.repository().batch_items(request.batch_id)]

    def start(self, *payouts: Payout) -> None:
        wiring.repository().start_attempts([p.payout_id for p in payouts])

    def complete(self, *payouts: Payout) -> None:
        self.start(*payouts)
        assert wiring.repository().complete_many([(p.payout_id, 1, "completed") for p in payouts]) == {
            p.payout_id for p in payouts
        }

    def send(self, payout: Payout, amount_cents: int | None = None, pix_key: str | None = None) -> str:
        """Through the PSP's send endpoint, as settlement sends; returns the idEnvio."""
        transfer = Transfer(
            payout.end_to_end_id,
            payout.payout_id,
            amount_cents or payout.amount_cents,
            payout.pix_key_type,
            pix_key or payout.pix_key,
        )
        return wiring.efi_provider().send(transfer).send_id

    def settled(self, *send_ids: str) -> None:
        def done() -> bool:
            return all(wiring.efi_provider().ask(s).provider_status != "EM_PROCESSAMENTO" for s in send_ids)  # type: ignore[union-attr]

        assert eventually(done), "the PSP did not settle the sends"


@pytest.fixture
def books(aws: dict[str, Any], start_psp: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Books]:
    """A database of our own (no other test's payouts in the window), a fresh PSP, settings for both."""
    psp = start_psp()
    with scratch_database("pix_reconcile") as url:
        for name, value in {
            **efi_env(psp),
            "DATABASE_URL": url,
            "PAYOUTS_QUEUE_URL": aws["queue_url"],
            "FANOUT_QUEUE_URL": aws["fanout_url"],
            "ENQUEUE_PROCESSES": "1",
        }.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        try:
            yield Books(psp, url)
        finally:
            wiring.reset()


def reconcile_cli(since: datetime, until: datetime) -> subprocess.CompletedProcess[str]:
    """`pix-payouts reconcile` as an operator runs it (the README's command), configured by the environment."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("pix-payouts")),
            "reconcile",
            "--since",
            since.isoformat(),
            "--until",
            until.isoformat(),
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def table_rows(stdout: str) -> list[dict[str, str]]:
    lines = stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("kind ")))
    names = lines[header].split()
    return [dict(zip(names, re.split(r"\s{2,}", line), strict=True)) for line in lines[header + 2 :]]


def logged(stderr: str, message: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry.get("message") == message]


def test_every_kind_of_finding_is_in_the_table_logged_masked_and_the_exit_status_says_so(books: Books) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    clean, unconfirmed, unsent, rejected, short, elsewhere, twice = books.submit(
        35000, 35000, 35000, REJECTED_BY_WEBHOOK, 35000, 35000, 35000
    )
    books.complete(clean, unsent, rejected, short, elsewhere, twice)
    books.start(unconfirmed)  # paid at the PSP, still Processing here (as if its webhook was lost)
    stranger = str(uuid.uuid4())  # a payout we never had
    sent = [
        books.send(clean),
        books.send(unconfirmed),
        books.send(rejected),
        books.send(short, amount_cents=35001),
        books.send(elsewhere, pix_key="someone.else@example.com"),
        books.send(twice),
        wiring.efi_provider().send(Transfer("E" + "9" * 31, stranger, 12345, "EMAIL", "nobody@example.com")).send_id,
    ]
    books.settled(*sent)
    # Two transfers for one payout cannot be made through the PSP's API (its idEnvio is the payout's
    # own, and a reuse answers 409). What can happen is a second idEnvio that names the same payout:
    # written here straight into the PSP's ledger, through its own module, spelled in capitals.
    second = books.psp.ledger.record(
        send_id_for(twice.payout_id).upper(), twice.amount_cents, twice.pix_key, PAYER_KEY, datetime.now(UTC)
    )
    assert second is not None
    books.psp.ledger.settle(second.id_envio, "REALIZADO", datetime.now(UTC), None, None)

    done = reconcile_cli(since, datetime.now(UTC) + timedelta(seconds=1))

    assert done.returncode == 1, done.stderr
    rows = table_rows(done.stdout)
    assert sorted((row["kind"], row["payout_id"]) for row in rows) == sorted(
        [
            ("double_payment", twice.payout_id),
            ("paid_not_completed", unconfirmed.payout_id),
            ("completed_not_paid", unsent.payout_id),
            ("completed_not_paid", rejected.payout_id),
            ("amount_mismatch", short.payout_id),
            ("key_mismatch", elsewhere.payout_id),
            ("unknown_send", "-"),
        ]
    )
    by_payout = {row["payout_id"]: row for row in rows}
    assert (by_payout[short.payout_id]["here"], by_payout[short.payout_id]["there"]) == ("350.00", "350.01")
    assert by_payout[rejected.payout_id]["there"] == "NAO_REALIZADO"
    assert by_payout[unsent.payout_id]["there"] == "no send"
    assert by_payout[unconfirmed.payout_id]["here"] == "Processing"
    assert second.e2e_id in by_payout[twice.payout_id]["there"]
    assert by_payout["-"]["send_id"] == send_id_for(stranger)
    # Listed: 7 sent + 1 written in the ledger; ours: 6 named by them + `unsent`, asked for and not found.
    assert "8 provider sends, 7 payouts, 7 findings" in done.stdout.splitlines()[0]

    findings = logged(done.stderr, "reconciliation finding")
    assert sorted(f["kind"] for f in findings) == sorted(row["kind"] for row in rows)
    assert all(f["level"] == "ERROR" for f in findings)
    for key in {p.pix_key for p in (clean, elsewhere, twice)} | {"someone.else@example.com", "nobody@example.com"}:
        assert key not in done.stderr and key not in done.stdout
    (summary,) = logged(done.stderr, "reconciliation done")
    assert summary["findings"] == 7 and summary["by_kind"]["completed_not_paid"] == 2


def test_a_clean_window_exits_0_even_for_a_payout_sent_before_it_and_completed_inside_it(books: Books) -> None:
    early, plain = books.submit(35000, 120001)
    early_send = books.send(early)
    books.settled(early_send)
    since = datetime.now(UTC)  # the PSP lists `early` by its request, before this
    books.complete(early)
    books.send(plain)
    books.settled(send_id_for(plain.payout_id))
    books.complete(plain)

    done = reconcile_cli(since, datetime.now(UTC) + timedelta(seconds=1))

    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"reconciled {since.isoformat()} .. ")
    assert line.endswith(": 2 provider sends, 2 payouts, 0 findings")
    assert logged(done.stderr, "reconciliation finding") == []


def test_a_window_the_provider_cannot_list_exits_3_without_a_table(books: Books, monkeypatch) -> None:
    monkeypatch.setenv("EFI_BASE_URL", "https://127.0.0.1:9")  # nothing listens there
    now = datetime.now(UTC)

    done = reconcile_cli(now - timedelta(hours=1), now)

    assert done.returncode == 3
    assert done.stdout == ""
    (failure,) = logged(done.stderr, "reconciliation could not run")
    assert failure["error"] == "ProviderTransientError"


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12-01T00:00:00", "2026-12-02T00:00:00Z"),
        ("yesterday", "2026-12-02T00:00:00Z"),
    ],
)
def test_an_empty_window_or_a_time_without_an_offset_is_a_usage_error(since: str, until: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "reconcile", "--since", since, "--until", until],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "--since" in done.stderr or "RFC 3339" in done.stderr


def test_the_daily_schedule_reconciles_the_utc_day_before_its_event_and_counts_by_kind(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalice.test import Client

    import app as chalice_app

    (unsent,) = books.submit(35000)
    books.complete(unsent)
    completed_on = wiring.repository().get_payout(unsent.payout_id).updated_at.astimezone(UTC).date()  # type: ignore[union-attr]
    capsys.readouterr()

    with Client(chalice_app.app) as client:
        event = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        event["time"] = f"{completed_on + timedelta(days=1)}T03:00:00Z"
        summary = client.lambda_.invoke("reconciliation", event).payload

    assert (summary["since"], summary["until"]) == (
        f"{completed_on}T00:00:00+00:00",
        f"{completed_on + timedelta(days=1)}T00:00:00+00:00",
    )
    assert summary["findings"] == 1 and summary["by_kind"]["completed_not_paid"] == 1
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (published,) = [doc for doc in emf if "ReconciliationFindings" in doc]

    def values(name: str) -> list[float]:  # EMF writes one value bare or several as a list
        value = published[name]
        return value if isinstance(value, list) else [value]

    assert values("ReconciliationFindings") == [1]
    assert values("ReconciliationFindings_completed_not_paid") == [1]
    assert values("ReconciliationFindings_double_payment") == [0]


def test_the_daily_schedule_only_logs_when_the_provider_is_not_efi(books: Books, monkeypatch, service_logs) -> None:
    from chalice.test import Client

    import app as chalice_app
    from chalicelib.observability import logger

    monkeypatch.setenv("PIX_PROVIDER", "sandbox")
    wiring.reset()
    # Under pytest's captured stdout, Chalice sets its app logger (the service's, same name) to ERROR.
    level = logger.log_level
    logger.setLevel("INFO")
    try:
        with Client(chalice_app.app) as client:
            event = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
            assert client.lambda_.invoke("reconciliation", event).payload == {"skipped": "sandbox"}
    finally:
        logger.setLevel(level)
    (line,) = [json.loads(x) for x in service_logs.getvalue().splitlines() if "reconciliation skipped" in x]
    assert line["provider"] == "sandbox"
