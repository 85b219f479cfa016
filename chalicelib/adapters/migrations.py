"""Applies ordered SQL files (chalicelib/migrations, or another chain's folder), once each, under an advisory lock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg2

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates.
_LOCK_KEY = 0x50495850  # "PIXP"

# Files edited after databases recorded them, and the checksums those databases may hold. Each is
# an earlier text whose effects the current chain accepts, never a general bypass of the check.
# 0001_initial.sql: it also created the sandbox provider's tables, which now live in their own
# chain (infra/sandbox_schema, IF NOT EXISTS throughout), so fresh production databases do not get
# them. A database created by the older text keeps them (empty unless the sandbox ran there);
# tests/integration/test_sandbox_schema.py migrates such a database with that older text.
EARLIER_CHECKSUMS: dict[str, frozenset[str]] = {
    "0001_initial.sql": frozenset({"88cbad87b8f1cbd83c9f020ff1fda708fe7df34cfdc333f8f243d49886eee560"}),
}


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(directory.glob("*.sql"))


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR, prefix: str = "") -> list[str]:
    """Apply pending migrations; safe to run twice and from several processes at once.

    Another chain (the sandbox provider's tables, infra/sandbox_schema) passes its folder and a
    prefix, under which its files are recorded in the same schema_migrations table.
    """
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
                for path in migration_files(directory):
                    sql = path.read_text()
                    checksum = hashlib.sha256(sql.encode()).hexdigest()
                    version = prefix + path.name
                    if version in done:
                        if done[version] != checksum and done[version] not in EARLIER_CHECKSUMS.get(version, ()):
                            raise RuntimeError(f"migration {version} changed after it was applied")
                        continue
                    conn.autocommit = False
                    with conn:  # one transaction per file: a failed file leaves no trace
                        cur.execute(sql)
                        cur.execute(
                            "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                            (version, checksum),
                        )
                    conn.autocommit = True
                    applied.append(version)
            finally:
                conn.autocommit = True
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        conn.close()
    return applied
