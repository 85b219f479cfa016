"""The sandbox's crash rule on the stack: the worker process ends, with one readable log line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chalicelib.adapters import sandbox_pix

ROOT = Path(__file__).parents[2]


def test_a_crash_ends_the_process_with_one_log_line_and_no_traceback() -> None:
    code = "from chalicelib.adapters import sandbox_pix; sandbox_pix.end_the_process('worker died after the transfer')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == sandbox_pix.CRASH_EXIT_CODE
    [line] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert line["level"] == "ERROR" and line["reason"] == "worker died after the transfer"
    assert "Traceback" not in done.stdout + done.stderr


def test_the_shipped_crash_ends_the_process_and_these_tests_swap_in_one_that_raises() -> None:
    assert sandbox_pix.crash is not sandbox_pix.end_the_process  # tests/conftest.py: crashes_raise
