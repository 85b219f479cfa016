"""The local PSP's persistent ledger of sends (SQLite in its state dir), so a double payment stays visible."""

from __future__ import annotations

import secrets
import sqlite3
import string
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_ALPHANUMERICS = string.ascii_letters + string.digits
# The PSP's own ISPB in the end-to-end ids it assigns (Efí's is 09089356).
PSP_ISPB = "09089356"


@dataclass(frozen=True, slots=True)
class Sent:
    id_envio: str
    e2e_id: str
    valor_cents: int
    chave: str
    payer_key: str
    status: str
    requested_at: datetime
    settled_at: datetime | None
    error_code: str | None
    error_reason: str | None


class Ledger:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Every statement commits (three a send) under one lock: with the default rollback journal each
        # commit waited for an fsync, which serialised a busy PSP on the disk. WAL with synchronous=NORMAL
        # commits without one and still survives the process's crash or kill (only an OS crash may lose
        # the last commits), which is all a stand-in's ledger needs.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS sends (id_envio TEXT PRIMARY KEY, e2e_id TEXT UNIQUE NOT NULL,"
            " valor_cents INTEGER NOT NULL, chave TEXT NOT NULL, payer_key TEXT NOT NULL, status TEXT NOT NULL,"
            " requested_at TEXT NOT NULL, settled_at TEXT, error_code TEXT, error_reason TEXT);"
            "CREATE INDEX IF NOT EXISTS sends_requested ON sends (requested_at);"
            "CREATE TABLE IF NOT EXISTS attempts (id_envio TEXT PRIMARY KEY, n INTEGER NOT NULL);"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def count_attempt(self, id_envio: str) -> int:
        """How many times a send under id_envio was asked for, this one included."""
        with self._lock:
            row = self._db.execute(
                "INSERT INTO attempts VALUES (?, 1) ON CONFLICT (id_envio) DO UPDATE SET n = n + 1 RETURNING n",
                (id_envio,),
            ).fetchone()
        return int(row[0])

    def record(self, id_envio: str, valor_cents: int, chave: str, payer_key: str, now: datetime) -> Sent | None:
        """Execute a send, or None when id_envio was used before (nothing is paid twice)."""
        e2e = f"E{PSP_ISPB}{now:%Y%m%d%H%M}" + "".join(secrets.choice(_ALPHANUMERICS) for _ in range(11))
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO sends (id_envio, e2e_id, valor_cents, chave, payer_key, status, requested_at)"
                " VALUES (?, ?, ?, ?, ?, 'EM_PROCESSAMENTO', ?) ON CONFLICT (id_envio) DO NOTHING",
                (id_envio, e2e, valor_cents, chave, payer_key, _stamp(now)),
            )
            if cur.rowcount == 0:
                return None
        return self.by_id_envio(id_envio)

    def settle(self, id_envio: str, status: str, now: datetime, code: str | None, reason: str | None) -> Sent | None:
        """EM_PROCESSAMENTO -> REALIZADO or NAO_REALIZADO, once."""
        with self._lock:
            self._db.execute(
                "UPDATE sends SET status = ?, settled_at = ?, error_code = ?, error_reason = ?"
                " WHERE id_envio = ? AND status = 'EM_PROCESSAMENTO'",
                (status, _stamp(now), code, reason, id_envio),
            )
        return self.by_id_envio(id_envio)

    def by_id_envio(self, id_envio: str) -> Sent | None:
        return self._one("id_envio = ?", id_envio)

    def by_e2e(self, e2e_id: str) -> Sent | None:
        return self._one("e2e_id = ?", e2e_id)

    def between(self, since: datetime, until: datetime, offset: int, limit: int) -> tuple[int, list[Sent]]:
        """(how many in the window, one page of them in request order)."""
        window = (_stamp(since), _stamp(until))
        with self._lock:
            total = self._db.execute(
                "SELECT count(*) FROM sends WHERE requested_at BETWEEN ? AND ?", window
            ).fetchone()[0]
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM sends WHERE requested_at BETWEEN ? AND ?"
                " ORDER BY requested_at, id_envio LIMIT ? OFFSET ?",
                (*window, limit, offset),
            ).fetchall()
        return int(total), [_sent(row) for row in rows]

    def _one(self, where: str, value: str) -> Sent | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM sends WHERE {where}", (value,)).fetchone()
        return None if row is None else _sent(row)


_COLUMNS = "id_envio, e2e_id, valor_cents, chave, payer_key, status, requested_at, settled_at, error_code, error_reason"


def _stamp(moment: datetime) -> str:
    # Fixed-width UTC text sorts as time does, so SQLite compares windows as strings.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _sent(row: tuple) -> Sent:
    requested = _parse(row[6])
    assert requested is not None
    return Sent(row[0], row[1], row[2], row[3], row[4], row[5], requested, _parse(row[7]), row[8], row[9])
