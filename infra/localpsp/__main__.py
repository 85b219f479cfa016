"""python -m infra.localpsp: serve the local Efí-compatible PSP until SIGINT/SIGTERM (see infra/README.md)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from .server import LocalPsp, PspConfig


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.localpsp", description=__doc__)
    parser.add_argument("--state-dir", default=os.environ.get("PSP_STATE_DIR", ".stack/psp"), type=Path)
    parser.add_argument("--url-file", default=os.environ.get("PSP_URL_FILE", ".stack/psp_url"), type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=_env_int("PSP_PORT", 0), help="0: any free port")
    parser.add_argument("--token-expires-in", type=int, default=_env_int("PSP_TOKEN_EXPIRES_IN", 3600))
    parser.add_argument("--latency-ms", type=int, default=_env_int("PSP_LATENCY_MS", 0))
    parser.add_argument("--confirm-delay-ms", type=int, default=_env_int("PSP_CONFIRM_DELAY_MS", 200))
    parser.add_argument("--webhook-url", default=os.environ.get("PSP_WEBHOOK_URL", ""))
    parser.add_argument(
        "--webhook-mode", choices=("normal", "lost", "duplicate"), default=os.environ.get("PSP_WEBHOOK_MODE", "normal")
    )
    parser.add_argument("--webhook-jitter-ms", type=int, default=_env_int("PSP_WEBHOOK_JITTER_MS", 0))
    parser.add_argument("--webhook-retries", type=int, default=_env_int("PSP_WEBHOOK_RETRIES", 3))
    parser.add_argument("--webhook-retry-ms", type=int, default=_env_int("PSP_WEBHOOK_RETRY_MS", 1000))
    parser.add_argument("--webhook-batch-ms", type=int, default=_env_int("PSP_WEBHOOK_BATCH_MS", 0))
    parser.add_argument("--hang-ms", type=int, default=_env_int("PSP_HANG_MS", 15_000))
    parser.add_argument("--retry-after-seconds", type=int, default=_env_int("PSP_RETRY_AFTER_SECONDS", 1))
    parser.add_argument("--faults", default=os.environ.get("PSP_FAULTS", ""), help='"none", or amount:action[:arg],...')
    args = parser.parse_args(argv)
    config = PspConfig(
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        token_expires_in=args.token_expires_in,
        latency_ms=args.latency_ms,
        confirm_delay_ms=args.confirm_delay_ms,
        webhook_url=args.webhook_url,
        webhook_mode=args.webhook_mode,
        webhook_jitter_ms=args.webhook_jitter_ms,
        webhook_retries=args.webhook_retries,
        webhook_retry_ms=args.webhook_retry_ms,
        webhook_batch_ms=args.webhook_batch_ms,
        hang_ms=args.hang_ms,
        retry_after_seconds=args.retry_after_seconds,
        faults=args.faults,
        url_file=args.url_file,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with LocalPsp(config) as psp:
        print(psp.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
