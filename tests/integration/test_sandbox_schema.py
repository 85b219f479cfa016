"""The sandbox provider's tables in their own migration chain: idempotent over databases that already have them."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import psycopg2
import pytest

from chalicelib.adapters.migrations import EARLIER_CHECKSUMS, MIGRATIONS_DIR, apply_migrations, migration_files
from infra.stacklib.postgres import SANDBOX_PREFIX, SANDBOX_SCHEMA
from tests.support import scratch_database

SANDBOX_TABLES = ["sandbox_pix_attempts", "sandbox_pix_transfers"]
# 0001_initial.sql as databases created before the sandbox's chain recorded it (byte for byte).
EARLIER_0001 = Path(__file__).parent / "data" / "0001_initial_with_sandbox_tables.sql"


def tables(url: str) -> list[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'sandbox_pix_%' ORDER BY 1")
        return [r[0] for r in cur.fetchall()]


def migrate_as_before_the_split(url: str, tmp_path: Path) -> None:
    """Migrate as the code did while 0001_initial.sql still created the sandbox's tables."""
    chain = tmp_path / "chain_before_the_split"
    shutil.copytree(MIGRATIONS_DIR, chain)
    shutil.copy(EARLIER_0001, chain / "0001_initial.sql")
    apply_migrations(url, chain)


def test_the_earlier_text_of_0001_is_the_one_whose_checksum_the_runner_accepts() -> None:
    earlier = hashlib.sha256(EARLIER_0001.read_text().encode()).hexdigest()
    current = hashlib.sha256((MIGRATIONS_DIR / "0001_initial.sql").read_text().encode()).hexdigest()
    assert EARLIER_CHECKSUMS["0001_initial.sql"] == {earlier} and earlier != current
    assert "CREATE TABLE sandbox_pix_transfers" in EARLIER_0001.read_text()


def test_on_a_database_migrated_before_the_chain_existed_it_keeps_the_ledger_and_applies_once(tmp_path: Path) -> None:
    with scratch_database("pix_sbx", migrate=False) as url:
        migrate_as_before_the_split(url, tmp_path)  # 0001_initial.sql created the sandbox's tables then
        assert tables(url) == SANDBOX_TABLES
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


def test_a_fresh_production_database_gets_no_sandbox_table_and_the_chain_creates_them_where_wanted() -> None:
    with scratch_database("pix_sbx", migrate=False) as url:
        apply_migrations(url)
        assert tables(url) == []
        apply_migrations(url, SANDBOX_SCHEMA, SANDBOX_PREFIX)
        assert tables(url) == SANDBOX_TABLES


def test_any_other_change_to_an_applied_migration_is_still_refused(tmp_path: Path) -> None:
    with scratch_database("pix_sbx", migrate=False) as url:
        apply_migrations(url)
        chain = tmp_path / "edited"
        shutil.copytree(MIGRATIONS_DIR, chain)
        (chain / "0001_initial.sql").write_text(EARLIER_0001.read_text() + "\n-- edited once more\n")
        with pytest.raises(RuntimeError, match=r"0001_initial\.sql changed after it was applied"):
            apply_migrations(url, chain)


def test_no_migration_of_the_service_after_the_first_touches_the_sandbox() -> None:
    later = [p for p in migration_files() if p.name != "0001_initial.sql"]
    assert later and all("sandbox_" not in p.read_text() for p in later)
    assert "sandbox_" not in (MIGRATIONS_DIR / "0001_initial.sql").read_text()  # nor, now, the first
