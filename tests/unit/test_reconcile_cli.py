"""The reconcile command's arguments and table, without a provider or a database."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chalicelib.domain.reconciliation import Finding, FindingKind
from chalicelib.reconcile_cli import render, rfc3339
from chalicelib.services.reconcile import Reconciliation

SINCE = datetime(2026, 12, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-12-01T00:00:00Z", SINCE),
        ("2026-12-01T00:00:00+00:00", SINCE),
        ("2026-11-30T21:00:00-03:00", datetime(2026, 11, 30, 21, tzinfo=timezone(timedelta(hours=-3)))),
    ],
)
def test_times_are_rfc3339_with_an_offset(text: str, moment: datetime) -> None:
    assert rfc3339(text) == moment


@pytest.mark.parametrize("text", ["2026-12-01T00:00:00", "2026-12-01", "yesterday", ""])
def test_a_time_without_an_offset_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rfc3339(text)


def test_a_clean_window_is_one_summary_line() -> None:
    assert render(Reconciliation(SINCE, UNTIL, 3, 3, [])) == (
        "reconciled 2026-12-01T00:00:00+00:00 .. 2026-12-02T00:00:00+00:00: 3 provider sends, 3 payouts, 0 findings\n"
    )


def test_findings_are_an_aligned_table_with_the_providers_control_characters_replaced() -> None:
    findings = [
        Finding(FindingKind.AMOUNT_MISMATCH, "p-1", "s1", "350.00", "350.01"),
        Finding(FindingKind.UNKNOWN_SEND, None, "manual\x1b[2J", "no such payout", "REALIZADO E1"),
    ]
    lines = render(Reconciliation(SINCE, UNTIL, 2, 1, findings)).splitlines()
    assert lines[0].endswith("2 provider sends, 1 payouts, 2 findings")
    assert lines[1].split() == ["kind", "payout_id", "send_id", "here", "there"]
    assert set(lines[2]) == {"-", " "}
    assert lines[3].split("  ")[0] == "amount_mismatch"
    assert [line.index("350.00") for line in lines[3:4]] == [lines[1].index("here")]
    assert "\x1b" not in lines[4] and "manual?[2J" in lines[4]
    assert lines[4].split()[1] == "-"


def test_a_backwards_window_is_a_usage_error_before_any_target_is_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib import cli, stack_target

    for name in stack_target.DATABASE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(stack_target, "stack_dirs", lambda: (tmp_path / ".stack",))  # no embedded stack either
    argv = ["reconcile", "--since", "2026-12-02T00:00:00Z", "--until", "2026-12-01T00:00:00Z"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == "reconcile: --since must be before --until\n"
    assert cli.main([*argv[:3], "--until", "2026-12-03T00:00:00Z"]) == 2  # a good window: now the target is missing
    assert "no database to act on" in capsys.readouterr().err
