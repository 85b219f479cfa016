"""The README's commands, run as it shows them (each test first checks the README still shows its command)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from chalicelib.domain.send_id import send_id_for
from tests.e2e.conftest import DEFAULT, PORT, ROOT, SANDBOX, STACK, Stack, local_psp_client

pytestmark = pytest.mark.e2e
README = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "infra" / "README.md").read_text(encoding="utf-8")
# A spreadsheet as the README's quick start sends it; the same every run, so a second run is a replay.
PAYROLL = (
    "external_id,user_id,amount,pix_key\n"
    'readme-payroll-1,u1,"350,00",u1@email.com\n'
    "readme-payroll-2,u2,12.5,+5511912345678\n"
)


def shown(command: str) -> str:
    assert command in README, f"the README no longer shows {command!r}"
    return command


def sh(command: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # A user's shell: none of the test run's own pointers at an API or a database.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIX_API_", "MAKE", "MFLAGS", "TTY_"))}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def block_with(line: str) -> str:
    """The README's fenced bash block that holds `line`, without its comments."""
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        if line in block:
            return "\n".join(re.sub(r"\s+#.*$", "", row) for row in block.splitlines())
    raise AssertionError(f"no bash block in the README shows {line!r}")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory that looks like the project's root to the commands (its .venv, seeds and .stack)."""
    for name in (".venv", "seeds", ".stack"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "payroll.csv").write_text(PAYROLL, encoding="utf-8")
    return tmp_path


def test_the_quick_start_s_pix_payouts_commands(stack: Stack, workdir: Path) -> None:
    quick = block_with(".venv/bin/pix-payouts submit seeds/payouts_batch_example.json --wait")
    commands = [line for line in quick.splitlines() if line.startswith(".venv/bin/pix-payouts")]
    assert len(commands) == 3
    for command in commands:
        done = sh(command, cwd=workdir)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    report = (workdir / "report.csv").read_text(encoding="utf-8")
    assert report.startswith("external_id,status,amount_cents") and "\nu1-001,paid,35000," in report
    paid_through_the_local_psp(stack, ["2025-10-05-A", "2025-10-A"])


def paid_through_the_local_psp(stack: Stack, batch_ids: list[str]) -> None:
    """The quick start's payouts went through the stack's default provider: the Efí adapter and the local PSP,
    which knows each send under the payout's idEnvio, with the end-to-end id it assigned (the payout shows it
    as provider.end_to_end_id, next to the one the service made for it)."""
    psp = local_psp_client()
    checked = 0
    try:
        for batch_id in batch_ids:
            for listed in stack.get(f"/batches/{batch_id}").json()["payouts"]:
                payout = stack.get(f"/payouts/{listed['payout_id']}").json()
                if payout["provider"]["name"] != "efi":
                    # A database kept from before efi was the stack's default: the quick start, a replay
                    # here, was paid then by the sandbox. Every payout this session made is checked.
                    assert datetime.fromisoformat(payout["created_at"]).timestamp() < stack.started_at, payout
                    continue
                send_id = payout["provider"]["send_id"]
                assert payout["status"] == "Completed" and send_id == send_id_for(payout["payout_id"])
                assert payout["provider"]["status"] == "REALIZADO"
                sent = psp.ask(send_id)
                assert sent is not None and sent.end_to_end_id == payout["provider"]["end_to_end_id"], (payout, sent)
                assert (sent.provider_status, sent.amount_cents) == ("REALIZADO", payout["amount_cents"])
                checked += 1
    finally:
        psp.close()
    print(f"\nquick start: {checked} payouts checked against the local PSP")


def test_the_quick_start_s_curl_commands(stack: Stack) -> None:
    done = sh(block_with("API=$(cat .stack/api_url); KEY=$(cat .stack/api_key)"))
    assert done.returncode == 0, done.stderr[-2000:]
    answers, rest = [], done.stdout.strip()
    while rest:  # curl prints the three bodies back to back
        answer, end = json.JSONDecoder().raw_decode(rest)
        answers.append(answer)
        rest = rest[end:].strip()
    assert [a["batch_id"] for a in answers] == ["2025-10-05-A"] * 3
    assert "payout_ids" in answers[0] and "summary" in answers[1] and "processed" in answers[2]


def test_make_status_the_stack_script_s_status_and_env(stack: Stack) -> None:
    for command in (shown("make status"), shown(".venv/bin/python infra/stack.py status")):
        done = sh(command)
        assert done.returncode == 0 and "GET /health -> 200" in done.stdout, (command, done.stdout, done.stderr)
        # the provider in use: the default, the Efí adapter through the local PSP
        assert "\nprovider   : efi (the Efí adapter through the local PSP)\n" in done.stdout, done.stdout
    env = shown('eval "$(.venv/bin/python infra/stack.py env)"')
    done = sh(
        f'{env}; curl -sf "$API_URL/health"; curl -sf -o /dev/null "$API_URL/batches?limit=1" -H "x-api-key: $API_KEY"'
    )
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "ok", done.stderr


def test_the_readme_switches_providers_as_the_tests_do(stack: Stack) -> None:
    """The e2e session switches the shared stack with these very commands (tests/e2e/conftest.py)."""
    assert shown(SANDBOX.command) == "make down && PIX_STACK_PROVIDER=sandbox make up"
    assert shown(DEFAULT.command) == "make down && make up"
    assert (STACK / "pix_provider").read_text().strip() == "efi"


def test_pix_payouts_help_lists_the_operator_commands(stack: Stack) -> None:
    done = sh(shown(".venv/bin/pix-payouts --help"))
    assert done.returncode == 0
    assert all(name in done.stdout for name in ("migrate", "sweep", "dlq-redrive", "reconcile"))


def test_make_sweep_runs_the_sweeper_once_on_the_embedded_stack(stack: Stack) -> None:
    done = sh(shown("make sweep"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert isinstance(json.loads(done.stdout.strip().splitlines()[-1]), dict)


@pytest.mark.stack_faults  # moves every dead letter of the shared stack back to its queue: after the other tests
def test_make_dlq_redrive_with_a_batch_id(stack: Stack) -> None:
    shown("make dlq-redrive [BATCH_ID=...]")
    done = sh(f"make dlq-redrive BATCH_ID=readme-{uuid.uuid4().hex[:8]}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["reopened"] == 0  # a batch that does not exist has nothing to reopen


def test_the_stack_script_s_up_is_idempotent(stack: Stack) -> None:
    done = sh(shown(".venv/bin/python infra/stack.py up"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == stack.api_url


def test_the_function_logs_are_in_the_emulator_s_cloudwatch_logs(stack: Stack) -> None:
    import boto3

    shown("filter_log_events(logGroupName=...)")
    logs = boto3.client(
        "logs",
        endpoint_url=f"http://127.0.0.1:{PORT}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    assert stack.get("/health").status_code == 200
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]]
    api = [g for g in groups if "APIHandler" in g or "api_handler" in g.lower()]
    assert api, groups
    assert logs.filter_log_events(logGroupName=api[0], limit=5)["events"]


def test_the_local_psp_command_starts_writes_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    shown(".venv/bin/python -m infra.localpsp [--state-dir .stack/psp] [--url-file .stack/psp_url] [--port 0]")
    url_file = tmp_path / "psp_url"
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "infra.localpsp",
            "--state-dir",
            str(tmp_path / "psp"),
            "--url-file",
            str(url_file),
            "--port",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert url_file.read_text().strip().startswith("https://127.0.0.1:")
        assert (tmp_path / "psp" / "credentials.json").is_file() and (tmp_path / "psp" / "ca.pem").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) is not None
