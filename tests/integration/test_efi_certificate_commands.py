"""The README's two openssl commands turn a .p12 like Efí's into the PEM files EFI_CERT_FILE/EFI_KEY_FILE name."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import NoEncryption, load_pem_private_key, pkcs12

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_readme_s_openssl_commands_make_a_certificate_and_key_that_belong_together(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").replace("\n", " ")
    commands = re.findall(r"`(openssl pkcs12 -in cert\.p12 [^`]+)`", readme)
    assert len(commands) == 2
    issued = trustme.CA().issue_cert("payer.example")
    key = load_pem_private_key(issued.private_key_pem.bytes(), None)
    cert = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
    p12 = pkcs12.serialize_key_and_certificates(b"efi", key, cert, None, NoEncryption())  # type: ignore[arg-type]
    (tmp_path / "cert.p12").write_bytes(p12)
    for command in commands:
        done = subprocess.run(
            command.split(), cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, (command, done.stderr)
    context = ssl.create_default_context()
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")  # refuses a key that is not the cert's
