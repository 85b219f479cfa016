"""`pix-payouts`: the commands, their arguments, and the exit status each outcome gives."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..domain.batch_request import MAX_ID_LENGTH, MAX_ITEMS_PER_BATCH, is_identifier
from ..domain.uuids import is_any_case_uuid
from ..domain.webhooks import EVENT_TYPES as WEBHOOK_EVENTS
from .api import ApiConfig, ApiRefused, ClientError, PayoutsApi
from .csv_input import CsvError, read_payouts_csv
from .output import (
    counts_table,
    details_table,
    failed_table,
    history_table,
    payout_table,
    problems_table,
    summary_table,
    webhooks_table,
)

EXIT_OK, EXIT_FAILED_PAYOUTS, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_STOPPED_WAITING = 0, 1, 2, 3, 4
EPILOG = """exit status: 0 done (with --wait: every payout paid); 1 some payouts failed; 2 the file or the request
was refused; 3 the API could not be reached, refused the key, or failed; 4 stopped waiting before the end.
The API is PIX_API_URL with the key PIX_API_KEY, or else the embedded stack's .stack/api_url and .stack/api_key."""
# Operator commands act on the database and queues directly, not through the API: handed to chalicelib.cli.
OPERATOR_COMMANDS = {
    "migrate": "operator: apply pending database migrations",
    "sweep": "operator: re-wake unfinished fan-outs, re-send stale or lost payouts",
    "poll": "operator: ask the provider about payouts awaiting its confirmation",
    "dlq-redrive": "operator: reopen RETRIES_EXHAUSTED payouts, move dead letters back",
    "reconcile": "operator: compare the provider's sends in a window with our payouts",
}
POLL_SECONDS = 1.0
# The report and the failures table show at most this many lines; the CSV has them all.
SHOWN_LINES = 50


