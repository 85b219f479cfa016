"""`reconcile --since --until` as a table: exit 0 when all agrees, 1 when anything is off, 3 if it cannot run."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from typing import Any, TextIO, cast

from . import wiring
from .observability import logger
from .services.reconcile import Reconciliation, reconcile

# 2 is argparse's own for usage errors; 3 is not 1, which an uncaught exception would also give.
CLEAN, FINDINGS, USAGE, FAILED = 0, 1, 2, 3
_HEADERS = ("kind", "payout_id", "send_id", "here", "there")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="compare the provider's sends in a window with our payouts (PIX_PROVIDER=efi); exit 1 if anything is off",
    )
    parser.add_argument("--since", required=True, type=rfc3339, help="window start, RFC 3339: 2026-12-01T00:00:00Z")
    parser.add_argument("--until", required=True, type=rfc3339, help="window end, RFC 3339")


def window_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the window, checked before anything is connected to."""
    return "reconcile: --since must be before --until" if args.until <= args.since else None


def run(args: argparse.Namespace) -> int:
    """Reconcile a window cli.main has already checked (window_error)."""
    # An operator's terminal: the table alone on stdout, the structured log lines on stderr.
    handler = cast(logging.StreamHandler[TextIO], logger.registered_handler)
    stream = handler.setStream(sys.stderr)
    try:
        result = reconcile(wiring.provider_sends(), wiring.reconcile_queries(), args.since, args.until)
    except Exception as exc:  # noqa: BLE001 - whatever stops it, exit 3: never read as "findings" (1)
        logger.exception("reconciliation could not run", extra={"error": type(exc).__name__})
        return FAILED
    finally:
        if stream is not None:
            handler.setStream(stream)
    sys.stdout.write(render(result))
    return FINDINGS if result.findings else CLEAN


def rfc3339(text: str) -> datetime:
    try:
        moment: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time with an offset: {text!r}")
    return moment


def render(result: Reconciliation) -> str:
    """The findings as a plain aligned table under a one-line summary."""
    head = (
        f"reconciled {result.since.isoformat()} .. {result.until.isoformat()}:"
        f" {result.sends} provider sends, {result.payouts} payouts, {len(result.findings)} findings\n"
    )
    if not result.findings:
        return head
    rows = [tuple(_printable(f.fields()[name]) for name in _HEADERS) for f in result.findings]
    widths = [max(len(row[i]) for row in (_HEADERS, *rows)) for i in range(len(_HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    rule = "  ".join("-" * width for width in widths)
    header = "  ".join(name.ljust(width) for name, width in zip(_HEADERS, widths, strict=True)).rstrip()
    return head + "\n".join([header, rule, *lines]) + "\n"


def _printable(value: str | None) -> str:
    # The provider's text reaches a terminal: no control characters from it.
    return "-" if value is None else "".join(ch if ch.isprintable() else "?" for ch in value)
