"""The local Efí-compatible PSP as part of the embedded stack: started before the emulator, stopped with it.

infra/stacklib/embedded.py only calls the hooks here (up, down, lambda_env, status_lines). The PSP listens on
127.0.0.1 at PIX_STACK_PORT + 1000 (PIX_STACK_PSP_PORT overrides), so its URL is known before the
emulator starts, writes its base URL to .stack/psp_url and the client certificate, key, CA and
credentials.json to .stack/psp/, and calls the deployed API's webhook route back through API Gateway.

PIX_STACK_PROVIDER picks the functions' provider at every `up`: "efi" (the default: the Efí adapter against
this PSP) or "sandbox" (the in-database provider, whose faults some end-to-end tests and the benchmark's settle
figures are written for). `up` records the choice in .stack/pix_provider (`status`, `env` and the operator
commands read it) and passes it to the functions as template parameters (infra/stacklib/parameters.py), with
the PSP's URL, files and webhook secret.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from infra.stacklib.layout import HOST, PORT, ROOT, STACK_DIR

PSP_DIR = STACK_DIR / "psp"
URL_FILE = STACK_DIR / "psp_url"
PID_FILE = STACK_DIR / "psp.pid"
LOG_FILE = STACK_DIR / "psp.log"
SECRET_FILE = PSP_DIR / "webhook_secret"
PROVIDER_FILE = STACK_DIR / "pix_provider"  # what the running functions use (`up` writes it)
PROVIDERS = ("efi", "sandbox")
DEFAULT_PROVIDER = "efi"
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


def requested(environ: Mapping[str, str] | None = None) -> str:
    """What `up` deploys: PIX_STACK_PROVIDER when set, else the default (efi), whatever was recorded before."""
    env = os.environ if environ is None else environ
    chosen = env.get("PIX_STACK_PROVIDER", "").strip() or DEFAULT_PROVIDER
    if chosen not in PROVIDERS:
        raise SystemExit(f"PIX_STACK_PROVIDER is 'efi' (the default) or 'sandbox', not {chosen!r}")
    return chosen


def recorded() -> str | None:
    """What the last `up` deployed (.stack/pix_provider), if any."""
    value = PROVIDER_FILE.read_text().strip() if PROVIDER_FILE.exists() else ""
    return value if value in PROVIDERS else None


def provider() -> str:
    """The functions' provider: what `up` recorded, else what `up` would deploy now."""
    return recorded() or requested()


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
    env = {
        "EFI_WEBHOOK_SECRET": webhook_secret(),
        "POLL_AFTER_SECONDS": os.environ.get("POLL_AFTER_SECONDS", "30"),
        # Named either way, so a PIX_PROVIDER left in the caller's environment cannot override the stack's choice.
        "PIX_PROVIDER": provider(),
    }
    if env["PIX_PROVIDER"] == "efi":
        env.update(
            {
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


def choice_line(chosen: str, before: str | None, explicit: bool) -> str:
    """`up`'s line about the provider: which one, whether by PIX_STACK_PROVIDER or by default, and a change."""
    how = "PIX_STACK_PROVIDER" if explicit else "the default; PIX_STACK_PROVIDER=sandbox for the in-database sandbox"
    change = f", was {before}" if before and before != chosen else ""
    return f"provider: {chosen} ({how}{change})"


def record_choice(log: Callable[[str], None] = print) -> str:
    """The provider this `up` deploys, PIX_STACK_PROVIDER or else efi, written to .stack/pix_provider.

    Written at every `up`, so an earlier choice (or a stack brought up under an earlier default) never
    outlives an `up` that asks for another provider, or for none."""
    chosen = requested()  # refuses an unknown name before anything starts
    PROVIDER_FILE.parent.mkdir(parents=True, exist_ok=True)
    log(choice_line(chosen, recorded(), bool(os.environ.get("PIX_STACK_PROVIDER", "").strip())))
    PROVIDER_FILE.write_text(chosen + "\n")
    return chosen


def up(api_url: str, log: Callable[[str], None] = print) -> str:
    """Record the provider for the functions deployed next (record_choice), and start the PSP unless it runs."""
    record_choice(log)
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


def status_lines() -> list[str]:
    """`status`'s lines: the provider the functions use (and what the next `up` would change), the PSP."""
    pid = _pid()
    state = f"running (pid {pid}) on {base_url()}" if pid else "not running"
    explicit = bool(os.environ.get("PIX_STACK_PROVIDER", "").strip())
    return [provider_line(recorded(), requested(), explicit), f"psp        : {state}"]


def provider_line(deployed: str | None, next_up: str, explicit: bool) -> str:
    """Which provider the deployed functions use, and the one the next `up` would deploy when it differs."""
    how = "PIX_STACK_PROVIDER" if explicit else "the default"
    if deployed is None:
        return f"provider   : none deployed yet; `up` deploys {next_up} ({how})"
    what = {"efi": "the Efí adapter through the local PSP", "sandbox": "the in-database sandbox"}[deployed]
    line = f"provider   : {deployed} ({what})"
    if next_up != deployed:
        line += f"; the next `up` switches to {next_up} ({how})"
    return line
