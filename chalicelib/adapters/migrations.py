"""Applies the ordered SQL files in chalicelib/migrations, once each, under an advisory lock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg2

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates.
_LOCK_KEY = 0x50495850  # "PIXP"


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


def apply_migrations(database_url: str) -> list[str]:
    """Apply pending migrations; safe to run twice and from several processes at once."""
    applied: list[str] = []
    conn = psycopg2.connect(database_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            # Session lock: concurrent migrators queue here instead of racing on DDL.
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cur.execute("SELECT version, checksum FROM schema_migrations")
                done = dict(cur.fetchall())
                for path in migration_files():
                    sql = path.read_text()
                    checksum = hashlib.sha256(sql.encode()).hexdigest()
                    if path.name in done:
                        if done[path.name] != checksum:
                            raise RuntimeError(f"migration {path.name} changed after it was applied")
                        continue
                    conn.autocommit = False
                    with conn:  # one transaction per file: a failed file leaves no trace
                        cur.execute(sql)
                        cur.execute(
                            "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                            (path.name, checksum),
                        )
                    conn.autocommit = True
                    applied.append(path.name)
            finally:
                conn.autocommit = True
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        conn.close()
    return applied
