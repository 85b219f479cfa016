"""The service's logger belongs to Powertools: importing the Chalice app never silences it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The logger is built on one stdout and the app imported under another, as under a test runner
# that captures output: the order in which a settle test once lost its INFO lines.
PROBE = """
import io, logging, sys
import chalicelib.observability
sys.stdout = io.StringIO()
import app
print(logging.getLogger("pix-payouts").getEffectiveLevel(), file=sys.stderr)
"""


def test_importing_the_app_under_another_stdout_keeps_the_service_logger_at_info() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert int(done.stderr.strip().splitlines()[-1]) <= 20  # logging.INFO
