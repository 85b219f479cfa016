"""Operator commands act only on what they were pointed at: their settings, else the embedded stack's `.stack/`,
else they stop with one sentence saying what to set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from chalicelib import cli, stack_target, wiring
from tests.support import scratch_database

TARGET_VARIABLES = (
    *stack_target.DATABASE,
    *stack_target.QUEUES,
    *stack_target.REGION,
    "IDEMPOTENCY_TABLE",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "PGHOST",
    "PGDATABASE",
)


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No settings in the environment, and a working tree without `.stack/`; everything restored afterwards."""
    for name in TARGET_VARIABLES:
        monkeypatch.setenv(name, "")  # recorded, so that what the command adds is removed again
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stack_target, "stack_dirs", lambda: (tmp_path / ".stack",))
    yield tmp_path
    wiring.reset()


@pytest.mark.parametrize(
    "argv",
    [
        ["migrate"],
        ["sweep"],
        ["dlq-redrive"],
        ["reconcile", "--since", "2026-01-01T00:00Z", "--until", "2026-01-02T00:00Z"],
    ],
)
def test_without_settings_or_an_embedded_stack_a_command_stops_with_one_sentence(
    bare: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "set DATABASE_URL" in err and "make up" in err
    if argv[0] in ("sweep", "dlq-redrive"):
        assert "PAYOUTS_QUEUE_URL" in err and "AWS_REGION" in err


def test_a_database_without_its_queues_is_not_enough_for_the_sweeper(
    bare: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nowhere.invalid/x")
    assert cli.main(["sweep"]) == 2
    err = capsys.readouterr().err
    assert "PAYOUTS_QUEUE_URL" in err and "FANOUT_QUEUE_URL" in err and err.count("\n") == 1


def test_without_settings_migrate_acts_on_the_embedded_stack_it_finds(
    bare: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with scratch_database("pix_target", migrate=False) as url:
        (bare / ".stack").mkdir()
        (bare / ".stack" / "database_url").write_text(url + "\n")
        assert cli.main(["migrate"]) == 0, capsys.readouterr().err
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM schema_migrations")
                (applied,) = cur.fetchone()
        finally:
            conn.close()
        wiring.reset()
    assert applied >= 6


def test_the_embedded_stack_s_files_become_the_settings_and_the_emulator_endpoint(tmp_path: Path) -> None:
    folder = tmp_path / ".stack"
    folder.mkdir()
    for file, value in {
        "database_url": "postgresql://db/x",
        "queue_url": "http://127.0.0.1:4999/000000000000/pix-payouts",
        "dlq_url": "http://127.0.0.1:4999/000000000000/pix-payouts-dlq",
        "fanout_url": "http://127.0.0.1:4999/000000000000/pix-payouts-fanout",
        "lock_table": "pix-payouts-locks",
        "endpoint_url": "http://127.0.0.1:4999",
    }.items():
        (folder / file).write_text(value + "\n")
    found = stack_target.resolve("sweep", {}, (folder,))
    assert found["DATABASE_URL"] == "postgresql://db/x" and found["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4999"
    assert found["PAYOUTS_DLQ_URL"].endswith("pix-payouts-dlq") and found["IDEMPOTENCY_TABLE"] == "pix-payouts-locks"
    assert found["AWS_REGION"] == "us-east-1"
    # explicit settings win, and the embedded stack is then not read at all
    given = {
        "DATABASE_URL": "postgresql://elsewhere/y",
        "PAYOUTS_QUEUE_URL": "q",
        "PAYOUTS_DLQ_URL": "d",
        "FANOUT_QUEUE_URL": "f",
        "AWS_REGION": "sa-east-1",
    }
    assert stack_target.resolve("sweep", given, (folder,)) == {}


def test_an_embedded_stack_that_is_down_is_one_sentence_and_exit_3(
    bare: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bare / ".stack").mkdir()
    (bare / ".stack" / "database_url").write_text(f"postgresql://postgres:@/postgres?host={bare / 'no-server'}\n")
    assert cli.main(["migrate"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is the stack up?" in err.splitlines()[-1]


def test_with_the_stack_paying_through_its_local_psp_a_command_uses_the_same_provider(tmp_path: Path) -> None:
    stack = tmp_path / ".stack"
    stack.mkdir()
    (stack / "database_url").write_text("postgresql:///x\n")
    (stack / "psp_url").write_text("https://127.0.0.1:5999\n")
    (stack / "pix_provider").write_text("efi\n")
    added = stack_target.resolve("poll", {}, (stack,))
    assert added["PIX_PROVIDER"] == "efi" and added["EFI_BASE_URL"] == "https://127.0.0.1:5999"
    assert added["EFI_CERT_FILE"] == str(stack / "psp" / "client-cert.pem")
    assert "PIX_PROVIDER" not in stack_target.resolve("poll", {"PIX_PROVIDER": "sandbox"}, (stack,))
    (stack / "pix_provider").write_text("sandbox\n")
    assert "PIX_PROVIDER" not in stack_target.resolve("poll", {}, (stack,))
