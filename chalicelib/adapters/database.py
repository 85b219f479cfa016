"""One PostgreSQL connection per container: opened on first use, checked after idling, re-opened after it breaks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import psycopg2
import psycopg2.extensions

from ..domain.errors import Unavailable
from .pg_conflicts import is_retryable

_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def one(cur: psycopg2.extensions.cursor) -> tuple[Any, ...]:
    """The row a statement that always returns one (count, RETURNING of an upsert) returned."""
    row = cur.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row


class Database:
    """Holds one connection, opened on first use and re-opened after it breaks.

    A connection left idle longer than `idle_check_seconds` is pinged before it is used again: a
    Lambda container kept warm across a database restart (or a failover) holds a connection the
    server has closed, and its first statement would otherwise fail a wake-up that nothing retries
    for minutes. A busy container never pays the round trip.
    """

    def __init__(
        self,
        url: str,
        connect_timeout: int = 5,
        options: str = "",
        application_name: str = "pix-payouts",
        idle_check_seconds: float = 10.0,
    ) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._options = options
        self._application_name = application_name
        self._idle_check_seconds = idle_check_seconds
        self._conn: psycopg2.extensions.connection | None = None
        self._used_at = 0.0

    def _connection(self) -> psycopg2.extensions.connection:
        now = time.monotonic()
        if self._conn is not None and not self._conn.closed and now - self._used_at >= self._idle_check_seconds:
            if not self._alive(self._conn):
                self.close()
        if self._conn is None or self._conn.closed:
            extra: dict[str, Any] = {"options": self._options} if self._options else {}
            self._conn = psycopg2.connect(
                self._url, connect_timeout=self._connect_timeout, application_name=self._application_name, **extra
            )
        self._used_at = now
        return self._conn

    @staticmethod
    def _alive(conn: psycopg2.extensions.connection) -> bool:
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.autocommit = False
            return True
        except _CONNECTION_ERRORS:
            return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _unavailable(self, exc: BaseException) -> NoReturn:
        # A lost lock conflict is an OperationalError too, but the server is fine and so is the
        # connection (the transaction was rolled back): the caller retries it in place.
        if is_retryable(exc):
            raise exc
        self.close()
        raise Unavailable("the database is unavailable") from exc

    @contextmanager
    def statement(self) -> Iterator[psycopg2.extensions.cursor]:
        """A cursor for one statement that commits by itself: one round trip where a transaction takes two."""
        try:
            conn = self._connection()
            conn.autocommit = True
            try:
                with conn.cursor() as cur:
                    yield cur
            finally:
                if not conn.closed:
                    conn.autocommit = False
        except _CONNECTION_ERRORS as exc:
            self._unavailable(exc)

    @contextmanager
    def transaction(self) -> Iterator[psycopg2.extensions.cursor]:
        """A cursor inside one transaction: committed on success, rolled back on any error."""
        try:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                yield cur
        except _CONNECTION_ERRORS as exc:
            self._unavailable(exc)
