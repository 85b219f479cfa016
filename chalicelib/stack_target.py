"""What an operator command acts on: the settings it was given, else the embedded stack's `.stack/`, else nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path


def stack_dirs() -> tuple[Path, ...]:
    """Where `infra/stack.py up` describes the embedded stack: the working directory's, then this tree's.

    Asked at each call, not at import: importing this module does no work, and a command run after
    a chdir (or a test in its own folder) looks where it is now."""
    return (Path.cwd() / ".stack", Path(__file__).resolve().parents[1] / ".stack")


DATABASE = ("DATABASE_URL", "DATABASE_SECRET_ARN")
QUEUES = ("PAYOUTS_QUEUE_URL", "PAYOUTS_DLQ_URL", "FANOUT_QUEUE_URL")
REGION = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Commands that touch the queues as well as the database.
QUEUE_COMMANDS = frozenset({"sweep", "dlq-redrive"})
# .stack/ file -> the setting it stands for
_STACK_FILES = {
    "database_url": "DATABASE_URL",
    "queue_url": "PAYOUTS_QUEUE_URL",
    "dlq_url": "PAYOUTS_DLQ_URL",
    "fanout_url": "FANOUT_QUEUE_URL",
    "lock_table": "IDEMPOTENCY_TABLE",
}


class NoTarget(Exception):
    """Nothing says which database or queue to act on; the message says what to set."""


def resolve(command: str, environ: Mapping[str, str], folders: Sequence[Path] | None = None) -> dict[str, str]:
    """The settings to add to the environment so `command` acts on what it was pointed at.

    `folders`: where to look for an embedded stack's `.stack/`; stack_dirs() when not given."""
    needs_queues = command in QUEUE_COMMANDS
    if any(environ.get(name) for name in DATABASE):
        missing = [name for name in QUEUES if needs_queues and not environ.get(name)]
        if needs_queues and not any(environ.get(name) for name in REGION):
            missing.append("AWS_REGION")
        if missing:
            raise NoTarget(f"{command}: a database is set but not {', '.join(missing)}; set them too.")
        return {}
    for folder in stack_dirs() if folders is None else folders:
        if (folder / "database_url").is_file():
            return _embedded(folder, environ)
    also = ", PAYOUTS_QUEUE_URL, PAYOUTS_DLQ_URL, FANOUT_QUEUE_URL and AWS_REGION" if needs_queues else ""
    raise NoTarget(
        f"{command}: no database to act on: set DATABASE_URL{also}, or start the embedded stack with `make up`."
    )


def _embedded(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    found = {name: _read(folder / file) for file, name in _STACK_FILES.items()}
    endpoint = _read(folder / "endpoint_url") or f"http://127.0.0.1:{environ.get('PIX_STACK_PORT', '4566')}"
    values = {name: value for name, value in found.items() if value}
    values.update(_local_psp(folder, environ))
    values.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            # The emulator takes any credentials; these never reach AWS (the endpoint is the emulator's).
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
    )
    return values


def _local_psp(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """When the stack's functions pay through its local PSP (`make up`'s default; .stack/pix_provider says so),
    the same provider for the command (poll, reconcile), unless the environment names a provider itself."""
    if environ.get("PIX_PROVIDER") or _read(folder / "pix_provider") != "efi":
        return {}
    psp = folder / "psp"
    return {
        "PIX_PROVIDER": "efi",
        "EFI_BASE_URL": _read(folder / "psp_url"),
        "EFI_CERT_FILE": str(psp / "client-cert.pem"),
        "EFI_KEY_FILE": str(psp / "client-key.pem"),
        "EFI_CA_FILE": str(psp / "ca.pem"),
        "EFI_CREDENTIALS_FILE": str(psp / "credentials.json"),
    }


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def apply(command: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Resolve and write the result into the environment (os.environ unless given); True when it added settings.
    Raises NoTarget."""
    env = os.environ if environ is None else environ
    added = resolve(command, env)
    env.update(added)
    return bool(added)
