"""The stack's progress lines on stdout, its fatal errors on stderr, and its small state files."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NoReturn

_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[stack {time.monotonic() - _T0:6.1f}s] {msg}", flush=True)


def die(msg: str, code: int = 1) -> NoReturn:
    print(f"[stack] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(path)
