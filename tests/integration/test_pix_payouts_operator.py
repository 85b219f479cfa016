"""The operator commands under the client's tool: `pix-payouts migrate|sweep|dlq-redrive|reconcile`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2

from chalicelib.client.commands import OPERATOR_COMMANDS
from tests.support import scratch_database

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(sys.executable).with_name("pix-payouts")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOL), *args], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120
    )


def test_the_help_lists_the_operator_commands_next_to_the_client_ones() -> None:
    done = run("--help")
    assert done.returncode == 0
    for name in ("submit", "status", "report", "payout", *OPERATOR_COMMANDS):
        assert name in done.stdout


def test_pix_payouts_migrate_applies_the_migrations_to_the_database_it_is_given() -> None:
    with scratch_database("pix_tool", migrate=False) as url:
        done = run("migrate", env={"DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version FROM schema_migrations ORDER BY version")
                applied = [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
        assert applied == sorted(p.name for p in (ROOT / "chalicelib" / "migrations").glob("*.sql"))
        assert all(name in done.stdout for name in applied)
        again = run("migrate", env={"DATABASE_URL": url})
        assert again.returncode == 0 and '"applied": []' in again.stdout


def test_an_operator_command_keeps_its_own_arguments_and_help() -> None:
    done = run("reconcile", "--help")
    assert done.returncode == 0
    assert "pix-payouts reconcile" in done.stdout and "--since" in done.stdout
