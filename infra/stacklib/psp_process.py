"""The local Efí-compatible PSP as part of the embedded stack: started before the emulator, stopped with it.

infra/stacklib/embedded.py only calls the hooks here (up, down, lambda_env, status_line). The PSP listens on
127.0.0.1 at PIX_STACK_PORT + 1000 (PIX_STACK_PSP_PORT overrides), so its URL is known before the
emulator starts, writes its base URL to .stack/psp_url and the client certificate, key, CA and
credentials.json to .stack/psp/, and calls the deployed API's webhook route back through API Gateway.

PIX_STACK_PROVIDER picks the functions' provider: "sandbox" (the default, the in-database provider the
end-to-end tests' faults are written for) or "efi" (the Efí adapter against this PSP). `up` passes it to
the functions as template parameters (infra/stacklib/parameters.py), with the PSP's URL, files and webhook secret.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infra.stacklib.layout import HOST, PORT, ROOT, STACK_DIR

PSP_DIR = STACK_DIR / "psp"
URL_FILE = STACK_DIR / "psp_url"
PID_FILE = STACK_DIR / "psp.pid"
LOG_FILE = STACK_DIR / "psp.log"
SECRET_FILE = PSP_DIR / "webhook_secret"
PROVIDER_FILE = STACK_DIR / "pix_provider"  # what the running functions use (`up` writes it)
PAYER_KEY = "payer@pix-payouts.example"
WEBHOOK_PATH = "/providers/efi/webhook"
# The PSP's own settings the caller may set for the stack's PSP (infra/README.md lists them).
_PASSED = (
    "PSP_FAULTS",
    "PSP_LATENCY_MS",
    "PSP_CONFIRM_DELAY_MS",
    "PSP_WEBHOOK_MODE",
    "PSP_WEBHOOK_JITTER_MS",
    "PSP_WEBHOOK_RETRIES",
    "PSP_WEBHOOK_RETRY_MS",
    "PSP_WEBHOOK_BATCH_MS",
    "PSP_HANG_MS",
    "PSP_RETRY_AFTER_SECONDS",
    "PSP_TOKEN_EXPIRES_IN",
)


def port() -> int:
    explicit = os.environ.get("PIX_STACK_PSP_PORT")
    return int(explicit) if explicit else PORT + 1000


def base_url() -> str:
    return f"https://{HOST}:{port()}"


def provider() -> str:
    """The functions' provider: what `up` recorded, else PIX_STACK_PROVIDER (default sandbox)."""
    recorded = PROVIDER_FILE.read_text().strip() if PROVIDER_FILE.exists() else ""
    chosen = recorded or os.environ.get("PIX_STACK_PROVIDER", "sandbox")
    if chosen not in ("sandbox", "efi"):
        raise SystemExit(f"PIX_STACK_PROVIDER is 'sandbox' or 'efi', not {chosen!r}")
    return chosen


def webhook_secret() -> str:
    """The secret of the webhook URL registered with the PSP: made once, kept in .stack/psp (mode 600)."""
    if SECRET_FILE.exists():
        return SECRET_FILE.read_text().strip()
    PSP_DIR.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def webhook_url(api_url: str) -> str:
    """Efí's skip-mTLS form: the secret in the URL, and ignorar= so the URL is called as registered."""
    return f"{api_url.rstrip('/')}{WEBHOOK_PATH}?hmac={webhook_secret()}&ignorar="


def lambda_env() -> dict[str, str]:
    """What the functions need to reach this PSP (they read the files when they first call it)."""
    env = {"EFI_WEBHOOK_SECRET": webhook_secret(), "POLL_AFTER_SECONDS": os.environ.get("POLL_AFTER_SECONDS", "30")}
    if provider() == "efi":
        env.update(
            {
                "PIX_PROVIDER": "efi",
                "EFI_BASE_URL": base_url(),
                "EFI_CERT_FILE": str(PSP_DIR / "client-cert.pem"),
                "EFI_KEY_FILE": str(PSP_DIR / "client-key.pem"),
                "EFI_CA_FILE": str(PSP_DIR / "ca.pem"),
                "EFI_CREDENTIALS_FILE": str(PSP_DIR / "credentials.json"),
                "EFI_PAYER_KEY": PAYER_KEY,
            }
        )
    return env


def _pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"infra.localpsp" in cmdline else None


def up(api_url: str, log: Callable[[str], None] = print) -> str:
    """Start the PSP unless it runs, and record PIX_STACK_PROVIDER for the emulator started next."""
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    PROVIDER_FILE.write_text(os.environ.get("PIX_STACK_PROVIDER", "sandbox") + "\n")
    provider()  # refuses an unknown name
    pid = _pid()
    if pid is not None:
        log(f"psp: already running (pid {pid}) on {base_url()}")
        return base_url()
    PSP_DIR.mkdir(parents=True, exist_ok=True)
    URL_FILE.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k in _PASSED or not k.startswith("PSP_")}
    # Callbacks due within 50 ms share one POST, as Efí's may: a 10,000-payout batch costs the API tens
    # of webhook calls a second, not thousands.
    env.setdefault("PSP_WEBHOOK_BATCH_MS", "50")
    command = [
        sys.executable,
        "-m",
        "infra.localpsp",
        "--state-dir",
        str(PSP_DIR),
        "--url-file",
        str(URL_FILE),
        "--host",
        HOST,
        "--port",
        str(port()),
        "--webhook-url",
        webhook_url(api_url),
    ]
    with open(LOG_FILE, "wb") as logf:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PID_FILE.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the local PSP exited with {proc.returncode}; see {LOG_FILE}")
        if URL_FILE.exists() and URL_FILE.read_text().strip():
            log(f"psp: started (pid {proc.pid}) on {base_url()}, provider {provider()}")
            return base_url()
        time.sleep(0.1)
    raise SystemExit(f"the local PSP did not start in 30 s; see {LOG_FILE}")


def down(log: Callable[[str], None] = print) -> None:
    pid = _pid()
    if pid is None:
        log("psp: not running")
    else:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if _pid() is None:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        log(f"psp: stopped (pid {pid})")
    PID_FILE.unlink(missing_ok=True)
    URL_FILE.unlink(missing_ok=True)


def status_line() -> str:
    pid = _pid()
    state = f"running (pid {pid}) on {base_url()}" if pid else "not running"
    return f"psp        : {state}, functions use {provider()}"