@dataclass(frozen=True)
class Chunk:
    """One batch to submit: a file's items from first_index on, and (for CSV) their file lines."""

    batch_id: str
    items: list[dict[str, Any]]
    first_index: int
    lines: list[int] | None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pix-payouts", description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    submit = sub.add_parser("submit", help="submit a batch from a JSON or CSV file", epilog=EPILOG)
    submit.add_argument("file", metavar="FILE", help="JSON as POST /batches takes it, or CSV with a header")
    submit.add_argument("--batch-id", help="the batch's id (default: the JSON's batch_id, or the CSV file's name)")
    submit.add_argument("--wait", action="store_true", help="show progress until every payout is final, then report")
    submit.add_argument("--timeout", type=float, default=900, help="stop waiting after this many seconds (900)")
    status = sub.add_parser("status", help="a batch's status, counts and amounts")
    status.add_argument("batch_id", metavar="BATCH")
    report = sub.add_parser("report", help="a batch's report; --csv writes every line to a file")
    report.add_argument("batch_id", metavar="BATCH")
    report.add_argument("--csv", metavar="FILE", help="write the report as CSV to FILE ('-' for standard output)")
    payout = sub.add_parser("payout", help="one payout and its history, by payout id or by external_id")
    payout.add_argument("payout_id", metavar="ID")
    hooks = sub.add_parser("webhooks", help="the webhook endpoints events are sent to: list, add, remove")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    hooks_sub.add_parser("list", help="every endpoint, its events and whether it is failing")
    add = hooks_sub.add_parser("add", help="register an https endpoint; prints its signing secret, once")
    add.add_argument("url", metavar="URL")
    add.add_argument(
        "--events",
        default=",".join(WEBHOOK_EVENTS),
        help=f"comma-separated event types (default: all of {', '.join(WEBHOOK_EVENTS)})",
    )
    add.add_argument("--description", default="", help="a note for people")
    remove = hooks_sub.add_parser("remove", help="remove an endpoint and its delivery history")
    remove.add_argument("endpoint_id", metavar="ID")
    for name, help_ in OPERATOR_COMMANDS.items():
        sub.add_parser(name, help=f"{help_} (pix-payouts {name} --help)", add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in OPERATOR_COMMANDS:
        from .. import cli

        return cli.main(words, prog="pix-payouts")
    args = parser().parse_args(words)
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        api = PayoutsApi(ApiConfig.from_environment())
        handlers = {"submit": submit, "status": status, "report": report, "payout": payout, "webhooks": webhooks}
        handler = handlers[args.command]
        return handler(api, args, out)
    except CsvError as exc:
        where = exc.where()
        err.print(f"[red]{args.file}{', ' + where if where else ''}:[/] {exc}")
        return EXIT_REFUSED
    except ApiRefused as exc:
        err.print(f"[red]The API refused the request:[/] {exc}")
        return EXIT_UNREACHABLE if exc.status >= 500 else EXIT_REFUSED
    except ClientError as exc:
        err.print(f"[red]{exc}[/]")
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("Interrupted. A batch already sent goes on; follow it with `pix-payouts status BATCH`.")
        return EXIT_STOPPED_WAITING


# -- submit --------------------------------------------------------------------


def submit(api: PayoutsApi, args: argparse.Namespace, out: Console) -> int:
    chunks = load_chunks(Path(args.file), args.batch_id)
    for chunk in chunks:
        try:
            code, body = api.submit({"batch_id": chunk.batch_id, "items": chunk.items})
        except ApiRefused as exc:
            _explain_refusal(exc, chunk, chunks)
            return EXIT_UNREACHABLE if exc.status >= 500 else EXIT_REFUSED
        verb = "Accepted" if code == 201 else "Already accepted (an idempotent replay; nothing new is paid)"
        dups = len(body.get("duplicates", []))
        note = f", {dups} duplicate(s) of payouts other batches made" if dups else ""
        out.print(f"{verb}: batch [bold]{chunk.batch_id}[/], {body['received_items']} item(s){note}.")
    if not args.wait:
        return EXIT_OK
    ids = [c.batch_id for c in chunks]
    if not wait_until_final(api, ids, out, args.timeout):
        out.print(f"Stopped waiting after {args.timeout:g} s; the batch goes on: `pix-payouts status {ids[0]}`.")
        return EXIT_STOPPED_WAITING
    return show_outcome(api, ids, out)


def load_chunks(path: Path, batch_id: str | None) -> list[Chunk]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClientError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    lines: list[int] | None = None
    if _looks_like_json(path, data):
        items, found_id = _json_items(path, data)
        batch_id = batch_id or found_id
    else:
        parsed = read_payouts_csv(data)
        items, lines = parsed.items, parsed.lines
        batch_id = batch_id or (path.stem if is_identifier(path.stem) else None)
    if not batch_id:
        raise ClientError(f"{path} names no batch_id; give one with --batch-id.")
    if not is_identifier(batch_id):
        raise ClientError(
            f"{batch_id!r} is not a batch id: 1 to {MAX_ID_LENGTH} letters, digits, . _ : - starting with a letter"
            " or digit."
        )
    if len(items) <= MAX_ITEMS_PER_BATCH:
        return [Chunk(batch_id, items, 0, lines)]
    parts = range(0, len(items), MAX_ITEMS_PER_BATCH)
    longest = f"{batch_id}-{len(parts)}"
    if len(longest) > MAX_ID_LENGTH:
        raise ClientError(f"The split batches' ids ({longest}) would be over {MAX_ID_LENGTH} characters.")
    return [
        Chunk(
            f"{batch_id}-{n}",
            items[start : start + MAX_ITEMS_PER_BATCH],
            start,
            None if lines is None else lines[start : start + MAX_ITEMS_PER_BATCH],
        )
        for n, start in enumerate(parts, 1)
    ]


def _looks_like_json(path: Path, data: bytes) -> bool:
    if path.suffix.lower() == ".json":
        return True
    return path.suffix.lower() != ".csv" and data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def _json_items(path: Path, data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    try:
        body = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ClientError(f"{path} is not UTF-8.") from exc
    except json.JSONDecodeError as exc:
        raise ClientError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        found = body.get("batch_id")
        return body["items"], found if isinstance(found, str) else None
    raise ClientError(f"{path} is neither a batch ({{'batch_id', 'items': [...]}}) nor a list of items.")


def _explain_refusal(exc: ApiRefused, chunk: Chunk, chunks: list[Chunk]) -> None:
    err = Console(stderr=True, highlight=False)
    before = chunks[: chunks.index(chunk)]
    if before:
        names = ", ".join(c.batch_id for c in before)
        err.print(f"Batches {names} were accepted; submitting the same file again replays them (nothing twice).")
    error = (exc.body or {}).get("error", {}) if isinstance(exc.body, dict) else {}
    if exc.status == 422 and error.get("problems"):
        err.print(problems_table(error["problems"], chunk.first_index, chunk.lines))
        err.print(f"[red]{error.get('message', '')}[/]")
        return
    err.print(f"[red]Batch {chunk.batch_id} was refused:[/] {exc}")
    for detail in error.get("details") or []:
        err.print(f"  {json.dumps(detail, ensure_ascii=False)}")


def wait_until_final(api: PayoutsApi, batch_ids: list[str], out: Console, timeout: float) -> bool:
    """Poll the batches' summaries until nothing is pending or processing; False if timeout came first."""
    deadline = time.monotonic() + timeout
    summaries = {b: api.batch(b, limit=1)["summary"] for b in batch_ids}
    total = sum(s["total"] for s in summaries.values())
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[paid]} completed[/] [red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
    )
    last: tuple[int, int, int] | None = None
    with Progress(*columns, console=out, disable=not out.is_terminal) as progress:
        task = progress.add_task("settling", total=total, paid=0, failed=0)
        while True:
            completed = sum(s["completed"] for s in summaries.values())
            failed = sum(s["failed"] for s in summaries.values())
            final = completed + failed + sum(s["duplicates"] for s in summaries.values())
            progress.update(task, completed=final, paid=completed, failed=failed)
            if not out.is_terminal and (completed, failed, final) != last:
                out.print(f"settling: {final}/{total} final, {completed} completed, {failed} failed")
            last = (completed, failed, final)
            if all(s["pending"] == 0 and s["processing"] == 0 for s in summaries.values()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)
            summaries = {b: api.batch(b, limit=1)["summary"] for b in batch_ids}


def show_outcome(api: PayoutsApi, batch_ids: list[str], out: Console) -> int:
    reports = [api.report(b, limit=1) for b in batch_ids]
    out.print(counts_table(reports))
    failed = sum(r["failed"] for r in reports)
    if failed:
        shown = [p for b in batch_ids for p in api.batch(b, status="Failed", limit=SHOWN_LINES)["payouts"]]
        out.print(failed_table(shown[:SHOWN_LINES], f"Failed payouts ({failed})"))
        return EXIT_FAILED_PAYOUTS
    return EXIT_OK


# -- status, report, payout -------------------------------------------------------


def status(api: PayoutsApi, args: argparse.Namespace, out: Console) -> int:
    out.print(summary_table(api.batch(args.batch_id, limit=1)))
    return EXIT_OK


def report(api: PayoutsApi, args: argparse.Namespace, out: Console) -> int:
    if args.csv:
        text = api.report_csv(args.batch_id)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            Path(args.csv).write_text(text, encoding="utf-8", newline="")
            out.print(f"Wrote the report of {args.batch_id} ({text.count(chr(10)) - 1} items) to {args.csv}.")
        return EXIT_OK
    first = api.report(args.batch_id)
    out.print(counts_table([first]))
    details, cursor = list(first["details"]), first["next_cursor"]
    while cursor and len(details) < SHOWN_LINES:
        page = api.report(args.batch_id, cursor=cursor)
        details += page["details"]
        cursor = page["next_cursor"]
    title = "Items" if first["total"] <= SHOWN_LINES else f"The first {SHOWN_LINES} items (all of them: --csv FILE)"
    out.print(details_table(details[:SHOWN_LINES], title))
    return EXIT_OK


def payout(api: PayoutsApi, args: argparse.Namespace, out: Console) -> int:
    payout_id = args.payout_id
    if not is_any_case_uuid(payout_id):
        if not is_identifier(payout_id):
            raise ClientError(f"{payout_id!r} is neither a payout id (a UUID) nor an external_id.")
        found = api.find_payouts(external_id=payout_id)["payouts"]
        if not found:
            raise ClientError(f"No payout has the external_id {payout_id}.")
        payout_id = found[0]["payout_id"]
    body = api.payout(payout_id)
    out.print(payout_table(body))
    out.print(history_table(body["history"]))
    return EXIT_OK


# -- webhooks ----------------------------------------------------------------------


def webhooks(api: PayoutsApi, args: argparse.Namespace, out: Console) -> int:
    if args.webhooks_command == "list":
        out.print(webhooks_table(api.webhook_endpoints()))
    elif args.webhooks_command == "add":
        events = [e.strip() for e in args.events.split(",") if e.strip()]
        created = api.add_webhook_endpoint(args.url, events, args.description)
        out.print(webhooks_table([created]))
        out.print("Signing secret (shown only now; verify deliveries with it, e.g. the standardwebhooks library):")
        out.print(created["secret"], markup=False)
    else:
        api.remove_webhook_endpoint(args.endpoint_id)
        out.print(f"Removed webhook endpoint {args.endpoint_id}.")
    return EXIT_OK


def entry_point() -> None:
    sys.exit(main())
