"""A payout spreadsheet (CSV with a header) read into the API's items, amounts converted exactly."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Any

REQUIRED = ("external_id", "user_id", "pix_key")
AMOUNT_COLUMNS = ("amount_cents", "amount")
# Reais with a decimal comma or point and at most two decimals: "350", "350,5", "350.00".
_REAIS = re.compile(r"(?P<whole>[0-9]+)(?:[.,](?P<frac>[0-9]{1,2}))?")
_CENTS = re.compile(r"[0-9]+")


class CsvError(ValueError):
    """A problem at one place of the file: line (1 = the header) and, when it is one cell, its column."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, name: str | None = None):
        super().__init__(message)
        self.line = line
        self.column = column
        self.name = name

    def where(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column}" + (f" ({self.name})" if self.name else ""))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class CsvPayouts:
    items: list[dict[str, Any]]
    lines: list[int]  # the file line of each item, to point a 422's item index back at the file


def reais_to_cents(text: str) -> int:
    """ "350,00" and "350.00" are 35000: digits only, never through float. Thousands separators are refused."""
    value = text.strip()
    if value.startswith("-"):
        raise ValueError("must be positive")
    match = _REAIS.fullmatch(value)
    if match is None:
        if value.count(".") + value.count(",") > 1 or re.fullmatch(r"[0-9]+[.,][0-9]{3,}", value):
            raise ValueError(
                f"{value!r} has a thousands separator or more than two decimals; write reais as 1234,56 or 1234.56"
            )
        raise ValueError(f"{value!r} is not an amount in reais such as 350,00 or 350.00")
    cents = int(match["whole"]) * 100 + int((match["frac"] or "0").ljust(2, "0"))
    if cents == 0:
        raise ValueError("must be more than zero")
    return cents


def parse_cents(text: str) -> int:
    value = text.strip()
    if value.startswith("-"):
        raise ValueError("must be positive")
    if not _CENTS.fullmatch(value):
        raise ValueError(f"{value!r} is not a whole number of centavos (digits only; for reais use an amount column)")
    if int(value) == 0:
        raise ValueError("must be more than zero")
    return int(value)


def read_payouts_csv(data: bytes) -> CsvPayouts:
    """Items from a CSV file: a header naming external_id, user_id, pix_key and amount_cents or amount (reais).

    UTF-8, with or without a byte order mark; commas or (as Brazilian spreadsheets write) semicolons.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvError("the file is not UTF-8; save it as CSV UTF-8", line=line) from exc
    text = text.removeprefix(codecs.BOM_UTF8.decode())
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise CsvError("the file is empty; the first line must name the columns", line=1)
        names = [cell.strip().lower() for cell in header]
        columns = _columns(names)
        items: list[dict[str, Any]] = []
        lines: list[int] = []
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise CsvError(f"the line has {len(row)} fields; the header has {len(names)}", line=line)
            items.append(_item(row, columns, line))
            lines.append(line)
    except csv.Error as exc:
        raise CsvError(f"the file is not valid CSV: {exc}", line=reader.line_num) from exc
    if not items:
        raise CsvError("the file has a header but no payouts", line=2)
    return CsvPayouts(items, lines)


def _columns(names: list[str]) -> dict[str, int]:
    for n, name in enumerate(names):
        if name in names[:n]:
            raise CsvError(f"the column {name!r} appears twice", line=1, column=n + 1, name=name)
        if name not in (*REQUIRED, *AMOUNT_COLUMNS):
            allowed = ", ".join((*REQUIRED, *AMOUNT_COLUMNS))
            raise CsvError(f"unknown column {name!r}; the columns are {allowed}", line=1, column=n + 1, name=name)
    missing = [name for name in REQUIRED if name not in names]
    amounts = [name for name in AMOUNT_COLUMNS if name in names]
    if len(amounts) != 1:
        missing.append("amount_cents or amount" if not amounts else "only one of amount_cents and amount")
    if missing:
        raise CsvError("the header lacks " + ", ".join(missing), line=1)
    return {name: names.index(name) for name in (*REQUIRED, amounts[0])}


def _item(row: list[str], columns: dict[str, int], line: int) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for name, index in columns.items():
        value = row[index].strip()
        if not value:
            raise CsvError(f"{name} is empty", line=line, column=index + 1, name=name)
        if name in AMOUNT_COLUMNS:
            try:
                item["amount_cents"] = parse_cents(value) if name == "amount_cents" else reais_to_cents(value)
            except ValueError as exc:
                raise CsvError(f"{name} {exc}", line=line, column=index + 1, name=name) from exc
        else:
            item[name] = value
    return {key: item[key] for key in ("external_id", "user_id", "amount_cents", "pix_key")}
