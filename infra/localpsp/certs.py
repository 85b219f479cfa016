"""Fresh certificates at every start (trustme): the PSP's server certificate and our client's, one CA."""

from __future__ import annotations

import json
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """What a client of the PSP needs, as files in the state dir (the names settings point at)."""

    ca: Path
    cert: Path
    key: Path
    credentials: Path

    @classmethod
    def in_dir(cls, state_dir: Path) -> ClientFiles:
        return cls(*(state_dir / name for name in ("ca.pem", "client-cert.pem", "client-key.pem", "credentials.json")))


def issue(state_dir: Path, host: str) -> tuple[ssl.SSLContext, ClientFiles, dict[str, str]]:
    """A server context that demands a client certificate from the CA, and the client's files."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="pix-payouts local PSP")
    server_cert = ca.issue_cert(host, "localhost", "127.0.0.1")
    client_cert = ca.issue_cert("pix-payouts-client.local")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    credentials = {"client_id": f"Client_Id_{secrets.token_hex(8)}", "client_secret": secrets.token_urlsafe(24)}
    files = ClientFiles(
        *(state_dir / name for name in ("ca.pem", "client-cert.pem", "client-key.pem")), state_dir / "credentials.json"
    )
    _write(files.ca, ca.cert_pem.bytes())
    _write(files.cert, b"".join(blob.bytes() for blob in client_cert.cert_chain_pems))
    _write(files.key, client_cert.private_key_pem.bytes())
    _write(files.credentials, json.dumps(credentials, indent=2).encode())
    return context, files, credentials


def _write(path: Path, data: bytes) -> None:
    # Written aside and renamed: a reader never sees half a key; only this user may read them.
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
