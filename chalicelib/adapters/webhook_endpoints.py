"""Webhook endpoints: register, list, read, change, delete, rotate the signing secret."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..domain.webhook_records import Endpoint
from .database import Database, one
from .webhook_records import ENDPOINT_COLUMNS as _ENDPOINT_COLUMNS
from .webhook_records import endpoint_from_row as _endpoint


class WebhookEndpoints:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_endpoint(
        self, endpoint_id: str, url: str, events: Sequence[str], description: str, secret: str
    ) -> Endpoint:
        with self.db.statement() as cur:
            cur.execute(
                "INSERT INTO webhook_endpoints (endpoint_id, url, events, description, secret)"
                f" VALUES (%s, %s, %s, %s, %s) RETURNING {_ENDPOINT_COLUMNS}",
                (endpoint_id, url, list(events), description, secret),
            )
            return _endpoint(one(cur))

    def endpoints(self) -> list[Endpoint]:
        with self.db.statement() as cur:
            cur.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, endpoint_id")
            return [_endpoint(r) for r in cur.fetchall()]

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        with self.db.statement() as cur:
            cur.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = %s", (endpoint_id,))
            row = cur.fetchone()
        return None if row is None else _endpoint(row)

    def update_endpoint(self, endpoint_id: str, changes: dict[str, Any]) -> Endpoint | None:
        columns = {"url", "events", "description", "enabled"}
        sets = ", ".join(f"{name} = %({name})s" for name in changes if name in columns)
        with self.db.statement() as cur:
            cur.execute(
                f"UPDATE webhook_endpoints SET {sets}, updated_at = now() WHERE endpoint_id = %(id)s"
                f" RETURNING {_ENDPOINT_COLUMNS}",
                {**{k: (list(v) if k == "events" else v) for k, v in changes.items()}, "id": endpoint_id},
            )
            row = cur.fetchone()
        return None if row is None else _endpoint(row)

    def delete_endpoint(self, endpoint_id: str) -> bool:
        with self.db.statement() as cur:
            cur.execute("DELETE FROM webhook_endpoints WHERE endpoint_id = %s", (endpoint_id,))
            return int(cur.rowcount) == 1

    def rotate_secret(self, endpoint_id: str, secret: str, overlap_seconds: int) -> Endpoint | None:
        with self.db.statement() as cur:
            cur.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret,"
                " previous_expires_at = now() + make_interval(secs => %s), secret = %s, updated_at = now()"
                f" WHERE endpoint_id = %s RETURNING {_ENDPOINT_COLUMNS}",
                (overlap_seconds, secret, endpoint_id),
            )
            row = cur.fetchone()
        return None if row is None else _endpoint(row)
