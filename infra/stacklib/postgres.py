"""PostgreSQL for the embedded stack: DATABASE_URL when given, else pgserver in .stack/pgdata; migrations."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import warnings
from types import ModuleType

from infra.stacklib.console import log, read, write
from infra.stacklib.layout import PG_MODE, PG_STARTED, PGDATA, ROOT, STACK_DIR
from infra.stacklib.processes import alive


def _pgserver() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs RuntimeDirWarning
        import pgserver
    return pgserver


def postmaster_pid() -> int | None:
    """PID of the postgres running on .stack/pgdata, if any."""
    try:
        pid = int((PGDATA / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def _is_our_pgserver_url(url: str) -> bool:
    return f"host={PGDATA}" in url


def pg_up() -> str:
    external = os.environ.get("DATABASE_URL")
    if external and not _is_our_pgserver_url(external):
        write(PG_MODE, "external")
        log("postgres: using DATABASE_URL from the environment (not managed here)")
        return external
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    was_running = postmaster_pid() is not None
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    srv = _pgserver().get_server(PGDATA, cleanup_mode=None)
    url: str = srv.get_uri()
    write(PG_MODE, "pgserver")
    if not was_running:
        write(PG_STARTED, str(srv.get_pid()))
    log(f"postgres: pgserver {'reused' if was_running else 'started'} (pid {srv.get_pid()}) {url}")
    return url


def pg_down(everything: bool = False) -> None:
    pid = postmaster_pid()
    started = read(PG_STARTED)
    if pid is None:
        log("postgres: embedded server not running")
    elif started != str(pid) and not everything:
        log(
            f"postgres: embedded server on .stack/pgdata (pid {pid}) was not started by `up`; "
            "left alone (`down --all` stops it)"
        )
    else:
        pg = _pgserver()
        user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        try:
            # pgserver's own pg_ctl; postgres runs as user `pgserver` when we are root.
            pg.pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=PGDATA, user=user, timeout=60)
            log(f"postgres: embedded server stopped (was pid {pid})")
        except Exception as exc:
            log(f"postgres: pg_ctl stop failed ({exc}); sending SIGTERM to {pid}")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if read(PG_MODE) == "external":
        log("postgres: DATABASE_URL server left alone")
    PG_MODE.unlink(missing_ok=True)
    PG_STARTED.unlink(missing_ok=True)


# The sandbox provider's tables: their own chain, applied only where that provider runs.
SANDBOX_SCHEMA = ROOT / "infra" / "sandbox_schema"
SANDBOX_PREFIX = "sandbox/"


def migrate(url: str, sandbox: bool = False) -> None:
    """The service's migrations, then (for the sandbox provider) the sandbox's own chain."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib.adapters.migrations import apply_migrations

    applied = apply_migrations(url)
    if sandbox:
        applied += apply_migrations(url, SANDBOX_SCHEMA, SANDBOX_PREFIX)
    log(f"postgres: migrations applied: {', '.join(applied) or 'none new'}")


def pg_ready(url: str) -> bool:
    _pgserver()  # imports pgserver with its platformdirs warning silenced
    from pgserver._commands import POSTGRES_BIN_PATH

    pg_isready = POSTGRES_BIN_PATH / "pg_isready"
    exe = str(pg_isready) if pg_isready.exists() else shutil.which("pg_isready")
    if not exe:
        return False
    return subprocess.run([exe, "-q", "-d", url], timeout=10).returncode == 0
