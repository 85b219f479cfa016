"""The Efí account's client certificate and OAuth2 credentials: from files locally, one secret on AWS."""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..secrets import read_secret


@dataclass(frozen=True, slots=True)
class EfiCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    certificate_pem: str = field(repr=False)
    private_key_pem: str = field(repr=False)
    # Empty: trust the system's CAs (Efí's hosts); the local PSP hands out its own CA.
    ca_pem: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        missing = [
            name
            for name in ("client_id", "client_secret", "certificate_pem", "private_key_pem")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"Efí credentials lack {', '.join(missing)}")

    @classmethod
    def from_files(cls, cert_file: str, key_file: str, credentials_file: str, ca_file: str = "") -> EfiCredentials:
        """PEM certificate and key (Efí issues a .p12; convert it once), credentials.json with client_id/secret."""
        creds = json.loads(Path(credentials_file).read_text())
        return cls(
            client_id=str(creds.get("client_id") or ""),
            client_secret=str(creds.get("client_secret") or ""),
            certificate_pem=Path(cert_file).read_text(),
            private_key_pem=Path(key_file).read_text(),
            ca_pem=Path(ca_file).read_text() if ca_file else "",
        )

    @classmethod
    def from_secret(cls, client: Any, secret_id: str) -> EfiCredentials:
        """One Secrets Manager secret: {"client_id", "client_secret", "certificate", "private_key", "ca"?}."""
        secret = read_secret(client, secret_id)
        return cls(
            client_id=str(secret.get("client_id") or ""),
            client_secret=str(secret.get("client_secret") or ""),
            certificate_pem=str(secret.get("certificate") or ""),
            private_key_pem=str(secret.get("private_key") or ""),
            ca_pem=str(secret.get("ca") or ""),
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that presents the account's certificate and checks the provider's."""
        context = ssl.create_default_context(cadata=self.ca_pem or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # OpenSSL loads a certificate chain from files only: write them where only we can read them,
        # load, and remove them at once (the context keeps them in memory).
        with tempfile.TemporaryDirectory(prefix="efi-") as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            for path, text in ((cert, self.certificate_pem), (key, self.private_key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(text)
            context.load_cert_chain(cert, key)
        return context
