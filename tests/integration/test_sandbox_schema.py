"""The sandbox provider's tables in their own migration chain: idempotent over databases that already have them."""

from __future__ import annotations

import psycopg2

from chalicelib.adapters.migrations import apply_migrations, migration_files
from infra.stacklib.postgres import SANDBOX_PREFIX, SANDBOX_SCHEMA
from tests.support import scratch_database

SANDBOX_TABLES = ["sandbox_pix_attempts", "sandbox_pix_transfers"]


def tables(url: str) -> list[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'sandbox_pix_%' ORDER BY 1")
        return [r[0] for r in cur.fetchall()]


def test_on_a_database_migrated_before_the_chain_existed_it_keeps_the_ledger_and_applies_once() -> None:
    with scratch_database("pix_sbx", migrate=False) as url:
        apply_migrations(url)  # 0001_initial.sql created the sandbox's tables then
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sandbox_pix_transfers (end_to_end_id, payout_id, amount_cents, pix_key_type, pix_key)"
                " VALUES (repeat('E', 32), gen_random_uuid(), 1500, 'email', 'a@example.com')"
            )
        names = [SANDBOX_PREFIX + p.name for p in migration_files(SANDBOX_SCHEMA)]
        assert apply_migrations(url, SANDBOX_SCHEMA, SANDBOX_PREFIX) == names
        assert apply_migrations(url, SANDBOX_SCHEMA, SANDBOX_PREFIX) == []
        assert apply_migrations(url) == []  # the service's chain is untouched by the sandbox's
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM sandbox_pix_transfers")
            assert cur.fetchone()[0] == 1


def test_where_the_tables_are_missing_the_chain_creates_them() -> None:
    with scratch_database("pix_sbx", migrate=False) as url:
        apply_migrations(url)
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE {', '.join(SANDBOX_TABLES)}")
        assert tables(url) == []
        apply_migrations(url, SANDBOX_SCHEMA, SANDBOX_PREFIX)
        assert tables(url) == SANDBOX_TABLES


def test_no_migration_of_the_service_after_the_first_touches_the_sandbox() -> None:
    later = [p for p in migration_files() if p.name != "0001_initial.sql"]
    assert later and all("sandbox_" not in p.read_text() for p in later)
