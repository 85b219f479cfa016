"""The pix-payouts console script against the deployed stack: submit (JSON and CSV) with --wait, report, errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import seed_batch, unique

pytestmark = pytest.mark.e2e
CLI = Path(sys.executable).with_name("pix-payouts")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(stack: Any, *args: str, tty: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TTY_", "PIX_API_"))}
    environ.update(PIX_API_URL=stack.api_url, PIX_API_KEY=stack.api_key, COLUMNS="140", PYTHONIOENCODING="utf-8")
    if tty:
        # rich draws its live progress bar only on a terminal; these make it draw into the pipe
        environ.update(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1")
    environ.update(env)
    done = subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=environ, timeout=180, check=False, cwd=str(CLI.parent)
    )
    done.stdout = ANSI.sub("", done.stdout)
    return done


def csv_of(items: list[dict[str, Any]], amount_in_reais: bool = True) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "user_id", "amount" if amount_in_reais else "amount_cents", "pix_key"])
    for it in items:
        cents = it["amount_cents"]
        amount = f"{cents // 100},{cents % 100:02d}" if amount_in_reais else str(cents)
        writer.writerow([it["external_id"], it["user_id"], amount, it["pix_key"]])
    return out.getvalue()


def test_submit_the_seed_batch_with_wait_shows_a_progress_bar_and_ends_with_the_counts(stack, tmp_path):
    body = seed_batch()
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(body))
    done = run(stack, "submit", str(path), "--wait", tty=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Accepted: batch {body['batch_id']}" in done.stdout
    assert "━" in done.stdout and "2/2" in done.stdout and "2 completed" in done.stdout
    report = done.stdout[done.stdout.index("Report") :]
    assert body["batch_id"] in report.replace("\n", "").replace(" ", "") and "1.550,00" in report

    again = run(stack, "submit", str(path))
    assert again.returncode == 0 and "idempotent replay" in again.stdout


def test_a_csv_export_of_the_seed_batch_settles_the_same_and_its_report_comes_back_as_csv(stack, tmp_path):
    body = seed_batch()
    path = tmp_path / "payroll.csv"
    path.write_text(csv_of(body["items"]))
    done = run(stack, "submit", str(path), "--batch-id", body["batch_id"], "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "settling: 2/2 final, 2 completed, 0 failed" in done.stdout

    out = tmp_path / "report.csv"
    assert run(stack, "report", body["batch_id"], "--csv", str(out)).returncode == 0
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(r["external_id"], r["status"], r["amount_cents"]) for r in rows] == [
        (it["external_id"], "paid", str(it["amount_cents"])) for it in body["items"]
    ]
    assert all(len(r["end_to_end_id"]) == 32 and r["paid_at"] for r in rows)

    status = run(stack, "status", body["batch_id"])
    assert status.returncode == 0 and "Completed" in status.stdout
    payout = run(stack, "payout", body["items"][0]["external_id"])
    assert payout.returncode == 0 and "History" in payout.stdout and "Processing -> Completed" in payout.stdout


def test_a_batch_with_a_rejected_payout_exits_1_and_names_the_failure(stack, tmp_path):
    items = [
        {"external_id": unique("ok"), "user_id": "u1", "amount_cents": 1000, "pix_key": "ok@example.com"},
        {"external_id": unique("closed"), "user_id": "u2", "amount_cents": 66607, "pix_key": "closed@example.com"},
    ]
    path = tmp_path / "mixed.csv"
    path.write_text(csv_of(items, amount_in_reais=False))
    done = run(stack, "submit", str(path), "--batch-id", unique("mixed"), "--wait")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 completed, 1 failed" in done.stdout
    assert items[1]["external_id"] in done.stdout and "AC07" in done.stdout


def test_a_422_is_a_table_of_index_line_field_and_message_and_nothing_is_stored(stack, tmp_path):
    batch_id = unique("invalid")
    rows = (
        f"external_id,user_id,amount,pix_key\n{unique('a')},u1,10.00,a@example.com\n{unique('b')},u2,10.00,not-a-key\n"
    )
    path = tmp_path / "bad.csv"
    path.write_text(rows)
    done = run(stack, "submit", str(path), "--batch-id", batch_id)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "422" in done.stderr
    table_row = next(line for line in done.stderr.splitlines() if "pix_key" in line)
    assert [cell.strip() for cell in table_row.split("│")[1:4]] == ["1", "3", "pix_key"]
    assert run(stack, "status", batch_id).returncode == 2


@pytest.mark.parametrize(
    ("env", "exit_code", "sentence"),
    [
        ({"PIX_API_KEY": "not-the-key"}, 3, "The API refused the key (403)"),
        ({"PIX_API_URL": "http://127.0.0.1:9/api"}, 3, "Cannot reach the API at http://127.0.0.1:9/api"),
    ],
)
def test_a_wrong_key_or_an_unreachable_api_is_a_sentence_not_a_traceback(stack, env, exit_code, sentence):
    done = run(stack, "status", "any-batch", **env)
    assert done.returncode == exit_code
    assert sentence in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_a_csv_error_names_its_line_and_column(stack, tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text('external_id,user_id,amount,pix_key\ne1,u1,10.00,a@example.com\ne2,u2,"1.234,56",b@example.com\n')
    done = run(stack, "submit", str(path), "--batch-id", unique("typo"))
    assert done.returncode == 2
    assert "line 3, column 3 (amount)" in done.stderr and "thousands separator" in " ".join(done.stderr.split())
