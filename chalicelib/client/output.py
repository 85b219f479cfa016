"""What the CLI shows: money in reais, the report's counts, problems, a payout's history, as rich tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.table import Table


def when(iso: str) -> str:
    """An API time, to the second, in UTC: "2026-01-31 12:00:05Z"."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def brl(cents: int) -> str:
    """35000 -> "R$ 350,00", as a Brazilian reads money."""
    reais, centavos = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}R$ {reais:,}".replace(",", ".") + f",{centavos:02d}"


def counts_table(reports: Sequence[dict[str, Any]]) -> Table:
    # no vertical rules, so eight columns fit 80 characters; numbers never wrap, a long batch id folds
    table = Table(title="Report", box=box.SIMPLE_HEAVY, pad_edge=False)
    table.add_column("batch", overflow="fold", min_width=8)
    for name in ("items", "paid", "failed", "dups", "pending", "paid R$", "failed R$"):
        table.add_column(name, justify="right", no_wrap=True)
    keys = ("total", "successful", "failed", "duplicates", "pending")
    rows = [(r["batch_id"], *(r[k] for k in keys), r["amounts"]["paid"], r["amounts"]["failed"]) for r in reports]
    if len(reports) > 1:
        rows.append(("all", *(sum(row[n] for row in rows) for n in range(1, 8))))
    for n, row in enumerate(rows):
        table.add_row(
            row[0],
            *(str(v) for v in row[1:6]),
            brl(row[6]).removeprefix("R$ "),
            brl(row[7]).removeprefix("R$ "),
            style="bold" if n == len(reports) else None,
        )
    return table


def summary_table(page: dict[str, Any]) -> Table:
    table = Table(title=f"Batch {page['batch_id']}: {page['status']}")
    table.add_column("payouts")
    table.add_column("count", justify="right")
    table.add_column("amount", justify="right")
    s, a = page["summary"], page["amounts"]
    table.add_row("total", str(s["total"]), brl(a["total"]))
    table.add_row("completed", str(s["completed"]), brl(a["paid"]))
    table.add_row("failed", str(s["failed"]), brl(a["failed"]))
    table.add_row("pending or processing", str(s["pending"] + s["processing"]), brl(a["pending"]))
    table.add_row("duplicates (of other batches)", str(s["duplicates"]), "")
    return table


def failed_table(payouts: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for name in ("external_id", "user_id", "amount", "code", "message"):
        table.add_column(name, justify="right" if name == "amount" else "left")
    for p in payouts:
        failure = p.get("failure") or {}
        table.add_row(
            p["external_id"], p["user_id"], brl(p["amount_cents"]), failure.get("code"), failure.get("message")
        )
    return table


def details_table(details: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("external_id", overflow="fold")
    table.add_column("status")
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_column("end-to-end id or reason", min_width=32)
    table.add_column("paid at", no_wrap=True)
    for d in details:
        reason = d.get("reason") or {}
        if d.get("end_to_end_id"):
            proof = d["end_to_end_id"]
        elif reason:
            proof = f"{reason.get('code')}: {reason.get('message') or ''}".rstrip(": ")
        elif d.get("duplicate_of"):
            proof = f"duplicate of {d['duplicate_of']['batch_id']} ({d['duplicate_of']['status']})"
        else:
            proof = ""
        paid_at = when(d["paid_at"]) if d.get("paid_at") else ""
        table.add_row(d["external_id"], d["status"], brl(d["amount_cents"]), proof, paid_at)
    return table


def problems_table(problems: Sequence[dict[str, Any]], first_index: int, lines: Sequence[int] | None) -> Table:
    """A 422's problems: the item's index in the file (and its CSV line), the field, the message."""
    table = Table(title="The batch was refused (422): nothing was stored")
    table.add_column("index", justify="right")
    if lines is not None:
        table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("message")
    for p in problems:
        index = p.get("index")
        cells = ["-" if index is None else str(first_index + index)]
        if lines is not None:
            cells.append("-" if index is None else str(lines[index]))
        table.add_row(*cells, p.get("field", ""), p.get("message", ""))
    return table


def payout_table(payout: dict[str, Any]) -> Table:
    table = Table(title=f"Payout {payout['payout_id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("external_id", payout["external_id"]),
        ("batch", payout["batch_id"]),
        ("user", payout["user_id"]),
        ("amount", brl(payout["amount_cents"])),
        ("pix key", f"{payout['pix_key']} ({payout['pix_key_type']})"),
        ("end-to-end id", payout["end_to_end_id"]),
        ("status", payout["status"]),
        ("attempts", str(payout["attempts"])),
    ]
    if payout.get("failure"):
        rows.append(("failure", f"{payout['failure']['code']}: {payout['failure'].get('message') or ''}"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def history_table(history: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="History")
    table.add_column("at", no_wrap=True)
    for name in ("event", "status", "attempt", "code", "detail"):
        table.add_column(name)
    for h in history:
        moved = " -> ".join(s for s in (h.get("from_status"), h.get("to_status")) if s)
        table.add_row(
            when(h["at"]),
            h["event"],
            moved,
            str(h.get("attempt", "")),
            h.get("code", ""),
            h.get("detail", ""),
        )
    return table


def webhooks_table(endpoints: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Webhook endpoints")
    for name in ("id", "url", "events", "state"):
        table.add_column(name, overflow="fold")
    for e in endpoints:
        state = "failing since " + when(e["failing_since"]) if e["failing"] else "ok"
        state = state if e["enabled"] else "disabled"
        table.add_row(e["id"], e["url"], ", ".join(e["events"]), state)
    return table
