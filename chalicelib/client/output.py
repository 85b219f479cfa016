"""What the CLI shows: money in reais, the report's counts, problems, a payout's history, as rich tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table


def brl(cents: int) -> str:
    """35000 -> "R$ 350,00", as a Brazilian reads money."""
    reais, centavos = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"{sign}R$ {reais:,}".replace(",", ".") + f",{centavos:02d}"


def counts_table(reports: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Report")
    for name in ("batch", "items", "paid", "failed", "duplicates", "pending", "amount paid", "amount failed"):
        table.add_column(name, justify="left" if name == "batch" else "right", no_wrap=name != "duplicates")
    for r in reports:
        table.add_row(
            r["batch_id"],
            str(r["total"]),
            str(r["successful"]),
            str(r["failed"]),
            str(r["duplicates"]),
            str(r["pending"]),
            brl(r["amounts"]["paid"]),
            brl(r["amounts"]["failed"]),
        )
    if len(reports) > 1:
        sums = {k: sum(r[k] for r in reports) for k in ("total", "successful", "failed", "duplicates", "pending")}
        table.add_row(
            "all",
            *(str(sums[k]) for k in ("total", "successful", "failed", "duplicates", "pending")),
            brl(sum(r["amounts"]["paid"] for r in reports)),
            brl(sum(r["amounts"]["failed"] for r in reports)),
            style="bold",
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
    for name in ("external_id", "status", "amount", "end-to-end id or reason", "paid at"):
        table.add_column(name, justify="right" if name == "amount" else "left")
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
        table.add_row(d["external_id"], d["status"], brl(d["amount_cents"]), proof, d.get("paid_at", ""))
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
    for name in ("at", "event", "status", "attempt", "code", "detail"):
        table.add_column(name)
    for h in history:
        moved = f"{h.get('from_status') or ''} -> {h['to_status']}" if h.get("to_status") else ""
        table.add_row(
            h["at"],
            h["event"],
            moved.lstrip(" ->") if not h.get("from_status") else moved,
            str(h.get("attempt", "")),
            h.get("code", ""),
            h.get("detail", ""),
        )
    return table
