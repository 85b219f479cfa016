"""The README's settings reach the embedded stack's functions from the environment of `make up`, and an unchanged
environment leaves the stack alone."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from tests.e2e.conftest import ROOT, SANDBOX, Stack

pytestmark = pytest.mark.e2e


def make_up(**settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["make", "--no-print-directory", "up"],
        cwd=ROOT,
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=900,
    )


def settle(stack: Stack, amount_cents: int) -> dict[str, object]:
    batch_id = f"settings-{uuid.uuid4().hex[:10]}"
    item = {"external_id": f"{batch_id}-1", "user_id": "u1", "amount_cents": amount_cents, "pix_key": "a@b.com"}
    assert stack.post("/batches", json.dumps({"batch_id": batch_id, "items": [item]})).status_code == 201
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page = stack.get(f"/batches/{batch_id}").json()
        if page["status"] in ("Completed", "Failed"):
            break
        time.sleep(1)
    payout: dict[str, object] = page["payouts"][0]
    return payout


def test_up_with_the_same_settings_changes_nothing(stack: Stack) -> None:
    again = make_up()
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cloudformation: no changes" in again.stdout and "cloudformation: UPDATE_COMPLETE" not in again.stdout


@pytest.mark.stack_faults  # changes the shared stack's settings (and puts them back): after every other test
@pytest.mark.stack_mode(SANDBOX)  # a setting of the sandbox's: its fault table
def test_a_setting_in_the_environment_of_make_up_reaches_the_functions(stack: Stack) -> None:
    assert settle(stack, 66601)["status"] == "Failed"  # the sandbox's AC03 by default
    try:
        changed = make_up(SANDBOX_PIX_RULES="none")
        assert changed.returncode == 0, changed.stderr[-2000:]
        assert "cloudformation: UPDATE_COMPLETE" in changed.stdout
        assert settle(stack, 66601)["status"] == "Completed"  # no faults: the same amount is paid
    finally:
        restored = make_up()
        assert restored.returncode == 0, restored.stderr[-2000:]
    assert settle(stack, 66601)["status"] == "Failed"
